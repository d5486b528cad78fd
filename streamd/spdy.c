/*
 * spdy.c - SPDY/3.1 framing and header compression (see spdy.h).
 *
 * Frame layouts are those of the SPDY/3 draft (draft-mbelshe-httpbis-spdy-00)
 * with the SPDY/3.1 change that WINDOW_UPDATE on stream 0 is the session
 * window.  All multi-byte fields are big-endian.
 *
 * Header blocks are zlib streams that live as long as the session, primed
 * with the fixed dictionary below.  Inflation is the dangerous part: a few
 * kilobytes of deflate can expand a thousandfold, so the output buffer grows
 * in steps and the block is refused the moment it would pass the caller's
 * limit, before the parser ever sees it.
 */
#include "spdy.h"

#include "macros.h"

#include <limits.h>
#include <zlib.h>

/*
 * The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1):
 * length-prefixed header names and common values, then status codes, reason
 * phrases, dates, media types and cache and encoding tokens.  It must be
 * byte-exact: its adler32 (0xe3c6a7c2) is the DICTID a peer's stream names,
 * and any other bytes decode a peer's back-references into garbage.
 * Separate literals keep each hex escape from swallowing the next letter.
 */
static const char spdy_dict[] = "\0\0\0\x07"
				"options"
				"\0\0\0\x04"
				"head"
				"\0\0\0\x04"
				"post"
				"\0\0\0\x03"
				"put"
				"\0\0\0\x06"
				"delete"
				"\0\0\0\x05"
				"trace"
				"\0\0\0\x06"
				"accept"
				"\0\0\0\x0e"
				"accept-charset"
				"\0\0\0\x0f"
				"accept-encoding"
				"\0\0\0\x0f"
				"accept-language"
				"\0\0\0\x0d"
				"accept-ranges"
				"\0\0\0\x03"
				"age"
				"\0\0\0\x05"
				"allow"
				"\0\0\0\x0d"
				"authorization"
				"\0\0\0\x0d"
				"cache-control"
				"\0\0\0\x0a"
				"connection"
				"\0\0\0\x0c"
				"content-base"
				"\0\0\0\x10"
				"content-encoding"
				"\0\0\0\x10"
				"content-language"
				"\0\0\0\x0e"
				"content-length"
				"\0\0\0\x10"
				"content-location"
				"\0\0\0\x0b"
				"content-md5"
				"\0\0\0\x0d"
				"content-range"
				"\0\0\0\x0c"
				"content-type"
				"\0\0\0\x04"
				"date"
				"\0\0\0\x04"
				"etag"
				"\0\0\0\x06"
				"expect"
				"\0\0\0\x07"
				"expires"
				"\0\0\0\x04"
				"from"
				"\0\0\0\x04"
				"host"
				"\0\0\0\x08"
				"if-match"
				"\0\0\0\x11"
				"if-modified-since"
				"\0\0\0\x0d"
				"if-none-match"
				"\0\0\0\x08"
				"if-range"
				"\0\0\0\x13"
				"if-unmodified-since"
				"\0\0\0\x0d"
				"last-modified"
				"\0\0\0\x08"
				"location"
				"\0\0\0\x0c"
				"max-forwards"
				"\0\0\0\x06"
				"pragma"
				"\0\0\0\x12"
				"proxy-authenticate"
				"\0\0\0\x13"
				"proxy-authorization"
				"\0\0\0\x05"
				"range"
				"\0\0\0\x07"
				"referer"
				"\0\0\0\x0b"
				"retry-after"
				"\0\0\0\x06"
				"server"
				"\0\0\0\x02"
				"te"
				"\0\0\0\x07"
				"trailer"
				"\0\0\0\x11"
				"transfer-encoding"
				"\0\0\0\x07"
				"upgrade"
				"\0\0\0\x0a"
				"user-agent"
				"\0\0\0\x04"
				"vary"
				"\0\0\0\x03"
				"via"
				"\0\0\0\x07"
				"warning"
				"\0\0\0\x10"
				"www-authenticate"
				"\0\0\0\x06"
				"method"
				"\0\0\0\x03"
				"get"
				"\0\0\0\x06"
				"status"
				"\0\0\0\x06"
				"200 OK"
				"\0\0\0\x07"
				"version"
				"\0\0\0\x08"
				"HTTP/1.1"
				"\0\0\0\x03"
				"url"
				"\0\0\0\x06"
				"public"
				"\0\0\0\x0a"
				"set-cookie"
				"\0\0\0\x0a"
				"keep-alive"
				"\0\0\0\x06"
				"origin"
				"100101201202205206300302303304305306307"
				"402405406407408409410411412413414415416417"
				"502504505"
				"203 Non-Authoritative Information"
				"204 No Content"
				"301 Moved Permanently"
				"400 Bad Request"
				"401 Unauthorized"
				"403 Forbidden"
				"404 Not Found"
				"500 Internal Server Error"
				"501 Not Implemented"
				"503 Service Unavailable"
				"Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
				"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
				"chunked,text/html,image/png,image/jpg,image/gif,"
				"application/xml,application/xhtml+xml,text/plain,text/javascript,"
				"publicprivatemax-age=gzip,deflate,sdch"
				"charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
