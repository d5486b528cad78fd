/*
 * test_ipc_client.c - the calling side of a channel (common/ipc_client.c).
 *
 * The peer is an in-process fake server on a socketpair: a thread that greets
 * (correctly or not) and answers Crisp__SpawnRequest calls according to the
 * request's `id`, so each test can make it answer, answer late, answer wrong,
 * hold a call or die.  Requests carry a unique `kind`, and the answer's pid
 * echoes it, so a call that got someone else's answer shows.
 */
#include "test_helpers.h"

#include "daemon.h"
#include "internal.pb-c.h"
#include "ipc_client.h"
#include "ipc_types.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/stat.h>

#define PEER "crisp-fake"
#define T_CALL (CRISP_MSG_IMAGED_BASE + 0)
#define T_ANSWER (CRISP_MSG_IMAGED_BASE + 1)

typedef enum HelloMode {
	HELLO_OK,
	HELLO_BAD_VERSION,
	HELLO_BAD_PROTOCOL,
	HELLO_BAD_PEER,
	HELLO_NONE,  /* say nothing until the client gives up */
	HELLO_CLOSE, /* hang up instead of greeting */
} HelloMode;

#define MAX_BATCH 16

typedef struct FakeServer {
	int fd;
	HelloMode hello;
	size_t batch;		  /* "echo" calls are answered in reverse once this many wait */
	size_t close_after_holds; /* hang up once this many "hold" calls arrived (0: never) */
	int devnull;		  /* sent with "fd" answers; open for the server's whole life */
	int client_fd;		  /* the client's end, to see when the client has closed it */
	pthread_t thread;

	/* Read by the test after pthread_join, or atomically while it runs. */
	bool client_hello_ok;
	atomic_size_t holds;
	atomic_size_t served;
} FakeServer;

typedef struct Queued {
	uint64_t id;
	int32_t kind;
} Queued;

static void server_answer(FakeServer *s, uint64_t id, int32_t kind)
{
	Crisp__SpawnReply a = CRISP__SPAWN_REPLY__INIT;
	a.pid = kind;
	crisp_ipc_send(s->fd, NULL, T_ANSWER, id, &a.base, NULL, 0);
	atomic_fetch_add(&s->served, 1);
}

static void *server_main(void *arg)
{
	FakeServer *s = arg;
	Crisp__Hello hello = CRISP__HELLO__INIT;
	Queued queue[MAX_BATCH];
	size_t queued = 0;

	hello.protocol =
		(char *)(s->hello == HELLO_BAD_PROTOCOL ? "crisp-external" : CRISP_IPC_PROTOCOL);
	hello.version = s->hello == HELLO_BAD_VERSION ? CRISP_IPC_VERSION + 1 : CRISP_IPC_VERSION;
	hello.peer = (char *)(s->hello == HELLO_BAD_PEER ? "crisp-other" : PEER);
	if (s->hello == HELLO_CLOSE)
		goto out;
	if (s->hello != HELLO_NONE)
		crisp_ipc_send(s->fd, NULL, CRISP_MSG_HELLO_SERVER, 0, &hello.base, NULL, 0);

	for (bool greeted = false;;) {
		_cleanup_error_ CrispError *err = NULL;
		CrispIpcMessage m = { 0 };
		/* Ends when the client closes its end (it must, even after a failed attach). */
		if (crisp_ipc_recv(s->fd, &m, &err) <= 0)
			break;
		if (!greeted) {
			greeted = true;
			s->client_hello_ok =
				crisp_handshake_check(&m, CRISP_MSG_HELLO_CLIENT, NULL, NULL) == 0;
			crisp_ipc_message_done(&m);
			continue;
		}
		Crisp__SpawnRequest *req = (Crisp__SpawnRequest *)crisp_proto_unpack(
			&crisp__spawn_request__descriptor, m.payload, m.len, NULL);
		uint64_t id = m.request_id;
		crisp_ipc_message_done(&m);
		if (!req)
			break;
		const char *what = req->id;
		int32_t kind = (int32_t)req->kind;

		if (streq_ptr(what, "echo") && s->batch > 1) {
			queue[queued++] = (Queued){ id, kind };
			if (queued == s->batch)
				while (queued > 0) {
					queued--;
					server_answer(s, queue[queued].id, queue[queued].kind);
				}
		} else if (streq_ptr(what, "echo")) {
			server_answer(s, id, kind);
		} else if (streq_ptr(what, "late")) {
			th_sleep_ms(req->timeout_ms);
			server_answer(s, id, kind);
		} else if (streq_ptr(what, "hold")) {
			size_t n = atomic_fetch_add(&s->holds, 1) + 1;
			if (n == s->close_after_holds) {
				crisp_proto_free(req);
				break;
			}
		} else if (streq_ptr(what, "error")) {
			Crisp__ErrorReply e = CRISP__ERROR_REPLY__INIT;
			e.code = CRISP__ERROR_CODE__ERROR_NOT_FOUND;
			e.message = (char *)"no such thing";
			crisp_ipc_send(s->fd, NULL, CRISP_MSG_ERROR, id, &e.base, NULL, 0);
		} else if (streq_ptr(what, "wrongtype")) {
			Crisp__HealthReply a = CRISP__HEALTH_REPLY__INIT;
			crisp_ipc_send(s->fd, NULL, CRISP_MSG_HEALTH_ANS, id, &a.base, NULL, 0);
		} else if (streq_ptr(what, "badanswer")) {
			crisp_ipc_send_raw(s->fd, NULL, T_ANSWER, id, "\x0f", 1, NULL, 0);
		} else if (streq_ptr(what, "fd")) {
			Crisp__SpawnReply a = CRISP__SPAWN_REPLY__INIT;
			a.pid = kind;
			crisp_ipc_send(s->fd, NULL, T_ANSWER, id, &a.base, &s->devnull, 1);
		} else if (streq_ptr(what, "stray")) {
			/* An answer to a request nobody made, then the real one. */
			server_answer(s, id + 1000, -1);
			server_answer(s, id, kind);
		}
		crisp_proto_free(req);
	}
out:
	s->fd = safe_close(s->fd);
	return NULL;
}

/* Starts a fake server; returns the client's end of the channel. */
static int server_start(FakeServer *s, HelloMode mode)
{
	int sp[2];

	s->hello = mode;
	s->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	assert_true(s->devnull >= 0);
	atomic_init(&s->holds, 0);
	atomic_init(&s->served, 0);
	assert_int_equal(crisp_ipc_socketpair(sp), 0);
	s->fd = sp[1];
	s->client_fd = sp[0];
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return sp[0];
}

