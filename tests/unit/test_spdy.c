/*
 * test_spdy.c - SPDY/3.1 framing and header compression (streamd/spdy.c):
 * every builder through its parser, header blocks made by an independent
 * encoder (Python's zlib) and ours read back by Python, blocks through one
 * long-lived zlib stream, and what a hostile client can send: truncated
 * frames, giant declared lengths, absurd counts and lengths inside header
 * blocks, corrupt zlib data and a decompression bomb.
 */
#include "test_helpers.h"

#include "spdy.h"

#include <stdio.h>
#include <zlib.h>

/*
 * The SPDY/3 dictionary again, as hex, for handing to Python: a second copy
 * checked against the spec's length and DICTID, not against spdy.c.
 */
static const char dict_hex[] =
	"000000076f7074696f6e73000000046865616400000004706f7374000000037075740000000664656c657465"
	"000000057472616365000000066163636570740000000e6163636570742d636861727365740000000f616363"
	"6570742d656e636f64696e670000000f6163636570742d6c616e67756167650000000d6163636570742d7261"
	"6e6765730000000361676500000005616c6c6f770000000d617574686f72697a6174696f6e0000000d636163"
	"68652d636f6e74726f6c0000000a636f6e6e656374696f6e0000000c636f6e74656e742d6261736500000010"
	"636f6e74656e742d656e636f64696e6700000010636f6e74656e742d6c616e67756167650000000e636f6e74"
	"656e742d6c656e67746800000010636f6e74656e742d6c6f636174696f6e0000000b636f6e74656e742d6d64"
	"350000000d636f6e74656e742d72616e67650000000c636f6e74656e742d7479706500000004646174650000"
	"0004657461670000000665787065637400000007657870697265730000000466726f6d00000004686f737400"
	"00000869662d6d617463680000001169662d6d6f6469666965642d73696e63650000000d69662d6e6f6e652d"
	"6d617463680000000869662d72616e67650000001369662d756e6d6f6469666965642d73696e63650000000d"
	"6c6173742d6d6f646966696564000000086c6f636174696f6e0000000c6d61782d666f727761726473000000"
	"06707261676d610000001270726f78792d61757468656e7469636174650000001370726f78792d617574686f"
	"72697a6174696f6e0000000572616e676500000007726566657265720000000b72657472792d616674657200"
	"00000673657276657200000002746500000007747261696c6572000000117472616e736665722d656e636f64"
	"696e6700000007757067726164650000000a757365722d6167656e7400000004766172790000000376696100"
	"0000077761726e696e67000000107777772d61757468656e746963617465000000066d6574686f6400000003"
	"6765740000000673746174757300000006323030204f4b0000000776657273696f6e00000008485454502f31"
	"2e310000000375726c000000067075626c69630000000a7365742d636f6f6b69650000000a6b6565702d616c"
	"697665000000066f726967696e31303031303132303132303232303532303633303033303233303333303433"
	"3035333036333037343032343035343036343037343038343039343130343131343132343133343134343135"
	"343136343137353032353034353035323033204e6f6e2d417574686f726974617469766520496e666f726d61"
	"74696f6e323034204e6f20436f6e74656e74333031204d6f766564205065726d616e656e746c793430302042"
	"6164205265717565737434303120556e617574686f72697a656434303320466f7262696464656e343034204e"
	"6f7420466f756e6435303020496e7465726e616c20536572766572204572726f72353031204e6f7420496d70"
	"6c656d656e746564353033205365727669636520556e617661696c61626c654a616e20466562204d61722041"
	"7072204d6179204a756e204a756c204175672053657074204f6374204e6f76204465632030303a30303a3030"
	"204d6f6e2c205475652c205765642c205468752c204672692c205361742c2053756e2c20474d546368756e6b"
	"65642c746578742f68746d6c2c696d6167652f706e672c696d6167652f6a70672c696d6167652f6769662c61"
	"70706c69636174696f6e2f786d6c2c6170706c69636174696f6e2f7868746d6c2b786d6c2c746578742f706c"
	"61696e2c746578742f6a6176617363726970742c7075626c6963707269766174656d61782d6167653d677a69"
	"702c6465666c6174652c73646368636861727365743d7574662d38636861727365743d69736f2d383835392d"
	"312c7574662d2c2a2c656e713d302e";

/*
 * Four header blocks from one zlib stream, made by Python's zlib with the
 * dictionary and a sync flush after each, as a SPDY client sends them:
 *   {streamtype: error}, {streamtype: stdout},
 *   {port: 8080, requestid: 1, streamtype: data},
 *   {:status: 200, set-cookie: "a=1\0b=2"}.
 */
static const uint8_t py_block1[] = {
	0x78, 0xbb, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x70, 0x3a, 0x2b, 0x29, 0x4a,
	0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x06, 0x00, 0x00, 0x00, 0xff, 0xff,
};
static const uint8_t py_block2[] = {
	0xc2, 0x2a, 0x05, 0x4c, 0xcc, 0x29, 0xf9, 0xa5, 0x25, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
};
static const uint8_t py_block3[] = {
	0x02, 0xa5, 0x55, 0x48, 0xb1, 0x5d, 0x04, 0xce, 0x21, 0x16, 0x06, 0x16,
	0x06, 0x40, 0x9a, 0xb3, 0x08, 0x12, 0xcd, 0x99, 0xa0, 0xe4, 0xcf, 0x68,
	0x88, 0xa1, 0x1b, 0x54, 0x46, 0x25, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff,
};
static const uint8_t py_block4[] = {
	0x02, 0x65, 0x48, 0x50, 0x16, 0xb0, 0x82, 0xe7, 0x0b, 0x66, 0x60, 0xbe, 0xc0, 0x48, 0xec,
	0xec, 0x89, 0xb6, 0x86, 0x0c, 0x49, 0xb6, 0x46, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
};

/* A growing byte string, for writing frames and raw header blocks by hand. */
typedef struct Buf {
	uint8_t *p;
	size_t n;
} Buf;