#define SPDY_DICT_LEN (sizeof(spdy_dict) - 1) /* without the literal's NUL */
_Static_assert(sizeof(spdy_dict) - 1 == 1423, "the SPDY/3 dictionary is 1423 bytes");

/* First step of the inflate buffer; it doubles up to the caller's limit. */
#define INFLATE_STEP 1024
/*
 * The largest serialized block we deflate: deflate's worst case adds a few
 * bytes per 16 KiB, so half a frame always fits a frame after compression.
 */
#define ENCODE_MAX_RAW (SPDY_MAX_PAYLOAD / 2)

struct SpdyZ {
	z_stream s;
	bool deflater;
	bool failed; /* the stream's history no longer matches the peer's */
};

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_u24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_u24(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 16);
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

ssize_t spdy_parse_frame(const uint8_t *buf, size_t len, size_t max_payload, SpdyFrame *ret)
{
	SpdyFrame f = { 0 };

	if (len < SPDY_HEADER_SIZE)
		return 0;
	f.control = buf[0] & 0x80;
	if (f.control) {
		f.version = get_u16(buf) & 0x7fff;
		f.type = get_u16(buf + 2);
		if (f.version != SPDY_VERSION)
			return -EPROTO;
	} else {
		f.stream_id = get_u32(buf) & SPDY_MAX_STREAM_ID;
		/* Stream 0 is never opened: data on it can only be garbage. */
		if (f.stream_id == 0)
			return -EPROTO;
	}
	f.flags = buf[4];
	f.len = get_u24(buf + 5);
	/* Refused on the header alone, so a declared giant is never buffered. */
	if (f.len > max_payload)
		return -EMSGSIZE;
	if (len - SPDY_HEADER_SIZE < f.len)
		return 0;
	f.data = buf + SPDY_HEADER_SIZE;
	*ret = f;
	return (ssize_t)(SPDY_HEADER_SIZE + f.len);
}

static bool is_control(const SpdyFrame *f, uint16_t type)
{
	return f && f->control && f->type == type && (f->data || f->len == 0);
}

int spdy_parse_syn_stream(const SpdyFrame *f, uint32_t *ret_id, uint32_t *ret_assoc_id,
			  uint8_t *ret_priority, const uint8_t **ret_block, size_t *ret_block_len)
{
	if (!is_control(f, SPDY_SYN_STREAM))
		return -EINVAL;
	/* Stream-ID, Associated-To-Stream-ID, Pri (3 bits) + unused, Slot, then the block. */
	if (f->len < 10)
		return -EPROTO;
	uint32_t id = get_u32(f->data) & SPDY_MAX_STREAM_ID;
	if (id == 0)
		return -EPROTO;
	*ret_id = id;
	*ret_assoc_id = get_u32(f->data + 4) & SPDY_MAX_STREAM_ID;
	*ret_priority = f->data[8] >> 5;
	*ret_block = f->data + 10;
	*ret_block_len = f->len - 10;
	return 0;
}

int spdy_parse_headers(const SpdyFrame *f, uint32_t *ret_id, const uint8_t **ret_block,
		       size_t *ret_block_len)
{
	if (!is_control(f, SPDY_HEADERS) && !is_control(f, SPDY_SYN_REPLY))
		return -EINVAL;
	if (f->len < 4)
		return -EPROTO;
	uint32_t id = get_u32(f->data) & SPDY_MAX_STREAM_ID;
	if (id == 0)
		return -EPROTO;
	*ret_id = id;
	*ret_block = f->data + 4;
	*ret_block_len = f->len - 4;
	return 0;
}