/* Waits for the server to end: it does once the client's end is gone. */
static void server_join(FakeServer *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	s->devnull = safe_close(s->devnull);
}

static CrispIpcClient *client_attached(FakeServer *s)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcClient *c = crisp_ipc_client_new(PEER);

	int fd = server_start(s, HELLO_OK);
	if (crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0)
		fail_msg("attach: %s", err->message);
	assert_true(crisp_ipc_client_is_up(c));
	return c;
}

static int call(CrispIpcClient *c, const char *what, uint32_t kind, uint32_t ms,
		int64_t deadline_ms, Crisp__SpawnReply **ret, int *ret_fds, size_t *ret_n_fds,
		CrispError **err)
{
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.id = (char *)what;
	req.kind = kind;
	req.timeout_ms = ms;
	return crisp_ipc_client_call(c, T_CALL, &req.base, NULL, 0, T_ANSWER,
				     &crisp__spawn_reply__descriptor, deadline_ms,
				     (ProtobufCMessage **)ret, ret_fds, ret_n_fds, err);
}

static void expect_echo(CrispIpcClient *c, uint32_t kind)
{
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;

	if (call(c, "echo", kind, 0, crisp_now_ms() + TH_TIMEOUT_MS, &a, NULL, NULL, &err) < 0)
		fail_msg("call: %s", err->message);
	assert_non_null(a);
	assert_int_equal(a->pid, kind);
	crisp_proto_free(a);
}

/* A failing call: the error code and a piece of its message. */
static void expect_call_error(CrispIpcClient *c, const char *what, int64_t deadline_ms,
			      CrispErrorCode code, const char *sub)
{
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;

	int r = call(c, what, 1, 0, deadline_ms, &a, NULL, NULL, &err);
	crisp_proto_free(a);
	assert_true(r < 0);
	assert_null(a);
	assert_error(err, code, sub);
}

/*
 * Waits until the client has closed its end of s's channel: the detached
 * reader thread drops the last reference a moment after the channel ends, and
 * later fd counts must not see it.  Only the test's own thread opens fds, so
 * the number cannot have been reused meanwhile.
 */
static void wait_client_closed(const FakeServer *s)
{
	int64_t until = th_now_ms() + TH_TIMEOUT_MS;

	while (fcntl(s->client_fd, F_GETFD) >= 0) {
		if (th_now_ms() > until)
			fail_msg("the client's channel fd %d is still open", s->client_fd);
		th_sleep_ms(1);
	}
}

static void client_done(CrispIpcClient *c, FakeServer *s)
{
	crisp_ipc_client_free(c);
	server_join(s);
	wait_client_closed(s);
}

/* ---- attaching ---- */

static void test_attach_and_call(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);

	expect_echo(c, 1);
	expect_echo(c, 2);
	/* No deadline at all. */
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;
	assert_int_equal(call(c, "echo", 3, 0, 0, &a, NULL, NULL, &err), 0);
	assert_int_equal(a->pid, 3);
	crisp_proto_free(a);
	client_done(c, &s);
	/* The server checked our hello. */
	assert_true(s.client_hello_ok);
}

static void test_attach_refused(void **state)
{
	static const struct {
		HelloMode mode;
		const char *sub;
	} cases[] = {
		{ HELLO_BAD_VERSION, "peer speaks version 2, this is version 1" },
		{ HELLO_BAD_PROTOCOL, "peer speaks \"crisp-external\", not \"crisp-internal\"" },
		{ HELLO_BAD_PEER, "peer is \"crisp-other\", expected \"crisp-fake\"" },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_error_ CrispError *err = NULL;
		FakeServer s = { 0 };
		CrispIpcClient *c = crisp_ipc_client_new(PEER);

		int fd = server_start(&s, cases[i].mode);
		assert_true(crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0);
		assert_error(err, CRISP_ERR_INVALID, cases[i].sub);
		assert_false(crisp_ipc_client_is_up(c));
		expect_call_error(c, "echo", 0, CRISP_ERR_UNAVAILABLE, "not available");
		/* The refused fd was closed: the server sees the end without our hello. */
		server_join(&s);
		assert_false(s.client_hello_ok);
		crisp_ipc_client_free(c);
	}
}

static void test_attach_no_hello(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	FakeServer s = { 0 };
	CrispIpcClient *c = crisp_ipc_client_new(PEER);

	int fd = server_start(&s, HELLO_NONE);
	int64_t start = th_now_ms();
	assert_true(crisp_ipc_client_attach(c, fd, 200, &err) < 0);
	int64_t elapsed = th_now_ms() - start;
	assert_error(err, CRISP_ERR_UNAVAILABLE, "crisp-fake did not greet within 200 ms");
	assert_int_equal(err->errnum, ETIMEDOUT);
	assert_true(elapsed >= 190);
	assert_true(elapsed < 3000);
	assert_false(crisp_ipc_client_is_up(c));
	server_join(&s);
	crisp_ipc_client_free(c);
}

static void test_attach_peer_hangs_up(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	FakeServer s = { 0 };
	CrispIpcClient *c = crisp_ipc_client_new(PEER);

	int fd = server_start(&s, HELLO_CLOSE);
	assert_true(crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0);
	assert_error(err, CRISP_ERR_UNAVAILABLE, "closed the channel before greeting");
	server_join(&s);
	crisp_ipc_client_free(c);
}

static void test_call_unattached(void **state)
{
	CrispIpcClient *c = crisp_ipc_client_new(PEER);

	assert_false(crisp_ipc_client_is_up(c));
	expect_call_error(c, "echo", 0, CRISP_ERR_UNAVAILABLE,
			  "crisp-fake is not available (starting or restarting)");
	crisp_ipc_client_free(c);
	crisp_ipc_client_free(NULL);
}

/* ---- answers ---- */

static void test_error_answers(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	int64_t deadline = crisp_now_ms() + TH_TIMEOUT_MS;

	/* The peer's typed error comes through with its code and message. */
	expect_call_error(c, "error", deadline, CRISP_ERR_NOT_FOUND, "no such thing");
	expect_call_error(c, "wrongtype", deadline, CRISP_ERR_INTERNAL,
			  "crisp-fake answered with type 17, expected 257");
	expect_call_error(c, "badanswer", deadline, CRISP_ERR_INVALID,
			  "answer from crisp-fake: crisp.SpawnReply: malformed message");
	/* None of these ends the channel. */
	assert_true(crisp_ipc_client_is_up(c));
	expect_echo(c, 4);
	client_done(c, &s);
}