static void buf_put(Buf *b, const void *d, size_t n)
{
	b->p = xrealloc(b->p, b->n + n);
	if (n > 0)
		memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void buf_u8(Buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

static void buf_u32(Buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	buf_put(b, x, 4);
}

/* A 32-bit length and the bytes: a name or a value of a raw header block. */
static void buf_str(Buf *b, const char *s, size_t n)
{
	buf_u32(b, (uint32_t)n);
	buf_put(b, s, n);
}

static void buf_done(Buf *b)
{
	free(b->p);
	*b = (Buf){ 0 };
}

/* An 8-byte control header and the payload. */
static void ctrl(Buf *b, uint16_t version, uint16_t type, uint8_t flags, const void *payload,
		 size_t len)
{
	buf_u8(b, (uint8_t)(0x80 | version >> 8));
	buf_u8(b, (uint8_t)version);
	buf_u8(b, (uint8_t)(type >> 8));
	buf_u8(b, (uint8_t)type);
	buf_u8(b, flags);
	buf_u8(b, (uint8_t)(len >> 16));
	buf_u8(b, (uint8_t)(len >> 8));
	buf_u8(b, (uint8_t)len);
	buf_put(b, payload, len);
}

/* A zlib stream of raw that ends in a sync flush, as a peer sends it; dict may be NULL. */
static uint8_t *zsync(const void *raw, size_t len, const void *dict, size_t dict_len,
		      size_t *ret_len)
{
	z_stream s = { 0 };
	assert_int_equal(deflateInit(&s, Z_DEFAULT_COMPRESSION), Z_OK);
	if (dict)
		assert_int_equal(deflateSetDictionary(&s, dict, (uInt)dict_len), Z_OK);
	size_t cap = deflateBound(&s, (uLong)len) + 64;
	uint8_t *out = xmalloc(cap);
	s.next_in = (Bytef *)raw;
	s.avail_in = (uInt)len;
	s.next_out = out;
	s.avail_out = (uInt)cap;
	assert_int_equal(deflate(&s, Z_SYNC_FLUSH), Z_OK);
	assert_true(s.avail_out > 0);
	*ret_len = cap - s.avail_out;
	deflateEnd(&s);
	return out;
}

/* Decodes a raw block (zlib without dictionary) through a fresh inflater. */
static int decode_raw(const Buf *raw, size_t max, SpdyHeaders *ret)
{
	size_t zn;
	_cleanup_free_ uint8_t *zb = zsync(raw->p, raw->n, NULL, 0, &zn);
	SpdyZ *z = spdy_inflater_new();
	int r = spdy_headers_decode(z, zb, zn, max, ret);
	spdy_z_free(z);
	return r;
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static char *hex_encode(const uint8_t *p, size_t n)
{
	char *s = xmalloc(2 * n + 1);
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

/* Parses a complete frame that must be exactly buf. */
static void parse_whole(const uint8_t *buf, size_t len, SpdyFrame *f)
{
	assert_int_equal(spdy_parse_frame(buf, len, SPDY_MAX_PAYLOAD, f), (ssize_t)len);
	assert_ptr_equal(f->data, buf + SPDY_HEADER_SIZE);
	assert_int_equal(f->len, len - SPDY_HEADER_SIZE);
}

/* Every strict prefix of a frame asks for more; longer input still yields the frame alone. */
static void check_prefixes(const uint8_t *frame, size_t len)
{
	_cleanup_free_ uint8_t *more = xmalloc(len + 16);
	memcpy(more, frame, len);
	memset(more + len, 0xa5, 16);
	for (size_t i = 0; i < len; i++) {
		SpdyFrame f = { .len = 12345 };
		assert_int_equal(spdy_parse_frame(frame, i, SPDY_MAX_PAYLOAD, &f), 0);
		assert_int_equal(f.len, 12345); /* untouched */
	}
	SpdyFrame f;
	assert_int_equal(spdy_parse_frame(more, len + 16, SPDY_MAX_PAYLOAD, &f), (ssize_t)len);
}

static void test_data_frames(void **state)
{
	size_t n;
	SpdyFrame f;

	_cleanup_free_ uint8_t *p = spdy_build_data(5, SPDY_FLAG_FIN, "hello", 5, &n);
	assert_int_equal(n, 13);
	parse_whole(p, n, &f);
	assert_false(f.control);
	assert_int_equal(f.stream_id, 5);
	assert_int_equal(f.flags, SPDY_FLAG_FIN);
	assert_memory_equal(f.data, "hello", 5);
	check_prefixes(p, n);

	/* Empty, on the largest stream ID, and a full 16 KiB chunk. */
	_cleanup_free_ uint8_t *e = spdy_build_data(SPDY_MAX_STREAM_ID, 0, NULL, 0, &n);
	assert_int_equal(n, 8);
	parse_whole(e, n, &f);
	assert_int_equal(f.stream_id, SPDY_MAX_STREAM_ID);
	assert_int_equal(f.flags, 0);

	_cleanup_free_ uint8_t *chunk = xmalloc(16384);
	for (size_t i = 0; i < 16384; i++)
		chunk[i] = (uint8_t)(i * 7);
	_cleanup_free_ uint8_t *big = spdy_build_data(3, 0, chunk, 16384, &n);
	assert_int_equal(n, 8 + 16384);
	parse_whole(big, n, &f);
	assert_int_equal(f.stream_id, 3);
	assert_memory_equal(f.data, chunk, 16384);
	/* A limit equal to the payload admits it; one less refuses it on the header. */
	assert_int_equal(spdy_parse_frame(big, n, 16384, &f), (ssize_t)n);
	assert_int_equal(spdy_parse_frame(big, 8, 16383, &f), -EMSGSIZE);
}

static void test_control_frames(void **state)
{
	size_t n;
	SpdyFrame f;
	uint32_t id, v;

	_cleanup_free_ uint8_t *rst = spdy_build_rst_stream(7, SPDY_RST_CANCEL, &n);
	assert_int_equal(n, 16);
	parse_whole(rst, n, &f);
	assert_true(f.control);
	assert_int_equal(f.version, 3);
	assert_int_equal(f.type, SPDY_RST_STREAM);
	assert_int_equal(spdy_parse_rst_stream(&f, &id, &v), 0);
	assert_int_equal(id, 7);
	assert_int_equal(v, SPDY_RST_CANCEL);
	check_prefixes(rst, n);

	_cleanup_free_ uint8_t *ping = spdy_build_ping(0xfffffffe, &n);
	assert_int_equal(n, 12);
	parse_whole(ping, n, &f);
	assert_int_equal(f.type, SPDY_PING);
	assert_int_equal(spdy_parse_ping(&f, &id), 0);
	assert_int_equal(id, 0xfffffffe);
	check_prefixes(ping, n);

	_cleanup_free_ uint8_t *ga = spdy_build_goaway(9, SPDY_GOAWAY_PROTOCOL_ERROR, &n);
	assert_int_equal(n, 16);
	parse_whole(ga, n, &f);
	assert_int_equal(f.type, SPDY_GOAWAY);
	assert_int_equal(spdy_parse_goaway(&f, &id, &v), 0);
	assert_int_equal(id, 9);
	assert_int_equal(v, SPDY_GOAWAY_PROTOCOL_ERROR);
	check_prefixes(ga, n);

	_cleanup_free_ uint8_t *wu = spdy_build_window_update(0, SPDY_MAX_WINDOW, &n);
	assert_int_equal(n, 16);
	parse_whole(wu, n, &f);
	assert_int_equal(f.type, SPDY_WINDOW_UPDATE);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), 0);
	assert_int_equal(id, 0); /* the session window */
	assert_int_equal(v, SPDY_MAX_WINDOW);
	check_prefixes(wu, n);

	_cleanup_free_ uint8_t *wu2 = spdy_build_window_update(11, 1, &n);
	parse_whole(wu2, n, &f);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), 0);
	assert_int_equal(id, 11);
	assert_int_equal(v, 1);

	_cleanup_free_ uint8_t *st = spdy_build_settings_initial_window(SPDY_DEFAULT_WINDOW, &n);
	assert_int_equal(n, 20);
	parse_whole(st, n, &f);
	assert_int_equal(f.type, SPDY_SETTINGS);
	int64_t w = 0;
	assert_int_equal(spdy_parse_settings(&f, &w), 0);
	assert_int_equal(w, SPDY_DEFAULT_WINDOW);
	check_prefixes(st, n);

	/* The exact bytes of one frame, against the spec's layout. */
	static const uint8_t want[] = { 0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08,
					0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x01 };
	assert_memory_equal(wu2, want, sizeof(want));
}

