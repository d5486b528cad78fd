/*
 * http.c - the streaming HTTP server (libmicrohttpd): the URLs criapi hands
 * out, the choice of protocol, and the upgrade.
 *
 * A request names its call and token: /exec/<token>, /attach/<token> or
 * /portforward/<token> (GET or POST, as clients use both).  It must ask
 * for an upgrade: "SPDY/3.1" with X-Stream-Protocol-Version headers, or
 * "websocket" with Sec-WebSocket-Protocol.  The token is taken (it is good
 * once) before anything else is answered, so a token cannot be probed;
 * then the best subprotocol both sides know is chosen, and after the 101
 * answer the connection gets a thread of its own (conn.c and the
 * application).  The cap on sessions is checked first, so a refused
 * client does not use up its token.
 */
#include "streamd.h"

#include "log.h"
#include "thread.h"
#include "websocket.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>

struct StreamdServer {
	struct MHD_Daemon *daemon;
	char *base_url;
	int64_t idle_ms;
	unsigned max_sessions;
	atomic_uint sessions;
	char *cert, *key;
};

/* What a request leaves for its upgraded connection. */
typedef struct Upgrade {
	StreamdServer *server;
	StreamRequest req;
	SessionSetup setup;
	char subprotocol[64];
	int sock;
	struct MHD_UpgradeResponseHandle *urh;
	uint8_t *extra;
	size_t extra_len;
} Upgrade;

/* Per request: freed by whichever of completion and upgrade comes last. */
typedef struct RequestState {
	atomic_int refs;
	Upgrade *upgrade; /* until the upgrade takes it */
} RequestState;

static const char *const remotecommand_spdy[] = { "v4.channel.k8s.io", "v3.channel.k8s.io",
						  "v2.channel.k8s.io", "channel.k8s.io", NULL };
static const char *const remotecommand_ws[] = {
	"v5.channel.k8s.io", "v4.channel.k8s.io",     "v4.base64.channel.k8s.io",
	"channel.k8s.io",    "base64.channel.k8s.io", NULL,
};
static const char *const portforward_spdy[] = { "portforward.k8s.io", NULL };
static const char *const portforward_ws[] = { "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
					      "portforward.k8s.io", NULL };

static void upgrade_free(Upgrade *u)
{
	if (!u)
		return;
	streamd_request_done(&u->req);
	free(u->extra);
	free(u);
}

static void state_unref(RequestState *st)
{
	if (atomic_fetch_sub(&st->refs, 1) != 1)
		return;
	if (st->upgrade) {
		atomic_fetch_sub(&st->upgrade->server->sessions, 1);
		upgrade_free(st->upgrade);
	}
	free(st);
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
	_printf_(3, 4);

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		abort();
	va_end(ap);
	size_t len = strlen(text);
	text = xrealloc(text, len + 2);
	text[len++] = '\n';
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* --- the headers' lists --- */

typedef struct Offers {
	const char *header; /* which header's values to gather */
	char *values;	    /* comma-joined */
} Offers;

static enum MHD_Result gather(void *cls, enum MHD_ValueKind kind _unused_, const char *key,
			      const char *value)
{
	Offers *o = cls;
	if (!key || !value || strcasecmp(key, o->header) != 0)
		return MHD_YES;
	char *joined = xasprintf("%s%s%s", o->values ? o->values : "", o->values ? "," : "", value);
	free(o->values);
	o->values = joined;
	return MHD_YES;
}

/* The first of ours the client offered, "" when it offered none, NULL when none match. */
static const char *choose(struct MHD_Connection *conn, const char *header, const char *const *ours)
{
	Offers o = { header, NULL };
	MHD_get_connection_values(conn, MHD_HEADER_KIND, gather, &o);
	if (!o.values)
		return "";
	const char *found = NULL;
	for (const char *const *p = ours; *p && !found; p++) {
		char *save = NULL;
		_cleanup_free_ char *copy = xstrdup(o.values);
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			t += strspn(t, " \t");
			size_t n = strcspn(t, " \t");
			if (n == strlen(*p) && strncmp(t, *p, n) == 0) {
				found = *p;
				break;
			}
		}
	}
	free(o.values);
	return found;
}