static void test_answer_fds(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;
	int fds[CRISP_IPC_MAX_FDS];
	size_t n_fds = 0;

	size_t before = th_count_fds();
	assert_int_equal(call(c, "fd", 5, 0, 0, &a, fds, &n_fds, &err), 0);
	assert_int_equal(a->pid, 5);
	crisp_proto_free(a);
	a = NULL;
	assert_int_equal(n_fds, 1);
	assert_true(th_same_file(fds[0], s.devnull));
	assert_true(th_fd_is_cloexec(fds[0]));
	safe_close(fds[0]);

	/* A caller that expects no fds refuses an answer with some, and closes them. */
	assert_true(call(c, "fd", 6, 0, 0, &a, NULL, NULL, &err) < 0);
	assert_null(a);
	assert_error(err, CRISP_ERR_INTERNAL, "sent 1 unexpected fds");
	assert_int_equal(th_count_fds(), before);
	client_done(c, &s);
}

/* A stray answer (an id nobody waits for) is dropped, not given to the wrong call. */
static void test_stray_answer(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;

	assert_int_equal(call(c, "stray", 7, 0, 0, &a, NULL, NULL, &err), 0);
	assert_int_equal(a->pid, 7);
	crisp_proto_free(a);
	expect_echo(c, 8);
	client_done(c, &s);
}

/* ---- concurrency ---- */

enum {
	N_THREADS = 8,
	N_CALLS = 40
};

typedef struct Caller {
	CrispIpcClient *client;
	unsigned index;
	unsigned failures;
	char first_failure[256];
} Caller;

static void *caller_main(void *arg)
{
	Caller *k = arg;

	for (unsigned i = 0; i < N_CALLS; i++) {
		_cleanup_error_ CrispError *err = NULL;
		Crisp__SpawnReply *a = NULL;
		uint32_t kind = k->index * 1000 + i;
		int r = call(k->client, "echo", kind, 0, crisp_now_ms() + TH_TIMEOUT_MS, &a, NULL,
			     NULL, &err);
		if (r < 0 || a->pid != (int32_t)kind) {
			if (k->failures++ == 0)
				snprintf(k->first_failure, sizeof(k->first_failure),
					 "call %u: %s (pid %d)", kind, err ? err->message : "ok",
					 a ? a->pid : -1);
		}
		crisp_proto_free(a);
	}
	return NULL;
}

/*
 * Several threads call at once over one channel.  The server answers each
 * batch of N_THREADS requests in reverse order, so answers always arrive out
 * of order and each call must pick its own by request id.
 */
static void test_concurrent_calls(void **state)
{
	FakeServer s = { .batch = N_THREADS };
	CrispIpcClient *c = client_attached(&s);
	Caller callers[N_THREADS];
	pthread_t threads[N_THREADS];

	for (unsigned i = 0; i < N_THREADS; i++) {
		callers[i] = (Caller){ .client = c, .index = i };
		assert_int_equal(pthread_create(&threads[i], NULL, caller_main, &callers[i]), 0);
	}
	for (unsigned i = 0; i < N_THREADS; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		if (callers[i].failures)
			fail_msg("thread %u: %u failures, first: %s", i, callers[i].failures,
				 callers[i].first_failure);
	}
	client_done(c, &s);
	/* The server counts an answer after sending it: look once it ended. */
	assert_int_equal(atomic_load(&s.served), N_THREADS * N_CALLS);
}

static void test_deadline(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;

	int64_t start = th_now_ms();
	int r = call(c, "late", 9, 400, crisp_now_ms() + 100, &a, NULL, NULL, &err);
	int64_t elapsed = th_now_ms() - start;
	assert_true(r < 0);
	assert_null(a);
	assert_error(err, CRISP_ERR_DEADLINE, "crisp-fake did not answer before the deadline");
	assert_true(elapsed >= 95);
	if (elapsed >= 390)
		fail_msg("the deadline of 100 ms expired after %lld ms", (long long)elapsed);
	err = crisp_error_free(err);

	/* The late answer arrives while this call waits; it must not be taken for this one. */
	assert_true(crisp_ipc_client_is_up(c));
	expect_echo(c, 10);

	/* A deadline already past fails at once. */
	start = th_now_ms();
	assert_true(call(c, "late", 11, 300, crisp_now_ms() - 1, &a, NULL, NULL, &err) < 0);
	assert_error(err, CRISP_ERR_DEADLINE, "deadline");
	assert_true(th_now_ms() - start < 250);
	expect_echo(c, 12);
	client_done(c, &s);
}

typedef struct HeldCall {
	CrispIpcClient *client;
	int r;
	CrispError *err;
	int64_t elapsed;
} HeldCall;

static void *held_call_main(void *arg)
{
	HeldCall *h = arg;
	Crisp__SpawnReply *a = NULL;
	int64_t start = th_now_ms();

	h->r = call(h->client, "hold", 1, 0, crisp_now_ms() + TH_TIMEOUT_MS, &a, NULL, NULL,
		    &h->err);
	h->elapsed = th_now_ms() - start;
	crisp_proto_free(a);
	return NULL;
}

static void wait_holds(FakeServer *s, size_t n)
{
	int64_t until = th_now_ms() + TH_TIMEOUT_MS;
	while (atomic_load(&s->holds) < n) {
		if (th_now_ms() > until)
			fail_msg("the server saw %zu held calls, expected %zu",
				 atomic_load(&s->holds), n);
		th_sleep_ms(1);
	}
}

static void start_held_calls(HeldCall *calls, pthread_t *threads, size_t n, CrispIpcClient *c)
{
	for (size_t i = 0; i < n; i++) {
		calls[i] = (HeldCall){ .client = c };
		assert_int_equal(pthread_create(&threads[i], NULL, held_call_main, &calls[i]), 0);
	}
}

/* Every held call fails with UNAVAILABLE, promptly rather than at its deadline. */
static void join_held_calls(HeldCall *calls, pthread_t *threads, size_t n, const char *sub)
{
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		assert_true(calls[i].r < 0);
		assert_error(calls[i].err, CRISP_ERR_UNAVAILABLE, sub);
		assert_true(calls[i].elapsed < TH_TIMEOUT_MS / 2);
		calls[i].err = crisp_error_free(calls[i].err);
	}
}