static void check_headers(const SpdyHeaders *h, const char *const *kv, size_t n)
{
	assert_int_equal(h->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(h->v[i].name, kv[2 * i]);
		assert_string_equal(h->v[i].value, kv[2 * i + 1]);
	}
}

static void test_syn_reply_roundtrip(void **state)
{
	SpdyZ *dz = spdy_deflater_new(), *iz = spdy_inflater_new();
	const SpdyHeader h[] = { { "streamtype", "stdout" }, { ":status", "200" } };
	const char *const kv[] = { "streamtype", "stdout", ":status", "200" };
	size_t n;
	SpdyFrame f;
	uint32_t id;
	const uint8_t *block;
	size_t block_len;

	for (int round = 0; round < 3; round++) {
		_cleanup_free_ uint8_t *p =
			spdy_build_syn_reply(dz, 1 + 2 * (uint32_t)round, SPDY_FLAG_FIN, h, 2, &n);
		assert_non_null(p);
		parse_whole(p, n, &f);
		assert_int_equal(f.type, SPDY_SYN_REPLY);
		assert_int_equal(f.flags, SPDY_FLAG_FIN);
		assert_int_equal(spdy_parse_headers(&f, &id, &block, &block_len), 0);
		assert_int_equal(id, 1 + 2 * round);
		if (round == 0) {
			/* The stream names the SPDY/3 dictionary by its adler32 (DICTID). */
			static const uint8_t dictid[] = { 0xe3, 0xc6, 0xa7, 0xc2 };
			assert_true(block_len > 6);
			assert_true(block[1] & 0x20); /* FDICT */
			assert_memory_equal(block + 2, dictid, 4);
		}
		SpdyHeaders got = { 0 };
		assert_int_equal(spdy_headers_decode(iz, block, block_len, 65536, &got), 0);
		check_headers(&got, kv, 2);
		assert_string_equal(spdy_headers_get(&got, "streamtype"), "stdout");
		assert_null(spdy_headers_get(&got, "StreamType"));
		assert_null(spdy_headers_get(&got, "port"));
		spdy_headers_done(&got);
		spdy_headers_done(&got); /* twice is harmless */
		check_prefixes(p, n);
	}
	spdy_z_free(dz);
	spdy_z_free(iz);
}

