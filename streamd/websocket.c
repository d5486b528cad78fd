/*
 * websocket.c - RFC 6455 server-side framing, the handshake key and strict
 * base64 (see websocket.h).
 *
 * A frame is checked as far as its first bytes allow before waiting for the
 * rest: a client that declares something forbidden or oversized is refused
 * on the header, never buffered.  The payload is unmasked only once the
 * whole frame is present, so a caller may call again on the same bytes
 * after 0 ("need more").
 */
#include "websocket.h"

#include "macros.h"

#include <limits.h>
#include <openssl/evp.h>

/* RFC 6455 section 1.3: appended to the client's key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* A key is 16 random bytes in base64: 24 characters, the last two "==". */
#define WS_CLIENT_KEY_LEN 24

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes 4 * ceil(len / 3) characters and a NUL to out. */
static void b64_encode_into(const uint8_t *in, size_t len, char *out)
{
	size_t i = 0, o = 0;

	for (; len - i >= 3; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = b64_alphabet[(v >> 6) & 0x3f];
		out[o++] = b64_alphabet[v & 0x3f];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 0x3f];
		out[o++] = b64_alphabet[(v >> 6) & 0x3f];
		out[o++] = '=';
	}
	out[o] = '\0';
}

char *ws_base64_encode(const void *data, size_t len, size_t *ret_len)
{
	/* 4 characters per started group of 3, then the NUL. */
	if (len / 3 >= (SIZE_MAX - 5) / 4)
		abort();
	size_t n = (len + 2) / 3 * 4;
	char *out = xmalloc(n + 1);
	b64_encode_into(data, len, out);
	if (ret_len)
		*ret_len = n;
	return out;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int ws_base64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len)
{
	size_t pad = 0, o = 0;

	if (len % 4 != 0 || (len > 0 && !s))
		return -EINVAL;
	if (len > 0 && s[len - 1] == '=')
		pad = s[len - 2] == '=' ? 2 : 1;

	_cleanup_free_ uint8_t *out = xmalloc(len / 4 * 3 + 1);
	for (size_t i = 0; i < len; i += 4) {
		/* Only the last group may end in padding. */
		size_t n = i + 4 == len ? 4 - pad : 4;
		uint32_t v = 0;
		for (size_t j = 0; j < 4; j++) {
			int d = j < n ? b64_value(s[i + j]) : 0;
			if (d < 0)
				return -EINVAL;
			v = v << 6 | (uint32_t)d;
		}
		/* The bits past the last whole byte must be zero: one encoding per input. */
		if ((n == 3 && (v & 0xff)) || (n == 2 && (v & 0xffff)))
			return -EINVAL;
		out[o++] = (uint8_t)(v >> 16);
		if (n >= 3)
			out[o++] = (uint8_t)(v >> 8);
		if (n == 4)
			out[o++] = (uint8_t)v;
	}
	*ret = TAKE_PTR(out);
	*ret_len = o;
	return 0;
}

