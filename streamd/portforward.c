/*
 * portforward.c - port-forward over an upgraded connection.
 *
 * SPDY (portforward.k8s.io): for each connection it forwards, the client
 * opens an error stream and a data stream with the same "requestid" and
 * "port" headers; once both are there, criapi has netd dial the port on
 * localhost inside the pod's network namespace, and the socket netd hands
 * back is relayed to the data stream, half-closes included (a FIN from the
 * client shuts the socket's write side; the socket's EOF becomes our FIN).
 * A dial that fails is reported as text on that pair's error stream; the
 * session goes on serving other pairs.  A pair's channels are reused once
 * it is done, so a long kubectl port-forward is not capped by count, only
 * by how many pairs are open at once.
 *
 * WebSocket: the ports come from the URL's "port" parameters; the i-th
 * port has data channel 2i and error channel 2i+1, each of which first
 * carries the port number (2 bytes, little-endian), as the kubelet does.
 * The session ends when every port's connection has ended.
 */
#include "streamd.h"

#include "log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#define MAX_PAIRS (CONN_MAX_CHANNELS / 2)
#define DIAL_TIMEOUT_MS 30000
#define PENDING_MAX (256u << 10)
#define READ_CHUNK (32u << 10)

typedef struct Pair {
	bool used;
	char requestid[64];
	int port;
	bool have_data, have_error;
	bool dialed, failed;
	int fd;
	uint8_t *pending; /* client bytes not yet written to the socket */
	size_t pending_len;
	bool client_fin, pod_eof, done;
} Pair;

typedef struct PortForward {
	Conn *c;
	const char *pod_id;
	const Runtime__V1__PortForwardRequest *req;
	bool ws;
	Pair pairs[MAX_PAIRS];
} PortForward;

/*
 * Reading from the client stops while a pair has PENDING_MAX bytes the pod
 * has not taken yet: SPDY clients do not keep our windows (conn.c), so TCP
 * is what holds them back.  One slow pod connection holds back the others on
 * the session until it drains.
 */
static void hold_back_client(PortForward *pf)
{
	bool full = false;
	for (int k = 0; k < MAX_PAIRS && !full; k++)
		full = pf->pairs[k].used && pf->pairs[k].pending_len >= PENDING_MAX;
	conn_pause_input(pf->c, full);
}

static void pair_close(PortForward *pf, int k)
{
	Pair *p = &pf->pairs[k];
	safe_close(p->fd);
	free(p->pending);
	p->pending = NULL;
	p->pending_len = 0;
	conn_send_fin(pf->c, 2 * k);
	conn_send_fin(pf->c, 2 * k + 1);
	p->done = true;
	hold_back_client(pf);
}

static void pair_error(PortForward *pf, int k, const char *fmt, const char *detail)
{
	Pair *p = &pf->pairs[k];
	_cleanup_free_ char *msg = xasprintf("error forwarding port %d to pod %s: %s", p->port,
					     pf->pod_id, detail ? detail : fmt);
	if (conn_can_send(pf->c, 2 * k + 1))
		conn_send(pf->c, 2 * k + 1, msg, strlen(msg));
	p->failed = true;
	pair_close(pf, k);
}

static bool port_allowed(const PortForward *pf, int port)
{
	if (pf->req->n_port == 0)
		return true;
	for (size_t i = 0; i < pf->req->n_port; i++)
		if (pf->req->port[i] == port)
			return true;
	return false;
}

static void dial(PortForward *pf, int k)
{
	Pair *p = &pf->pairs[k];
	p->dialed = true;
	p->fd = -1;
	if (!port_allowed(pf, p->port)) {
		pair_error(pf, k, "the port was not in the PortForward request", NULL);
		return;
	}
	Crisp__StreamWorkReply q = CRISP__STREAM_WORK_REPLY__INIT;
	q.kind = CRISP__STREAM_WORK_REPLY__KIND__DIAL;
	q.pod_id = (char *)pf->pod_id;
	q.port = p->port;
	StreamWorkResult res = { .n_fds = 0 };
	_cleanup_error_ CrispError *err = NULL;
	if (streamd_work_run(&q, DIAL_TIMEOUT_MS, &res, &err) < 0) {
		pair_error(pf, k, NULL, err->message);
		return;
	}
	if (res.n_fds != 1) {
		streamd_work_result_done(&res);
		pair_error(pf, k, "crisp handed over no connection", NULL);
		return;
	}
	p->fd = res.fds[0];
}

