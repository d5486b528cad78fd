/*
 * test_daemon.c - the backend skeleton (common/daemon.c): handshake, dispatch
 * and the worker pool.
 *
 * crisp_daemon_run() runs in a thread of this process with a small handler
 * table.  The test plays the supervisor (it hands channels over a control
 * socketpair) and the client (raw crisp_ipc_send/recv on its end of each
 * channel), so every protocol violation can be sent exactly.  Each daemon
 * test counts this process's fds before the daemon starts and after it
 * stopped: closed channels and finished requests must leave nothing open.
 */
#include "test_helpers.h"

#include "daemon.h"
#include "internal.pb-c.h"
#include "ipc_types.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>

#define DAEMON_NAME "crisp-testd"

/* The test backend's verbs; each request is a Crisp__SpawnRequest, each answer a SpawnReply. */
enum {
	T_ECHO = CRISP_MSG_IMAGED_BASE + 0,  /* answers pid = kind */
	T_FAIL = CRISP_MSG_IMAGED_BASE + 2,  /* fails with a typed error */
	T_ERRNO = CRISP_MSG_IMAGED_BASE + 4, /* fails with a bare -ENOSPC */
	T_FD = CRISP_MSG_IMAGED_BASE + 6,    /* one fd: writes to it and answers with it */
	T_SLOW = CRISP_MSG_IMAGED_BASE + 8,  /* async: sleeps timeout_ms, then answers */
};
#define ANSWER(t) ((uint16_t)((t) + 1))
#define MAGIC 4242
#define SLOW_FAIL_KIND 999 /* T_SLOW fails for this kind, from a worker thread */

typedef struct TestState {
	int magic;
	atomic_bool not_ready;
} TestState;

static TestState state = { .magic = MAGIC };

/* Handlers run on the daemon's threads: they report through their answers, never assert. */
static int answer(CrispRequest *req, void *userdata, const int *fds, size_t n_fds)
{
	const Crisp__SpawnRequest *r = (const Crisp__SpawnRequest *)req->msg;
	const TestState *st = userdata;
	Crisp__SpawnReply a = CRISP__SPAWN_REPLY__INIT;

	a.pid = (int32_t)r->kind;
	/* Proves the handler got the service's userdata. */
	a.exit_code = st == &state ? st->magic : -1;
	return crisp_reply(req, ANSWER(req->type), &a.base, fds, n_fds);
}

static int h_echo(CrispRequest *req, void *userdata, CrispError **err)
{
	return answer(req, userdata, NULL, 0);
}

static int h_fail(CrispRequest *req, void *userdata, CrispError **err)
{
	const Crisp__SpawnRequest *r = (const Crisp__SpawnRequest *)req->msg;
	return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "container \"%s\" not found",
			       r->id);
}

static int h_errno(CrispRequest *req, void *userdata, CrispError **err)
{
	return -ENOSPC;
}

static int h_fd(CrispRequest *req, void *userdata, CrispError **err)
{
	ssize_t _unused_ n = write(req->fds[0], "handled", 7);
	return answer(req, userdata, &req->fds[0], 1);
}

static int h_slow(CrispRequest *req, void *userdata, CrispError **err)
{
	const Crisp__SpawnRequest *r = (const Crisp__SpawnRequest *)req->msg;
	th_sleep_ms(r->timeout_ms);
	if (r->kind == SLOW_FAIL_KIND)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EBUSY,
				       "container \"%s\" is busy", r->id);
	return answer(req, userdata, NULL, 0);
}

static const CrispHandler handlers[] = {
	{ T_ECHO, &crisp__spawn_request__descriptor, h_echo, 0, 0 },
	{ T_FAIL, &crisp__spawn_request__descriptor, h_fail, 0, 0 },
	{ T_ERRNO, &crisp__spawn_request__descriptor, h_errno, 0, 0 },
	{ T_FD, &crisp__spawn_request__descriptor, h_fd, 0, 1 },
	{ T_SLOW, &crisp__spawn_request__descriptor, h_slow, CRISP_HANDLER_ASYNC, 0 },
};

static bool test_ready(void *userdata, char **ret_message)
{
	TestState *st = userdata;
	if (atomic_load(&st->not_ready)) {
		*ret_message = xstrdup("warming up");
		return false;
	}
	return true;
}