int spdy_parse_rst_stream(const SpdyFrame *f, uint32_t *ret_id, uint32_t *ret_status)
{
	if (!is_control(f, SPDY_RST_STREAM))
		return -EINVAL;
	if (f->len != 8)
		return -EPROTO;
	uint32_t id = get_u32(f->data) & SPDY_MAX_STREAM_ID;
	uint32_t status = get_u32(f->data + 4);
	if (id == 0 || status == 0)
		return -EPROTO;
	*ret_id = id;
	*ret_status = status;
	return 0;
}

int spdy_parse_ping(const SpdyFrame *f, uint32_t *ret_id)
{
	if (!is_control(f, SPDY_PING))
		return -EINVAL;
	if (f->len != 4)
		return -EPROTO;
	*ret_id = get_u32(f->data);
	return 0;
}

int spdy_parse_goaway(const SpdyFrame *f, uint32_t *ret_last_good_id, uint32_t *ret_status)
{
	if (!is_control(f, SPDY_GOAWAY))
		return -EINVAL;
	/* SPDY/3 added the status: 8 bytes, where SPDY/2 had 4. */
	if (f->len != 8)
		return -EPROTO;
	*ret_last_good_id = get_u32(f->data) & SPDY_MAX_STREAM_ID;
	*ret_status = get_u32(f->data + 4);
	return 0;
}

int spdy_parse_window_update(const SpdyFrame *f, uint32_t *ret_id, uint32_t *ret_delta)
{
	if (!is_control(f, SPDY_WINDOW_UPDATE))
		return -EINVAL;
	if (f->len != 8)
		return -EPROTO;
	/*
	 * The delta is read whole, reserved bit included: a delta past 2^31-1
	 * would overflow any window, and 0 is forbidden.
	 */
	uint32_t delta = get_u32(f->data + 4);
	if (delta == 0 || delta > SPDY_MAX_WINDOW)
		return -EPROTO;
	*ret_id = get_u32(f->data) & SPDY_MAX_STREAM_ID;
	*ret_delta = delta;
	return 0;
}

int spdy_parse_settings(const SpdyFrame *f, int64_t *ret_initial_window)
{
	int64_t window = -1;

	if (!is_control(f, SPDY_SETTINGS))
		return -EINVAL;
	if (f->len < 4)
		return -EPROTO;
	/* Number of entries, then 8 bytes each: flags (8), ID (24), value (32). */
	uint32_t n = get_u32(f->data);
	size_t rest = f->len - 4;
	if (rest % 8 != 0 || n != rest / 8)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = f->data + 4 + 8 * i;
		uint32_t id = get_u24(e + 1);
		uint32_t value = get_u32(e + 4);
		if (id != SPDY_SETTINGS_INITIAL_WINDOW_SIZE)
			continue;
		if (value > SPDY_MAX_WINDOW)
			return -EPROTO;
		window = value;
	}
	*ret_initial_window = window;
	return 0;
}