static enum MHD_Result gather_port(void *cls, enum MHD_ValueKind kind _unused_, const char *key,
				   const char *value)
{
	SessionSetup *s = cls;
	if (!key || strcmp(key, "port") != 0)
		return MHD_YES;
	char *end = NULL;
	long p = value ? strtol(value, &end, 10) : 0;
	if (!end || *end || p < 1 || p > 65535 || s->n_ports >= ELEMENTSOF(s->ports)) {
		s->n_ports = SIZE_MAX; /* refused below */
		return MHD_NO;
	}
	s->ports[s->n_ports++] = (int)p;
	return MHD_YES;
}

/* --- the upgraded connection --- */

static void *session_main(void *arg)
{
	Upgrade *u = arg;
	Conn *c = conn_new(u->sock, u->setup.proto, u->setup.ws_flags, u->extra, u->extra_len,
			   u->server->idle_ms);
	log_debug("streaming session: %s over %s (%s)",
		  u->req.kind == STREAM_EXEC	 ? "exec"
		  : u->req.kind == STREAM_ATTACH ? "attach"
						 : "port-forward",
		  u->setup.proto == CONN_SPDY ? "SPDY/3.1" : "WebSocket", u->subprotocol);
	if (u->req.kind == STREAM_PORT_FORWARD)
		streamd_portforward_run(c, &u->setup, &u->req);
	else
		streamd_remotecommand_run(c, &u->setup, &u->req);
	conn_free(c);
	MHD_upgrade_action(u->urh, MHD_UPGRADE_ACTION_CLOSE);
	atomic_fetch_sub(&u->server->sessions, 1);
	upgrade_free(u);
	return NULL;
}

static void upgraded(void *cls, struct MHD_Connection *conn _unused_, void *req_cls,
		     const char *extra_in, size_t extra_in_size, MHD_socket sock,
		     struct MHD_UpgradeResponseHandle *urh)
{
	RequestState *st = req_cls;
	Upgrade *u = st->upgrade;
	st->upgrade = NULL;
	(void)cls;
	u->sock = sock;
	u->urh = urh;
	if (extra_in_size) {
		u->extra = xmalloc(extra_in_size);
		memcpy(u->extra, extra_in, extra_in_size);
		u->extra_len = extra_in_size;
	}
	state_unref(st);
	if (crisp_thread_start_detached(session_main, u) != 0) {
		log_error("streaming session: no thread for it");
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		atomic_fetch_sub(&u->server->sessions, 1);
		upgrade_free(u);
	}
}

/* --- requests --- */

