/*
 * conn.c - one upgraded connection: SPDY/3.1 or WebSocket framing under
 * numbered channels.
 *
 * The applications (remotecommand.c, portforward.c) speak in channels, the
 * numbers the WebSocket protocols give them (0 stdin, 1 stdout, 2 stderr,
 * 3 error, 4 resize; port-forward 2i data and 2i+1 error); over SPDY each
 * channel is a stream the client opened and the application accepted.
 *
 * Everything runs on the session's thread: conn_poll reads and parses the
 * client's frames into events, answers PINGs and WebSocket control frames,
 * and writes queued output while waiting.
 *
 * Flow control.  The application asks conn_room before it reads from its
 * fds, so output is bounded by our buffer and, over SPDY, by the client's
 * stream and session windows.  But the SPDY library Kubernetes' clients use
 * (kubectl, client-go, the API server) never sends a WINDOW_UPDATE, and the
 * servers it talks to never wait for one.  So a client's windows bind us
 * only once it shows it keeps them (a WINDOW_UPDATE or a SETTINGS frame);
 * one that lets a window run out and stays silent for CONN_WINDOW_GRACE_MS
 * is taken not to count, and from then on only the buffer and TCP hold us
 * back.  The other way, we return window
 * to the client as the application consumes its data, for clients that
 * count, but we do not hold a client to it: the application stops reading
 * from the client (conn_pause_input) while its own buffer is full, and TCP
 * holds the client back.  WebSocket has only that.
 * A frame that breaks the protocol, or one larger than CONN_MAX_FRAME,
 * closes the connection (GOAWAY PROTOCOL_ERROR, or close code 1002/1009).
 */
#include "streamd.h"

#include "log.h"
#include "spdy.h"
#include "websocket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#define CONN_MAX_FRAME (1u << 20)    /* payload of one frame from the client */
#define CONN_MAX_HEADERS (64u << 10) /* a decompressed SPDY header block */
#define CONN_OUT_MAX (1u << 20)	     /* queued output before the room is 0 */
#define CONN_CHUNK (16u << 10)	     /* data per frame we send */
#define CONN_FLUSH_MS 5000
#define CONN_WINDOW_GRACE_MS 250 /* see "Flow control" above */
#define WS_CLOSE_SIGNAL_CHANNEL 255

typedef struct Channel {
	bool used;
	uint32_t stream_id;
	int64_t send_window; /* SPDY: what the client lets us send on it */
	bool fin_received, fin_sent;
} Channel;

struct Conn {
	int sock;
	ConnProtocol proto;
	bool ws_base64;
	bool ws_close_signal;
	bool closed;
	bool paused; /* not reading from the client */
	int64_t idle_ms, last_activity;

	uint8_t *in;
	size_t in_len, in_pos;
	uint8_t *out; /* [out_pos, out_len) waits to be sent; out_cap allocated */
	size_t out_len, out_pos, out_cap;

	/* SPDY */
	SpdyZ *inflater, *deflater;
	int64_t session_send_window;
	int64_t initial_send_window;
	bool client_counts;    /* it sent WINDOW_UPDATE or SETTINGS: its windows bind us */
	bool windowless;       /* it let a window run out and said nothing: they do not */
	int64_t stalled_since; /* when a window ran out while neither was known */
	uint32_t last_stream_id;
	bool opened_fin; /* the last SYN_STREAM came with FIN */
	int fin_pending; /* a DATA frame's FIN, reported after its data (channel or -1) */
	Channel ch[CONN_MAX_CHANNELS];
	SpdyHeaders headers; /* of the last CONN_EV_OPEN */

	/* WebSocket: a fragmented message being put together, and the last decoded one */
	uint8_t *ws_msg;
	size_t ws_msg_len;
	uint8_t ws_msg_op;
	uint8_t *decoded;
};

