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

#include <fcntl.h>
#include <pthread.h>
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
	assert_int_equal(atomic_load(&s.served), N_THREADS * N_CALLS);
	client_done(c, &s);
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
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