/* The peer dies with calls in flight; a new channel brings the client back. */
static void test_peer_death_and_reattach(void **state)
{
	enum {
		N = 3
	};
	FakeServer s = { .close_after_holds = N };
	CrispIpcClient *c = client_attached(&s);
	HeldCall calls[N];
	pthread_t threads[N];

	start_held_calls(calls, threads, N, c);
	join_held_calls(calls, threads, N, "crisp-fake: the channel closed");
	server_join(&s);

	assert_false(crisp_ipc_client_is_up(c));
	expect_call_error(c, "echo", 0, CRISP_ERR_UNAVAILABLE, "not available");

	/* The supervisor restarted the peer and hands over a new channel. */
	_cleanup_error_ CrispError *err = NULL;
	FakeServer s2 = { 0 };
	int fd = server_start(&s2, HELLO_OK);
	if (crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0)
		fail_msg("attach: %s", err->message);
	assert_true(crisp_ipc_client_is_up(c));
	/* The dead channel's fd went with the attach. */
	wait_client_closed(&s);
	expect_echo(c, 13);
	client_done(c, &s2);
}

/* Attaching a new channel while the old one lives fails the old one's calls. */
static void test_attach_replaces(void **state)
{
	enum {
		N = 2
	};
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	HeldCall calls[N];
	pthread_t threads[N];

	start_held_calls(calls, threads, N, c);
	wait_holds(&s, N);

	_cleanup_error_ CrispError *err = NULL;
	FakeServer s2 = { 0 };
	int fd = server_start(&s2, HELLO_OK);
	if (crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0)
		fail_msg("attach: %s", err->message);
	join_held_calls(calls, threads, N, "replaced by a new channel");
	/* The old channel was shut down: its server saw the end. */
	server_join(&s);
	wait_client_closed(&s);

	assert_true(crisp_ipc_client_is_up(c));
	expect_echo(c, 14);
	client_done(c, &s2);
	/* The call went to the new server. */
	assert_int_equal(atomic_load(&s2.served), 1);
}

/* Freeing the client with the channel up ends the reader and closes the channel. */
static void test_free_attached(void **state)
{
	FakeServer s = { 0 };
	size_t before = th_count_fds();
	CrispIpcClient *c = client_attached(&s);

	expect_echo(c, 15);
	client_done(c, &s);
	assert_int_equal(th_count_fds(), before);
}

static void test_request_too_large(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *big = xmalloc(CRISP_IPC_MAX_MESSAGE + 1);
	Crisp__SpawnReply *a = NULL;

	memset(big, 'x', CRISP_IPC_MAX_MESSAGE);
	big[CRISP_IPC_MAX_MESSAGE] = '\0';
	assert_true(call(c, big, 1, 0, 0, &a, NULL, NULL, &err) < 0);
	assert_error(err, CRISP_ERR_RESOURCE_EXHAUSTED, "exceeds");
	/* Refused before sending: the channel is fine. */
	assert_true(crisp_ipc_client_is_up(c));
	expect_echo(c, 16);
	client_done(c, &s);
}

/* ---- asynchronous calls ---- */

/*
 * What the callbacks of a test saw.  They run on the client's reader or
 * deadline thread (or wherever the client decides to fail a call), so each
 * one records its call's outcome under `lock` and counts it; the test waits
 * on `cond` for a number of callbacks, never longer than a timeout, and makes
 * its assertions on a copy in its own thread.
 */
typedef struct Outcomes {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t callbacks;
} Outcomes;

typedef struct Outcome {
	Outcomes *all;
	int32_t kind;	/* the request's kind, which the answer's pid echoes */
	unsigned calls; /* callbacks for this call: must end at exactly one */
	bool answered;
	int32_t pid;
	int fds[CRISP_IPC_MAX_FDS];
	size_t n_fds;
	bool failed;
	CrispErrorCode code;
	char message[256];
	int64_t at_ms; /* when the callback ran */
	pthread_t thread;
} Outcome;

static void outcomes_init(Outcomes *all, Outcome *o, size_t n)
{
	*all = (Outcomes){ 0 };
	assert_int_equal(pthread_mutex_init(&all->lock, NULL), 0);
	th_cond_init(&all->cond);
	for (size_t i = 0; i < n; i++)
		o[i] = (Outcome){ .all = all, .pid = -1 };
}

/* Only once no callback can run any more (after client_done). */
static void outcomes_destroy(Outcomes *all)
{
	pthread_mutex_destroy(&all->lock);
	pthread_cond_destroy(&all->cond);
}

static void on_outcome(void *userdata, ProtobufCMessage *answer, int *fds, size_t n_fds,
		       CrispError *err)
{
	Outcome *o = userdata;
	Outcomes *all = o->all;

	pthread_mutex_lock(&all->lock);
	if (o->calls++ == 0) {
		o->at_ms = th_now_ms();
		o->thread = pthread_self();
		o->answered = answer != NULL;
		if (answer)
			o->pid = ((Crisp__SpawnReply *)answer)->pid;
		o->failed = err != NULL;
		if (err) {
			o->code = err->code;
			snprintf(o->message, sizeof(o->message), "%s", err->message);
		}
		/* The fds are ours now: the test checks and closes them. */
		o->n_fds = n_fds;
		for (size_t i = 0; i < n_fds && i < CRISP_IPC_MAX_FDS; i++)
			o->fds[i] = fds[i];
		n_fds = 0;
	}
	all->callbacks++;
	pthread_cond_broadcast(&all->cond);
	pthread_mutex_unlock(&all->lock);
	/* A second callback is a failure the test reports; it must not leak either. */
	for (size_t i = 0; i < n_fds; i++)
		safe_close(fds[i]);
	crisp_proto_free(answer);
}

/* Waits until n callbacks in all ran; fails the test after timeout_ms. */
static void outcomes_wait(Outcomes *all, size_t n, int timeout_ms)
{
	int64_t until = th_now_ms() + timeout_ms;

	pthread_mutex_lock(&all->lock);
	while (all->callbacks < n)
		if (!th_cond_wait_until(&all->cond, &all->lock, until)) {
			size_t got = all->callbacks;
			pthread_mutex_unlock(&all->lock);
			fail_msg("%zu callbacks within %d ms, expected %zu", got, timeout_ms, n);
		}
	pthread_mutex_unlock(&all->lock);
}

static size_t outcomes_count(Outcomes *all)
{
	pthread_mutex_lock(&all->lock);
	size_t n = all->callbacks;
	pthread_mutex_unlock(&all->lock);
	return n;
}

