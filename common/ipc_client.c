/*
 * ipc_client.c - concurrent calls over one internal channel.
 */
#include "ipc_client.h"

#include "daemon.h"
#include "internal.pb-c.h"
#include "ipc_types.h"
#include "log.h"
#include "thread.h"

#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

typedef struct Channel {
	int fd;
	pthread_mutex_t send_lock;
	atomic_int refs;
	bool dead; /* under the client's lock */
} Channel;

typedef struct Pending {
	struct Pending *next;
	uint64_t id;
	Channel *channel;
	bool done;
	CrispIpcMessage answer;
	CrispError *error; /* set instead of answer when the channel died */

	/* Asynchronous calls: nobody waits; the answer goes to the callback. */
	bool async;
	CrispIpcCallback callback;
	void *userdata;
	uint16_t ans_type;
	const ProtobufCMessageDescriptor *ans_desc;
	int64_t deadline_ms;
} Pending;

struct CrispIpcClient {
	atomic_int refs; /* the owner's and one per reader thread */
	char *expect_peer;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	Channel *current;
	Pending *pending;
	uint64_t next_id;
	bool timer_running; /* the deadline thread of asynchronous calls */
	bool closing;
	pthread_cond_t timer_cond;
};

typedef struct ReaderArgs {
	CrispIpcClient *client;
	Channel *channel;
} ReaderArgs;

/* Waits on cond (a CLOCK_MONOTONIC condition variable) for at most ms milliseconds. */
static void cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t ms)
{
	struct timespec ts = crisp_monotonic_in_ms(ms);
	pthread_cond_timedwait(cond, lock, &ts);
}

static Channel *channel_ref(Channel *ch)
{
	atomic_fetch_add(&ch->refs, 1);
	return ch;
}

static void channel_unref(Channel *ch)
{
	if (ch && atomic_fetch_sub(&ch->refs, 1) == 1) {
		safe_close(ch->fd);
		pthread_mutex_destroy(&ch->send_lock);
		free(ch);
	}
}

CrispIpcClient *crisp_ipc_client_new(const char *expect_peer)
{
	CrispIpcClient *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->expect_peer = xstrdup(expect_peer);
	pthread_mutex_init(&c->lock, NULL);
	/* Deadlines are monotonic; a wall-clock jump must not stretch or cut a wait. */
	crisp_cond_init_monotonic(&c->cond);
	crisp_cond_init_monotonic(&c->timer_cond);
	c->next_id = 1;
	return c;
}

static void client_unref(CrispIpcClient *c)
{
	if (atomic_fetch_sub(&c->refs, 1) == 1) {
		pthread_mutex_destroy(&c->lock);
		pthread_cond_destroy(&c->cond);
		pthread_cond_destroy(&c->timer_cond);
		free(c->expect_peer);
		free(c);
	}
}

static void unlink_pending_locked(CrispIpcClient *c, Pending *p)
{
	for (Pending **pp = &c->pending; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			return;
		}
}

static int decode_answer(CrispIpcClient *c, CrispIpcMessage *m, uint16_t ans_type,
			 const ProtobufCMessageDescriptor *ans_desc, ProtobufCMessage **ret,
			 int *ret_fds, size_t *ret_n_fds, CrispError **err);

/* Delivers an asynchronous call's outcome; p is already unlinked.  No lock held. */
static void complete_async(CrispIpcClient *c, Pending *p)
{
	_cleanup_error_ CrispError *err = TAKE_PTR(p->error);
	ProtobufCMessage *answer = NULL;
	int fds[CRISP_IPC_MAX_FDS];
	size_t n_fds = 0;

	if (!err)
		decode_answer(c, &p->answer, p->ans_type, p->ans_desc, &answer, fds, &n_fds, &err);
	crisp_ipc_message_done(&p->answer);
	p->callback(p->userdata, answer, fds, n_fds, err);
	channel_unref(p->channel);
	free(p);
}

static void complete_all(CrispIpcClient *c, Pending *list)
{
	while (list) {
		Pending *next = list->next;
		complete_async(c, list);
		list = next;
	}
}

/*
 * Marks ch dead and fails its calls in flight.  Called with c->lock held;
 * returns the asynchronous calls it failed, to complete after unlocking.
 */