typedef struct TestDaemon {
	CrispDaemonConfig cfg;
	pthread_t thread;
	int ctl; /* the supervisor's end of the control channel */
	int result;
	size_t fds_before;
} TestDaemon;

static void *daemon_thread(void *arg)
{
	TestDaemon *td = arg;
	td->result = crisp_daemon_run(&td->cfg);
	return NULL;
}

static TestDaemon *daemon_start_full(unsigned n_workers, int listen_fd, uid_t allowed_uid)
{
	TestDaemon *td = xcalloc(1, sizeof(*td));
	int sp[2];

	/* The listening socket is the caller's but closes with the daemon: leave it out. */
	td->fds_before = th_count_fds() - (listen_fd >= 0 ? 1 : 0);
	assert_int_equal(crisp_ipc_socketpair(sp), 0);
	td->ctl = sp[0];
	td->cfg = (CrispDaemonConfig){
		.name = DAEMON_NAME,
		.handlers = handlers,
		.n_handlers = ELEMENTSOF(handlers),
		.userdata = &state,
		.control_fd = sp[1],
		.listen_fd = listen_fd,
		.allowed_peer_uid = allowed_uid,
		.n_workers = n_workers,
		.ready = test_ready,
	};
	assert_int_equal(pthread_create(&td->thread, NULL, daemon_thread, td), 0);
	return td;
}

static TestDaemon *daemon_start(unsigned n_workers)
{
	return daemon_start_full(n_workers, -1, 0);
}

/*
 * Waits for crisp_daemon_run to return (the caller made it stop) and releases
 * td.  Returns the fd count from before the daemon started, for the caller's
 * leak check once it closed its own ends.
 */
static size_t daemon_join(TestDaemon *td)
{
	size_t before = td->fds_before;

	assert_int_equal(pthread_join(td->thread, NULL), 0);
	assert_int_equal(td->result, EXIT_SUCCESS);
	safe_close(td->ctl);
	safe_close(td->cfg.control_fd);
	safe_close(td->cfg.listen_fd);
	free(td);
	return before;
}

/* The supervisor closing the control channel stops the daemon; nothing may stay open. */
static void daemon_stop(TestDaemon *td)
{
	td->ctl = safe_close(td->ctl);
	assert_int_equal(th_count_fds(), daemon_join(td));
}

/* Hands the daemon a new channel; returns our end, not yet greeted. */
static int daemon_channel(TestDaemon *td)
{
	Crisp__ServeChannel sc = CRISP__SERVE_CHANNEL__INIT;
	int sp[2];

	assert_int_equal(crisp_ipc_socketpair(sp), 0);
	assert_int_equal(
		crisp_ipc_send(td->ctl, NULL, CRISP_MSG_CTL_SERVE_CHANNEL, 0, &sc.base, &sp[1], 1),
		0);
	safe_close(sp[1]);
	return sp[0];
}

static void send_hello(int fd, uint16_t type, const char *protocol, uint32_t version)
{
	Crisp__Hello h = CRISP__HELLO__INIT;
	h.protocol = (char *)protocol;
	h.version = version;
	h.peer = (char *)"test-client";
	assert_int_equal(crisp_ipc_send(fd, NULL, type, 0, &h.base, NULL, 0), 0);
}

/* The client's side of the handshake: check the server's hello, answer it. */
static void expect_server_hello(int fd)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcMessage m = { 0 };

	assert_int_equal(th_recv(fd, &m, &err), 1);
	int r = crisp_handshake_check(&m, CRISP_MSG_HELLO_SERVER, DAEMON_NAME, &err);
	crisp_ipc_message_done(&m);
	if (r < 0)
		fail_msg("server hello: %s", err->message);
}

static int daemon_connect(TestDaemon *td)
{
	int fd = daemon_channel(td);
	expect_server_hello(fd);
	send_hello(fd, CRISP_MSG_HELLO_CLIENT, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION);
	return fd;
}

static void send_request(int fd, uint16_t type, uint64_t id, uint32_t kind, uint32_t ms,
			 const int *fds, size_t n_fds)
{
	Crisp__SpawnRequest r = CRISP__SPAWN_REQUEST__INIT;
	r.kind = kind;
	r.id = (char *)"c1";
	r.timeout_ms = ms;
	assert_int_equal(crisp_ipc_send(fd, NULL, type, id, &r.base, fds, n_fds), 0);
}

