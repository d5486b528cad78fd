/*
 * daemon.c - the backend server skeleton: channels, handshake, dispatch, workers.
 */
#include "daemon.h"

#include "ipc_client.h"

#include "internal.pb-c.h"
#include "ipc_types.h"
#include "log.h"
#include "sandbox.h"

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define DAEMON_MAX_CHANNELS 16
#define DAEMON_DEFAULT_WORKERS 4

struct CrispChannel {
	int fd;
	pthread_mutex_t send_lock;
	atomic_int refs;
	bool greeted;	  /* the client's hello arrived */
	const char *name; /* for log lines */
};

typedef struct WorkItem {
	struct WorkItem *next;
	CrispRequest req;
	const CrispHandler *handler;
} WorkItem;

typedef struct Daemon {
	const CrispDaemonConfig *cfg;
	CrispChannel *channels[DAEMON_MAX_CHANNELS];
	time_t started;

	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	WorkItem *queue_head, *queue_tail;
	bool stopping;
	pthread_t *workers;
	unsigned n_workers;
	int64_t accept_paused_until_ms;
} Daemon;

static CrispChannel *channel_new(int fd, const char *name)
{
	CrispChannel *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	pthread_mutex_init(&c->send_lock, NULL);
	atomic_init(&c->refs, 1);
	c->name = name;
	return c;
}

static CrispChannel *channel_ref(CrispChannel *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

static void channel_unref(CrispChannel *c)
{
	if (c && atomic_fetch_sub(&c->refs, 1) == 1) {
		safe_close(c->fd);
		pthread_mutex_destroy(&c->send_lock);
		free(c);
	}
}

int crisp_error_to_wire(CrispErrorCode code)
{
	/* The wire enum mirrors CrispErrorCode value for value. */
	return code >= 0 && code < _CRISP_ERR_MAX ? (int)code : CRISP__ERROR_CODE__ERROR_INTERNAL;
}

CrispErrorCode crisp_error_from_wire(int code)
{
	return code >= 0 && code < _CRISP_ERR_MAX ? (CrispErrorCode)code : CRISP_ERR_INTERNAL;
}

int crisp_handshake_server_hello(int fd, pthread_mutex_t *lock, const char *name)
{
	Crisp__Hello hello = CRISP__HELLO__INIT;
	hello.protocol = (char *)CRISP_IPC_PROTOCOL;
	hello.version = CRISP_IPC_VERSION;
	hello.peer = (char *)name;
	return crisp_ipc_send(fd, lock, CRISP_MSG_HELLO_SERVER, 0, &hello.base, NULL, 0);
}

int crisp_handshake_check(const CrispIpcMessage *m, uint16_t expect_type, const char *expect_peer,
			  CrispError **err)
{
	if (m->type != expect_type)
		return crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
				       "handshake: expected message type %u, got %u", expect_type,
				       m->type);
	if (m->n_fds != 0)
		return crisp_error_set(err, CRISP_ERR_INVALID, EPROTO, "handshake: unexpected fds");

	_cleanup_proto_ Crisp__Hello *h = (Crisp__Hello *)crisp_proto_unpack(
		&crisp__hello__descriptor, m->payload, m->len, err);
	if (!h)
		return crisp_error_wrap(err, "handshake");
	if (!streq_ptr(h->protocol, CRISP_IPC_PROTOCOL))
		return crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
				       "handshake: peer speaks \"%s\", not \"%s\"", h->protocol,
				       CRISP_IPC_PROTOCOL);
	if (h->version != CRISP_IPC_VERSION)
		return crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
				       "handshake: peer speaks version %u, this is version %u",
				       h->version, CRISP_IPC_VERSION);
	if (expect_peer && !streq_ptr(h->peer, expect_peer))
		return crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
				       "handshake: peer is \"%s\", expected \"%s\"", h->peer,
				       expect_peer);
	return 0;
}

int crisp_reply(CrispRequest *req, uint16_t type, const ProtobufCMessage *msg, const int *fds,
		size_t n_fds)
{
	CrispChannel *c = req->channel;
	req->replied = true;
	return crisp_ipc_send(c->fd, &c->send_lock, type, req->request_id, msg, fds, n_fds);
}