void spdy_headers_done(SpdyHeaders *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

static void spdy_headers_donep(SpdyHeaders *h)
{
	spdy_headers_done(h);
}

const char *spdy_headers_get(const SpdyHeaders *h, const char *name)
{
	if (!h || !name)
		return NULL;
	for (size_t i = 0; i < h->n; i++)
		if (strcmp(h->v[i].name, name) == 0)
			return h->v[i].value;
	return NULL;
}

SpdyZ *spdy_inflater_new(void)
{
	SpdyZ *z = xcalloc(1, sizeof(*z));

	/* The only failures are memory and a mismatched zlib: neither is ours to handle. */
	if (inflateInit(&z->s) != Z_OK)
		abort();
	return z;
}

SpdyZ *spdy_deflater_new(void)
{
	SpdyZ *z = xcalloc(1, sizeof(*z));

	z->deflater = true;
	if (deflateInit(&z->s, Z_DEFAULT_COMPRESSION) != Z_OK)
		abort();
	/* The compressor side sets the dictionary up front; the peer inflates on Z_NEED_DICT. */
	if (deflateSetDictionary(&z->s, (const Bytef *)spdy_dict, SPDY_DICT_LEN) != Z_OK)
		abort();
	return z;
}

SpdyZ *spdy_z_free(SpdyZ *z)
{
	if (!z)
		return NULL;
	if (z->deflater)
		deflateEnd(&z->s);
	else
		inflateEnd(&z->s);
	free(z);
	return NULL;
}

/*
 * Inflates one block into a buffer of at most max bytes.  When the buffer
 * is full, one more byte is asked for: getting it means the block is over
 * the limit.  Memory is thus bounded by max, whatever the ratio.
 */
static int inflate_block(SpdyZ *z, const uint8_t *in, size_t len, size_t max, uint8_t **ret,
			 size_t *ret_len)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t cap = 0, used = 0;

	if (len > UINT_MAX)
		return -EMSGSIZE;
	z->s.next_in = (Bytef *)in; /* zlib does not write through next_in */
	z->s.avail_in = (uInt)len;
	for (;;) {
		uint8_t probe;
		bool probing = false;

		if (used == cap) {
			if (cap >= max) {
				probing = true;
			} else {
				size_t grow = cap ? cap : INFLATE_STEP;
				cap = grow > max - cap ? max : cap + grow;
				buf = xrealloc(buf, cap);
			}
		}
		if (probing) {
			z->s.next_out = &probe;
			z->s.avail_out = 1;
		} else {
			size_t room = cap - used;
			z->s.next_out = buf + used;
			z->s.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
		}
		uInt in_before = z->s.avail_in, out_before = z->s.avail_out;
		int r = inflate(&z->s, Z_SYNC_FLUSH);
		size_t produced = out_before - z->s.avail_out;
		if (probing && produced > 0)
			return -EMSGSIZE;
		if (!probing)
			used += produced;

		switch (r) {
		case Z_NEED_DICT:
			/* Refused when the stream names another dictionary. */
			if (inflateSetDictionary(&z->s, (const Bytef *)spdy_dict, SPDY_DICT_LEN) !=
			    Z_OK)
				return -EPROTO;
			continue;
		case Z_OK:
		case Z_BUF_ERROR:
			break;
		case Z_MEM_ERROR:
			abort();
		default:
			/*
			 * Z_DATA_ERROR, or Z_STREAM_END: the header stream must
			 * stay open for the session's next block.
			 */
			return -EPROTO;
		}
		/* Input used up with output room to spare: everything is out. */
		if (z->s.avail_in == 0 && z->s.avail_out > 0)
			break;
		/* Neither input used nor output made, with room on both sides: stuck. */
		if (produced == 0 && z->s.avail_in == in_before && z->s.avail_out > 0)
			return -EPROTO;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = used;
	return 0;
}

/* Reads a 32-bit length and that many bytes at *off, within n. */
static int read_string(const uint8_t *p, size_t n, size_t *off, const uint8_t **ret,
		       size_t *ret_len)
{
	if (n - *off < 4)
		return -EPROTO;
	uint32_t l = get_u32(p + *off);
	*off += 4;
	if (l > n - *off)
		return -EPROTO;
	*ret = p + *off;
	*ret_len = l;
	*off += l;
	return 0;
}

/* Names are lowercase US-ASCII (":method" and the like included), never empty. */
static bool valid_name(const uint8_t *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || (s[i] >= 'A' && s[i] <= 'Z'))
			return false;
	return true;
}