/* Receives one answer of type `type` and returns it unpacked (the message's fds stay in *m). */
static ProtobufCMessage *recv_answer(int fd, uint16_t type, const ProtobufCMessageDescriptor *desc,
				     CrispIpcMessage *m)
{
	_cleanup_error_ CrispError *err = NULL;
	int r = th_recv(fd, m, &err);
	if (r != 1)
		fail_msg("expected an answer, recv returned %d: %s", r, err ? err->message : "EOF");
	if (m->type != type)
		fail_msg("answer of type %u, expected %u", m->type, type);
	return th_unpack(desc, m);
}

/* One request/answer on a greeted channel. */
static void expect_echo(int fd, uint64_t id, uint32_t kind)
{
	CrispIpcMessage m = { 0 };

	send_request(fd, T_ECHO, id, kind, 0, NULL, 0);
	_cleanup_proto_ Crisp__SpawnReply *a = (Crisp__SpawnReply *)recv_answer(
		fd, ANSWER(T_ECHO), &crisp__spawn_reply__descriptor, &m);
	assert_int_equal(m.request_id, id);
	assert_int_equal(m.n_fds, 0);
	assert_int_equal(a->pid, kind);
	assert_int_equal(a->exit_code, MAGIC);
	crisp_ipc_message_done(&m);
}

/* After a violation: the channel ends, and the daemon still serves a new one. */
static void expect_closed_and_alive(TestDaemon *td, int fd)
{
	th_expect_closed(fd);
	safe_close(fd);
	_cleanup_close_ int again = daemon_connect(td);
	expect_echo(again, 1, 1);
}

/* ---- handshake and the error mapping, without a daemon ---- */

static CrispIpcMessage hello_message(uint16_t type, const char *protocol, uint32_t version,
				     const char *peer)
{
	Crisp__Hello h = CRISP__HELLO__INIT;
	CrispIpcMessage m = { .type = type };

	h.protocol = (char *)protocol;
	h.version = version;
	h.peer = (char *)peer;
	m.payload = crisp_proto_pack(&h.base, &m.len);
	return m;
}

static void check_hello(CrispIpcMessage m, const char *expect_peer, const char *fail_sub)
{
	_cleanup_error_ CrispError *err = NULL;
	int r = crisp_handshake_check(&m, CRISP_MSG_HELLO_SERVER, expect_peer, &err);
	crisp_ipc_message_done(&m);
	if (!fail_sub) {
		if (r < 0)
			fail_msg("refused: %s", err->message);
		assert_null(err);
		return;
	}
	assert_true(r < 0);
	assert_error(err, CRISP_ERR_INVALID, fail_sub);
}

static void test_handshake_check(void **state_)
{
	const uint16_t S = CRISP_MSG_HELLO_SERVER;

	check_hello(hello_message(S, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION, "crisp-x"), "crisp-x",
		    NULL);
	/* Without expect_peer any name is accepted. */
	check_hello(hello_message(S, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION, "whoever"), NULL, NULL);

	check_hello(hello_message(S, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION + 1, "crisp-x"), NULL,
		    "version 2, this is version 1");
	check_hello(hello_message(S, CRISP_IPC_PROTOCOL, 0, "crisp-x"), NULL, "version 0");
	check_hello(hello_message(S, "crisp-internal2", CRISP_IPC_VERSION, "crisp-x"), NULL,
		    "speaks \"crisp-internal2\"");
	check_hello(hello_message(S, "", CRISP_IPC_VERSION, "crisp-x"), NULL, "speaks \"\"");
	check_hello(hello_message(S, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION, "crisp-y"), "crisp-x",
		    "peer is \"crisp-y\", expected \"crisp-x\"");
	check_hello(hello_message(CRISP_MSG_HELLO_CLIENT, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION,
				  "crisp-x"),
		    NULL, "expected message type 1, got 2");

	/* A hello carrying fds. */
	CrispIpcMessage m = hello_message(S, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION, "crisp-x");
	m.fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	m.n_fds = 1;
	check_hello(m, NULL, "unexpected fds");

	/* A payload that is not a Hello at all. */
	m = (CrispIpcMessage){ .type = S, .payload = xmalloc(2), .len = 2 };
	memcpy(m.payload, "\x0f\x00", 2);
	check_hello(m, NULL, "handshake: crisp.Hello: malformed message");

	/* What crisp_handshake_server_hello sends passes the check. */
	_cleanup_error_ CrispError *err = NULL;
	int sp[2];
	assert_int_equal(crisp_ipc_socketpair(sp), 0);
	assert_int_equal(crisp_handshake_server_hello(sp[0], NULL, "crisp-x"), 0);
	assert_int_equal(th_recv(sp[1], &m, &err), 1);
	check_hello(m, "crisp-x", NULL);
	safe_close(sp[0]);
	safe_close(sp[1]);
}

