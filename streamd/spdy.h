/*
 * spdy.h - SPDY/3.1 framing and header compression, the transport of the
 * kubelet's exec, attach and port-forward streams.
 *
 * A pure codec: no I/O, no threads, no logging.  Everything it parses comes
 * from an untrusted network client, so every length is checked against the
 * buffer it was given, nothing reads past it, and malformed input is an
 * error (never a crash).  The caller owns the session's state machine; this
 * file only says whether bytes are well-formed.
 *
 * Errors: -EPROTO for a frame or header block that breaks the protocol,
 * -EMSGSIZE for one larger than the caller's limit, -EINVAL for a caller's
 * mistake (a decoder handed a frame of another type).  Treat -EPROTO and
 * -EMSGSIZE from a header block as a session error (GOAWAY PROTOCOL_ERROR):
 * the compression state is shared by every stream of the session.
 */
#ifndef CRISP_STREAMD_SPDY_H
#define CRISP_STREAMD_SPDY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPDY_VERSION 3
#define SPDY_HEADER_SIZE 8
/* The 24-bit length field of every frame. */
#define SPDY_MAX_PAYLOAD 0xffffffu
#define SPDY_MAX_STREAM_ID 0x7fffffffu
#define SPDY_MAX_WINDOW 0x7fffffffu
#define SPDY_DEFAULT_WINDOW 65536

/* Control frame types. */
#define SPDY_SYN_STREAM 1
#define SPDY_SYN_REPLY 2
#define SPDY_RST_STREAM 3
#define SPDY_SETTINGS 4
#define SPDY_PING 6
#define SPDY_GOAWAY 7
#define SPDY_HEADERS 8
#define SPDY_WINDOW_UPDATE 9

/* Flags: FIN on data, SYN_STREAM, SYN_REPLY and HEADERS; UNIDIRECTIONAL on SYN_STREAM. */
#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02

/* RST_STREAM status codes (0 is not valid). */
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_INVALID_STREAM 2
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_RST_UNSUPPORTED_VERSION 4
#define SPDY_RST_CANCEL 5
#define SPDY_RST_INTERNAL_ERROR 6
#define SPDY_RST_FLOW_CONTROL_ERROR 7
#define SPDY_RST_STREAM_IN_USE 8
#define SPDY_RST_STREAM_ALREADY_CLOSED 9
#define SPDY_RST_INVALID_CREDENTIALS 10
#define SPDY_RST_FRAME_TOO_LARGE 11

/* GOAWAY status codes. */
#define SPDY_GOAWAY_OK 0
#define SPDY_GOAWAY_PROTOCOL_ERROR 1
#define SPDY_GOAWAY_INTERNAL_ERROR 2

/* The one SETTINGS entry streamd acts on. */
#define SPDY_SETTINGS_INITIAL_WINDOW_SIZE 7

typedef struct SpdyFrame {
	bool control;
	uint16_t version; /* control frames: always SPDY_VERSION once parsed */
	uint16_t type;	  /* control frames; unknown types are left to the caller to ignore */
	uint8_t flags;
	uint32_t stream_id;  /* data frames only */
	const uint8_t *data; /* the payload after the 8-byte header, inside the input */
	size_t len;
} SpdyFrame;

/*
 * Parses the frame at the start of buf.  Returns its whole size (8 +
 * payload) once it is complete in buf, 0 when more bytes are needed,
 * -EMSGSIZE when the declared payload exceeds max_payload (known from the
 * 8-byte header alone, so the caller never buffers it), -EPROTO for a
 * control frame whose version is not 3 or a data frame on stream 0.
 * *ret points into buf.
 */
ssize_t spdy_parse_frame(const uint8_t *buf, size_t len, size_t max_payload, SpdyFrame *ret);

/*
 * Typed payload decoders: 0, or -EPROTO when the payload breaks the frame's
 * layout (wrong length, stream 0 where a stream is required, ...), or
 * -EINVAL when f is not a control frame of that type.  Reserved bits of
 * stream IDs are ignored, as the spec asks.
 */
int spdy_parse_syn_stream(const SpdyFrame *f, uint32_t *ret_id, uint32_t *ret_assoc_id,
			  uint8_t *ret_priority, const uint8_t **ret_block, size_t *ret_block_len);