static _warn_unused_ Pending *fail_channel_locked(CrispIpcClient *c, Channel *ch, const char *why)
{
	Pending *failed = NULL;

	if (ch->dead)
		return NULL;
	ch->dead = true;
	shutdown(ch->fd, SHUT_RDWR);
	for (Pending *p = c->pending, *next; p; p = next) {
		next = p->next;
		if (p->channel != ch || p->done)
			continue;
		crisp_error_set(&p->error, CRISP_ERR_UNAVAILABLE, ECONNRESET, "%s: %s",
				c->expect_peer, why);
		p->done = true;
		if (p->async) {
			unlink_pending_locked(c, p);
			p->next = failed;
			failed = p;
		}
	}
	pthread_cond_broadcast(&c->cond);
	return failed;
}

static void *reader_main(void *arg)
{
	ReaderArgs *a = arg;
	CrispIpcClient *c = a->client;
	Channel *ch = a->channel;
	free(a);

	for (;;) {
		_cleanup_error_ CrispError *err = NULL;
		CrispIpcMessage m = { 0 };
		int r = crisp_ipc_recv(ch->fd, &m, &err);
		if (r <= 0) {
			pthread_mutex_lock(&c->lock);
			if (r < 0 && !ch->dead)
				log_warning("channel to %s: %s; closing it", c->expect_peer,
					    err->message);
			Pending *failed = fail_channel_locked(
				c, ch,
				r == 0 ? "the channel closed (is it restarting?)"
				       : "the channel failed");
			pthread_mutex_unlock(&c->lock);
			complete_all(c, failed);
			break;
		}

		pthread_mutex_lock(&c->lock);
		Pending *p = c->pending, *async_done = NULL;
		while (p && !(p->id == m.request_id && p->channel == ch))
			p = p->next;
		if (p && !p->done) {
			p->answer = m;
			p->done = true;
			if (p->async) {
				unlink_pending_locked(c, p);
				async_done = p;
			} else {
				pthread_cond_broadcast(&c->cond);
			}
		} else {
			/* The caller gave up (deadline) before the answer came. */
			crisp_ipc_message_done(&m);
		}
		pthread_mutex_unlock(&c->lock);
		/*
		 * Decided under the lock: a synchronous call's Pending lives on its
		 * caller's stack, which may be gone once the lock is released.
		 */
		if (async_done)
			complete_async(c, async_done);
	}
	channel_unref(ch);
	client_unref(c);
	return NULL;
}

int crisp_ipc_client_attach(CrispIpcClient *c, int fd, int timeout_ms, CrispError **err)
{
	_cleanup_close_ int owned = fd;
	CrispIpcMessage hello = { 0 };
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	r = poll(&pfd, 1, timeout_ms);
	if (r <= 0)
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, r == 0 ? ETIMEDOUT : errno,
				       "%s did not greet within %d ms", c->expect_peer, timeout_ms);
	r = crisp_ipc_recv(fd, &hello, err);
	if (r == 0)
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ECONNRESET,
				       "%s closed the channel before greeting", c->expect_peer);
	if (r < 0)
		return crisp_error_wrap(err, "greeting from %s", c->expect_peer);
	r = crisp_handshake_check(&hello, CRISP_MSG_HELLO_SERVER, c->expect_peer, err);
	crisp_ipc_message_done(&hello);
	if (r < 0)
		return r;

	Crisp__Hello ours = CRISP__HELLO__INIT;
	ours.protocol = (char *)CRISP_IPC_PROTOCOL;
	ours.version = CRISP_IPC_VERSION;
	ours.peer = (char *)"client";
	r = crisp_ipc_send(fd, NULL, CRISP_MSG_HELLO_CLIENT, 0, &ours.base, NULL, 0);
	if (r < 0)
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, -r,
				       "answering %s's greeting: %s", c->expect_peer, strerror(-r));

	Channel *ch = xcalloc(1, sizeof(*ch));
	ch->fd = TAKE_FD(owned);
	pthread_mutex_init(&ch->send_lock, NULL);
	atomic_init(&ch->refs, 2); /* the client's and the reader's */

	ReaderArgs *a = xmalloc(sizeof(*a));
	atomic_fetch_add(&c->refs, 1);
	a->client = c;
	a->channel = ch;
	r = crisp_thread_start_detached(reader_main, a);
	if (r != 0) {
		free(a);
		atomic_fetch_sub(&c->refs, 1);
		ch->refs = 1;
		channel_unref(ch);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, r, "starting reader thread: %s",
				       strerror(r));
	}

	pthread_mutex_lock(&c->lock);
	if (c->closing) {
		Pending *none = fail_channel_locked(c, ch, "client closed");
		pthread_mutex_unlock(&c->lock);
		complete_all(c, none);
		channel_unref(ch); /* the client's reference; the reader drops its own */
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ESHUTDOWN,
				       "channel to %s: the client is shutting down",
				       c->expect_peer);
	}
	Channel *old = c->current;
	c->current = ch;
	Pending *failed = old ? fail_channel_locked(c, old, "replaced by a new channel") : NULL;
	pthread_mutex_unlock(&c->lock);
	complete_all(c, failed);
	channel_unref(old);
	return 0;
}