/* SYN_STREAM and HEADERS have no builder (streamd only receives them): written by hand. */
static void test_syn_stream_and_headers(void **state)
{
	SpdyZ *dz = spdy_deflater_new(), *iz = spdy_inflater_new();
	const SpdyHeader h[] = { { "streamtype", "data" }, { "port", "80" }, { "requestid", "0" } };
	const char *const kv[] = { "streamtype", "data", "port", "80", "requestid", "0" };
	_cleanup_free_ uint8_t *block = NULL;
	size_t block_len;
	assert_int_equal(spdy_headers_encode(dz, h, 3, &block, &block_len), 0);

	Buf payload = { 0 }, frame = { 0 };
	buf_u32(&payload, 0x80000003); /* the reserved bit is ignored */
	buf_u32(&payload, 1);
	buf_u8(&payload, 5 << 5);
	buf_u8(&payload, 0); /* slot */
	buf_put(&payload, block, block_len);
	ctrl(&frame, 3, SPDY_SYN_STREAM, SPDY_FLAG_UNIDIRECTIONAL, payload.p, payload.n);

	SpdyFrame f;
	uint32_t id, assoc;
	uint8_t pri;
	const uint8_t *b;
	size_t bl;
	parse_whole(frame.p, frame.n, &f);
	assert_int_equal(f.flags, SPDY_FLAG_UNIDIRECTIONAL);
	assert_int_equal(spdy_parse_syn_stream(&f, &id, &assoc, &pri, &b, &bl), 0);
	assert_int_equal(id, 3);
	assert_int_equal(assoc, 1);
	assert_int_equal(pri, 5);
	assert_int_equal(bl, block_len);
	SpdyHeaders got = { 0 };
	assert_int_equal(spdy_headers_decode(iz, b, bl, 4096, &got), 0);
	check_headers(&got, kv, 3);
	spdy_headers_done(&got);
	check_prefixes(frame.p, frame.n);
	buf_done(&frame);

	/* HEADERS: the stream ID and a block, through the same two streams. */
	_cleanup_free_ uint8_t *block2 = NULL;
	assert_int_equal(spdy_headers_encode(dz, h, 1, &block2, &block_len), 0);
	Buf hp = { 0 };
	buf_u32(&hp, 3);
	buf_put(&hp, block2, block_len);
	ctrl(&frame, 3, SPDY_HEADERS, 0, hp.p, hp.n);
	parse_whole(frame.p, frame.n, &f);
	assert_int_equal(spdy_parse_headers(&f, &id, &b, &bl), 0);
	assert_int_equal(id, 3);
	assert_int_equal(spdy_headers_decode(iz, b, bl, 4096, &got), 0);
	check_headers(&got, kv, 1);
	spdy_headers_done(&got);

	buf_done(&frame);
	buf_done(&payload);
	buf_done(&hp);
	spdy_z_free(dz);
	spdy_z_free(iz);
}

/* Blocks from Python's zlib, in order, through one inflater. */
static void test_python_blocks(void **state)
{
	SpdyZ *z = spdy_inflater_new();
	SpdyHeaders h = { 0 };

	assert_int_equal(spdy_headers_decode(z, py_block1, sizeof(py_block1), 65536, &h), 0);
	check_headers(&h, (const char *const[]){ "streamtype", "error" }, 1);
	spdy_headers_done(&h);

	assert_int_equal(spdy_headers_decode(z, py_block2, sizeof(py_block2), 65536, &h), 0);
	check_headers(&h, (const char *const[]){ "streamtype", "stdout" }, 1);
	spdy_headers_done(&h);

	assert_int_equal(spdy_headers_decode(z, py_block3, sizeof(py_block3), 65536, &h), 0);
	check_headers(
		&h, (const char *const[]){ "port", "8080", "requestid", "1", "streamtype", "data" },
		3);
	assert_string_equal(spdy_headers_get(&h, "requestid"), "1");
	spdy_headers_done(&h);

	/* A repeated header: its values joined by NUL; get returns the first. */
	assert_int_equal(spdy_headers_decode(z, py_block4, sizeof(py_block4), 65536, &h), 0);
	assert_int_equal(h.n, 2);
	assert_string_equal(spdy_headers_get(&h, ":status"), "200");
	assert_string_equal(spdy_headers_get(&h, "set-cookie"), "a=1");
	spdy_headers_done(&h);
	spdy_z_free(z);

	/* A later block alone, without the stream's start, is not a zlib stream. */
	z = spdy_inflater_new();
	assert_int_equal(spdy_headers_decode(z, py_block2, sizeof(py_block2), 65536, &h), -EPROTO);
	assert_null(h.v);
	spdy_z_free(z);
}

/* The test's copy of the dictionary is the spec's: 1423 bytes, adler32 0xe3c6a7c2. */
static void test_dictionary_copy(void **state)
{
	uint8_t dict[2048];
	size_t n = hex_decode(dict_hex, dict, sizeof(dict));
	assert_int_equal(n, 1423);
	assert_int_equal(adler32(adler32(0, NULL, 0), dict, (uInt)n), 0xe3c6a7c2);

	/* A block deflated by zlib with this copy decodes with the library's. */
	Buf raw = { 0 };
	buf_u32(&raw, 2);
	buf_str(&raw, "content-type", 12);
	buf_str(&raw, "text/plain", 10);
	buf_str(&raw, "user-agent", 10);
	buf_str(&raw, "kubectl", 7);
	size_t zn;
	_cleanup_free_ uint8_t *zb = zsync(raw.p, raw.n, dict, n, &zn);
	SpdyZ *z = spdy_inflater_new();
	SpdyHeaders h = { 0 };
	assert_int_equal(spdy_headers_decode(z, zb, zn, 4096, &h), 0);
	check_headers(
		&h, (const char *const[]){ "content-type", "text/plain", "user-agent", "kubectl" },
		2);
	spdy_headers_done(&h);
	spdy_z_free(z);
	buf_done(&raw);
}

/* Our blocks, from one deflater, read back by Python's zlib in order. */
static void test_python_decodes_ours(void **state)
{
	if (access("/usr/bin/python3", X_OK) != 0)
		skip();

	SpdyZ *z = spdy_deflater_new();
	const SpdyHeader sets[3][2] = {
		{ { ":status", "200" }, { "x-stream-protocol-version", "v4.channel.k8s.io" } },
		{ { "streamtype", "error" }, { "requestid", "17" } },
		{ { "streamtype", "stdout" }, { "empty", "" } },
	};
	_cleanup_free_ char *cmd =
		xasprintf("/usr/bin/python3 -c 'import sys, zlib; "
			  "o = zlib.decompressobj(zdict=bytes.fromhex(sys.argv[1])); "
			  "[print(o.decompress(bytes.fromhex(b)).hex()) for b in sys.argv[2:]]' %s",
			  dict_hex);
	char *want[3];
	for (size_t i = 0; i < 3; i++) {
		_cleanup_free_ uint8_t *block = NULL;
		size_t len;
		assert_int_equal(spdy_headers_encode(z, sets[i], 2, &block, &len), 0);
		_cleanup_free_ char *hex = hex_encode(block, len);
		char *next = xasprintf("%s %s", cmd, hex);
		free(cmd);
		cmd = next;

		Buf raw = { 0 };
		buf_u32(&raw, 2);
		for (size_t j = 0; j < 2; j++) {
			buf_str(&raw, sets[i][j].name, strlen(sets[i][j].name));
			buf_str(&raw, sets[i][j].value, strlen(sets[i][j].value));
		}
		want[i] = hex_encode(raw.p, raw.n);
		buf_done(&raw);
	}
	spdy_z_free(z);

	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char *line = NULL;
	size_t cap = 0;
	for (size_t i = 0; i < 3; i++) {
		ssize_t l = getline(&line, &cap, p);
		assert_true(l > 0);
		line[strcspn(line, "\n")] = '\0';
		assert_string_equal(line, want[i]);
		free(want[i]);
	}
	free(line);
	assert_int_equal(pclose(p), 0);
}