/* Empty, or NUL-separated values, each non-empty. */
static bool valid_value(const uint8_t *s, size_t n)
{
	if (n == 0)
		return true;
	if (s[0] == 0 || s[n - 1] == 0)
		return false;
	for (size_t i = 1; i < n; i++)
		if (s[i] == 0 && s[i - 1] == 0)
			return false;
	return true;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorting keeps a block of many names from costing a quadratic scan. */
static bool has_duplicates(const SpdyHeaders *h)
{
	if (h->n < 2)
		return false;
	_cleanup_free_ const char **names = xcalloc(h->n, sizeof(*names));
	for (size_t i = 0; i < h->n; i++)
		names[i] = h->v[i].name;
	qsort(names, h->n, sizeof(*names), cmp_name);
	for (size_t i = 1; i < h->n; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			return true;
	return false;
}

static int parse_block(const uint8_t *p, size_t n, SpdyHeaders *ret)
{
	_cleanup_(spdy_headers_donep) SpdyHeaders h = { 0 };
	size_t off = 4;

	if (n < 4)
		return -EPROTO;
	uint32_t count = get_u32(p);
	/*
	 * Every pair takes at least its two length fields, so the data bounds
	 * the count before anything is allocated for it.
	 */
	if (count > (n - off) / 8)
		return -EPROTO;
	h.v = xcalloc(count, sizeof(*h.v));
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *name, *value;
		size_t name_len, value_len;

		if (read_string(p, n, &off, &name, &name_len) < 0 || !valid_name(name, name_len))
			return -EPROTO;
		if (read_string(p, n, &off, &value, &value_len) < 0 ||
		    !valid_value(value, value_len))
			return -EPROTO;
		h.v[h.n].name = xstrndup((const char *)name, name_len);
		h.v[h.n].value = xstrndup((const char *)value, value_len);
		h.n++;
	}
	if (off != n || has_duplicates(&h))
		return -EPROTO;
	*ret = h;
	h = (SpdyHeaders){ 0 };
	return 0;
}

int spdy_headers_decode(SpdyZ *z, const uint8_t *block, size_t len, size_t max_bytes,
			SpdyHeaders *ret)
{
	_cleanup_free_ uint8_t *raw = NULL;
	size_t raw_len = 0;
	int r;

	if (!z || z->deflater)
		return -EINVAL;
	if (z->failed)
		return -EPROTO;
	r = inflate_block(z, block, len, max_bytes, &raw, &raw_len);
	if (r < 0) {
		/* Part of the block may be consumed: later blocks cannot be trusted. */
		z->failed = true;
		return r;
	}
	/* A bad block that inflated cleanly leaves the stream in step with the peer. */
	return parse_block(raw, raw_len, ret);
}

int spdy_headers_encode(SpdyZ *z, const SpdyHeader *h, size_t n, uint8_t **ret, size_t *ret_len)
{
	size_t raw_len = 4;

	if (!z || !z->deflater || z->failed)
		return -EINVAL;
	if (n > ENCODE_MAX_RAW / 8)
		return -EMSGSIZE;
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
		if (!valid_name((const uint8_t *)h[i].name, nl))
			return -EINVAL;
		if (nl > ENCODE_MAX_RAW || vl > ENCODE_MAX_RAW)
			return -EMSGSIZE;
		raw_len += 8 + nl + vl;
		if (raw_len > ENCODE_MAX_RAW)
			return -EMSGSIZE;
	}

	_cleanup_free_ uint8_t *raw = xmalloc(raw_len);
	size_t off = 4;
	put_u32(raw, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		size_t nl = strlen(h[i].name), vl = strlen(h[i].value);
		put_u32(raw + off, (uint32_t)nl);
		memcpy(raw + off + 4, h[i].name, nl);
		off += 4 + nl;
		put_u32(raw + off, (uint32_t)vl);
		memcpy(raw + off + 4, h[i].value, vl);
		off += 4 + vl;
	}

	size_t cap = deflateBound(&z->s, (uLong)raw_len) + 16, used = 0;
	_cleanup_free_ uint8_t *out = xmalloc(cap);
	z->s.next_in = raw;
	z->s.avail_in = (uInt)raw_len;
	for (;;) {
		z->s.next_out = out + used;
		z->s.avail_out = (uInt)(cap - used);
		int r = deflate(&z->s, Z_SYNC_FLUSH);
		if (r != Z_OK && r != Z_BUF_ERROR)
			abort(); /* Z_STREAM_ERROR: our own stream state is corrupt */
		used = cap - z->s.avail_out;
		/* A sync flush is complete once deflate leaves output room unused. */
		if (z->s.avail_out > 0)
			break;
		cap *= 2;
		out = xrealloc(out, cap);
	}
	*ret = TAKE_PTR(out);
	*ret_len = used;
	return 0;
}