/* o as it is now: callbacks may still run for other calls. */
static Outcome outcome_get(Outcome *o)
{
	pthread_mutex_lock(&o->all->lock);
	Outcome copy = *o;
	pthread_mutex_unlock(&o->all->lock);
	return copy;
}

static int call_async(CrispIpcClient *c, const char *what, uint32_t kind, uint32_t ms,
		      int64_t deadline_ms, Outcome *o, CrispError **err)
{
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.id = (char *)what;
	req.kind = kind;
	req.timeout_ms = ms;
	o->kind = (int32_t)kind;
	return crisp_ipc_client_call_async(c, T_CALL, &req.base, NULL, 0, T_ANSWER,
					   &crisp__spawn_reply__descriptor, deadline_ms, on_outcome,
					   o, err);
}

static void start_async(CrispIpcClient *c, const char *what, uint32_t kind, uint32_t ms,
			int64_t deadline_ms, Outcome *o)
{
	_cleanup_error_ CrispError *err = NULL;

	if (call_async(c, what, kind, ms, deadline_ms, o, &err) < 0)
		fail_msg("call_async: %s", err ? err->message : "(no error)");
}

/* The call was answered, exactly once, with its own answer and n_fds fds. */
static Outcome expect_async_answer(Outcome *o, size_t n_fds)
{
	Outcome got = outcome_get(o);

	if (got.calls != 1)
		fail_msg("call %d: %u callbacks", got.kind, got.calls);
	if (got.failed)
		fail_msg("call %d failed: %s", got.kind, got.message);
	assert_true(got.answered);
	assert_int_equal(got.pid, got.kind);
	assert_int_equal(got.n_fds, n_fds);
	return got;
}

/* The call failed, exactly once, with this code and a message containing sub. */
static Outcome expect_async_error(Outcome *o, CrispErrorCode code, const char *sub)
{
	Outcome got = outcome_get(o);

	if (got.calls != 1)
		fail_msg("call %d: %u callbacks", got.kind, got.calls);
	if (!got.failed)
		fail_msg("call %d: answered (pid %d), expected %s", got.kind, got.pid,
			 crisp_error_code_name(code));
	if (got.code != code)
		fail_msg("call %d: error code %s, expected %s (%s)", got.kind,
			 crisp_error_code_name(got.code), crisp_error_code_name(code), got.message);
	assert_contains(got.message, sub);
	/* An error comes without an answer or fds. */
	assert_false(got.answered);
	assert_int_equal(got.n_fds, 0);
	return got;
}

static void wait_served(FakeServer *s, size_t n)
{
	int64_t until = th_now_ms() + TH_TIMEOUT_MS;
	while (atomic_load(&s->served) < n) {
		if (th_now_ms() > until)
			fail_msg("the server answered %zu calls, expected %zu",
				 atomic_load(&s->served), n);
		th_sleep_ms(1);
	}
}

static void test_async_answered(void **state)
{
	FakeServer s = { 0 };
	size_t before = th_count_fds();
	CrispIpcClient *c = client_attached(&s);
	Outcomes all;
	Outcome o[3];
	outcomes_init(&all, o, ELEMENTSOF(o));

	/* No deadline. */
	start_async(c, "echo", 21, 0, 0, &o[0]);
	outcomes_wait(&all, 1, TH_TIMEOUT_MS);
	Outcome got = expect_async_answer(&o[0], 0);
	/* Nobody waits for it: the answer comes on the client's reader thread. */
	assert_false(pthread_equal(got.thread, pthread_self()));

	/* An answer's fds go to the callback, which owns them. */
	int64_t fd_deadline = crisp_now_ms() + 200;
	start_async(c, "fd", 22, 0, fd_deadline, &o[1]);
	outcomes_wait(&all, 2, TH_TIMEOUT_MS);
	got = expect_async_answer(&o[1], 1);
	assert_true(th_same_file(got.fds[0], s.devnull));
	assert_true(th_fd_is_cloexec(got.fds[0]));
	safe_close(got.fds[0]);

	/*
	 * The answered call's deadline does not fire later: once a call with a
	 * later deadline expired, the deadline thread is past the first one.
	 */
	start_async(c, "hold", 23, 0, fd_deadline + 200, &o[2]);
	outcomes_wait(&all, 3, TH_TIMEOUT_MS);
	expect_async_error(&o[2], CRISP_ERR_DEADLINE, "did not answer before the deadline");
	expect_async_answer(&o[1], 1);

	client_done(c, &s);
	assert_int_equal(outcomes_count(&all), 3);
	assert_int_equal(th_count_fds(), before);
	outcomes_destroy(&all);
}

static void test_async_error_answers(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	int64_t deadline = crisp_now_ms() + TH_TIMEOUT_MS;
	Outcomes all;
	Outcome o[4];
	outcomes_init(&all, o, ELEMENTSOF(o));

	start_async(c, "error", 31, 0, deadline, &o[0]);
	start_async(c, "wrongtype", 32, 0, deadline, &o[1]);
	start_async(c, "badanswer", 33, 0, 0, &o[2]);
	outcomes_wait(&all, 3, TH_TIMEOUT_MS);
	/* The peer's typed error comes through with its code and message. */
	expect_async_error(&o[0], CRISP_ERR_NOT_FOUND, "no such thing");
	expect_async_error(&o[1], CRISP_ERR_INTERNAL,
			   "crisp-fake answered with type 17, expected 257");
	expect_async_error(&o[2], CRISP_ERR_INVALID,
			   "answer from crisp-fake: crisp.SpawnReply: malformed message");

	/* None of these ends the channel. */
	assert_true(crisp_ipc_client_is_up(c));
	start_async(c, "echo", 34, 0, deadline, &o[3]);
	outcomes_wait(&all, 4, TH_TIMEOUT_MS);
	expect_async_answer(&o[3], 0);
	client_done(c, &s);
	assert_int_equal(outcomes_count(&all), 4);
	outcomes_destroy(&all);
}

typedef struct AsyncCaller {
	CrispIpcClient *client;
	unsigned index;
	Outcome *outcomes; /* N_CALLS of them */
	unsigned failures;
	char first_failure[256];
} AsyncCaller;

static void *async_caller_main(void *arg)
{
	AsyncCaller *k = arg;

	for (unsigned i = 0; i < N_CALLS; i++) {
		_cleanup_error_ CrispError *err = NULL;
		uint32_t kind = k->index * 1000 + i;
		/* Half with a deadline, half without: both wait for their answer. */
		int64_t deadline = i % 2 ? crisp_now_ms() + TH_TIMEOUT_MS : 0;
		if (call_async(k->client, "echo", kind, 0, deadline, &k->outcomes[i], &err) < 0 &&
		    k->failures++ == 0)
			snprintf(k->first_failure, sizeof(k->first_failure), "call %u: %s", kind,
				 err ? err->message : "(no error)");
	}
	return NULL;
}