static void flush_pending(PortForward *pf, int k)
{
	Pair *p = &pf->pairs[k];
	while (p->pending_len && p->fd >= 0) {
		ssize_t n = send(p->fd, p->pending, p->pending_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) { /* the pod's side is gone for writing: drop the rest */
			conn_consumed(pf->c, 2 * k, p->pending_len);
			p->pending_len = 0;
			break;
		}
		memmove(p->pending, p->pending + n, p->pending_len - (size_t)n);
		p->pending_len -= (size_t)n;
		conn_consumed(pf->c, 2 * k, (size_t)n);
	}
	if (!p->pending_len && p->client_fin && p->fd >= 0)
		(void)shutdown(p->fd, SHUT_WR);
	hold_back_client(pf);
}

static void from_pod(PortForward *pf, int k)
{
	Pair *p = &pf->pairs[k];
	uint8_t buf[READ_CHUNK];
	size_t room = conn_room(pf->c, 2 * k);
	if (room > sizeof(buf))
		room = sizeof(buf);
	ssize_t n = recv(p->fd, buf, room, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		p->pod_eof = true;
		conn_send_fin(pf->c, 2 * k);
		return;
	}
	conn_send(pf->c, 2 * k, buf, (size_t)n);
}

/* SPDY: a stream the client opened joins (or starts) its request's pair. */
static void opened(PortForward *pf, const ConnEvent *ev)
{
	Conn *c = pf->c;
	bool is_data = ev->streamtype && strcmp(ev->streamtype, "data") == 0;
	bool is_error = ev->streamtype && strcmp(ev->streamtype, "error") == 0;
	char *end = NULL;
	long port = ev->port ? strtol(ev->port, &end, 10) : 0;
	if ((!is_data && !is_error) || !end || *end || port < 1 || port > 65535 || !ev->requestid ||
	    strlen(ev->requestid) >= sizeof(pf->pairs[0].requestid)) {
		conn_refuse_stream(c, ev->stream_id);
		return;
	}
	int k = -1, free_k = -1;
	for (int i = 0; i < MAX_PAIRS; i++) {
		Pair *p = &pf->pairs[i];
		if (p->used && !p->done && strcmp(p->requestid, ev->requestid) == 0)
			k = i;
		if (free_k < 0 && (!p->used || (p->done && p->fd < 0)))
			free_k = i;
	}
	if (k < 0) {
		if (free_k < 0) { /* MAX_PAIRS open at once: the cap on streams */
			conn_refuse_stream(c, ev->stream_id);
			return;
		}
		k = free_k;
		pf->pairs[k] = (Pair){ .used = true, .port = (int)port, .fd = -1 };
		snprintf(pf->pairs[k].requestid, sizeof(pf->pairs[k].requestid), "%s",
			 ev->requestid);
	}
	Pair *p = &pf->pairs[k];
	if ((is_data && p->have_data) || (is_error && p->have_error) || p->port != port) {
		conn_refuse_stream(c, ev->stream_id);
		return;
	}
	conn_accept_stream(c, ev->stream_id, is_data ? 2 * k : 2 * k + 1);
	p->have_data |= is_data;
	p->have_error |= is_error;
	if (p->have_data && p->have_error)
		dial(pf, k);
}

static void client_data(PortForward *pf, const ConnEvent *ev)
{
	int k = ev->channel / 2;
	Pair *p = &pf->pairs[k];
	if (ev->channel % 2 || p->fd < 0 || p->client_fin) {
		conn_consumed(pf->c, ev->channel, ev->len); /* the error channel reads nothing */
		return;
	}
	p->pending = xrealloc(p->pending, p->pending_len + ev->len);
	memcpy(p->pending + p->pending_len, ev->data, ev->len);
	p->pending_len += ev->len;
	flush_pending(pf, k);
}