/* A frame of payload_len bytes with its control header written; the payload is the caller's. */
static uint8_t *control_frame(uint16_t type, uint8_t flags, size_t payload_len, size_t *ret_len)
{
	if (payload_len > SPDY_MAX_PAYLOAD)
		abort();
	uint8_t *p = xmalloc(SPDY_HEADER_SIZE + payload_len);
	put_u16(p, 0x8000 | SPDY_VERSION);
	put_u16(p + 2, type);
	p[4] = flags;
	put_u24(p + 5, (uint32_t)payload_len);
	*ret_len = SPDY_HEADER_SIZE + payload_len;
	return p;
}

static void check_stream_id(uint32_t id, bool zero_ok)
{
	/* IDs come from streamd's own state; a bad one is a broken invariant. */
	if (id > SPDY_MAX_STREAM_ID || (id == 0 && !zero_ok))
		abort();
}

uint8_t *spdy_build_data(uint32_t id, uint8_t flags, const void *data, size_t len, size_t *ret_len)
{
	check_stream_id(id, false);
	if (len > SPDY_MAX_PAYLOAD)
		abort();
	uint8_t *p = xmalloc(SPDY_HEADER_SIZE + len);
	put_u32(p, id);
	p[4] = flags;
	put_u24(p + 5, (uint32_t)len);
	if (len > 0)
		memcpy(p + SPDY_HEADER_SIZE, data, len);
	*ret_len = SPDY_HEADER_SIZE + len;
	return p;
}

uint8_t *spdy_build_syn_reply(SpdyZ *z, uint32_t id, uint8_t flags, const SpdyHeader *h, size_t n,
			      size_t *ret_len)
{
	_cleanup_free_ uint8_t *block = NULL;
	size_t block_len;

	check_stream_id(id, false);
	if (spdy_headers_encode(z, h, n, &block, &block_len) < 0)
		return NULL;
	/* ENCODE_MAX_RAW keeps every encoded block within a frame. */
	uint8_t *p = control_frame(SPDY_SYN_REPLY, flags, 4 + block_len, ret_len);
	put_u32(p + SPDY_HEADER_SIZE, id);
	memcpy(p + SPDY_HEADER_SIZE + 4, block, block_len);
	return p;
}

uint8_t *spdy_build_rst_stream(uint32_t id, uint32_t status, size_t *ret_len)
{
	check_stream_id(id, false);
	if (status == 0)
		abort();
	uint8_t *p = control_frame(SPDY_RST_STREAM, 0, 8, ret_len);
	put_u32(p + SPDY_HEADER_SIZE, id);
	put_u32(p + SPDY_HEADER_SIZE + 4, status);
	return p;
}

uint8_t *spdy_build_ping(uint32_t id, size_t *ret_len)
{
	uint8_t *p = control_frame(SPDY_PING, 0, 4, ret_len);
	put_u32(p + SPDY_HEADER_SIZE, id);
	return p;
}

uint8_t *spdy_build_goaway(uint32_t last_good_id, uint32_t status, size_t *ret_len)
{
	check_stream_id(last_good_id, true);
	uint8_t *p = control_frame(SPDY_GOAWAY, 0, 8, ret_len);
	put_u32(p + SPDY_HEADER_SIZE, last_good_id);
	put_u32(p + SPDY_HEADER_SIZE + 4, status);
	return p;
}

uint8_t *spdy_build_window_update(uint32_t id, uint32_t delta, size_t *ret_len)
{
	check_stream_id(id, true);
	if (delta == 0 || delta > SPDY_MAX_WINDOW)
		abort();
	uint8_t *p = control_frame(SPDY_WINDOW_UPDATE, 0, 8, ret_len);
	put_u32(p + SPDY_HEADER_SIZE, id);
	put_u32(p + SPDY_HEADER_SIZE + 4, delta);
	return p;
}

uint8_t *spdy_build_settings_initial_window(uint32_t window, size_t *ret_len)
{
	if (window > SPDY_MAX_WINDOW)
		abort();
	uint8_t *p = control_frame(SPDY_SETTINGS, 0, 12, ret_len);
	put_u32(p + SPDY_HEADER_SIZE, 1);
	p[SPDY_HEADER_SIZE + 4] = 0; /* entry flags: neither persist nor persisted */
	put_u24(p + SPDY_HEADER_SIZE + 5, SPDY_SETTINGS_INITIAL_WINDOW_SIZE);
	put_u32(p + SPDY_HEADER_SIZE + 8, window);
	return p;
}