/* Many blocks through one pair of streams: the shared history must stay in step. */
static void test_persistent_streams(void **state)
{
	SpdyZ *dz = spdy_deflater_new(), *iz = spdy_inflater_new();

	for (unsigned i = 0; i < 200; i++) {
		char id[16], port[16];
		snprintf(id, sizeof(id), "%u", i);
		snprintf(port, sizeof(port), "%u", 1000 + i % 7);
		const SpdyHeader h[] = { { "requestid", id }, { "port", port }, { "x", "" } };
		_cleanup_free_ uint8_t *block = NULL;
		size_t len;
		assert_int_equal(spdy_headers_encode(dz, h, i % 4, &block, &len), 0);
		SpdyHeaders got = { 0 };
		assert_int_equal(spdy_headers_decode(iz, block, len, 1024, &got), 0);
		assert_int_equal(got.n, i % 4 < 3 ? i % 4 : 3);
		for (size_t j = 0; j < got.n; j++) {
			assert_string_equal(got.v[j].name, h[j].name);
			assert_string_equal(got.v[j].value, h[j].value);
		}
		spdy_headers_done(&got);
	}
	spdy_z_free(dz);
	spdy_z_free(iz);
}

static void expect_bad_block(const Buf *raw)
{
	SpdyHeaders h = { .v = (SpdyHeader *)0x1, .n = 99 };
	assert_int_equal(decode_raw(raw, 65536, &h), -EPROTO);
	/* Written only on success. */
	assert_ptr_equal(h.v, (SpdyHeader *)0x1);
	assert_int_equal(h.n, 99);
}

static void test_hostile_blocks(void **state)
{
	Buf b = { 0 };
	SpdyHeaders h = { 0 };

	/* Counts far beyond the data: refused before anything is allocated for them. */
	const uint32_t counts[] = { 0x80000000u, 0xffffffffu, 0x7fffffffu, 2 };
	for (size_t i = 0; i < ELEMENTSOF(counts); i++) {
		buf_u32(&b, counts[i]);
		buf_str(&b, "a", 1);
		buf_str(&b, "b", 1);
		expect_bad_block(&b);
		buf_done(&b);
	}

	/* A name length past the end, and one of 2^32-1. */
	buf_u32(&b, 1);
	buf_u32(&b, 100);
	buf_put(&b, "ab", 2);
	expect_bad_block(&b);
	buf_done(&b);
	buf_u32(&b, 1);
	buf_u32(&b, 0xffffffffu);
	buf_put(&b, "abcdefgh", 8);
	expect_bad_block(&b);
	buf_done(&b);

	/* A value length past the end. */
	buf_u32(&b, 1);
	buf_str(&b, "a", 1);
	buf_u32(&b, 5);
	buf_put(&b, "abcd", 4);
	expect_bad_block(&b);
	buf_done(&b);

	/* Names: empty, uppercase, with NUL, space, DEL or a byte past ASCII. */
	static const struct {
		const char *s;
		size_t n;
	} names[] = { { "", 0 },    { "Host", 4 },  { "hOST", 4 },     { "a\0b", 3 },
		      { "a b", 3 }, { "a\x7f", 2 }, { "\xc3\xa9", 2 }, { "\n", 1 } };
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		buf_u32(&b, 1);
		buf_str(&b, names[i].s, names[i].n);
		buf_str(&b, "v", 1);
		expect_bad_block(&b);
		buf_done(&b);
	}

	/* Values: an empty part between, before or after NUL separators. */
	static const struct {
		const char *s;
		size_t n;
	} values[] = { { "\0a", 2 }, { "a\0", 2 }, { "a\0\0b", 4 }, { "\0", 1 } };
	for (size_t i = 0; i < ELEMENTSOF(values); i++) {
		buf_u32(&b, 1);
		buf_str(&b, "v", 1);
		buf_str(&b, values[i].s, values[i].n);
		expect_bad_block(&b);
		buf_done(&b);
	}

	/* A duplicate name, a trailing byte, a block shorter than its count, nothing at all. */
	buf_u32(&b, 3);
	buf_str(&b, "a", 1);
	buf_str(&b, "1", 1);
	buf_str(&b, "b", 1);
	buf_str(&b, "2", 1);
	buf_str(&b, "a", 1);
	buf_str(&b, "3", 1);
	expect_bad_block(&b);
	buf_done(&b);
	buf_u32(&b, 0);
	buf_u8(&b, 0);
	expect_bad_block(&b);
	buf_done(&b);
	buf_put(&b, "\0\0\0", 3);
	expect_bad_block(&b);
	buf_done(&b);
	expect_bad_block(&b);

	/* What is allowed: no headers, an empty value, several values. */
	buf_u32(&b, 0);
	assert_int_equal(decode_raw(&b, 65536, &h), 0);
	assert_int_equal(h.n, 0);
	spdy_headers_done(&h);
	buf_done(&b);
	buf_u32(&b, 2);
	buf_str(&b, ":path", 5);
	buf_str(&b, "", 0);
	buf_str(&b, "accept", 6);
	buf_str(&b, "a\0b\0c", 5);
	assert_int_equal(decode_raw(&b, 65536, &h), 0);
	assert_string_equal(spdy_headers_get(&h, ":path"), "");
	assert_string_equal(spdy_headers_get(&h, "accept"), "a");
	spdy_headers_done(&h);
	buf_done(&b);
}