static void test_error_wire_mapping(void **state_)
{
	for (int code = 0; code < _CRISP_ERR_MAX; code++)
		assert_int_equal(crisp_error_from_wire(crisp_error_to_wire(code)), code);
	assert_int_equal(crisp_error_to_wire(CRISP_ERR_NOT_FOUND),
			 CRISP__ERROR_CODE__ERROR_NOT_FOUND);
	assert_int_equal(crisp_error_to_wire(CRISP_ERR_PERMISSION_DENIED),
			 CRISP__ERROR_CODE__ERROR_PERMISSION_DENIED);
	/* A code from a newer peer is not guessed at. */
	assert_int_equal(crisp_error_from_wire(999), CRISP_ERR_INTERNAL);
	assert_int_equal(crisp_error_from_wire(-1), CRISP_ERR_INTERNAL);
	assert_int_equal(crisp_error_to_wire(_CRISP_ERR_MAX), CRISP__ERROR_CODE__ERROR_INTERNAL);
}

/* ---- dispatch ---- */

static void test_dispatch_request(void **state_)
{
	TestDaemon *td = daemon_start(2);
	int fd = daemon_connect(td);

	expect_echo(fd, 11, 5);
	/* Request ids are the client's business: any 64-bit value comes back as is. */
	expect_echo(fd, 0xdeadbeef12345678ull, 6);
	expect_echo(fd, 0, 7);

	/* Two channels are served side by side. */
	int fd2 = daemon_connect(td);
	expect_echo(fd2, 1, 8);
	expect_echo(fd, 2, 9);
	safe_close(fd2);
	safe_close(fd);
	daemon_stop(td);
}

static void expect_error_answer(int fd, uint16_t type, uint64_t id, uint32_t kind, int code,
				const char *msg)
{
	CrispIpcMessage m = { 0 };

	send_request(fd, type, id, kind, 0, NULL, 0);
	_cleanup_proto_ Crisp__ErrorReply *e = (Crisp__ErrorReply *)recv_answer(
		fd, CRISP_MSG_ERROR, &crisp__error_reply__descriptor, &m);
	assert_int_equal(m.request_id, id);
	assert_int_equal(e->code, code);
	assert_string_equal(e->message, msg);
	crisp_ipc_message_done(&m);
}

static void test_dispatch_handler_error(void **state_)
{
	TestDaemon *td = daemon_start(2);
	int fd = daemon_connect(td);

	expect_error_answer(fd, T_FAIL, 31, 0, CRISP__ERROR_CODE__ERROR_NOT_FOUND,
			    "container \"c1\" not found");
	/* A bare errno becomes an internal error that still names the cause. */
	expect_error_answer(fd, T_ERRNO, 32, 0, CRISP__ERROR_CODE__ERROR_INTERNAL,
			    "request 260 failed: No space left on device");
	/* The same from an async handler on a worker thread. */
	expect_error_answer(fd, T_SLOW, 34, SLOW_FAIL_KIND,
			    CRISP__ERROR_CODE__ERROR_FAILED_PRECONDITION,
			    "container \"c1\" is busy");
	/* A typed error answer does not end the channel. */
	expect_echo(fd, 33, 3);
	safe_close(fd);
	daemon_stop(td);
}

static void test_dispatch_fds(void **state_)
{
	TestDaemon *td = daemon_start(2);
	int fd = daemon_connect(td);
	CrispIpcMessage m = { 0 };
	int p[2];
	char buf[16] = { 0 };

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	send_request(fd, T_FD, 41, 4, 0, &p[1], 1);
	_cleanup_proto_ Crisp__SpawnReply *a = (Crisp__SpawnReply *)recv_answer(
		fd, ANSWER(T_FD), &crisp__spawn_reply__descriptor, &m);
	assert_int_equal(a->pid, 4);
	assert_int_equal(m.n_fds, 1);
	assert_true(th_same_file(m.fds[0], p[1]));
	assert_true(th_fd_is_cloexec(m.fds[0]));
	crisp_ipc_message_done(&m);
	assert_int_equal(read(p[0], buf, sizeof(buf)), 7);
	assert_string_equal(buf, "handled");
	safe_close(p[0]);
	safe_close(p[1]);
	safe_close(fd);
	daemon_stop(td);
}