int ws_accept_key(const char *client_key, char ret[WS_ACCEPT_KEY_LEN + 1])
{
	_cleanup_free_ uint8_t *nonce = NULL;
	size_t nonce_len;
	char buf[WS_CLIENT_KEY_LEN + sizeof(WS_GUID)];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;

	if (!client_key || strnlen(client_key, WS_CLIENT_KEY_LEN + 1) != WS_CLIENT_KEY_LEN)
		return -EINVAL;
	if (ws_base64_decode(client_key, WS_CLIENT_KEY_LEN, &nonce, &nonce_len) < 0 ||
	    nonce_len != 16)
		return -EINVAL;

	memcpy(buf, client_key, WS_CLIENT_KEY_LEN);
	memcpy(buf + WS_CLIENT_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
	/* SHA-1 is what RFC 6455 fixes here; it proves nothing beyond "speaks WebSocket". */
	if (EVP_Digest(buf, WS_CLIENT_KEY_LEN + sizeof(WS_GUID) - 1, md, &md_len, EVP_sha1(),
		       NULL) != 1 ||
	    md_len != 20)
		return -EIO;
	b64_encode_into(md, md_len, ret);
	return 0;
}

static bool known_opcode(uint8_t op)
{
	switch (op) {
	case WS_OP_CONT:
	case WS_OP_TEXT:
	case WS_OP_BINARY:
	case WS_OP_CLOSE:
	case WS_OP_PING:
	case WS_OP_PONG:
		return true;
	default:
		return false;
	}
}

static bool is_control_opcode(uint8_t op)
{
	return op & 0x8;
}

ssize_t ws_parse_frame(uint8_t *buf, size_t len, size_t max_payload, WsFrame *ret)
{
	size_t hdr = 2;
	uint64_t plen;

	if (len < 2)
		return 0;
	bool fin = buf[0] & 0x80;
	uint8_t opcode = buf[0] & 0x0f;
	uint8_t len7 = buf[1] & 0x7f;
	/* No extension is ever negotiated, so no RSV bit has a meaning. */
	if ((buf[0] & 0x70) || !known_opcode(opcode))
		return -EPROTO;
	/* Section 5.3: the server must close on an unmasked client frame. */
	if (!(buf[1] & 0x80))
		return -EPROTO;
	if (is_control_opcode(opcode) && (!fin || len7 > WS_MAX_CONTROL_PAYLOAD))
		return -EPROTO;

	if (len7 == 126) {
		hdr += 2;
		if (len < hdr)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
	} else if (len7 == 127) {
		hdr += 8;
		if (len < hdr)
			return 0;
		plen = 0;
		for (size_t i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		if (plen >> 63)
			return -EPROTO;
	} else {
		plen = len7;
	}
	if (plen > max_payload || plen > (uint64_t)SSIZE_MAX - hdr - 4)
		return -EMSGSIZE;
	/* A close body, when present, starts with a 2-byte code. */
	if (opcode == WS_OP_CLOSE && plen == 1)
		return -EPROTO;

	const uint8_t *mask = buf + hdr;
	hdr += 4;
	if (len < hdr || len - hdr < plen)
		return 0;
	uint8_t *payload = buf + hdr;
	for (size_t i = 0; i < plen; i++)
		payload[i] ^= mask[i & 3];
	*ret = (WsFrame){ .fin = fin, .opcode = opcode, .payload = payload, .len = (size_t)plen };
	return (ssize_t)(hdr + plen);
}

uint8_t *ws_build_frame(uint8_t opcode, const void *payload, size_t len, size_t *ret_len)
{
	size_t hdr;

	/* Opcodes and control lengths are streamd's own choice: a bad one is a bug. */
	if (!known_opcode(opcode) || (is_control_opcode(opcode) && len > WS_MAX_CONTROL_PAYLOAD))
		abort();
	hdr = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
	if (len > SIZE_MAX - hdr)
		abort();
	uint8_t *p = xmalloc(hdr + len);
	p[0] = 0x80 | opcode;
	if (hdr == 2) {
		p[1] = (uint8_t)len;
	} else if (hdr == 4) {
		p[1] = 126;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
	} else {
		p[1] = 127;
		for (size_t i = 0; i < 8; i++)
			p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	if (len > 0)
		memcpy(p + hdr, payload, len);
	*ret_len = hdr + len;
	return p;
}

uint8_t *ws_build_close(uint16_t code, const char *reason, size_t *ret_len)
{
	uint8_t body[WS_MAX_CONTROL_PAYLOAD];
	size_t n = 0;

	if (code != 0) {
		size_t rl = reason ? strlen(reason) : 0;
		if (rl > WS_MAX_CONTROL_PAYLOAD - 2) {
			rl = WS_MAX_CONTROL_PAYLOAD - 2;
			/* Back off a cut character: the reason must stay valid UTF-8. */
			while (rl > 0 && ((uint8_t)reason[rl] & 0xc0) == 0x80)
				rl--;
		}
		body[0] = (uint8_t)(code >> 8);
		body[1] = (uint8_t)code;
		if (rl > 0)
			memcpy(body + 2, reason, rl);
		n = 2 + rl;
	}
	return ws_build_frame(WS_OP_CLOSE, body, n, ret_len);
}