static void test_corrupt_zlib(void **state)
{
	SpdyHeaders h = { 0 };
	SpdyZ *z;

	/* Not a zlib header at all. */
	static const uint8_t junk[] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0 };
	z = spdy_inflater_new();
	assert_int_equal(spdy_headers_decode(z, junk, sizeof(junk), 65536, &h), -EPROTO);
	/* The stream is now out of step: even a good block is refused. */
	assert_int_equal(spdy_headers_decode(z, py_block1, sizeof(py_block1), 65536, &h), -EPROTO);
	z = spdy_z_free(z);
	assert_null(z);

	/* Every single-bit flip of a good block is refused, not misread or crashed on. */
	for (size_t i = 0; i < sizeof(py_block1); i++) {
		for (int bit = 0; bit < 8; bit++) {
			uint8_t bad[sizeof(py_block1)];
			memcpy(bad, py_block1, sizeof(bad));
			bad[i] ^= (uint8_t)(1 << bit);
			z = spdy_inflater_new();
			int r = spdy_headers_decode(z, bad, sizeof(bad), 65536, &h);
			if (r == 0) {
				/* A flip zlib cannot see may still parse; it must be well-formed. */
				assert_int_equal(h.n, 1);
				spdy_headers_done(&h);
			} else {
				assert_int_equal(r, -EPROTO);
			}
			spdy_z_free(z);
		}
	}

	/* Cut short: the count and pairs do not all come out. */
	z = spdy_inflater_new();
	assert_int_equal(spdy_headers_decode(z, py_block1, 12, 65536, &h), -EPROTO);
	spdy_z_free(z);

	/* A stream that names another dictionary. */
	Buf raw = { 0 };
	buf_u32(&raw, 0);
	size_t zn;
	_cleanup_free_ uint8_t *other = zsync(raw.p, raw.n, "not the spdy dictionary", 23, &zn);
	z = spdy_inflater_new();
	assert_int_equal(spdy_headers_decode(z, other, zn, 65536, &h), -EPROTO);
	spdy_z_free(z);

	/* A stream that ends: the session's next block would have nowhere to go. */
	uint8_t done[64];
	uLongf dn = sizeof(done);
	assert_int_equal(compress(done, &dn, raw.p, raw.n), Z_OK);
	z = spdy_inflater_new();
	assert_int_equal(spdy_headers_decode(z, done, dn, 65536, &h), -EPROTO);
	spdy_z_free(z);
	buf_done(&raw);

	/* Wrong kinds of stream. */
	z = spdy_deflater_new();
	assert_int_equal(spdy_headers_decode(z, py_block1, sizeof(py_block1), 65536, &h), -EINVAL);
	spdy_z_free(z);
	z = spdy_inflater_new();
	uint8_t *out = NULL;
	size_t out_len;
	const SpdyHeader one = { "a", "b" };
	assert_int_equal(spdy_headers_encode(z, &one, 1, &out, &out_len), -EINVAL);
	assert_null(out);
	spdy_z_free(z);
	assert_null(spdy_z_free(NULL));
}

/* 1 MiB of zeros deflates to about a kilobyte: the limit must hold before it is inflated. */
static void test_zlib_bomb(void **state)
{
	const size_t big = 1 << 20;
	_cleanup_free_ uint8_t *zeros = xcalloc(1, big);
	size_t zn;
	_cleanup_free_ uint8_t *bomb = zsync(zeros, big, NULL, 0, &zn);
	assert_true(zn < 4096);

	SpdyZ *z = spdy_inflater_new();
	SpdyHeaders h = { 0 };
	assert_int_equal(spdy_headers_decode(z, bomb, zn, 64 * 1024, &h), -EMSGSIZE);
	assert_null(h.v);
	assert_int_equal(spdy_headers_decode(z, py_block1, sizeof(py_block1), 64 * 1024, &h),
			 -EPROTO);
	spdy_z_free(z);

	/* Exactly at the limit passes, one byte over does not (across buffer growth steps). */
	Buf raw = { 0 };
	const size_t value_len = 3000 - 4 - 4 - 1 - 4;
	_cleanup_free_ char *value = xmalloc(value_len);
	memset(value, 'x', value_len);
	buf_u32(&raw, 1);
	buf_str(&raw, "a", 1);
	buf_str(&raw, value, value_len);
	assert_int_equal(raw.n, 3000);
	assert_int_equal(decode_raw(&raw, 3000, &h), 0);
	assert_int_equal(strlen(spdy_headers_get(&h, "a")), value_len);
	spdy_headers_done(&h);
	assert_int_equal(decode_raw(&raw, 2999, &h), -EMSGSIZE);
	assert_int_equal(decode_raw(&raw, 0, &h), -EMSGSIZE);
	buf_done(&raw);
}

static void test_frame_errors(void **state)
{
	SpdyFrame f = { 0 };
	Buf b = { 0 };

	/* Only version 3: SPDY/2 and others are refused on the header. */
	const uint16_t versions[] = { 0, 1, 2, 4, 0x7fff };
	for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
		ctrl(&b, versions[i], SPDY_PING, 0, "\0\0\0\1", 4);
		assert_int_equal(spdy_parse_frame(b.p, 8, SPDY_MAX_PAYLOAD, &f), -EPROTO);
		buf_done(&b);
	}

	/* Data on stream 0 (with the control bit clear). */
	static const uint8_t data0[] = { 0, 0, 0, 0, 0, 0, 0, 1, 'x' };
	assert_int_equal(spdy_parse_frame(data0, sizeof(data0), 16384, &f), -EPROTO);

	/* Declared giants are refused from the 8-byte header alone. */
	static const uint8_t huge_ctrl[] = { 0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff };
	static const uint8_t huge_data[] = { 0, 0, 0, 1, 0, 0xff, 0xff, 0xff };
	assert_int_equal(spdy_parse_frame(huge_ctrl, 8, 16384, &f), -EMSGSIZE);
	assert_int_equal(spdy_parse_frame(huge_data, 8, 16384, &f), -EMSGSIZE);
	assert_int_equal(spdy_parse_frame(huge_data, 8, 0, &f), -EMSGSIZE);
	assert_int_equal(spdy_parse_frame(huge_data, 8, SPDY_MAX_PAYLOAD, &f), 0);
	assert_int_equal(spdy_parse_frame(NULL, 0, 16384, &f), 0);

	/* Unknown control types parse: the caller ignores them, as the spec asks. */
	ctrl(&b, 3, 0x7777, 0xff, "abc", 3);
	assert_int_equal(spdy_parse_frame(b.p, b.n, 16384, &f), 11);
	assert_int_equal(f.type, 0x7777);
	assert_int_equal(f.flags, 0xff);
	buf_done(&b);
}