/*
 * Several threads start calls at once over one channel; the server answers
 * each batch of MAX_BATCH requests in reverse order, so every callback must
 * get the answer of its own request (its userdata's kind) and no other.
 */
static void test_async_concurrent(void **state)
{
	FakeServer s = { .batch = MAX_BATCH };
	CrispIpcClient *c = client_attached(&s);
	AsyncCaller callers[N_THREADS];
	pthread_t threads[N_THREADS];
	Outcomes all;
	Outcome *o = xcalloc(N_THREADS * N_CALLS, sizeof(*o));
	outcomes_init(&all, o, N_THREADS * N_CALLS);
	static_assert((N_THREADS * N_CALLS) % MAX_BATCH == 0, "every batch fills");

	for (unsigned i = 0; i < N_THREADS; i++) {
		callers[i] = (AsyncCaller){ .client = c, .index = i, .outcomes = o + i * N_CALLS };
		assert_int_equal(pthread_create(&threads[i], NULL, async_caller_main, &callers[i]),
				 0);
	}
	for (unsigned i = 0; i < N_THREADS; i++) {
		th_join(threads[i], TH_TIMEOUT_MS);
		if (callers[i].failures)
			fail_msg("thread %u: %u calls did not start, first: %s", i,
				 callers[i].failures, callers[i].first_failure);
	}
	outcomes_wait(&all, N_THREADS * N_CALLS, TH_TIMEOUT_MS);
	for (unsigned i = 0; i < N_THREADS * N_CALLS; i++) {
		assert_int_equal(o[i].kind, (i / N_CALLS) * 1000 + i % N_CALLS);
		expect_async_answer(&o[i], 0);
	}
	client_done(c, &s);
	/* The server counts an answer after sending it: look once it ended. */
	assert_int_equal(atomic_load(&s.served), N_THREADS * N_CALLS);
	assert_int_equal(outcomes_count(&all), N_THREADS * N_CALLS);
	outcomes_destroy(&all);
	free(o);
}

static void test_async_deadline(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	Outcomes all;
	Outcome o[3];
	outcomes_init(&all, o, ELEMENTSOF(o));

	/*
	 * A far deadline first, so the deadline thread sleeps until it; the
	 * nearer one that follows must wake it.  The server answers that one
	 * only after 400 ms.
	 */
	int64_t start = crisp_now_ms(), far_start = start;
	start_async(c, "hold", 41, 0, start + 1500, &o[0]);
	start_async(c, "late", 42, 400, start + 100, &o[1]);
	outcomes_wait(&all, 1, TH_TIMEOUT_MS);
	Outcome got = expect_async_error(&o[1], CRISP_ERR_DEADLINE,
					 "crisp-fake did not answer before the deadline");
	int64_t elapsed = got.at_ms - start;
	if (elapsed < 95 || elapsed >= 700)
		fail_msg("the deadline of 100 ms expired after %lld ms", (long long)elapsed);
	assert_false(pthread_equal(got.thread, pthread_self()));
	assert_int_equal(outcome_get(&o[0]).calls, 0);

	/*
	 * The late answer is dropped.  The server sends it before the answer to
	 * this synchronous call, and the reader handles answers in order: by the
	 * time this call returns, a second callback would have run.
	 */
	wait_served(&s, 1);
	expect_echo(c, 43);
	expect_async_error(&o[1], CRISP_ERR_DEADLINE, "deadline");
	assert_true(crisp_ipc_client_is_up(c));

	/* A deadline already past fails at once. */
	start = crisp_now_ms();
	start_async(c, "hold", 44, 0, start - 1, &o[2]);
	outcomes_wait(&all, 2, TH_TIMEOUT_MS);
	got = expect_async_error(&o[2], CRISP_ERR_DEADLINE, "deadline");
	assert_true(got.at_ms - start < 300);

	/* The far one expires in its turn, not before. */
	outcomes_wait(&all, 3, TH_TIMEOUT_MS);
	got = expect_async_error(&o[0], CRISP_ERR_DEADLINE, "deadline");
	elapsed = got.at_ms - far_start;
	if (elapsed < 1495 || elapsed >= 3000)
		fail_msg("the deadline of 1500 ms expired after %lld ms", (long long)elapsed);

	client_done(c, &s);
	assert_int_equal(outcomes_count(&all), 3);
	outcomes_destroy(&all);
}

/*
 * The peer dies with asynchronous (and a synchronous) calls in flight: each
 * fails once with UNAVAILABLE, promptly, and not again at its deadline.
 */
static void test_async_peer_death(void **state)
{
	enum {
		N = 4
	};
	FakeServer s = { .close_after_holds = N + 1 };
	size_t before = th_count_fds();
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	Outcomes all;
	Outcome o[N + 3];
	outcomes_init(&all, o, ELEMENTSOF(o));
	HeldCall held;
	pthread_t held_thread;

	int64_t start = crisp_now_ms();
	for (unsigned i = 0; i < N; i++)
		start_async(c, "hold", 50 + i, 0, i % 2 ? start + 300 : 0, &o[i]);
	/* The last hold, which makes the server hang up, is a synchronous call. */
	start_held_calls(&held, &held_thread, 1, c);
	outcomes_wait(&all, N, TH_TIMEOUT_MS);
	for (unsigned i = 0; i < N; i++) {
		Outcome got = expect_async_error(&o[i], CRISP_ERR_UNAVAILABLE,
						 "crisp-fake: the channel closed");
		assert_true(got.at_ms - start < TH_TIMEOUT_MS / 2);
	}
	join_held_calls(&held, &held_thread, 1, "crisp-fake: the channel closed");
	server_join(&s);

	/* With the channel dead, a call does not start, and its callback never runs. */
	assert_false(crisp_ipc_client_is_up(c));
	assert_true(call_async(c, "echo", 60, 0, 0, &o[N], &err) < 0);
	assert_error(err, CRISP_ERR_UNAVAILABLE, "crisp-fake is not available");
	err = crisp_error_free(err);

	/* A new channel works again. */
	FakeServer s2 = { 0 };
	int fd = server_start(&s2, HELLO_OK);
	if (crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0)
		fail_msg("attach: %s", err->message);
	wait_client_closed(&s);
	start_async(c, "echo", 61, 0, 0, &o[N + 1]);
	outcomes_wait(&all, N + 1, TH_TIMEOUT_MS);
	expect_async_answer(&o[N + 1], 0);

	/*
	 * Once a call with a later deadline expired, the deadline thread is past
	 * the failed calls' deadlines: they were not failed a second time.
	 */
	start_async(c, "hold", 62, 0, crisp_now_ms() + 400, &o[N + 2]);
	outcomes_wait(&all, N + 2, TH_TIMEOUT_MS);
	expect_async_error(&o[N + 2], CRISP_ERR_DEADLINE, "deadline");
	for (unsigned i = 0; i < N; i++)
		expect_async_error(&o[i], CRISP_ERR_UNAVAILABLE, "the channel closed");

	client_done(c, &s2);
	assert_int_equal(outcome_get(&o[N]).calls, 0);
	assert_int_equal(outcomes_count(&all), N + 2);
	assert_int_equal(th_count_fds(), before);
	outcomes_destroy(&all);
}