static bool all_done(PortForward *pf)
{
	for (int k = 0; k < MAX_PAIRS; k++)
		if (pf->pairs[k].used && !pf->pairs[k].done)
			return false;
	return true;
}

static void relay(PortForward *pf)
{
	Conn *c = pf->c;
	for (;;) {
		struct pollfd p[16];
		int index_of[16];
		size_t n = 0;
		/* Pairs finish once both directions have ended. */
		for (int k = 0; k < MAX_PAIRS; k++) {
			Pair *pr = &pf->pairs[k];
			if (pr->used && !pr->done && pr->fd >= 0 && pr->pod_eof &&
			    (pr->client_fin || pf->ws) && !pr->pending_len)
				pair_close(pf, k);
		}
		if (pf->ws && all_done(pf))
			return;
		for (int k = 0; k < MAX_PAIRS && n < 16; k++) {
			Pair *pr = &pf->pairs[k];
			if (!pr->used || pr->done || pr->fd < 0)
				continue;
			short events = 0;
			if (!pr->pod_eof && conn_room(c, 2 * k) > 0)
				events |= POLLIN;
			if (pr->pending_len)
				events |= POLLOUT;
			if (!events)
				continue;
			index_of[n] = k;
			p[n++] = (struct pollfd){ .fd = pr->fd, .events = events };
		}
		ConnEvent ev;
		conn_poll(c, p, n, -1, &ev);
		switch (ev.kind) {
		case CONN_EV_CLOSED:
			return;
		case CONN_EV_OPEN:
			if (pf->ws)
				break;
			opened(pf, &ev);
			break;
		case CONN_EV_DATA:
			if (ev.channel / 2 < MAX_PAIRS)
				client_data(pf, &ev);
			break;
		case CONN_EV_FIN:
			if (ev.channel % 2 == 0 && ev.channel / 2 < MAX_PAIRS) {
				pf->pairs[ev.channel / 2].client_fin = true;
				flush_pending(pf, ev.channel / 2);
			}
			break;
		case CONN_EV_RESET:
			if (ev.channel / 2 < MAX_PAIRS && pf->pairs[ev.channel / 2].used &&
			    !pf->pairs[ev.channel / 2].done)
				pair_close(pf, ev.channel / 2);
			break;
		default:
			break;
		}
		for (size_t i = 0; i < n; i++) {
			int k = index_of[i];
			if (p[i].revents & POLLOUT)
				flush_pending(pf, k);
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR) && !pf->pairs[k].pod_eof &&
			    pf->pairs[k].fd >= 0)
				from_pod(pf, k);
		}
	}
}

void streamd_portforward_run(Conn *c, const SessionSetup *setup, StreamRequest *req)
{
	PortForward pf = { .c = c,
			   .pod_id = req->port_forward->pod_sandbox_id,
			   .req = req->port_forward,
			   .ws = setup->proto == CONN_WEBSOCKET };
	for (int k = 0; k < MAX_PAIRS; k++)
		pf.pairs[k].fd = -1;
	if (pf.ws) {
		size_t n = setup->n_ports;
		const int *ports = setup->ports;
		int from_request[MAX_PAIRS];
		if (n == 0) { /* no ?port=: the request's own list */
			for (size_t i = 0; i < req->port_forward->n_port && i < MAX_PAIRS; i++)
				from_request[n++] = req->port_forward->port[i];
			ports = from_request;
		}
		for (size_t k = 0; k < n; k++) {
			uint8_t le[2] = { (uint8_t)(ports[k] & 0xff), (uint8_t)(ports[k] >> 8) };
			pf.pairs[k] = (Pair){ .used = true, .port = ports[k], .fd = -1 };
			conn_send(c, 2 * (int)k, le, 2);
			conn_send(c, 2 * (int)k + 1, le, 2);
			dial(&pf, (int)k);
		}
	}
	relay(&pf);
	for (int k = 0; k < MAX_PAIRS; k++)
		if (pf.pairs[k].used && !pf.pairs[k].done)
			pair_close(&pf, k);
	conn_finish(c);
	streamd_request_done(req);
}