/* Parses a control frame of type with payload p and returns the frame for a decoder. */
static SpdyFrame make(Buf *b, uint16_t type, const void *p, size_t n)
{
	SpdyFrame f;
	buf_done(b);
	ctrl(b, 3, type, 0, p, n);
	assert_int_equal(spdy_parse_frame(b->p, b->n, SPDY_MAX_PAYLOAD, &f), (ssize_t)b->n);
	return f;
}

static void test_payload_errors(void **state)
{
	Buf b = { 0 };
	SpdyFrame f;
	uint32_t id = 77, v = 77, assoc;
	uint8_t pri;
	const uint8_t *blk;
	size_t bl;
	int64_t w = 77;
	static const uint8_t z16[16] = { 0 };

	/* Wrong lengths, one short and one long. */
	for (size_t n = 0; n < 16; n++) {
		f = make(&b, SPDY_RST_STREAM, "\0\0\0\1\0\0\0\1\0\0\0\0\0\0\0\0", n);
		assert_int_equal(spdy_parse_rst_stream(&f, &id, &v), n == 8 ? 0 : -EPROTO);
		f = make(&b, SPDY_PING, "\0\0\0\1\0\0\0\1", n > 8 ? 8 : n);
		assert_int_equal(spdy_parse_ping(&f, &id), n == 4 ? 0 : -EPROTO);
		f = make(&b, SPDY_GOAWAY, "\0\0\0\1\0\0\0\0\0\0\0\0\0\0\0\0", n);
		assert_int_equal(spdy_parse_goaway(&f, &id, &v), n == 8 ? 0 : -EPROTO);
		f = make(&b, SPDY_WINDOW_UPDATE, "\0\0\0\1\0\0\0\1\0\0\0\0\0\0\0\0", n);
		assert_int_equal(spdy_parse_window_update(&f, &id, &v), n == 8 ? 0 : -EPROTO);
	}
	f = make(&b, SPDY_SYN_STREAM, "\0\0\0\1\0\0\0\0\0", 9);
	assert_int_equal(spdy_parse_syn_stream(&f, &id, &assoc, &pri, &blk, &bl), -EPROTO);
	f = make(&b, SPDY_HEADERS, "\0\0\1", 3);
	assert_int_equal(spdy_parse_headers(&f, &id, &blk, &bl), -EPROTO);
	f = make(&b, SPDY_SYN_REPLY, "\0\0\1", 3);
	assert_int_equal(spdy_parse_headers(&f, &id, &blk, &bl), -EPROTO);

	/* Stream 0 where a stream is required (the reserved bit alone is still 0). */
	f = make(&b, SPDY_SYN_STREAM, "\x80\0\0\0\0\0\0\0\0\0", 10);
	assert_int_equal(spdy_parse_syn_stream(&f, &id, &assoc, &pri, &blk, &bl), -EPROTO);
	f = make(&b, SPDY_SYN_REPLY, "\0\0\0\0", 4);
	assert_int_equal(spdy_parse_headers(&f, &id, &blk, &bl), -EPROTO);
	f = make(&b, SPDY_HEADERS, "\x80\0\0\0", 4);
	assert_int_equal(spdy_parse_headers(&f, &id, &blk, &bl), -EPROTO);
	f = make(&b, SPDY_RST_STREAM, "\0\0\0\0\0\0\0\1", 8);
	assert_int_equal(spdy_parse_rst_stream(&f, &id, &v), -EPROTO);
	/* RST_STREAM status 0. */
	f = make(&b, SPDY_RST_STREAM, "\0\0\0\1\0\0\0\0", 8);
	assert_int_equal(spdy_parse_rst_stream(&f, &id, &v), -EPROTO);

	/* Window deltas: 0 and past 2^31-1. */
	f = make(&b, SPDY_WINDOW_UPDATE, "\0\0\0\1\0\0\0\0", 8);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), -EPROTO);
	f = make(&b, SPDY_WINDOW_UPDATE, "\0\0\0\1\x80\0\0\0", 8);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), -EPROTO);
	f = make(&b, SPDY_WINDOW_UPDATE, "\0\0\0\1\xff\xff\xff\xff", 8);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), -EPROTO);
	/* The reserved bit of the stream ID is dropped. */
	f = make(&b, SPDY_WINDOW_UPDATE, "\x80\0\0\5\0\0\0\1", 8);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), 0);
	assert_int_equal(id, 5);

	/* SETTINGS: the count must match the length. */
	f = make(&b, SPDY_SETTINGS, "\0\0\0", 3);
	assert_int_equal(spdy_parse_settings(&f, &w), -EPROTO);
	f = make(&b, SPDY_SETTINGS, "\0\0\0\1", 4);
	assert_int_equal(spdy_parse_settings(&f, &w), -EPROTO);
	f = make(&b, SPDY_SETTINGS, "\0\0\0\0\0\0\0\7\0\0\0\1", 12);
	assert_int_equal(spdy_parse_settings(&f, &w), -EPROTO);
	f = make(&b, SPDY_SETTINGS, "\xff\xff\xff\xff\0\0\0\7\0\0\0\1", 12);
	assert_int_equal(spdy_parse_settings(&f, &w), -EPROTO);
	f = make(&b, SPDY_SETTINGS, "\0\0\0\1\0\0\0\7\0\0\0\1\0", 13);
	assert_int_equal(spdy_parse_settings(&f, &w), -EPROTO);
	/* An initial window past 2^31-1. */
	f = make(&b, SPDY_SETTINGS, "\0\0\0\1\0\0\0\7\x80\0\0\0", 12);
	assert_int_equal(spdy_parse_settings(&f, &w), -EPROTO);
	assert_int_equal(w, 77);
	/* Absent: -1.  Other IDs are skipped; a repeated entry: the last. */
	f = make(&b, SPDY_SETTINGS, "\0\0\0\0", 4);
	assert_int_equal(spdy_parse_settings(&f, &w), 0);
	assert_int_equal(w, -1);
	f = make(&b, SPDY_SETTINGS,
		 "\0\0\0\3"
		 "\1\0\0\4\0\0\0\x64"
		 "\0\0\0\7\0\0\x10\0"
		 "\0\0\0\7\0\0\x20\0",
		 28);
	assert_int_equal(spdy_parse_settings(&f, &w), 0);
	assert_int_equal(w, 0x2000);

	/* Frames of another type are the caller's mistake. */
	f = make(&b, SPDY_PING, z16, 4);
	assert_int_equal(spdy_parse_rst_stream(&f, &id, &v), -EINVAL);
	assert_int_equal(spdy_parse_goaway(&f, &id, &v), -EINVAL);
	assert_int_equal(spdy_parse_window_update(&f, &id, &v), -EINVAL);
	assert_int_equal(spdy_parse_settings(&f, &w), -EINVAL);
	assert_int_equal(spdy_parse_headers(&f, &id, &blk, &bl), -EINVAL);
	assert_int_equal(spdy_parse_syn_stream(&f, &id, &assoc, &pri, &blk, &bl), -EINVAL);
	f = make(&b, SPDY_GOAWAY, z16, 8);
	assert_int_equal(spdy_parse_ping(&f, &id), -EINVAL);
	assert_int_equal(spdy_parse_ping(NULL, &id), -EINVAL);
	static const uint8_t data[] = { 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 1 };
	assert_int_equal(spdy_parse_frame(data, sizeof(data), 16, &f), 12);
	assert_int_equal(spdy_parse_ping(&f, &id), -EINVAL);
	buf_done(&b);
}

