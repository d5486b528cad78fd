/*
 * test_websocket.c - RFC 6455 server-side framing, the handshake key and
 * strict base64 (streamd/websocket.c): the RFC's own examples, the three
 * length encodings, masking, every frame a server must refuse, and base64
 * from RFC 4648's vectors to malformed input.
 */
#include "test_helpers.h"

#include "websocket.h"

/* A client frame: masked with key, its length in the 7-, 16- or 64-bit form (7, 16, 64). */
static uint8_t *client_frame(uint8_t b0, const void *payload, size_t len, const uint8_t key[4],
			     int form, size_t *ret_len)
{
	size_t hdr = form == 7 ? 2 : form == 16 ? 4 : 10;
	uint8_t *p = xmalloc(hdr + 4 + len);
	p[0] = b0;
	if (form == 7) {
		assert_true(len < 126);
		p[1] = 0x80 | (uint8_t)len;
	} else if (form == 16) {
		assert_true(len <= 0xffff);
		p[1] = 0x80 | 126;
		p[2] = (uint8_t)(len >> 8);
		p[3] = (uint8_t)len;
	} else {
		p[1] = 0x80 | 127;
		for (size_t i = 0; i < 8; i++)
			p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(p + hdr, key, 4);
	for (size_t i = 0; i < len; i++)
		p[hdr + 4 + i] = ((const uint8_t *)payload)[i] ^ key[i % 4];
	*ret_len = hdr + 4 + len;
	return p;
}

static const uint8_t key1[4] = { 0x37, 0xfa, 0x21, 0x3d };

static void test_accept_key(void **state)
{
	char out[WS_ACCEPT_KEY_LEN + 1];

	/*
	 * RFC 6455 section 1.3: SHA-1 0xb37a4f2c...b2bec4ea.  (The string
	 * "s3pPLMBiTxaQ9kYGzV0pzWlrbWk=", quoted in some places, is not it.)
	 */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

	static const char *const bad[] = {
		"",
		"dGhlIHNhbXBsZSBub25jZQ=",   /* 23 characters */
		"dGhlIHNhbXBsZSBub25jZQ===", /* 25 */
		"dGhlIHNhbXBsZSBub25jZQ== ", /* trailing space */
		"dGhlIHNhbXBsZSBub25jZQ.=",  /* not base64 */
		"dGhlIHNhbXBsZSBub25jZR==",  /* stray bits after the 16th byte */
		"dGhlIHNhbXBsZSBub25jZQab",  /* 18 bytes, not 16 */
		"dGhlIHNhbXBsZSBub25jZ0=",   /* 23 */
		"dGhlIHNhbXBsZSBub25j=Q==",  /* padding inside */
		"dGhl IHNhbXBsZSBub25jZQ=",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		memset(out, 'z', sizeof(out));
		assert_int_equal(ws_accept_key(bad[i], out), -EINVAL);
		assert_int_equal(out[0], 'z'); /* written only on success */
	}
	assert_int_equal(ws_accept_key(NULL, out), -EINVAL);
}

/* RFC 6455 section 5.7: a masked "Hello" from a client. */
static void test_rfc_masked_hello(void **state)
{
	uint8_t f[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58 };
	WsFrame w;

	assert_int_equal(ws_parse_frame(f, sizeof(f), 125, &w), (ssize_t)sizeof(f));
	assert_true(w.fin);
	assert_int_equal(w.opcode, WS_OP_TEXT);
	assert_int_equal(w.len, 5);
	assert_ptr_equal(w.payload, f + 6);
	assert_memory_equal(w.payload, "Hello", 5);
}

static void check_roundtrip(uint8_t b0, size_t len, int form)
{
	_cleanup_free_ uint8_t *payload = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	size_t n;
	_cleanup_free_ uint8_t *f = client_frame(b0, payload, len, key1, form, &n);
	_cleanup_free_ uint8_t *copy = xmalloc(n);
	memcpy(copy, f, n);

	/* Every prefix asks for more and leaves the bytes as they were. */
	for (size_t i = 0; i < n; i += (n > 4096 && i > 64 ? 997 : 1)) {
		WsFrame w = { .len = 4242 };
		assert_int_equal(ws_parse_frame(f, i, len, &w), 0);
		assert_int_equal(w.len, 4242);
		assert_memory_equal(f, copy, n);
	}
	WsFrame w;
	assert_int_equal(ws_parse_frame(f, n, len, &w), (ssize_t)n);
	assert_int_equal(w.fin, !!(b0 & 0x80));
	assert_int_equal(w.opcode, b0 & 0x0f);
	assert_int_equal(w.len, len);
	assert_ptr_equal(w.payload, f + n - len);
	if (len > 0)
		assert_memory_equal(w.payload, payload, len);
	/* One byte under the declared length is over the limit. */
	if (len > 0)
		assert_int_equal(ws_parse_frame(copy, n, len - 1, &w), -EMSGSIZE);
}

static void test_lengths(void **state)
{
	/* 7-bit, then 16-bit at its edges, then 64-bit. */
	check_roundtrip(0x82, 0, 7);
	check_roundtrip(0x82, 1, 7);
	check_roundtrip(0x81, 125, 7);
	check_roundtrip(0x82, 126, 16);
	check_roundtrip(0x02, 0xffff, 16);
	check_roundtrip(0x82, 0x10000, 64);
	check_roundtrip(0x80, 70000, 64);
	/* Non-minimal encodings are accepted. */
	check_roundtrip(0x82, 5, 16);
	check_roundtrip(0x82, 5, 64);
	check_roundtrip(0x82, 0, 64);
	/* Control frames, and a continuation. */
	check_roundtrip(0x88, 2, 7);
	check_roundtrip(0x88, 125, 7);
	check_roundtrip(0x89, 0, 7);
	check_roundtrip(0x8a, 125, 7);
	check_roundtrip(0x00, 10, 7);
}

/* Two frames back to back: the first parse covers the first frame only. */
static void test_back_to_back(void **state)
{
	size_t n1, n2;
	_cleanup_free_ uint8_t *a = client_frame(0x01, "Hel", 3, key1, 7, &n1);
	_cleanup_free_ uint8_t *b = client_frame(0x80, "lo", 2, key1, 16, &n2);
	_cleanup_free_ uint8_t *both = xmalloc(n1 + n2);
	memcpy(both, a, n1);
	memcpy(both + n1, b, n2);
	WsFrame w;

	assert_int_equal(ws_parse_frame(both, n1 + n2, 1024, &w), (ssize_t)n1);
	assert_false(w.fin);
	assert_int_equal(w.opcode, WS_OP_TEXT);
	assert_memory_equal(w.payload, "Hel", 3);
	assert_int_equal(ws_parse_frame(both + n1, n2, 1024, &w), (ssize_t)n2);
	assert_true(w.fin);
	assert_int_equal(w.opcode, WS_OP_CONT);
	assert_memory_equal(w.payload, "lo", 2);
}

static void expect_proto(const uint8_t *hdr, size_t n)
{
	_cleanup_free_ uint8_t *b = xmalloc(n);
	memcpy(b, hdr, n);
	WsFrame w = { .len = 4242 };
	assert_int_equal(ws_parse_frame(b, n, 1 << 20, &w), -EPROTO);
	assert_int_equal(w.len, 4242);
}

static void test_protocol_errors(void **state)
{
	/* RSV1, RSV2, RSV3: no extension was negotiated.  Refused on two bytes. */
	const uint8_t rsv[] = { 0x40, 0x20, 0x10 };
	for (size_t i = 0; i < ELEMENTSOF(rsv); i++)
		expect_proto((const uint8_t[]){ (uint8_t)(0x82 | rsv[i]), 0x80 }, 2);

	/* Reserved opcodes. */
	const uint8_t ops[] = { 3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf };
	for (size_t i = 0; i < ELEMENTSOF(ops); i++)
		expect_proto((const uint8_t[]){ (uint8_t)(0x80 | ops[i]), 0x80 }, 2);

	/* Unmasked, whatever the opcode (RFC 6455 section 5.7's unmasked "Hello"). */
	expect_proto((const uint8_t[]){ 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' }, 7);
	expect_proto((const uint8_t[]){ 0x89, 0x00 }, 2);

	/* Control frames: fragmented, or longer than 125 in any encoding. */
	expect_proto((const uint8_t[]){ 0x09, 0x80, 1, 2, 3, 4 }, 6);
	expect_proto((const uint8_t[]){ 0x08, 0x82, 1, 2, 3, 4, 5, 6 }, 8);
	expect_proto((const uint8_t[]){ 0x0a, 0x80 }, 2);
	expect_proto((const uint8_t[]){ 0x89, 0x80 | 126 }, 2);
	expect_proto((const uint8_t[]){ 0x8a, 0x80 | 127 }, 2);
	expect_proto((const uint8_t[]){ 0x88, 0x80 | 126, 0, 5 }, 4);

	/* A close body of one byte: no room for the code. */
	expect_proto((const uint8_t[]){ 0x88, 0x81, 1, 2, 3, 4, 0 }, 7);

	/* A 64-bit length with its top bit set. */
	expect_proto((const uint8_t[]){ 0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1 }, 10);
	expect_proto((const uint8_t[]){ 0x82, 0x80 | 127, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					0xff },
		     10);
}

static void test_oversized(void **state)
{
	WsFrame w;
	/* Declared lengths over the limit are refused on the header, before the payload. */
	uint8_t h16[] = { 0x82, 0x80 | 126, 0x01, 0x00 };
	assert_int_equal(ws_parse_frame(h16, sizeof(h16), 255, &w), -EMSGSIZE);
	assert_int_equal(ws_parse_frame(h16, sizeof(h16), 256, &w), 0);
	uint8_t h64[] = { 0x82, 0x80 | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(ws_parse_frame(h64, sizeof(h64), 1 << 20, &w), -EMSGSIZE);
	assert_int_equal(ws_parse_frame(h64, sizeof(h64), SIZE_MAX, &w), -EMSGSIZE);
	uint8_t h7[] = { 0x82, 0x80 | 100 };
	assert_int_equal(ws_parse_frame(h7, sizeof(h7), 99, &w), -EMSGSIZE);
	assert_int_equal(ws_parse_frame(h7, sizeof(h7), 0, &w), -EMSGSIZE);
	assert_int_equal(ws_parse_frame(NULL, 0, 0, &w), 0);
	/* The 16- and 64-bit lengths need their bytes before anything is decided. */
	assert_int_equal(ws_parse_frame(h16, 3, 0, &w), 0);
	assert_int_equal(ws_parse_frame(h64, 9, 0, &w), 0);
}

static void test_build_frame(void **state)
{
	size_t n;

	/* RFC 6455 section 5.7: unmasked "Hello", 256 bytes, 64 KiB. */
	_cleanup_free_ uint8_t *hello = ws_build_frame(WS_OP_TEXT, "Hello", 5, &n);
	static const uint8_t want_hello[] = { 0x81, 0x05, 'H', 'e', 'l', 'l', 'o' };
	assert_int_equal(n, sizeof(want_hello));
	assert_memory_equal(hello, want_hello, n);

	_cleanup_free_ uint8_t *data = xcalloc(1, 0x10000);
	_cleanup_free_ uint8_t *b256 = ws_build_frame(WS_OP_BINARY, data, 256, &n);
	static const uint8_t want_256[] = { 0x82, 0x7e, 0x01, 0x00 };
	assert_int_equal(n, 4 + 256);
	assert_memory_equal(b256, want_256, 4);

	_cleanup_free_ uint8_t *b64k = ws_build_frame(WS_OP_BINARY, data, 0x10000, &n);
	static const uint8_t want_64k[] = { 0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0 };
	assert_int_equal(n, 10 + 0x10000);
	assert_memory_equal(b64k, want_64k, 10);

	/* The edges of each form. */
	_cleanup_free_ uint8_t *e125 = ws_build_frame(WS_OP_PING, data, 125, &n);
	assert_int_equal(n, 127);
	assert_int_equal(e125[0], 0x89);
	assert_int_equal(e125[1], 125);
	_cleanup_free_ uint8_t *e126 = ws_build_frame(WS_OP_BINARY, data, 126, &n);
	assert_int_equal(n, 130);
	assert_int_equal(e126[1], 126);
	_cleanup_free_ uint8_t *effff = ws_build_frame(WS_OP_BINARY, data, 0xffff, &n);
	assert_int_equal(n, 4 + 0xffff);
	assert_int_equal(effff[2], 0xff);
	assert_int_equal(effff[3], 0xff);
	_cleanup_free_ uint8_t *empty = ws_build_frame(WS_OP_PONG, NULL, 0, &n);
	assert_int_equal(n, 2);
	assert_int_equal(empty[0], 0x8a);
	assert_int_equal(empty[1], 0);
}

static void test_build_close(void **state)
{
	size_t n;

	_cleanup_free_ uint8_t *c = ws_build_close(WS_CLOSE_NORMAL, "bye", &n);
	static const uint8_t want[] = { 0x88, 0x05, 0x03, 0xe8, 'b', 'y', 'e' };
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(c, want, n);

	_cleanup_free_ uint8_t *none = ws_build_close(0, "ignored", &n);
	assert_int_equal(n, 2);
	assert_int_equal(none[1], 0);

	_cleanup_free_ uint8_t *noreason = ws_build_close(WS_CLOSE_TOO_BIG, NULL, &n);
	assert_int_equal(n, 4);
	assert_int_equal(noreason[2], 0x03);
	assert_int_equal(noreason[3], 0xf1);

	/* A long reason is cut to keep the payload at 125. */
	char longr[300];
	memset(longr, 'r', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	_cleanup_free_ uint8_t *l = ws_build_close(WS_CLOSE_POLICY, longr, &n);
	assert_int_equal(n, 2 + 125);
	assert_int_equal(l[1], 125);

	/* ... and never inside a UTF-8 character: 122 ASCII + "é" would end mid-character. */
	char utf[130];
	memset(utf, 'a', 122);
	memcpy(utf + 122, "\xc3\xa9\xc3\xa9", 5);
	_cleanup_free_ uint8_t *u = ws_build_close(WS_CLOSE_POLICY, utf, &n);
	assert_int_equal(n, 2 + 2 + 122);
	assert_int_equal(u[n - 1], 'a');
	/* 121 ASCII + "é" fits exactly. */
	_cleanup_free_ uint8_t *u2 = ws_build_close(WS_CLOSE_POLICY, utf + 1, &n);
	assert_int_equal(n, 2 + 125);
	assert_int_equal(u2[n - 1], 0xa9);
}

static void test_base64(void **state)
{
	/* RFC 4648 section 10. */
	static const char *const vec[][2] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < ELEMENTSOF(vec); i++) {
		size_t n;
		_cleanup_free_ char *e = ws_base64_encode(vec[i][0], strlen(vec[i][0]), &n);
		assert_string_equal(e, vec[i][1]);
		assert_int_equal(n, strlen(vec[i][1]));
		_cleanup_free_ uint8_t *d = NULL;
		assert_int_equal(ws_base64_decode(vec[i][1], strlen(vec[i][1]), &d, &n), 0);
		assert_non_null(d);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(d, vec[i][0], n);
	}
	_cleanup_free_ char *nolen = ws_base64_encode("\xff\xfe", 2, NULL);
	assert_string_equal(nolen, "//4=");

	/* Every byte value and every length remainder, both ways. */
	uint8_t all[259];
	for (size_t i = 0; i < sizeof(all); i++)
		all[i] = (uint8_t)(i * 151 + 3);
	for (size_t len = 0; len <= sizeof(all); len++) {
		size_t n, m;
		_cleanup_free_ char *e = ws_base64_encode(all, len, &n);
		assert_int_equal(n, (len + 2) / 3 * 4);
		_cleanup_free_ uint8_t *d = NULL;
		assert_int_equal(ws_base64_decode(e, n, &d, &m), 0);
		assert_int_equal(m, len);
		if (len)
			assert_memory_equal(d, all, len);
	}

	static const char *const bad[] = {
		"Zg=",	    "Zg",	"Z",	    "Zm9vY", /* not a multiple of 4 */
		"Zg=a",	    "Z===",	"====",	    "=Zg=",  /* padding out of place */
		"Zg==Zg==", "Zm9=Zm9v",			     /* padding before the end */
		"Zh==",	    "Zm9=",	"Zm+=",		     /* stray bits */
		"Zm9v\n",   "Zm 9",	"Zm-v",	    "Zm_v",  /* outside the alphabet */
		"Zm9v====", "Zm\x80v",	"Zm9v\r\n",
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		uint8_t *d = (uint8_t *)0x1;
		size_t n = 4242;
		if (ws_base64_decode(bad[i], strlen(bad[i]), &d, &n) != -EINVAL)
			fail_msg("\"%s\" decoded", bad[i]);
		assert_ptr_equal(d, (uint8_t *)0x1);
		assert_int_equal(n, 4242);
	}
	/* A NUL inside the given length is a bad character, not the end. */
	uint8_t *d = NULL;
	size_t n;
	assert_int_equal(ws_base64_decode("Zm\0v", 4, &d, &n), -EINVAL);
	assert_int_equal(ws_base64_decode(NULL, 4, &d, &n), -EINVAL);
	assert_int_equal(ws_base64_decode(NULL, 0, &d, &n), 0);
	assert_int_equal(n, 0);
	free(d);
}

/* Random bytes: errors or frames inside the buffer, never a crash or a read past it. */
static void test_garbage(void **state)
{
	uint32_t seed = 777;
	for (int iter = 0; iter < 50000; iter++) {
		size_t len = (size_t)(iter % 40);
		_cleanup_free_ uint8_t *buf = xmalloc(len + 1);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		/* Often a plausible first byte and a masked small length, to get further. */
		if (len >= 2 && iter % 3 == 0) {
			buf[0] = (uint8_t)(0x80 | (buf[0] & 0x0b));
			buf[1] = (uint8_t)(0x80 | (buf[1] % 30));
		}
		WsFrame w;
		ssize_t r = ws_parse_frame(buf, len, 64, &w);
		assert_true(r == 0 || r == -EPROTO || r == -EMSGSIZE || r > 0);
		if (r > 0) {
			assert_true((size_t)r <= len);
			assert_true(w.payload + w.len == buf + r);
		}
		uint8_t *d = NULL;
		size_t n;
		if (ws_base64_decode((const char *)buf, len, &d, &n) == 0)
			free(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_key),	cmocka_unit_test(test_rfc_masked_hello),
		cmocka_unit_test(test_lengths),		cmocka_unit_test(test_back_to_back),
		cmocka_unit_test(test_protocol_errors), cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_build_frame),	cmocka_unit_test(test_build_close),
		cmocka_unit_test(test_base64),		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