int crisp_reply_error(CrispRequest *req, const CrispError *e)
{
	Crisp__ErrorReply er = CRISP__ERROR_REPLY__INIT;
	er.code = crisp_error_to_wire(e ? e->code : CRISP_ERR_INTERNAL);
	er.message = e ? e->message : (char *)"internal error";
	return crisp_reply(req, CRISP_MSG_ERROR, &er.base, NULL, 0);
}

int crisp_request_take_fd(CrispRequest *req, size_t i)
{
	if (i >= req->n_fds)
		return -1;
	return TAKE_FD(req->fds[i]);
}

static void request_done(CrispRequest *req)
{
	crisp_proto_free(req->msg);
	req->msg = NULL;
	for (size_t i = 0; i < req->n_fds; i++)
		req->fds[i] = safe_close(req->fds[i]);
	channel_unref(req->channel);
	req->channel = NULL;
}

static const CrispHandler health_handler;

static void run_handler(Daemon *d, const CrispHandler *h, CrispRequest *req)
{
	_cleanup_error_ CrispError *err = NULL;
	/* The built-in health handler reads the skeleton's state, not the service's. */
	void *userdata = h == &health_handler ? (void *)d : d->cfg->userdata;

	int r = h->fn(req, userdata, &err);
	if (r < 0 && req->replied) {
		/* One answer per request: the failure came after the answer went out. */
		log_warning("request type %u id %llu failed after it was answered: %s", req->type,
			    (unsigned long long)req->request_id, err ? err->message : strerror(-r));
	} else if (r < 0) {
		if (!err)
			crisp_error_set_errno(&err, CRISP_ERR_INTERNAL, -r, "request %u failed",
					      req->type);
		log_debug("request type %u id %llu: %s: %s", req->type,
			  (unsigned long long)req->request_id, crisp_error_code_name(err->code),
			  err->message);
		crisp_reply_error(req, err);
	} else if (!req->replied) {
		/* A handler that neither answered nor failed is a bug in this process. */
		log_error("handler for type %u returned without an answer", req->type);
		abort();
	}
}

static void *worker_main(void *arg)
{
	Daemon *d = arg;

	for (;;) {
		pthread_mutex_lock(&d->queue_lock);
		while (!d->queue_head && !d->stopping)
			pthread_cond_wait(&d->queue_cond, &d->queue_lock);
		WorkItem *w = d->queue_head;
		if (!w) {
			pthread_mutex_unlock(&d->queue_lock);
			return NULL;
		}
		d->queue_head = w->next;
		if (!d->queue_head)
			d->queue_tail = NULL;
		pthread_mutex_unlock(&d->queue_lock);

		run_handler(d, w->handler, &w->req);
		request_done(&w->req);
		free(w);
	}
}

static void enqueue(Daemon *d, const CrispHandler *h, CrispRequest *req)
{
	WorkItem *w = xcalloc(1, sizeof(*w));
	w->req = *req;
	w->handler = h;
	pthread_mutex_lock(&d->queue_lock);
	if (d->queue_tail)
		d->queue_tail->next = w;
	else
		d->queue_head = w;
	d->queue_tail = w;
	pthread_cond_signal(&d->queue_cond);
	pthread_mutex_unlock(&d->queue_lock);
}

static int handle_health(CrispRequest *req, void *userdata, CrispError **err _unused_)
{
	Daemon *d = userdata;
	Crisp__HealthReply a = CRISP__HEALTH_REPLY__INIT;
	_cleanup_free_ char *why = NULL;

	a.peer = (char *)d->cfg->name;
	a.pid = (int32_t)getpid();
	a.ready = d->cfg->ready ? d->cfg->ready(d->cfg->userdata, &why) : true;
	a.message = why ? why : (char *)"";
	a.uptime_seconds = (uint64_t)(time(NULL) - d->started);
	return crisp_reply(req, CRISP_MSG_HEALTH_ANS, &a.base, NULL, 0);
}

static const CrispHandler health_handler = {
	CRISP_MSG_HEALTH_REQ, &crisp__health_request__descriptor, handle_health, 0, 0,
};

static const CrispHandler *find_handler(const Daemon *d, uint16_t type)
{
	if (type == CRISP_MSG_HEALTH_REQ)
		return &health_handler;
	for (size_t i = 0; i < d->cfg->n_handlers; i++)
		if (d->cfg->handlers[i].type == type)
			return &d->cfg->handlers[i];
	return NULL;
}