bool crisp_ipc_client_is_up(CrispIpcClient *c)
{
	pthread_mutex_lock(&c->lock);
	bool up = c->current && !c->current->dead;
	pthread_mutex_unlock(&c->lock);
	return up;
}

static int decode_answer(CrispIpcClient *c, CrispIpcMessage *m, uint16_t ans_type,
			 const ProtobufCMessageDescriptor *ans_desc, ProtobufCMessage **ret,
			 int *ret_fds, size_t *ret_n_fds, CrispError **err)
{
	if (m->type == CRISP_MSG_ERROR) {
		_cleanup_proto_ Crisp__ErrorReply *e = (Crisp__ErrorReply *)crisp_proto_unpack(
			&crisp__error_reply__descriptor, m->payload, m->len, err);
		if (!e)
			return crisp_error_wrap(err, "error answer from %s", c->expect_peer);
		return crisp_error_set(err, crisp_error_from_wire(e->code), EIO, "%s", e->message);
	}
	if (m->type != ans_type)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EPROTO,
				       "%s answered with type %u, expected %u", c->expect_peer,
				       m->type, ans_type);
	if (m->n_fds > 0 && !ret_fds)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EPROTO,
				       "%s sent %zu unexpected fds", c->expect_peer, m->n_fds);

	ProtobufCMessage *a = crisp_proto_unpack(ans_desc, m->payload, m->len, err);
	if (!a)
		return crisp_error_wrap(err, "answer from %s", c->expect_peer);
	if (ret_fds) {
		for (size_t i = 0; i < m->n_fds; i++)
			ret_fds[i] = crisp_ipc_message_take_fd(m, i);
		*ret_n_fds = m->n_fds;
	}
	*ret = a;
	return 0;
}

int crisp_ipc_client_call(CrispIpcClient *c, uint16_t type, const ProtobufCMessage *req,
			  const int *fds, size_t n_fds, uint16_t ans_type,
			  const ProtobufCMessageDescriptor *ans_desc, int64_t deadline_ms,
			  ProtobufCMessage **ret, int *ret_fds, size_t *ret_n_fds, CrispError **err)
{
	Pending p = { 0 };
	int r;

	pthread_mutex_lock(&c->lock);
	if (!c->current || c->current->dead) {
		pthread_mutex_unlock(&c->lock);
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ENOTCONN,
				       "%s is not available (starting or restarting)",
				       c->expect_peer);
	}
	p.id = c->next_id++;
	p.channel = channel_ref(c->current);
	p.next = c->pending;
	c->pending = &p;
	pthread_mutex_unlock(&c->lock);

	r = crisp_ipc_send(p.channel->fd, &p.channel->send_lock, type, p.id, req, fds, n_fds);

	pthread_mutex_lock(&c->lock);
	if (r < 0 && !p.done) {
		if (r == -EMSGSIZE)
			crisp_error_set(&p.error, CRISP_ERR_RESOURCE_EXHAUSTED, EMSGSIZE,
					"request to %s exceeds %u bytes", c->expect_peer,
					CRISP_IPC_MAX_MESSAGE);
		else
			crisp_error_set(&p.error, CRISP_ERR_UNAVAILABLE, -r, "sending to %s: %s",
					c->expect_peer, strerror(-r));
		p.done = true;
	}
	while (!p.done) {
		if (deadline_ms > 0) {
			int64_t left = deadline_ms - crisp_now_ms();
			if (left <= 0)
				break;
			cond_wait_ms(&c->cond, &c->lock, left);
		} else {
			pthread_cond_wait(&c->cond, &c->lock);
		}
	}
	unlink_pending_locked(c, &p);
	pthread_mutex_unlock(&c->lock);
	channel_unref(p.channel);

	if (!p.done)
		return crisp_error_set(err, CRISP_ERR_DEADLINE, ETIMEDOUT,
				       "%s did not answer before the deadline", c->expect_peer);
	if (p.error) {
		crisp_error_move(err, &p.error);
		return -ECONNRESET;
	}
	r = decode_answer(c, &p.answer, ans_type, ans_desc, ret, ret_fds, ret_n_fds, err);
	crisp_ipc_message_done(&p.answer);
	return r;
}

/*
 * The deadline thread of asynchronous calls: sleeps until the earliest
 * deadline, fails what expired, and exits when the client is freed.
 */