static void queue_out(Conn *c, const void *data, size_t len)
{
	/*
	 * What was sent goes once it is at least half the buffer (so moving the
	 * rest costs no more than sending it did): a client that never quite
	 * catches up must not make the buffer hold the whole session.
	 */
	if (c->out_pos && c->out_pos >= c->out_len - c->out_pos) {
		memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
		c->out_len -= c->out_pos;
		c->out_pos = 0;
	}
	if (c->out_len + len > c->out_cap) {
		c->out_cap = c->out_len + len > 2 * c->out_cap ? c->out_len + len : 2 * c->out_cap;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

static void queue_frame(Conn *c, uint8_t *frame, size_t len)
{
	queue_out(c, frame, len);
	free(frame);
}

Conn *conn_new(int sock, ConnProtocol proto, unsigned ws_flags, const uint8_t *extra,
	       size_t extra_len, int64_t idle_ms)
{
	Conn *c = xcalloc(1, sizeof(*c));
	c->sock = sock;
	c->proto = proto;
	c->ws_base64 = ws_flags & CONN_WS_BASE64;
	c->ws_close_signal = ws_flags & CONN_WS_CLOSE_SIGNAL;
	c->idle_ms = idle_ms;
	c->last_activity = crisp_now_ms();
	c->in = xmalloc(CONN_MAX_FRAME + 64);
	if (extra_len > CONN_MAX_FRAME + 64)
		extra_len = CONN_MAX_FRAME + 64; /* cannot happen: the HTTP server reads less */
	memcpy(c->in, extra, extra_len);
	c->in_len = extra_len;
	c->fin_pending = -1;
	c->initial_send_window = SPDY_DEFAULT_WINDOW;
	c->session_send_window = SPDY_DEFAULT_WINDOW;
	int fl = fcntl(sock, F_GETFL);
	if (fl >= 0)
		(void)fcntl(sock, F_SETFL, fl | O_NONBLOCK);
	if (proto == CONN_SPDY) {
		c->inflater = spdy_inflater_new();
		c->deflater = spdy_deflater_new();
	}
	return c;
}

void conn_free(Conn *c)
{
	if (!c)
		return;
	spdy_z_free(c->inflater);
	spdy_z_free(c->deflater);
	spdy_headers_done(&c->headers);
	free(c->in);
	free(c->out);
	free(c->ws_msg);
	free(c->decoded);
	free(c);
}

void conn_pause_input(Conn *c, bool pause)
{
	c->paused = pause;
}

bool conn_is_closed(Conn *c)
{
	return c->closed;
}

static Channel *by_stream(Conn *c, uint32_t id, int *ret_channel)
{
	for (int i = 0; i < CONN_MAX_CHANNELS; i++)
		if (c->ch[i].used && c->ch[i].stream_id == id) {
			if (ret_channel)
				*ret_channel = i;
			return &c->ch[i];
		}
	return NULL;
}

bool conn_has_channel(Conn *c, int channel)
{
	if (channel < 0 || channel >= CONN_MAX_CHANNELS)
		return false;
	return c->proto == CONN_WEBSOCKET || c->ch[channel].used;
}

static void fail(Conn *c, const char *why, uint32_t status)
{
	size_t len;
	if (c->closed)
		return;
	log_info("streaming connection closed: %s", why);
	if (c->proto == CONN_SPDY) {
		uint8_t *frame = spdy_build_goaway(c->last_stream_id, status, &len);
		queue_frame(c, frame, len);
	} else {
		uint16_t code = status == SPDY_GOAWAY_PROTOCOL_ERROR ? 1002 : 1009;
		uint8_t *frame = ws_build_close(code, why, &len);
		queue_frame(c, frame, len);
	}
	c->closed = true;
}

void conn_accept_stream(Conn *c, uint32_t stream_id, int channel)
{
	size_t len;
	Channel *ch = &c->ch[channel];
	*ch = (Channel){ .used = true,
			 .fin_received = c->opened_fin && c->last_stream_id == stream_id,
			 .stream_id = stream_id,
			 .send_window = c->initial_send_window };
	uint8_t *frame = spdy_build_syn_reply(c->deflater, stream_id, 0, NULL, 0, &len);
	queue_frame(c, frame, len);
}

void conn_refuse_stream(Conn *c, uint32_t stream_id)
{
	size_t len;
	uint8_t *frame = spdy_build_rst_stream(stream_id, SPDY_RST_REFUSED_STREAM, &len);
	queue_frame(c, frame, len);
}

bool conn_can_send(Conn *c, int channel)
{
	if (c->closed)
		return false;
	if (c->proto == CONN_WEBSOCKET)
		return true;
	return c->ch[channel].used && !c->ch[channel].fin_sent;
}

/* Whether a send window of w lets us send (see "Flow control" above). */
static bool window_open(Conn *c, int64_t w)
{
	if (w > 0 || c->windowless)
		return true;
	if (c->client_counts)
		return false;
	int64_t now = crisp_now_ms();
	if (!c->stalled_since)
		c->stalled_since = now;
	if (now - c->stalled_since < CONN_WINDOW_GRACE_MS)
		return false;
	log_debug("streaming client sends no WINDOW_UPDATE: its windows are not kept");
	c->windowless = true;
	return true;
}

size_t conn_room(Conn *c, int channel)
{
	if (c->closed || c->out_len - c->out_pos >= CONN_OUT_MAX)
		return 0;
	size_t room = CONN_OUT_MAX - (c->out_len - c->out_pos);
	if (c->proto == CONN_WEBSOCKET)
		return room;
	Channel *ch = &c->ch[channel];
	if (!ch->used || ch->fin_sent)
		return 0;
	int64_t w =
		ch->send_window < c->session_send_window ? ch->send_window : c->session_send_window;
	if (!window_open(c, w))
		return 0;
	return w > 0 && (size_t)w < room && !c->windowless ? (size_t)w : room;
}

static void ws_send_message(Conn *c, int channel, const uint8_t *data, size_t len)
{
	size_t flen;
	if (c->ws_base64) {
		size_t blen;
		_cleanup_free_ char *b = ws_base64_encode(data, len, &blen);
		_cleanup_free_ uint8_t *msg = xmalloc(blen + 1);
		msg[0] = (uint8_t)('0' + channel);
		memcpy(msg + 1, b, blen);
		uint8_t *frame = ws_build_frame(WS_OP_TEXT, msg, blen + 1, &flen);
		queue_frame(c, frame, flen);
	} else {
		_cleanup_free_ uint8_t *msg = xmalloc(len + 1);
		msg[0] = (uint8_t)channel;
		if (len)
			memcpy(msg + 1, data, len);
		uint8_t *frame = ws_build_frame(WS_OP_BINARY, msg, len + 1, &flen);
		queue_frame(c, frame, flen);
	}
}

void conn_send(Conn *c, int channel, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (c->closed)
		return;
	if (c->proto == CONN_WEBSOCKET) {
		/* Port-forward and the ready signal send empty messages too. */
		do {
			size_t k = len < CONN_CHUNK ? len : CONN_CHUNK;
			ws_send_message(c, channel, p, k);
			p += k;
			len -= k;
		} while (len);
		return;
	}
	Channel *ch = &c->ch[channel];
	if (!ch->used || ch->fin_sent)
		return;
	while (len) {
		size_t k = len < CONN_CHUNK ? len : CONN_CHUNK, flen;
		uint8_t *frame = spdy_build_data(ch->stream_id, 0, p, k, &flen);
		queue_frame(c, frame, flen);
		ch->send_window -= (int64_t)k;
		c->session_send_window -= (int64_t)k;
		p += k;
		len -= k;
	}
}

void conn_send_fin(Conn *c, int channel)
{
	size_t len;
	if (c->closed || c->proto == CONN_WEBSOCKET)
		return;
	Channel *ch = &c->ch[channel];
	if (!ch->used || ch->fin_sent)
		return;
	ch->fin_sent = true;
	uint8_t *frame = spdy_build_data(ch->stream_id, SPDY_FLAG_FIN, NULL, 0, &len);
	queue_frame(c, frame, len);
}

void conn_consumed(Conn *c, int channel, size_t len)
{
	size_t flen;
	if (c->closed || c->proto == CONN_WEBSOCKET || !len)
		return;
	Channel *ch = &c->ch[channel];
	uint8_t *frame = spdy_build_window_update(0, (uint32_t)len, &flen);
	queue_frame(c, frame, flen);
	if (ch->used && !ch->fin_received) {
		frame = spdy_build_window_update(ch->stream_id, (uint32_t)len, &flen);
		queue_frame(c, frame, flen);
	}
}

/* --- SPDY input --- */

static void spdy_control(Conn *c, const SpdyFrame *f, ConnEvent *ev)
{
	uint32_t id, x;
	size_t len;
	const uint8_t *block;
	size_t block_len;
	int ch_index;
	Channel *ch;

	switch (f->type) {
	case SPDY_SYN_STREAM: {
		uint32_t assoc;
		uint8_t prio;
		if (spdy_parse_syn_stream(f, &id, &assoc, &prio, &block, &block_len) < 0)
			return fail(c, "malformed SYN_STREAM", SPDY_GOAWAY_PROTOCOL_ERROR);
		spdy_headers_done(&c->headers);
		int r = spdy_headers_decode(c->inflater, block, block_len, CONN_MAX_HEADERS,
					    &c->headers);
		if (r < 0)
			return fail(c, "a SYN_STREAM's headers do not decode",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		if (!(id & 1) || id <= c->last_stream_id)
			return fail(c, "a SYN_STREAM with a stream ID out of order",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		c->last_stream_id = id;
		c->opened_fin = f->flags & SPDY_FLAG_FIN;
		ev->kind = CONN_EV_OPEN;
		ev->stream_id = id;
		ev->streamtype = spdy_headers_get(&c->headers, "streamtype");
		ev->port = spdy_headers_get(&c->headers, "port");
		ev->requestid = spdy_headers_get(&c->headers, "requestid");
		ev->fin = f->flags & SPDY_FLAG_FIN;
		return;
	}
	case SPDY_SYN_REPLY:
	case SPDY_HEADERS: {
		/* Decoded all the same: the compression context must stay in step. */
		SpdyHeaders h = { 0 };
		if (spdy_parse_headers(f, &id, &block, &block_len) < 0 ||
		    spdy_headers_decode(c->inflater, block, block_len, CONN_MAX_HEADERS, &h) < 0)
			return fail(c, "malformed HEADERS", SPDY_GOAWAY_PROTOCOL_ERROR);
		spdy_headers_done(&h);
		if (f->type == SPDY_SYN_REPLY) { /* we open no streams */
			uint8_t *frame = spdy_build_rst_stream(id, SPDY_RST_PROTOCOL_ERROR, &len);
			queue_frame(c, frame, len);
		}
		return;
	}
	case SPDY_RST_STREAM:
		if (spdy_parse_rst_stream(f, &id, &x) < 0)
			return fail(c, "malformed RST_STREAM", SPDY_GOAWAY_PROTOCOL_ERROR);
		ch = by_stream(c, id, &ch_index);
		if (ch) {
			ch->fin_received = ch->fin_sent = true;
			ev->kind = CONN_EV_RESET;
			ev->channel = ch_index;
		}
		return;
	case SPDY_SETTINGS: {
		int64_t w;
		if (spdy_parse_settings(f, &w) < 0)
			return fail(c, "malformed SETTINGS", SPDY_GOAWAY_PROTOCOL_ERROR);
		if (w >= 0) {
			c->client_counts = true;
			for (int i = 0; i < CONN_MAX_CHANNELS; i++)
				if (c->ch[i].used)
					c->ch[i].send_window += w - c->initial_send_window;
			c->initial_send_window = w;
		}
		return;
	}
	case SPDY_PING:
		if (spdy_parse_ping(f, &id) < 0)
			return fail(c, "malformed PING", SPDY_GOAWAY_PROTOCOL_ERROR);
		if (id & 1) { /* the client's: echo it; even IDs would be answers to ours */
			uint8_t *frame = spdy_build_ping(id, &len);
			queue_frame(c, frame, len);
		}
		return;
	case SPDY_GOAWAY:
		c->closed = true;
		ev->kind = CONN_EV_CLOSED;
		return;
	case SPDY_WINDOW_UPDATE:
		if (spdy_parse_window_update(f, &id, &x) < 0)
			return fail(c, "malformed WINDOW_UPDATE", SPDY_GOAWAY_PROTOCOL_ERROR);
		c->client_counts = true;
		if (id == 0) {
			c->session_send_window += x;
			if (c->session_send_window > INT32_MAX)
				return fail(c, "the session window overflowed",
					    SPDY_GOAWAY_PROTOCOL_ERROR);
		} else if ((ch = by_stream(c, id, NULL))) {
			ch->send_window += x;
			if (ch->send_window > INT32_MAX) {
				ch->fin_sent = ch->fin_received = true;
				uint8_t *frame = spdy_build_rst_stream(
					id, SPDY_RST_FLOW_CONTROL_ERROR, &len);
				queue_frame(c, frame, len);
			}
		}
		return;
	default:
		return; /* SPDY/3.1 says: ignore control frames of unknown types */
	}
}

static void spdy_data(Conn *c, const SpdyFrame *f, ConnEvent *ev)
{
	size_t len;
	int index;
	Channel *ch = by_stream(c, f->stream_id, &index);
	if (!ch || ch->fin_received) {
		uint8_t *frame = spdy_build_rst_stream(
			f->stream_id, ch ? SPDY_RST_STREAM_ALREADY_CLOSED : SPDY_RST_INVALID_STREAM,
			&len);
		queue_frame(c, frame, len);
		/* Still counted against the session: grant it back at once. */
		if (f->len) {
			frame = spdy_build_window_update(0, (uint32_t)f->len, &len);
			queue_frame(c, frame, len);
		}
		return;
	}
	if (f->flags & SPDY_FLAG_FIN) {
		ch->fin_received = true;
		c->fin_pending = index;
	}
	if (f->len) {
		ev->kind = CONN_EV_DATA;
		ev->channel = index;
		ev->data = f->data;
		ev->len = f->len;
	} else if (c->fin_pending >= 0) {
		ev->kind = CONN_EV_FIN;
		ev->channel = index;
		c->fin_pending = -1;
	}
}

static void parse_spdy(Conn *c, ConnEvent *ev)
{
	SpdyFrame f;
	ssize_t n = spdy_parse_frame(c->in + c->in_pos, c->in_len - c->in_pos, CONN_MAX_FRAME, &f);
	if (n == 0)
		return;
	if (n == -EMSGSIZE)
		return fail(c, "a frame larger than 1 MiB", SPDY_GOAWAY_PROTOCOL_ERROR);
	if (n < 0)
		return fail(c, "a malformed frame", SPDY_GOAWAY_PROTOCOL_ERROR);
	c->in_pos += (size_t)n;
	if (f.control)
		spdy_control(c, &f, ev);
	else
		spdy_data(c, &f, ev);
}

/* --- WebSocket input --- */

static void ws_message(Conn *c, uint8_t op, uint8_t *data, size_t len, ConnEvent *ev)
{
	if (len == 0)
		return; /* no channel: nothing to deliver */
	int channel;
	free(c->decoded);
	c->decoded = NULL;
	if (op == WS_OP_TEXT) {
		if (!c->ws_base64)
			return fail(c, "a text message on a binary protocol",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		if (data[0] < '0' || data[0] > '9')
			return fail(c, "a message with no channel digit",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		channel = data[0] - '0';
		size_t dlen;
		if (ws_base64_decode((const char *)data + 1, len - 1, &c->decoded, &dlen) < 0)
			return fail(c, "a message that is not base64", SPDY_GOAWAY_PROTOCOL_ERROR);
		data = c->decoded;
		len = dlen;
	} else {
		if (c->ws_base64)
			return fail(c, "a binary message on the base64 protocol",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		channel = data[0];
		data++;
		len--;
		if (channel == WS_CLOSE_SIGNAL_CHANNEL && c->ws_close_signal) {
			if (len != 1)
				return fail(c, "a close signal that names no one channel",
					    SPDY_GOAWAY_PROTOCOL_ERROR);
			ev->kind = CONN_EV_FIN;
			ev->channel = data[0];
			return;
		}
	}
	if (len == 0)
		return;
	ev->kind = CONN_EV_DATA;
	ev->channel = channel;
	ev->data = data;
	ev->len = len;
}

static void parse_ws(Conn *c, ConnEvent *ev)
{
	WsFrame f;
	size_t len;
	ssize_t n = ws_parse_frame(c->in + c->in_pos, c->in_len - c->in_pos, CONN_MAX_FRAME, &f);
	if (n == 0)
		return;
	if (n == -EMSGSIZE)
		return fail(c, "a frame larger than 1 MiB", 0);
	if (n < 0)
		return fail(c, "a malformed frame", SPDY_GOAWAY_PROTOCOL_ERROR);
	c->in_pos += (size_t)n;
	switch (f.opcode) {
	case WS_OP_PING: {
		uint8_t *frame = ws_build_frame(WS_OP_PONG, f.payload, f.len, &len);
		queue_frame(c, frame, len);
	}
		return;
	case WS_OP_PONG:
		return;
	case WS_OP_CLOSE: {
		uint8_t *frame = ws_build_close(1000, "", &len);
		queue_frame(c, frame, len);
	}
		c->closed = true;
		ev->kind = CONN_EV_CLOSED;
		return;
	case WS_OP_CONT:
		if (!c->ws_msg_op)
			return fail(c, "a continuation with no message",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		if (c->ws_msg_len + f.len > CONN_MAX_FRAME)
			return fail(c, "a message larger than 1 MiB", 0);
		c->ws_msg = xrealloc(c->ws_msg, c->ws_msg_len + f.len + 1);
		memcpy(c->ws_msg + c->ws_msg_len, f.payload, f.len);
		c->ws_msg_len += f.len;
		if (f.fin) {
			uint8_t op = c->ws_msg_op;
			c->ws_msg_op = 0;
			/* ws_msg stays allocated until the next message: the event points into it */
			ws_message(c, op, c->ws_msg, c->ws_msg_len, ev);
			c->ws_msg_len = 0;
		}
		return;
	default: /* TEXT, BINARY */
		if (c->ws_msg_op)
			return fail(c, "a new message inside a fragmented one",
				    SPDY_GOAWAY_PROTOCOL_ERROR);
		if (!f.fin) {
			c->ws_msg_op = f.opcode;
			c->ws_msg = xrealloc(c->ws_msg, f.len + 1);
			memcpy(c->ws_msg, f.payload, f.len);
			c->ws_msg_len = f.len;
			return;
		}
		ws_message(c, f.opcode, f.payload, f.len, ev);
		return;
	}
}

/* --- the loop --- */

static void flush_some(Conn *c)
{
	while (c->out_pos < c->out_len) {
		ssize_t k = send(c->sock, c->out + c->out_pos, c->out_len - c->out_pos,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (k <= 0) {
			c->closed = true;
			c->out_pos = c->out_len = 0;
			return;
		}
		c->out_pos += (size_t)k;
		c->last_activity = crisp_now_ms();
	}
	c->out_pos = c->out_len = 0;
}

static void parse_one(Conn *c, ConnEvent *ev)
{
	if (c->fin_pending >= 0) {
		ev->kind = CONN_EV_FIN;
		ev->channel = c->fin_pending;
		c->fin_pending = -1;
		return;
	}
	if (c->proto == CONN_SPDY)
		parse_spdy(c, ev);
	else
		parse_ws(c, ev);
}

void conn_poll(Conn *c, struct pollfd *extra, size_t n_extra, int timeout_ms, ConnEvent *ev)
{
	*ev = (ConnEvent){ .kind = CONN_EV_NONE, .channel = -1 };
	for (size_t i = 0; i < n_extra; i++)
		extra[i].revents = 0;
	if (c->closed) {
		ev->kind = CONN_EV_CLOSED;
		return;
	}
	/* Frames already read come first; a frame's event points into c->in until the next call. */
	size_t before = c->in_pos;
	if (!c->paused)
		parse_one(c, ev);
	if (ev->kind != CONN_EV_NONE || c->closed || c->in_pos != before) {
		if (c->closed)
			ev->kind = CONN_EV_CLOSED;
		return;
	}
	/* Nothing complete: keep the partial frame at the start of the buffer. */
	if (c->in_pos) {
		memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
		c->in_len -= c->in_pos;
		c->in_pos = 0;
	}

	int64_t now = crisp_now_ms();
	int64_t idle_left = c->last_activity + c->idle_ms - now;
	if (idle_left <= 0) {
		log_info("streaming connection idle for %lld s: closing it",
			 (long long)(c->idle_ms / 1000));
		c->closed = true;
		ev->kind = CONN_EV_CLOSED;
		return;
	}
	if (timeout_ms < 0 || idle_left < timeout_ms)
		timeout_ms = (int)(idle_left > INT32_MAX ? INT32_MAX : idle_left);
	if (c->stalled_since && !c->client_counts && !c->windowless) {
		/* Wake when the grace ends, so the application asks conn_room again. */
		int64_t grace_left = c->stalled_since + CONN_WINDOW_GRACE_MS - now;
		int wake = grace_left > 0 ? (int)grace_left + 1 : 0;
		if (wake < timeout_ms)
			timeout_ms = wake;
	}

	struct pollfd p[1 + 16];
	size_t n = 0;
	short want = (short)((c->paused ? 0 : POLLIN) | (c->out_pos < c->out_len ? POLLOUT : 0));
	p[n++] = (struct pollfd){ .fd = c->sock, .events = want };
	for (size_t i = 0; i < n_extra && i < 16; i++)
		p[n++] = extra[i];
	int r = poll(p, n, timeout_ms);
	if (r < 0)
		return; /* EINTR: the caller polls again */
	for (size_t i = 0; i < n_extra && i < 16; i++)
		extra[i].revents = p[1 + i].revents;
	if (p[0].revents & POLLOUT)
		flush_some(c);
	if (!c->paused && (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t k = recv(c->sock, c->in + c->in_len, CONN_MAX_FRAME + 64 - c->in_len,
				 MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
			c->closed = true;
			ev->kind = CONN_EV_CLOSED;
			return;
		}
		if (k > 0) {
			c->in_len += (size_t)k;
			c->last_activity = crisp_now_ms();
			parse_one(c, ev);
			if (c->closed)
				ev->kind = CONN_EV_CLOSED;
		}
	}
	if (c->out_pos < c->out_len && !c->closed)
		flush_some(c);
}

void conn_finish(Conn *c)
{
	size_t len;
	if (!c->closed) {
		if (c->proto == CONN_SPDY) {
			uint8_t *frame = spdy_build_goaway(c->last_stream_id, SPDY_GOAWAY_OK, &len);
			queue_frame(c, frame, len);
		} else {
			uint8_t *frame = ws_build_close(1000, "", &len);
			queue_frame(c, frame, len);
		}
	}
	int64_t until = crisp_now_ms() + CONN_FLUSH_MS;
	while (c->out_pos < c->out_len) {
		int64_t left = until - crisp_now_ms();
		struct pollfd p = { .fd = c->sock, .events = POLLOUT };
		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		size_t before = c->out_pos;
		flush_some(c);
		if (c->out_pos == before && c->out_len)
			break;
	}
	(void)shutdown(c->sock, SHUT_WR);
	c->closed = true;
}
