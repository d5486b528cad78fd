/*
 * streamd.h - crisp-streamd: the streaming server for exec, attach, port-forward.
 *
 * Parts:
 *   tokens.c     the requests criapi registered, by single-use token
 *   work.c       what a session needs from the privileged daemons, handed
 *                to criapi through a long poll, and the fds that come back
 *   http.c       the HTTP server (libmicrohttpd): URLs, protocol choice,
 *                the upgrade, the cap on sessions
 *   conn.c       one upgraded connection: SPDY/3.1 or WebSocket framing
 *                under numbered channels, flow control, the idle timeout
 *   remotecommand.c  exec and attach over a connection
 *   portforward.c    port-forward over a connection
 * streamd holds no privilege: everything it relays is an fd another daemon
 * opened and handed over.
 */
#ifndef CRISP_STREAMD_H
#define CRISP_STREAMD_H

#include "api.pb-c.h"
#include "backend.h"
#include "error.h"
#include "internal.pb-c.h"
#include "sandbox.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

extern const CrispProfile streamd_profile;

typedef enum StreamKind {
	STREAM_EXEC = 1,
	STREAM_ATTACH = 2,
	STREAM_PORT_FORWARD = 3,
} StreamKind;

/* --- tokens.c --- */

/* A registered request: one of exec/attach/port_forward is set. */
typedef struct StreamRequest {
	StreamKind kind;
	Runtime__V1__ExecRequest *exec;
	Runtime__V1__AttachRequest *attach;
	Runtime__V1__PortForwardRequest *port_forward;
} StreamRequest;

#define STREAMD_TOKEN_TTL_MS 60000
#define STREAMD_TOKEN_LEN 32 /* lowercase hex */

/* Registers a copy of msg; ret_token gets the new token. */
int streamd_token_add(StreamKind kind, const ProtobufCMessage *msg,
		      char ret_token[static STREAMD_TOKEN_LEN + 1], CrispError **err);
/* Takes the request a token names (it is gone afterwards); -ENOENT when unknown or expired. */
int streamd_token_take(StreamKind kind, const char *token, StreamRequest *ret);
void streamd_request_done(StreamRequest *r);

/* --- work.c --- */

typedef struct StreamWorkResult {
	int fds[4];
	size_t n_fds;
	Crisp__ContainerAttachReply attach; /* for ATTACH */
} StreamWorkResult;

/*
 * Has criapi do q (its session field is set here) and waits up to
 * timeout_ms for the outcome: 0 with the fds in *ret, or a negative errno
 * with *err (the daemon's own message when it refused).
 */
int streamd_work_run(Crisp__StreamWorkReply *q, int timeout_ms, StreamWorkResult *ret,
		     CrispError **err);
void streamd_work_result_done(StreamWorkResult *r);
int streamd_work_wait(CrispRequest *req, void *userdata, CrispError **err);
int streamd_work_done(CrispRequest *req, void *userdata, CrispError **err);

/* --- http.c --- */

typedef struct StreamdServer StreamdServer;

/* The certificate and key, PEM, read before the sandbox (NULL: plain HTTP). */
typedef struct StreamdTls {
	char *cert, *key;
} StreamdTls;

int streamd_http_read_tls(const CrispConfig *config, StreamdTls *ret, CrispError **err);
/* Takes tls's buffers (and clears tls), also on failure. */
int streamd_http_start(const CrispConfig *config, StreamdTls *tls, StreamdServer **ret,
		       CrispError **err);
void streamd_http_stop(StreamdServer *s);
/* "http://127.0.0.1:39153" (no trailing slash). */
const char *streamd_http_base_url(const StreamdServer *s);

/* --- conn.c --- */

typedef enum ConnProtocol {
	CONN_SPDY,
	CONN_WEBSOCKET,
} ConnProtocol;

typedef struct Conn Conn;