static void test_dispatch_wrong_fd_count(void **state_)
{
	TestDaemon *td = daemon_start(2);
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);

	/* T_FD wants exactly one fd. */
	int fd = daemon_connect(td);
	send_request(fd, T_FD, 1, 0, 0, NULL, 0);
	expect_closed_and_alive(td, fd);

	fd = daemon_connect(td);
	send_request(fd, T_FD, 1, 0, 0, (int[]){ devnull, devnull }, 2);
	expect_closed_and_alive(td, fd);

	/* T_ECHO wants none. */
	fd = daemon_connect(td);
	send_request(fd, T_ECHO, 1, 0, 0, &devnull, 1);
	expect_closed_and_alive(td, fd);

	safe_close(devnull);
	daemon_stop(td);
}

static void test_dispatch_unknown_type(void **state_)
{
	const uint16_t types[] = {
		9999,			     /* nobody's */
		T_ECHO + 10,		     /* in the backend's block, not in its table */
		ANSWER(T_ECHO),		     /* an answer sent as a request */
		CRISP_MSG_ERROR,	     /* the generic answer */
		CRISP_MSG_HELLO_CLIENT,	     /* a second hello */
		CRISP_MSG_SPAWN_REQ,	     /* another process's verb */
		CRISP_MSG_CTL_SERVE_CHANNEL, /* a control verb on a client channel */
	};
	TestDaemon *td = daemon_start(2);

	for (size_t i = 0; i < ELEMENTSOF(types); i++) {
		int fd = daemon_connect(td);
		print_message("type %u\n", types[i]);
		send_request(fd, types[i], 1, 0, 0, NULL, 0);
		expect_closed_and_alive(td, fd);
	}
	daemon_stop(td);
}

static void test_dispatch_before_hello(void **state_)
{
	TestDaemon *td = daemon_start(2);

	/* A request before the hello. */
	int fd = daemon_channel(td);
	expect_server_hello(fd);
	send_request(fd, T_ECHO, 1, 0, 0, NULL, 0);
	expect_closed_and_alive(td, fd);

	/* Even health is not answered before the hello. */
	fd = daemon_channel(td);
	expect_server_hello(fd);
	assert_int_equal(crisp_ipc_send(fd, NULL, CRISP_MSG_HEALTH_REQ, 1, NULL, NULL, 0), 0);
	expect_closed_and_alive(td, fd);

	/* A hello that does not match. */
	fd = daemon_channel(td);
	expect_server_hello(fd);
	send_hello(fd, CRISP_MSG_HELLO_CLIENT, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION + 1);
	expect_closed_and_alive(td, fd);

	fd = daemon_channel(td);
	expect_server_hello(fd);
	send_hello(fd, CRISP_MSG_HELLO_CLIENT, "not-crisp", CRISP_IPC_VERSION);
	expect_closed_and_alive(td, fd);

	/* The server's hello echoed back is the wrong type. */
	fd = daemon_channel(td);
	expect_server_hello(fd);
	send_hello(fd, CRISP_MSG_HELLO_SERVER, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION);
	expect_closed_and_alive(td, fd);

	daemon_stop(td);
}

static void test_dispatch_undecodable(void **state_)
{
	TestDaemon *td = daemon_start(2);

	/* A string field whose length runs past the end. */
	int fd = daemon_connect(td);
	assert_int_equal(crisp_ipc_send_raw(fd, NULL, T_ECHO, 1,
					    "\x12\x05"
					    "a",
					    3, NULL, 0),
			 0);
	expect_closed_and_alive(td, fd);

	/* The same for an async handler: refused before it is queued. */
	fd = daemon_connect(td);
	assert_int_equal(crisp_ipc_send_raw(fd, NULL, T_SLOW, 1, "\x0f", 1, NULL, 0), 0);
	expect_closed_and_alive(td, fd);

	/* A framing violation (a packet shorter than the header). */
	fd = daemon_connect(td);
	assert_int_equal(send(fd, "short", 5, MSG_NOSIGNAL), 5);
	expect_closed_and_alive(td, fd);

	daemon_stop(td);
}