static enum MHD_Result route(StreamdServer *s, struct MHD_Connection *conn, const char *url,
			     RequestState *st)
{
	static const struct {
		const char *prefix;
		StreamKind kind;
	} routes[] = { { "/exec/", STREAM_EXEC },
		       { "/attach/", STREAM_ATTACH },
		       { "/portforward/", STREAM_PORT_FORWARD } };
	const char *token = NULL;
	StreamKind kind = 0;
	for (size_t i = 0; i < ELEMENTSOF(routes); i++)
		if (strncmp(url, routes[i].prefix, strlen(routes[i].prefix)) == 0) {
			token = url + strlen(routes[i].prefix);
			kind = routes[i].kind;
		}
	if (!token)
		return answer(conn, MHD_HTTP_NOT_FOUND, "no such streaming call: %.100s", url);

	const char *upgrade = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
	bool spdy = upgrade && strcasecmp(upgrade, "SPDY/3.1") == 0;
	bool ws = upgrade && strcasecmp(upgrade, "websocket") == 0;
	if (!spdy && !ws)
		return answer(conn, MHD_HTTP_BAD_REQUEST,
			      "streaming needs a connection upgrade to SPDY/3.1 or websocket");

	unsigned busy = atomic_fetch_add(&s->sessions, 1);
	if (busy >= s->max_sessions) {
		atomic_fetch_sub(&s->sessions, 1);
		return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			      "%u streaming sessions are open already (max_sessions)", busy);
	}
	Upgrade *u = xcalloc(1, sizeof(*u));
	u->server = s;
	u->sock = -1;
	if (streamd_token_take(kind, token, &u->req) < 0) {
		atomic_fetch_sub(&s->sessions, 1);
		free(u);
		return answer(conn, MHD_HTTP_NOT_FOUND,
			      "unknown streaming token: it was never issued, was used "
			      "already, or expired");
	}
	/* From here the session count and the request are u's. */
	st->upgrade = u;
	u->setup.idle_ms = s->idle_ms;
	bool pf = kind == STREAM_PORT_FORWARD;
	const char *proto;
	const char *accept_key = NULL;
	char accept[29];
	if (spdy) {
		u->setup.proto = CONN_SPDY;
		proto = choose(conn, "X-Stream-Protocol-Version",
			       pf ? portforward_spdy : remotecommand_spdy);
	} else {
		u->setup.proto = CONN_WEBSOCKET;
		const char *key =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
		const char *version =
			MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
		if (!key || !version || strcmp(version, "13") != 0 ||
		    ws_accept_key(key, accept) < 0)
			return answer(conn, MHD_HTTP_BAD_REQUEST,
				      "a WebSocket upgrade needs Sec-WebSocket-Key and "
				      "Sec-WebSocket-Version 13");
		accept_key = accept;
		proto = choose(conn, "Sec-WebSocket-Protocol",
			       pf ? portforward_ws : remotecommand_ws);
		if (proto && strstr(proto, "base64."))
			u->setup.ws_flags |= CONN_WS_BASE64;
		if (proto && strncmp(proto, "v5.", 3) == 0)
			u->setup.ws_flags |= CONN_WS_CLOSE_SIGNAL;
		if (pf) {
			MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, gather_port,
						  &u->setup);
			if (u->setup.n_ports == SIZE_MAX)
				return answer(conn, MHD_HTTP_BAD_REQUEST,
					      "a port parameter is not a port (1 to 65535), or "
					      "there are more than %zu",
					      ELEMENTSOF(u->setup.ports));
		}
	}
	if (!proto)
		return answer(conn, MHD_HTTP_FORBIDDEN,
			      "none of the offered stream protocols is one crisp speaks");
	snprintf(u->subprotocol, sizeof(u->subprotocol), "%s",
		 *proto ? proto : (pf ? "portforward.k8s.io" : "channel.k8s.io"));
	u->setup.subprotocol = u->subprotocol;

	struct MHD_Response *r = MHD_create_response_for_upgrade(upgraded, NULL);
	if (spdy) {
		MHD_add_response_header(r, "Upgrade", "SPDY/3.1");
		if (*proto)
			MHD_add_response_header(r, "X-Stream-Protocol-Version", proto);
	} else {
		MHD_add_response_header(r, "Upgrade", "websocket");
		MHD_add_response_header(r, "Sec-WebSocket-Accept", accept_key);
		if (*proto)
			MHD_add_response_header(r, "Sec-WebSocket-Protocol", proto);
	}
	atomic_fetch_add(&st->refs, 1); /* the upgrade's */
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
	MHD_destroy_response(r);
	if (ret != MHD_YES)
		state_unref(st);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version _unused_,
				  const char *upload_data _unused_, size_t *upload_data_size,
				  void **req_cls)
{
	if (!*req_cls) { /* headers are in; MHD calls again for the body */
		RequestState *st = xcalloc(1, sizeof(*st));
		atomic_init(&st->refs, 1);
		*req_cls = st;
		return MHD_YES;
	}
	if (*upload_data_size) { /* a body is not part of any streaming call: ignored */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "streaming calls are GET or POST");
	return route(cls, conn, url, *req_cls);
}

static void on_completed(void *cls _unused_, struct MHD_Connection *conn _unused_, void **req_cls,
			 enum MHD_RequestTerminationCode why _unused_)
{
	if (*req_cls)
		state_unref(*req_cls);
	*req_cls = NULL;
}

static void mhd_log(void *cls _unused_, const char *fmt, va_list ap)
{
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_info("streaming server: %s", buf);
}

#define PEM_MAX (1u << 20)