/*
 * Reads and dispatches one message.  Returns 0 to keep the channel, or a
 * negative errno to close it (end of stream or a protocol violation).
 */
static int channel_dispatch_one(Daemon *d, CrispChannel *c)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcMessage m = { 0 };

	int r = crisp_ipc_recv(c->fd, &m, &err);
	if (r == 0)
		return -ECONNRESET;
	if (r < 0)
		return log_warning_errno(r, "channel %s: %s; closing it", c->name, err->message);

	if (!c->greeted) {
		r = crisp_handshake_check(&m, CRISP_MSG_HELLO_CLIENT, NULL, &err);
		crisp_ipc_message_done(&m);
		if (r < 0)
			return log_warning_errno(r, "channel %s: %s; closing it", c->name,
						 err->message);
		c->greeted = true;
		return 0;
	}

	const CrispHandler *h = find_handler(d, m.type);
	if (!h) {
		crisp_ipc_message_done(&m);
		return log_warning_errno(-EPROTO,
					 "channel %s: message type %u is not permitted; closing it",
					 c->name, m.type);
	}
	bool fds_ok =
		(h->flags & CRISP_HANDLER_FDS_UP_TO) ? m.n_fds <= h->n_fds : m.n_fds == h->n_fds;
	if (!fds_ok) {
		size_t n_fds = m.n_fds;
		crisp_ipc_message_done(&m);
		return log_warning_errno(
			-EPROTO,
			"channel %s: message type %u carries %zu fds, expected %u; "
			"closing it",
			c->name, m.type, n_fds, h->n_fds);
	}

	CrispRequest req = {
		.type = m.type,
		.request_id = m.request_id,
	};
	req.msg = crisp_proto_unpack(h->desc, m.payload, m.len, &err);
	if (!req.msg) {
		crisp_ipc_message_done(&m);
		return log_warning_errno(-EBADMSG, "channel %s: message type %u: %s; closing it",
					 c->name, m.type, err->message);
	}
	for (size_t i = 0; i < m.n_fds; i++)
		req.fds[req.n_fds++] = crisp_ipc_message_take_fd(&m, i);
	crisp_ipc_message_done(&m);
	req.channel = channel_ref(c);

	if (h->flags & CRISP_HANDLER_ASYNC) {
		enqueue(d, h, &req);
	} else {
		run_handler(d, h, &req);
		request_done(&req);
	}
	return 0;
}

/*
 * A message's fragments are sent back to back, so a peer that starts one and
 * stalls is broken or hostile: it must not freeze this loop for long.
 */
#define CHANNEL_FRAGMENT_TIMEOUT_SEC 5

static int add_channel(Daemon *d, int fd, const char *how)
{
	struct timeval tv = { .tv_sec = CHANNEL_FRAGMENT_TIMEOUT_SEC };
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		log_warning("SO_RCVTIMEO on a %s channel: %s", how, strerror(errno));

	for (size_t i = 0; i < DAEMON_MAX_CHANNELS; i++) {
		if (d->channels[i])
			continue;
		CrispChannel *c = channel_new(fd, how);
		int r = crisp_handshake_server_hello(fd, &c->send_lock, d->cfg->name);
		if (r < 0) {
			channel_unref(c);
			return log_warning_errno(r, "greeting a new %s channel failed: %s", how,
						 strerror(-r));
		}
		d->channels[i] = c;
		log_debug("serving a new %s channel", how);
		return 0;
	}
	safe_close(fd);
	return log_warning_errno(-EMFILE, "refusing a %s channel: %d channels are open", how,
				 DAEMON_MAX_CHANNELS);
}

/* The supervisor's control channel: it only ever hands us channels to serve. */
static int control_dispatch_one(Daemon *d, int fd)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcMessage m = { 0 };

	int r = crisp_ipc_recv(fd, &m, &err);
	if (r == 0)
		return -ECONNRESET;
	if (r < 0)
		return log_error_errno(r, "control channel: %s", err->message);
	if (m.type != CRISP_MSG_CTL_SERVE_CHANNEL || m.n_fds != 1) {
		crisp_ipc_message_done(&m);
		return log_error_errno(-EPROTO,
				       "control channel: unexpected message type %u with %zu fds",
				       m.type, m.n_fds);
	}
	int chan = crisp_ipc_message_take_fd(&m, 0);
	crisp_ipc_message_done(&m);
	add_channel(d, chan, "supervisor-given");
	return 0;
}