static void expect_health(int fd, uint64_t id, bool ready, const char *message)
{
	Crisp__HealthRequest req = CRISP__HEALTH_REQUEST__INIT;
	CrispIpcMessage m = { 0 };

	assert_int_equal(crisp_ipc_send(fd, NULL, CRISP_MSG_HEALTH_REQ, id, &req.base, NULL, 0), 0);
	_cleanup_proto_ Crisp__HealthReply *a = (Crisp__HealthReply *)recv_answer(
		fd, CRISP_MSG_HEALTH_ANS, &crisp__health_reply__descriptor, &m);
	assert_int_equal(m.request_id, id);
	assert_string_equal(a->peer, DAEMON_NAME);
	assert_int_equal(a->pid, getpid());
	assert_int_equal(a->ready, ready);
	assert_string_equal(a->message, message);
	assert_true(a->uptime_seconds < 60);
	assert_int_equal(a->restarts, 0);
	crisp_ipc_message_done(&m);
}

static void test_health(void **state_)
{
	TestDaemon *td = daemon_start(2);
	int fd = daemon_connect(td);

	expect_health(fd, 51, true, "");
	atomic_store(&state.not_ready, true);
	expect_health(fd, 52, false, "warming up");
	atomic_store(&state.not_ready, false);
	expect_health(fd, 53, true, "");
	safe_close(fd);
	daemon_stop(td);
}

/*
 * Many slow requests in flight on one channel: they run side by side, each
 * answer carries its request's id, the answers come back in the order the
 * handlers finish, and a quick request sent after them is not held up.
 */
static void test_async_in_flight(void **state_)
{
	enum {
		N = 16
	};
	TestDaemon *td = daemon_start(N);
	int fd = daemon_connect(td);
	size_t order[N + 1];
	bool seen[N + 1] = { false };

	int64_t start = th_now_ms();
	/* Request i sleeps longest for i = 0: finishing order is the reverse of sending. */
	for (uint32_t i = 0; i < N; i++)
		send_request(fd, T_SLOW, 1000 + i, i, 100 + (N - 1 - i) * 10, NULL, 0);
	send_request(fd, T_ECHO, 1000 + N, N, 0, NULL, 0);

	for (size_t k = 0; k < N + 1; k++) {
		CrispIpcMessage m = { 0 };
		_cleanup_error_ CrispError *err = NULL;
		assert_int_equal(th_recv(fd, &m, &err), 1);
		size_t i = m.request_id - 1000;
		assert_true(i <= N);
		assert_false(seen[i]);
		seen[i] = true;
		order[k] = i;
		assert_int_equal(m.type, i == N ? ANSWER(T_ECHO) : ANSWER(T_SLOW));
		_cleanup_proto_ Crisp__SpawnReply *a =
			(Crisp__SpawnReply *)th_unpack(&crisp__spawn_reply__descriptor, &m);
		assert_int_equal(a->pid, i);
		crisp_ipc_message_done(&m);
	}
	int64_t elapsed = th_now_ms() - start;

	/* The quick synchronous request overtook every slow one. */
	assert_int_equal(order[0], N);
	/* Out of order: the longest request (0, 250 ms) was not among the first half. */
	for (size_t k = 0; k <= N / 2; k++)
		assert_int_not_equal(order[k], 0);
	/* In parallel: one after another they would take 2.8 s. */
	if (elapsed > 1500)
		fail_msg("16 slow requests took %lld ms", (long long)elapsed);

	safe_close(fd);
	daemon_stop(td);
}

/* A client that leaves while its request runs: the late answer goes nowhere, nothing leaks. */
static void test_async_client_leaves(void **state_)
{
	TestDaemon *td = daemon_start(0); /* the default pool size */
	int fd = daemon_connect(td);

	send_request(fd, T_SLOW, 1, 1, 150, NULL, 0);
	send_request(fd, T_SLOW, 2, 2, 150, NULL, 0);
	safe_close(fd);

	fd = daemon_connect(td);
	expect_echo(fd, 3, 3);
	safe_close(fd);
	/* Stopping waits for the queued requests; daemon_stop checks every fd is closed. */
	daemon_stop(td);
}