/* What the application learns from the connection (conn_poll's events). */
typedef enum ConnEventKind {
	CONN_EV_NONE,
	CONN_EV_OPEN,  /* SPDY: a stream opened; headers in ev->headers (channel assigned) */
	CONN_EV_DATA,  /* data on a channel */
	CONN_EV_FIN,   /* the client will send no more on a channel */
	CONN_EV_RESET, /* the client reset a channel's stream */
	CONN_EV_CLOSED /* the connection is gone (or must go: protocol error, idle) */
} ConnEventKind;

typedef struct ConnEvent {
	ConnEventKind kind;
	int channel;
	const uint8_t *data;
	size_t len;
	/* CONN_EV_OPEN: the SPDY stream's headers */
	const char *streamtype, *port, *requestid;
	uint32_t stream_id;
	bool fin; /* the stream opened half-closed */
} ConnEvent;

#define CONN_MAX_CHANNELS 256

/* How a WebSocket subprotocol frames its channels. */
enum {
	CONN_WS_BASE64 = 1 << 0,       /* text messages, a channel digit and base64 */
	CONN_WS_CLOSE_SIGNAL = 1 << 1, /* v5: the message [255, c] ends channel c */
};

/*
 * Wraps an upgraded socket (extra: bytes the HTTP server read past the
 * request).  ws_flags: CONN_WS_*.  idle_ms: the connection closes after
 * this long with no traffic either way.
 */
Conn *conn_new(int sock, ConnProtocol proto, unsigned ws_flags, const uint8_t *extra,
	       size_t extra_len, int64_t idle_ms);
void conn_free(Conn *c);
/* SPDY: accepts an opened stream as a channel (SYN_REPLY), or refuses it (RST). */
void conn_accept_stream(Conn *c, uint32_t stream_id, int channel);
void conn_refuse_stream(Conn *c, uint32_t stream_id);
bool conn_has_channel(Conn *c, int channel);
/* False once the channel was finished or reset: its data has nowhere to go. */
bool conn_can_send(Conn *c, int channel);
/*
 * Bytes the client will take on a channel now: room in the output buffer,
 * and over SPDY the client's send windows if it keeps them (conn.c, "Flow
 * control").  0 when nothing may be sent.
 */
size_t conn_room(Conn *c, int channel);
/* Queues data on a channel (len ≤ conn_room), or the end of it (FIN). */
void conn_send(Conn *c, int channel, const void *data, size_t len);
void conn_send_fin(Conn *c, int channel);
/* Tells the client data it sent on a channel was consumed (SPDY WINDOW_UPDATE). */
void conn_consumed(Conn *c, int channel, size_t len);
/*
 * Waits for the next event: up to timeout_ms, also watching extra pollfds
 * of the application (their revents are filled in).  Sends queued output
 * meanwhile.  Returns CONN_EV_NONE on timeout or when only extra fds woke.
 */
void conn_poll(Conn *c, struct pollfd *extra, size_t n_extra, int timeout_ms, ConnEvent *ev);
/* Stops (and resumes) reading from the client while the application cannot take more. */
void conn_pause_input(Conn *c, bool pause);
/* Sends what is queued and closes (SPDY GOAWAY; WebSocket close frame). */
void conn_finish(Conn *c);
bool conn_is_closed(Conn *c);

/* --- remotecommand.c, portforward.c --- */

/* The protocols a session was upgraded to, from the HTTP request. */
typedef struct SessionSetup {
	ConnProtocol proto;
	const char *subprotocol;	  /* "v4.channel.k8s.io", "portforward.k8s.io", ... */
	unsigned ws_flags;		  /* CONN_WS_* */
	int ports[CONN_MAX_CHANNELS / 2]; /* WebSocket port-forward: ?port= values */
	size_t n_ports;
	int64_t idle_ms;
} SessionSetup;

/* Each runs a whole session on its own thread and frees req. */
void streamd_remotecommand_run(Conn *c, const SessionSetup *setup, StreamRequest *req);
void streamd_portforward_run(Conn *c, const SessionSetup *setup, StreamRequest *req);

#endif