/* After an accept error that would repeat at once (EMFILE, EPERM), wait this long. */
#define ACCEPT_PAUSE_MS 1000

static void accept_one(Daemon *d)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	_cleanup_close_ int fd = accept4(d->cfg->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			return;
		/* The connection stays queued, so polling again would spin: pause. */
		log_warning("accepting an internal connection: %s; pausing %d ms", strerror(errno),
			    ACCEPT_PAUSE_MS);
		d->accept_paused_until_ms = crisp_now_ms() + ACCEPT_PAUSE_MS;
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warning("SO_PEERCRED on an internal connection: %s", strerror(errno));
		return;
	}
	if (cred.uid != d->cfg->allowed_peer_uid) {
		log_warning("refusing an internal connection from uid %u pid %d: only uid %u may "
			    "connect",
			    cred.uid, cred.pid, d->cfg->allowed_peer_uid);
		return;
	}
	add_channel(d, TAKE_FD(fd), "socket-activated");
}

static void stop_workers(Daemon *d)
{
	pthread_mutex_lock(&d->queue_lock);
	d->stopping = true;
	pthread_cond_broadcast(&d->queue_cond);
	pthread_mutex_unlock(&d->queue_lock);
	for (unsigned i = 0; i < d->n_workers; i++)
		pthread_join(d->workers[i], NULL);
	free(d->workers);
}

int crisp_daemon_run(const CrispDaemonConfig *cfg)
{
	Daemon d = {
		.cfg = cfg,
		.started = time(NULL),
		.queue_lock = PTHREAD_MUTEX_INITIALIZER,
		.queue_cond = PTHREAD_COND_INITIALIZER,
	};
	sigset_t mask;
	int exit_code = EXIT_SUCCESS;

	/* Signals are read from a signalfd; workers inherit the blocked mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	_cleanup_close_ int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		return log_error_errno(EXIT_FAILURE, "signalfd: %s", strerror(errno));

	d.n_workers = cfg->n_workers ? cfg->n_workers : DAEMON_DEFAULT_WORKERS;
	d.workers = xcalloc(d.n_workers, sizeof(pthread_t));
	for (unsigned i = 0; i < d.n_workers; i++) {
		int r = pthread_create(&d.workers[i], NULL, worker_main, &d);
		if (r != 0) {
			log_error("starting worker thread: %s", strerror(r));
			abort();
		}
	}
	log_info("serving");
	for (;;) {
		struct pollfd pfd[3 + DAEMON_MAX_CHANNELS];
		size_t n = 0;
		pfd[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = cfg->control_fd, .events = POLLIN };
		bool paused = d.accept_paused_until_ms > crisp_now_ms();
		pfd[n++] = (struct pollfd){ .fd = paused ? -1 : cfg->listen_fd, .events = POLLIN };
		for (size_t i = 0; i < DAEMON_MAX_CHANNELS; i++)
			pfd[n++] = (struct pollfd){ .fd = d.channels[i] ? d.channels[i]->fd : -1,
						    .events = POLLIN };

		if (poll(pfd, n, paused ? ACCEPT_PAUSE_MS : -1) < 0) {
			if (errno == EINTR)
				continue;
			exit_code = log_error_errno(EXIT_FAILURE, "poll: %s", strerror(errno));
			break;
		}

		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR2) {
					sandbox_run_probes();
				} else {
					log_info("stopping on signal %u", si.ssi_signo);
					break;
				}
			}
		}
		if (pfd[1].revents && control_dispatch_one(&d, cfg->control_fd) < 0) {
			log_info("the supervisor closed the control channel; stopping");
			break;
		}
		if (pfd[2].revents)
			accept_one(&d);
		for (size_t i = 0; i < DAEMON_MAX_CHANNELS; i++) {
			if (!pfd[3 + i].revents || !d.channels[i])
				continue;
			if (channel_dispatch_one(&d, d.channels[i]) < 0) {
				/* Workers may still hold references and answer into a dead
				 * channel; the fd closes with the last reference. */
				shutdown(d.channels[i]->fd, SHUT_RDWR);
				channel_unref(d.channels[i]);
				d.channels[i] = NULL;
			}
		}
	}

	stop_workers(&d);
	for (size_t i = 0; i < DAEMON_MAX_CHANNELS; i++)
		channel_unref(d.channels[i]);
	return exit_code;
}