/* Attaching a new channel fails the old channel's asynchronous calls. */
static void test_async_attach_replaces(void **state)
{
	enum {
		N = 3
	};
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	Outcomes all;
	Outcome o[N + 1];
	outcomes_init(&all, o, ELEMENTSOF(o));

	for (unsigned i = 0; i < N; i++)
		start_async(c, "hold", 70 + i, 0, i % 2 ? crisp_now_ms() + TH_TIMEOUT_MS : 0,
			    &o[i]);
	wait_holds(&s, N);

	FakeServer s2 = { 0 };
	int fd = server_start(&s2, HELLO_OK);
	if (crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0)
		fail_msg("attach: %s", err->message);
	outcomes_wait(&all, N, TH_TIMEOUT_MS);
	for (unsigned i = 0; i < N; i++)
		expect_async_error(&o[i], CRISP_ERR_UNAVAILABLE,
				   "crisp-fake: replaced by a new channel");
	/* The old channel was shut down: its server saw the end. */
	server_join(&s);
	wait_client_closed(&s);

	/* Calls go to the new server. */
	assert_true(crisp_ipc_client_is_up(c));
	start_async(c, "echo", 74, 0, 0, &o[N]);
	outcomes_wait(&all, N + 1, TH_TIMEOUT_MS);
	expect_async_answer(&o[N], 0);
	client_done(c, &s2);
	assert_int_equal(atomic_load(&s2.served), 1);
	assert_int_equal(outcomes_count(&all), N + 1);
	outcomes_destroy(&all);
}

/* Shutting down fails the calls in flight; then channels and calls are refused. */
static void test_async_shutdown(void **state)
{
	enum {
		N = 3
	};
	FakeServer s = { 0 };
	size_t before = th_count_fds();
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	Outcomes all;
	Outcome o[N + 1];
	outcomes_init(&all, o, ELEMENTSOF(o));

	for (unsigned i = 0; i < N; i++)
		start_async(c, "hold", 80 + i, 0, i % 2 ? crisp_now_ms() + TH_TIMEOUT_MS : 0,
			    &o[i]);
	wait_holds(&s, N);

	crisp_ipc_client_shutdown(c);
	outcomes_wait(&all, N, TH_TIMEOUT_MS);
	for (unsigned i = 0; i < N; i++)
		expect_async_error(&o[i], CRISP_ERR_UNAVAILABLE, "crisp-fake: client closed");
	assert_false(crisp_ipc_client_is_up(c));
	server_join(&s);

	/* No call starts any more, asynchronous or not. */
	assert_true(call_async(c, "echo", 84, 0, 0, &o[N], &err) < 0);
	assert_error(err, CRISP_ERR_UNAVAILABLE, "crisp-fake is not available");
	err = crisp_error_free(err);
	expect_call_error(c, "echo", 0, CRISP_ERR_UNAVAILABLE, "not available");

	/* A new channel is refused, and closed. */
	FakeServer s2 = { 0 };
	int fd = server_start(&s2, HELLO_OK);
	assert_true(crisp_ipc_client_attach(c, fd, TH_TIMEOUT_MS, &err) < 0);
	assert_error(err, CRISP_ERR_UNAVAILABLE,
		     "channel to crisp-fake: the client is shutting down");
	err = crisp_error_free(err);
	assert_false(crisp_ipc_client_is_up(c));
	server_join(&s2);
	assert_true(call_async(c, "echo", 84, 0, 0, &o[N], &err) < 0);
	assert_error(err, CRISP_ERR_UNAVAILABLE, "not available");

	/* Shutting down again, then freeing, is fine. */
	crisp_ipc_client_shutdown(c);
	crisp_ipc_client_free(c);
	wait_client_closed(&s);
	wait_client_closed(&s2);
	assert_int_equal(outcome_get(&o[N]).calls, 0);
	assert_int_equal(outcomes_count(&all), N);
	assert_int_equal(th_count_fds(), before);
	outcomes_destroy(&all);
}

/* Freeing the client is a shutdown too: the calls in flight fail. */
static void test_async_free_in_flight(void **state)
{
	enum {
		N = 2
	};
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	Outcomes all;
	Outcome o[N];
	outcomes_init(&all, o, ELEMENTSOF(o));

	start_async(c, "hold", 90, 0, 0, &o[0]);
	start_async(c, "hold", 91, 0, crisp_now_ms() + TH_TIMEOUT_MS, &o[1]);
	wait_holds(&s, N);
	client_done(c, &s);
	outcomes_wait(&all, N, TH_TIMEOUT_MS);
	for (unsigned i = 0; i < N; i++)
		expect_async_error(&o[i], CRISP_ERR_UNAVAILABLE, "client closed");
	outcomes_destroy(&all);
}

static void test_async_unattached(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcClient *c = crisp_ipc_client_new(PEER);
	Outcomes all;
	Outcome o[1];
	outcomes_init(&all, o, ELEMENTSOF(o));

	assert_true(call_async(c, "echo", 95, 0, crisp_now_ms() + 50, &o[0], &err) < 0);
	assert_error(err, CRISP_ERR_UNAVAILABLE,
		     "crisp-fake is not available (starting or restarting)");
	crisp_ipc_client_free(c);
	assert_int_equal(outcomes_count(&all), 0);
	outcomes_destroy(&all);
}