static void test_encode_refuses(void **state)
{
	SpdyZ *z = spdy_deflater_new();
	uint8_t *out = NULL;
	size_t n = 0;

	const SpdyHeader upper = { "Content-Type", "x" }, empty = { "", "x" };
	assert_int_equal(spdy_headers_encode(z, &upper, 1, &out, &n), -EINVAL);
	assert_int_equal(spdy_headers_encode(z, &empty, 1, &out, &n), -EINVAL);
	assert_null(spdy_build_syn_reply(z, 1, 0, &upper, 1, &n));
	assert_null(out);
	/* A refusal leaves the stream usable: nothing reached zlib. */
	SpdyZ *iz = spdy_inflater_new();
	const SpdyHeader ok = { "streamtype", "error" };
	assert_int_equal(spdy_headers_encode(z, &ok, 1, &out, &n), 0);
	SpdyHeaders h = { 0 };
	assert_int_equal(spdy_headers_decode(iz, out, n, 1024, &h), 0);
	assert_string_equal(spdy_headers_get(&h, "streamtype"), "error");
	spdy_headers_done(&h);
	free(out);
	spdy_z_free(iz);
	spdy_z_free(z);
	assert_null(spdy_headers_get(NULL, "a"));
}

/* Random bytes through every entry point: errors, never a crash (valgrind watches reads). */
static void test_garbage(void **state)
{
	uint32_t seed = 12345;
	uint8_t buf[96];
	SpdyZ *z = spdy_inflater_new();

	for (int iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(iter % (int)sizeof(buf));
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		/* Half of them get a valid version-3 control header, to reach the decoders. */
		if (len >= 8 && iter % 2) {
			buf[0] = 0x80;
			buf[1] = 3;
			buf[2] = 0;
			buf[3] = (uint8_t)(iter / 2 % 10);
			buf[5] = 0;
			buf[6] = 0;
			buf[7] = (uint8_t)(len - 8);
		}
		SpdyFrame f;
		ssize_t r = spdy_parse_frame(buf, len, 64, &f);
		assert_true(r >= -EMSGSIZE || r == -EPROTO);
		if (r <= 0)
			continue;
		assert_true((size_t)r <= len);
		uint32_t a, b2;
		uint8_t pri;
		const uint8_t *blk;
		size_t bl;
		int64_t w;
		(void)spdy_parse_rst_stream(&f, &a, &b2);
		(void)spdy_parse_ping(&f, &a);
		(void)spdy_parse_goaway(&f, &a, &b2);
		(void)spdy_parse_window_update(&f, &a, &b2);
		(void)spdy_parse_settings(&f, &w);
		if (spdy_parse_syn_stream(&f, &a, &b2, &pri, &blk, &bl) == 0 ||
		    spdy_parse_headers(&f, &a, &blk, &bl) == 0) {
			SpdyHeaders h = { 0 };
			if (spdy_headers_decode(z, blk, bl, 4096, &h) == 0)
				spdy_headers_done(&h);
			z = spdy_z_free(z);
			z = spdy_inflater_new();
		}
	}
	spdy_z_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_data_frames),
		cmocka_unit_test(test_control_frames),
		cmocka_unit_test(test_syn_reply_roundtrip),
		cmocka_unit_test(test_syn_stream_and_headers),
		cmocka_unit_test(test_python_blocks),
		cmocka_unit_test(test_dictionary_copy),
		cmocka_unit_test(test_python_decodes_ours),
		cmocka_unit_test(test_persistent_streams),
		cmocka_unit_test(test_hostile_blocks),
		cmocka_unit_test(test_corrupt_zlib),
		cmocka_unit_test(test_zlib_bomb),
		cmocka_unit_test(test_frame_errors),
		cmocka_unit_test(test_payload_errors),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