/* The daemon serves a bounded number of channels; the one too many is closed unanswered. */
static void test_channel_limit(void **state_)
{
	enum {
		MAX_CHANNELS = 16
	};
	TestDaemon *td = daemon_start(2);
	int fds[MAX_CHANNELS];

	for (size_t i = 0; i < MAX_CHANNELS; i++)
		fds[i] = daemon_connect(td);
	int extra = daemon_channel(td);
	th_expect_closed(extra);
	safe_close(extra);
	for (size_t i = 0; i < MAX_CHANNELS; i++)
		expect_echo(fds[i], i, (uint32_t)i);

	/*
	 * A closed channel frees its slot.  The echo on channel 1 makes sure the
	 * daemon saw the hangup first: it handles ready channels in slot order.
	 */
	safe_close(fds[0]);
	expect_echo(fds[1], 98, 98);
	fds[0] = daemon_connect(td);
	expect_echo(fds[0], 99, 99);
	for (size_t i = 0; i < MAX_CHANNELS; i++)
		safe_close(fds[i]);
	daemon_stop(td);
}

static void test_stop_on_signal(void **state_)
{
	TestDaemon *td = daemon_start(2);
	/* Once the hello arrived, the daemon thread has SIGTERM blocked and on its signalfd. */
	int fd = daemon_connect(td);
	expect_echo(fd, 1, 1);

	assert_int_equal(pthread_kill(td->thread, SIGTERM), 0);
	size_t before = daemon_join(td);
	/* Stopping closed the channel. */
	th_expect_closed(fd);
	safe_close(fd);
	assert_int_equal(th_count_fds(), before);
}

static void test_control_violation_stops(void **state_)
{
	TestDaemon *td = daemon_start(2);
	int fd = daemon_connect(td);
	/* Once answered, nothing of ours is unread when the daemon closes (that would be ECONNRESET). */
	expect_echo(fd, 1, 1);

	/* A control message without its fd: the supervisor is never wrong like this, so stop. */
	Crisp__ServeChannel sc = CRISP__SERVE_CHANNEL__INIT;
	assert_int_equal(
		crisp_ipc_send(td->ctl, NULL, CRISP_MSG_CTL_SERVE_CHANNEL, 0, &sc.base, NULL, 0),
		0);
	size_t before = daemon_join(td);
	th_expect_closed(fd);
	safe_close(fd);
	assert_int_equal(th_count_fds(), before);
}

static int listen_socket(const char *dir, char **ret_path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *path = xasprintf("%s/daemon.sock", dir);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	*ret_path = path;
	return fd;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Socket activation: connections are accepted when the peer's uid is the allowed one. */
static void test_socket_activation(void **state_)
{
	_cleanup_free_ char *dir = th_mkdtemp();
	_cleanup_free_ char *path = NULL;

	TestDaemon *td = daemon_start_full(2, listen_socket(dir, &path), getuid());
	int fd = connect_socket(path);
	expect_server_hello(fd);
	send_hello(fd, CRISP_MSG_HELLO_CLIENT, CRISP_IPC_PROTOCOL, CRISP_IPC_VERSION);
	expect_echo(fd, 1, 1);
	safe_close(fd);
	daemon_stop(td);
	assert_int_equal(unlink(path), 0);
	free(path);
	path = NULL;

	/* Another uid is refused before the greeting. */
	td = daemon_start_full(2, listen_socket(dir, &path), getuid() + 1);
	fd = connect_socket(path);
	th_expect_closed(fd);
	safe_close(fd);
	daemon_stop(td);
	th_rm_rf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake_check),
		cmocka_unit_test(test_error_wire_mapping),
		cmocka_unit_test(test_dispatch_request),
		cmocka_unit_test(test_dispatch_handler_error),
		cmocka_unit_test(test_dispatch_fds),
		cmocka_unit_test(test_dispatch_wrong_fd_count),
		cmocka_unit_test(test_dispatch_unknown_type),
		cmocka_unit_test(test_dispatch_before_hello),
		cmocka_unit_test(test_dispatch_undecodable),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_async_in_flight),
		cmocka_unit_test(test_async_client_leaves),
		cmocka_unit_test(test_channel_limit),
		cmocka_unit_test(test_stop_on_signal),
		cmocka_unit_test(test_control_violation_stops),
		cmocka_unit_test(test_socket_activation),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