/*
 * A request over CRISP_IPC_MAX_MESSAGE is refused before anything is sent,
 * yet the call counts as started: call_async returns 0 and the callback runs
 * exactly once with RESOURCE_EXHAUSTED, on the calling thread before
 * call_async returns.
 */
static void test_async_request_too_large(void **state)
{
	FakeServer s = { 0 };
	CrispIpcClient *c = client_attached(&s);
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *big = xmalloc(CRISP_IPC_MAX_MESSAGE + 1);
	Outcomes all;
	Outcome o[2];
	outcomes_init(&all, o, ELEMENTSOF(o));

	memset(big, 'x', CRISP_IPC_MAX_MESSAGE);
	big[CRISP_IPC_MAX_MESSAGE] = '\0';
	/* No deadline: under valgrind, packing 16 MiB can take longer than a short one. */
	assert_int_equal(call_async(c, big, 96, 0, 0, &o[0], &err), 0);
	assert_null(err);
	assert_int_equal(outcomes_count(&all), 1);
	Outcome got = expect_async_error(&o[0], CRISP_ERR_RESOURCE_EXHAUSTED,
					 "request to crisp-fake exceeds 16777216 bytes");
	assert_true(pthread_equal(got.thread, pthread_self()));

	/* Refused before sending: the channel is fine. */
	assert_true(crisp_ipc_client_is_up(c));
	start_async(c, "echo", 97, 0, crisp_now_ms() + TH_TIMEOUT_MS, &o[1]);
	outcomes_wait(&all, 2, TH_TIMEOUT_MS);
	expect_async_answer(&o[1], 0);

	client_done(c, &s);
	/* The server counts an answer after sending it: look once it ended. */
	assert_int_equal(atomic_load(&s.served), 1);
	assert_int_equal(outcome_get(&o[0]).calls, 1);
	assert_int_equal(outcomes_count(&all), 2);
	outcomes_destroy(&all);
}

enum {
	N_RACERS = 4,
	RACER_CALLS = 400
};

typedef struct Racer {
	CrispIpcClient *client;
	unsigned index;
	Outcome *outcomes; /* RACER_CALLS of them */
	atomic_size_t *started;
	size_t n_started;
	bool refused;
	CrispErrorCode refusal_code;
	char refusal[256];
} Racer;

static void *racer_main(void *arg)
{
	Racer *k = arg;

	for (unsigned i = 0; i < RACER_CALLS; i++) {
		_cleanup_error_ CrispError *err = NULL;
		int64_t deadline = i % 2 ? crisp_now_ms() + TH_TIMEOUT_MS : 0;
		if (call_async(k->client, "hold", k->index * 1000 + i, 0, deadline, &k->outcomes[i],
			       &err) < 0) {
			k->refused = true;
			k->refusal_code = err ? err->code : CRISP_ERR_INTERNAL;
			snprintf(k->refusal, sizeof(k->refusal), "%s",
				 err ? err->message : "(no error)");
			break;
		}
		k->n_started++;
		atomic_fetch_add(k->started, 1);
	}
	return NULL;
}

/*
 * Shutting down while other threads start calls: each call that started
 * gets exactly one callback, each that did not start gets none, and nothing
 * the client frees is used afterwards (run under valgrind or ASan).
 */
static void test_async_shutdown_races_calls(void **state)
{
	for (unsigned round = 0; round < 5; round++) {
		FakeServer s = { 0 };
		CrispIpcClient *c = client_attached(&s);
		Racer racers[N_RACERS];
		pthread_t threads[N_RACERS];
		atomic_size_t started;
		Outcomes all;
		Outcome *o = xcalloc(N_RACERS * RACER_CALLS, sizeof(*o));
		outcomes_init(&all, o, N_RACERS * RACER_CALLS);
		atomic_init(&started, 0);

		for (unsigned i = 0; i < N_RACERS; i++) {
			racers[i] = (Racer){ .client = c,
					     .index = i,
					     .outcomes = o + i * RACER_CALLS,
					     .started = &started };
			assert_int_equal(pthread_create(&threads[i], NULL, racer_main, &racers[i]),
					 0);
		}
		int64_t until = th_now_ms() + TH_TIMEOUT_MS;
		while (atomic_load(&started) < 20 * (round + 1)) {
			if (th_now_ms() > until)
				fail_msg("only %zu calls started", atomic_load(&started));
			sched_yield();
		}
		crisp_ipc_client_shutdown(c);

		size_t total = 0;
		for (unsigned i = 0; i < N_RACERS; i++) {
			th_join(threads[i], TH_TIMEOUT_MS);
			total += racers[i].n_started;
			if (racers[i].refused && racers[i].refusal_code != CRISP_ERR_UNAVAILABLE)
				fail_msg("racer %u refused: %s", i, racers[i].refusal);
		}
		outcomes_wait(&all, total, TH_TIMEOUT_MS);
		for (unsigned i = 0; i < N_RACERS; i++)
			for (size_t j = 0; j < RACER_CALLS; j++) {
				Outcome *one = &o[i * RACER_CALLS + j];
				if (j < racers[i].n_started)
					expect_async_error(one, CRISP_ERR_UNAVAILABLE,
							   "crisp-fake");
				else
					assert_int_equal(outcome_get(one).calls, 0);
			}
		client_done(c, &s);
		assert_int_equal(outcomes_count(&all), total);
		outcomes_destroy(&all);
		free(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_and_call),
		cmocka_unit_test(test_attach_refused),
		cmocka_unit_test(test_attach_no_hello),
		cmocka_unit_test(test_attach_peer_hangs_up),
		cmocka_unit_test(test_call_unattached),
		cmocka_unit_test(test_error_answers),
		cmocka_unit_test(test_answer_fds),
		cmocka_unit_test(test_stray_answer),
		cmocka_unit_test(test_concurrent_calls),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_peer_death_and_reattach),
		cmocka_unit_test(test_attach_replaces),
		cmocka_unit_test(test_free_attached),
		cmocka_unit_test(test_request_too_large),
		cmocka_unit_test(test_async_answered),
		cmocka_unit_test(test_async_error_answers),
		cmocka_unit_test(test_async_concurrent),
		cmocka_unit_test(test_async_deadline),
		cmocka_unit_test(test_async_peer_death),
		cmocka_unit_test(test_async_attach_replaces),
		cmocka_unit_test(test_async_shutdown),
		cmocka_unit_test(test_async_free_in_flight),
		cmocka_unit_test(test_async_unattached),
		cmocka_unit_test(test_async_request_too_large),
		cmocka_unit_test(test_async_shutdown_races_calls),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