static int read_pem(const char *key, const char *path, char **ret, CrispError **err)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return crisp_error_set_errno(err, CRISP_ERR_INVALID, errno,
					     "[streaming] %s: reading %s", key, path);
	char *buf = xmalloc(PEM_MAX + 1);
	size_t n = fread(buf, 1, PEM_MAX + 1, f);
	bool failed = ferror(f);
	fclose(f);
	if (failed || n == 0 || n > PEM_MAX) {
		free(buf);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "[streaming] %s: %s is %s",
				       key, path,
				       failed	? "unreadable"
				       : n == 0 ? "empty"
						: "larger than 1 MiB");
	}
	buf[n] = '\0';
	*ret = xrealloc(buf, n + 1);
	return 0;
}

int streamd_http_read_tls(const CrispConfig *config, StreamdTls *ret, CrispError **err)
{
	*ret = (StreamdTls){ NULL, NULL };
	if (!config->stream_tls_cert || !*config->stream_tls_cert)
		return 0;
	int r = read_pem("tls_cert", config->stream_tls_cert, &ret->cert, err);
	if (r == 0)
		r = read_pem("tls_key", config->stream_tls_key, &ret->key, err);
	if (r < 0) {
		free(ret->cert);
		ret->cert = NULL;
	}
	return r;
}

int streamd_http_start(const CrispConfig *config, StreamdTls *tls_files, StreamdServer **ret,
		       CrispError **err)
{
	_cleanup_free_ char *cert = TAKE_PTR(tls_files->cert);
	_cleanup_free_ char *key = TAKE_PTR(tls_files->key);
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} addr = { 0 };
	const char *host = config->stream_address;
	bool v6 = strchr(host, ':') != NULL;
	if (v6) {
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_port = htons((uint16_t)config->stream_port);
		if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) != 1)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "[streaming] address \"%s\" is not an IP address",
					       host);
	} else {
		addr.in.sin_family = AF_INET;
		addr.in.sin_port = htons((uint16_t)config->stream_port);
		if (inet_pton(AF_INET, host, &addr.in.sin_addr) != 1)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "[streaming] address \"%s\" is not an IP address",
					       host);
	}
	StreamdServer *s = xcalloc(1, sizeof(*s));
	s->idle_ms = config->stream_idle_timeout * 1000;
	s->max_sessions = (unsigned)config->stream_max_sessions;
	atomic_init(&s->sessions, 0);
	bool tls = cert != NULL;
	s->cert = TAKE_PTR(cert);
	s->key = TAKE_PTR(key);
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_UPGRADE |
			 MHD_USE_ERROR_LOG | (v6 ? MHD_USE_IPv6 : 0);
	if (tls)
		flags |= MHD_USE_TLS;
	/* Connections still in their HTTP phase count too: some room above the sessions. */
	unsigned limit = s->max_sessions + 64;
	/* The logger first: libmicrohttpd reports problems with later options through it. */
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, &addr.sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
		tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->cert, MHD_OPTION_HTTPS_MEM_KEY,
		s->key, MHD_OPTION_END);
	if (!s->daemon) {
		streamd_http_stop(s);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EADDRINUSE,
				       "the streaming server could not listen on %s port %lld%s",
				       host, (long long)config->stream_port,
				       tls ? " (or its certificate and key did not load)" : "");
	}
	const union MHD_DaemonInfo *info =
		MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_LISTEN_FD);
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} bound = { 0 };
	socklen_t len = sizeof(bound);
	if (!info || getsockname(info->listen_fd, &bound.sa, &len) < 0) {
		streamd_http_stop(s);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO,
				       "the streaming server's port is unknown");
	}
	unsigned port = ntohs(v6 ? bound.in6.sin6_port : bound.in.sin_port);
	s->base_url = xasprintf("%s://%s%s%s:%u", tls ? "https" : "http", v6 ? "[" : "", host,
				v6 ? "]" : "", port);
	log_info("streaming server on %s (idle timeout %lld s, at most %u sessions)", s->base_url,
		 (long long)config->stream_idle_timeout, s->max_sessions);
	*ret = s;
	return 0;
}

void streamd_http_stop(StreamdServer *s)
{
	if (!s)
		return;
	if (s->daemon)
		MHD_stop_daemon(s->daemon);
	free(s->base_url);
	free(s->cert);
	free(s->key);
	free(s);
}

const char *streamd_http_base_url(const StreamdServer *s)
{
	return s->base_url;
}