static void *timer_main(void *arg)
{
	CrispIpcClient *c = arg;

	pthread_mutex_lock(&c->lock);
	while (!c->closing) {
		int64_t now = crisp_now_ms(), next = 0;
		Pending *expired = NULL;
		for (Pending *p = c->pending, *n; p; p = n) {
			n = p->next;
			if (!p->async || !p->deadline_ms || p->done)
				continue;
			if (p->deadline_ms <= now) {
				crisp_error_set(&p->error, CRISP_ERR_DEADLINE, ETIMEDOUT,
						"%s did not answer before the deadline",
						c->expect_peer);
				p->done = true;
				unlink_pending_locked(c, p);
				p->next = expired;
				expired = p;
			} else if (!next || p->deadline_ms < next) {
				next = p->deadline_ms;
			}
		}
		if (expired) {
			pthread_mutex_unlock(&c->lock);
			complete_all(c, expired);
			pthread_mutex_lock(&c->lock);
			continue;
		}
		if (next) {
			cond_wait_ms(&c->timer_cond, &c->lock, next - now);
		} else {
			pthread_cond_wait(&c->timer_cond, &c->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	client_unref(c);
	return NULL;
}

int crisp_ipc_client_call_async(CrispIpcClient *c, uint16_t type, const ProtobufCMessage *req,
				const int *fds, size_t n_fds, uint16_t ans_type,
				const ProtobufCMessageDescriptor *ans_desc, int64_t deadline_ms,
				CrispIpcCallback callback, void *userdata, CrispError **err)
{
	Pending *p = xcalloc(1, sizeof(*p));
	p->async = true;
	p->callback = callback;
	p->userdata = userdata;
	p->ans_type = ans_type;
	p->ans_desc = ans_desc;
	p->deadline_ms = deadline_ms;

	pthread_mutex_lock(&c->lock);
	if (!c->current || c->current->dead) {
		pthread_mutex_unlock(&c->lock);
		free(p);
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ENOTCONN,
				       "%s is not available (starting or restarting)",
				       c->expect_peer);
	}
	if (!c->timer_running) {
		atomic_fetch_add(&c->refs, 1);
		if (crisp_thread_start_detached(timer_main, c) != 0)
			abort();
		c->timer_running = true;
	}
	p->id = c->next_id++;
	p->channel = channel_ref(c->current);
	p->next = c->pending;
	c->pending = p;
	pthread_cond_signal(&c->timer_cond);
	/*
	 * Our own reference for the send: once the lock is released p can be
	 * completed (deadline, attach, shutdown) and its reference dropped, and
	 * with the reader's and the client's gone too the channel would be freed
	 * and its fd closed (and maybe reused) under crisp_ipc_send.
	 */
	Channel *ch = channel_ref(p->channel);
	uint64_t id = p->id;
	pthread_mutex_unlock(&c->lock);

	/* From here the answer, the channel's death or the deadline completes p. */
	int r = crisp_ipc_send(ch->fd, &ch->send_lock, type, id, req, fds, n_fds);
	if (r < 0) {
		pthread_mutex_lock(&c->lock);
		/* By id, not pointer: p may already be completed and freed. */
		bool still_ours = false;
		for (Pending *q = c->pending; q; q = q->next)
			still_ours |= q->id == id;
		if (still_ours) {
			unlink_pending_locked(c, p);
			if (r == -EMSGSIZE)
				crisp_error_set(&p->error, CRISP_ERR_RESOURCE_EXHAUSTED, EMSGSIZE,
						"request to %s exceeds %u bytes", c->expect_peer,
						CRISP_IPC_MAX_MESSAGE);
			else
				crisp_error_set(&p->error, CRISP_ERR_UNAVAILABLE, -r,
						"sending to %s: %s", c->expect_peer, strerror(-r));
		}
		pthread_mutex_unlock(&c->lock);
		if (still_ours)
			complete_async(c, p);
	}
	channel_unref(ch);
	return 0;
}

void crisp_ipc_client_shutdown(CrispIpcClient *c)
{
	pthread_mutex_lock(&c->lock);
	Channel *ch = TAKE_PTR(c->current);
	Pending *failed = ch ? fail_channel_locked(c, ch, "client closed") : NULL;
	c->closing = true;
	pthread_cond_signal(&c->timer_cond);
	pthread_mutex_unlock(&c->lock);
	complete_all(c, failed);
	channel_unref(ch);
}

void crisp_ipc_client_free(CrispIpcClient *c)
{
	if (!c)
		return;
	crisp_ipc_client_shutdown(c);
	/* A reader thread still draining the dead channel keeps the client alive. */
	client_unref(c);
}
