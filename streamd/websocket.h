/*
 * websocket.h - the server side of RFC 6455, the transport kubectl and the
 * API server use for exec, attach and port-forward besides SPDY, and strict
 * base64 for the base64.channel.k8s.io subprotocol.
 *
 * A pure codec: no I/O, no threads, no logging.  Frames come from an
 * untrusted client, so every length is checked against the buffer given,
 * nothing reads past it, and malformed input is an error: -EPROTO for a
 * frame that breaks RFC 6455 (the caller closes with 1002), -EMSGSIZE for
 * one over the caller's limit (close with 1009), -EINVAL for bad base64 or a
 * bad handshake key.
 */
#ifndef CRISP_STREAMD_WEBSOCKET_H
#define CRISP_STREAMD_WEBSOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa

/* Control frames (close, ping, pong) carry at most this much. */
#define WS_MAX_CONTROL_PAYLOAD 125

/* Close codes streamd sends (RFC 6455 section 7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL_ERROR 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_INVALID_DATA 1007
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL_ERROR 1011

/* Length of the Sec-WebSocket-Accept value, without its NUL. */
#define WS_ACCEPT_KEY_LEN 28

/*
 * Sec-WebSocket-Accept for the client's Sec-WebSocket-Key:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), NUL-terminated.
 * -EINVAL unless the key is 24 characters of base64 that decode to 16 bytes;
 * -EIO when libcrypto cannot hash.
 */
int ws_accept_key(const char *client_key, char ret[WS_ACCEPT_KEY_LEN + 1]);

typedef struct WsFrame {
	bool fin;
	uint8_t opcode;
	uint8_t *payload; /* unmasked, inside the caller's buffer */
	size_t len;
} WsFrame;

/*
 * Parses one client frame at the start of buf and unmasks its payload in
 * place.  Returns the frame's whole size once it is complete in buf (buf
 * is left untouched until then), 0 when more bytes are needed, -EMSGSIZE
 * when the declared length exceeds max_payload (known from the header, so
 * it is never buffered), and -EPROTO for RSV bits set, an unknown opcode,
 * an unmasked frame (clients must mask), a control frame that is
 * fragmented or longer than 125 bytes, a close frame with a 1-byte body,
 * or a 64-bit length with its top bit set.  Non-minimal length encodings
 * are accepted.  Text is not checked for UTF-8 and fragments are not
 * reassembled: both are the caller's.
 */
ssize_t ws_parse_frame(uint8_t *buf, size_t len, size_t max_payload, WsFrame *ret);

/*
 * A final, unmasked server frame (as servers must send), malloc'd, its size
 * in *ret_len.  An unknown opcode or a control payload over 125 bytes is a
 * bug in streamd and aborts.
 */
uint8_t *ws_build_frame(uint8_t opcode, const void *payload, size_t len, size_t *ret_len);
/*
 * A close frame with code and reason (NULL for none).  The reason is cut so
 * the payload stays within 125 bytes, at a UTF-8 character boundary.  Code 0
 * sends an empty body (no status).
 */
uint8_t *ws_build_close(uint16_t code, const char *reason, size_t *ret_len);

/*
 * Standard base64 with padding.  Encode returns a malloc'd NUL-terminated
 * string, its length in *ret_len (which may be NULL).  Decode is strict:
 * the length is a multiple of 4, only the standard alphabet, '=' only as
 * the final padding, and the unused bits before it zero; anything else is
 * -EINVAL.  *ret is malloc'd (non-NULL even when empty) and written only on
 * success.
 */
char *ws_base64_encode(const void *data, size_t len, size_t *ret_len);
int ws_base64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);

#endif