/* HEADERS and SYN_REPLY share this layout. */
int spdy_parse_headers(const SpdyFrame *f, uint32_t *ret_id, const uint8_t **ret_block,
		       size_t *ret_block_len);
/* Status 0 is invalid; unknown non-zero statuses are passed on. */
int spdy_parse_rst_stream(const SpdyFrame *f, uint32_t *ret_id, uint32_t *ret_status);
int spdy_parse_ping(const SpdyFrame *f, uint32_t *ret_id);
int spdy_parse_goaway(const SpdyFrame *f, uint32_t *ret_last_good_id, uint32_t *ret_status);
/* Stream 0 is the session window (SPDY/3.1).  The delta is 1..2^31-1. */
int spdy_parse_window_update(const SpdyFrame *f, uint32_t *ret_id, uint32_t *ret_delta);
/*
 * *ret_initial_window is the INITIAL_WINDOW_SIZE entry (the last one, when
 * repeated), or -1 when absent.  The entry count must match the length; a
 * window past 2^31-1 is -EPROTO.
 */
int spdy_parse_settings(const SpdyFrame *f, int64_t *ret_initial_window);

/* Header blocks. */
typedef struct SpdyHeader {
	char *name;
	char *value;
} SpdyHeader;

typedef struct SpdyHeaders {
	SpdyHeader *v;
	size_t n;
} SpdyHeaders;

/* Releases the contents of h and zeroes it; a second call is harmless. */
void spdy_headers_done(SpdyHeaders *h);
/*
 * The value of the header called name, or NULL.  SPDY joins the values of a
 * repeated header with NUL inside one value, so as a C string this is the
 * first of them.
 */
const char *spdy_headers_get(const SpdyHeaders *h, const char *name);

/*
 * One zlib stream per direction per session: it carries its history across
 * frames, so blocks must go through it in the order they are on the wire.
 * Once a call on it has failed it stays failed (-EPROTO).
 */
typedef struct SpdyZ SpdyZ;
SpdyZ *spdy_inflater_new(void);
SpdyZ *spdy_deflater_new(void);
/* Accepts NULL; returns NULL. */
SpdyZ *spdy_z_free(SpdyZ *z);

/*
 * Inflates a header block through z and parses it.  The decompressed block
 * may be at most max_bytes long (-EMSGSIZE beyond, before more is
 * allocated); counts and lengths past the data, empty or duplicate names,
 * names outside lowercase printable ASCII, values with an empty
 * NUL-separated part, trailing bytes, and corrupt zlib data are -EPROTO.
 */
int spdy_headers_decode(SpdyZ *z, const uint8_t *block, size_t len, size_t max_bytes,
			SpdyHeaders *ret);
/*
 * Serializes h[0..n) and deflates it through z with a sync flush, so the
 * peer can decode it at once.  -EINVAL for a name that decode would refuse,
 * or when z is not a working deflater; -EMSGSIZE past 8 MiB serialized
 * (what always fits one frame once compressed).  A refusal leaves z as it
 * was.
 */
int spdy_headers_encode(SpdyZ *z, const SpdyHeader *h, size_t n, uint8_t **ret, size_t *ret_len);

/*
 * Frame builders: a malloc'd complete frame, its size in *ret_len.  Stream
 * IDs and windows must be at most 2^31-1 and data at most 2^24-1 bytes
 * (streamd sends chunks of 16 KiB or less); anything else is a bug in
 * streamd and aborts.
 */
uint8_t *spdy_build_data(uint32_t id, uint8_t flags, const void *data, size_t len, size_t *ret_len);
/* NULL when the headers cannot be encoded (see spdy_headers_encode) or do not fit a frame. */
uint8_t *spdy_build_syn_reply(SpdyZ *z, uint32_t id, uint8_t flags, const SpdyHeader *h, size_t n,
			      size_t *ret_len);
uint8_t *spdy_build_rst_stream(uint32_t id, uint32_t status, size_t *ret_len);
uint8_t *spdy_build_ping(uint32_t id, size_t *ret_len);
uint8_t *spdy_build_goaway(uint32_t last_good_id, uint32_t status, size_t *ret_len);
uint8_t *spdy_build_window_update(uint32_t id, uint32_t delta, size_t *ret_len);
uint8_t *spdy_build_settings_initial_window(uint32_t window, size_t *ret_len);

#endif
