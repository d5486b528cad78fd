/*
 * test_spawn.c - the spawn helper (common/spawn.c).
 *
 * crisp_spawn_helper_start() forks a helper from this process, and cmocka
 * runs every test in this process, so each test starts its own helper and
 * stops it before it returns.  The builder below is the helper's whole
 * policy: it knows a few kinds and refuses the rest.
 */
#include "test_helpers.h"

#include "daemon.h"
#include "ipc_types.h"
#include "spawn.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

enum {
	K_EXIT3 = 1,	/* /bin/sh -c "exit 3" */
	K_SLEEP = 2,	/* /bin/sleep 10 */
	K_ECHO = 3,	/* /bin/echo hi */
	K_RELATIVE = 4, /* a relative program path, which the helper refuses */
	K_MISSING = 5,	/* a program that does not exist */
	K_ENV = 6,	/* prints $CRISP_TEST and its first argument */
	K_LIST_FDS = 7, /* lists its own open fds */
	K_PWD = 8,	/* prints its working directory: "/" */
	K_PWD_TMP = 9,	/* the same, asked to start in /tmp */
};

static void push_all(char ***v, const char *const *items)
{
	for (; *items; items++)
		strv_push(v, *items);
}

static int test_builder(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
			char **ret_cwd, CrispError **err)
{
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_strv_free_ char **envp = NULL;

	switch (req->kind) {
	case K_EXIT3:
		push_all(&argv, (const char *const[]){ "/bin/sh", "-c", "exit 3", NULL });
		break;
	case K_SLEEP:
		push_all(&argv, (const char *const[]){ "/bin/sleep", "10", NULL });
		break;
	case K_ECHO:
		push_all(&argv, (const char *const[]){ "/bin/echo", "hi", NULL });
		break;
	case K_RELATIVE:
		push_all(&argv, (const char *const[]){ "sh", "-c", "exit 0", NULL });
		break;
	case K_MISSING:
		push_all(&argv, (const char *const[]){ "/nonexistent/crisp-test-program", NULL });
		break;
	case K_ENV:
		/* The builder checks what it takes from the request. */
		if (req->n_args != 1 || strchr(req->args[0], '\n'))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "kind %u takes one single-line argument", req->kind);
		push_all(&argv,
			 (const char *const[]){ "/bin/sh", "-c", "echo \"$CRISP_TEST $0\"", NULL });
		strv_push(&argv, req->args[0]);
		strv_push(&envp, "CRISP_TEST=from-builder");
		break;
	case K_LIST_FDS:
		push_all(&argv, (const char *const[]){ "/bin/ls", "/proc/self/fd", NULL });
		break;
	case K_PWD_TMP:
	case K_PWD:
		if (req->kind == K_PWD_TMP)
			*ret_cwd = xstrdup("/tmp");
		push_all(&argv, (const char *const[]){ "/bin/sh", "-c", "pwd", NULL });
		break;
	default:
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "unknown spawn kind %u",
				       req->kind);
	}
	if (!envp)
		strv_push(&envp, "PATH=/usr/bin:/bin");
	*ret_argv = TAKE_PTR(argv);
	*ret_envp = TAKE_PTR(envp);
	return 0;
}

static void helper_start(CrispSpawnHelper *h)
{
	_cleanup_error_ CrispError *err = NULL;

	if (crisp_spawn_helper_start("crisp-testd", test_builder, h, &err) < 0)
		fail_msg("starting the helper: %s", err->message);
	assert_true(h->pid > 0);
	assert_non_null(h->client);
}

/* Stops the helper and checks it is gone (crisp_spawn_helper_stop reaped it). */
static void helper_stop(CrispSpawnHelper *h)
{
	pid_t pid = h->pid;

	crisp_spawn_helper_stop(h);
	assert_int_equal(h->pid, 0);
	assert_null(h->client);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static int spawn(CrispSpawnHelper *h, uint32_t kind, bool wait, uint32_t timeout_ms,
		 const int *stdio, size_t n_stdio, Crisp__SpawnReply **ret, CrispError **err)
{
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = kind;
	req.id = (char *)"c1";
	req.wait = wait;
	req.timeout_ms = timeout_ms;
	return crisp_spawn(h, &req, stdio, n_stdio, crisp_now_ms() + TH_TIMEOUT_MS, ret, err);
}

static Crisp__SpawnReply *spawn_ok(CrispSpawnHelper *h, uint32_t kind, bool wait,
				   uint32_t timeout_ms, const int *stdio, size_t n_stdio)
{
	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;

	if (spawn(h, kind, wait, timeout_ms, stdio, n_stdio, &a, &err) < 0)
		fail_msg("spawn kind %u: %s", kind, err->message);
	assert_non_null(a);
	assert_true(a->pid > 0);
	return a;
}

/* Runs kind with stdout on a pipe, waits for it, and returns what it printed. */
static char *spawn_output(CrispSpawnHelper *h, uint32_t kind)
{
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* stdin from /dev/null (by the helper), stdout on our pipe. */
	int stdio[2] = { open("/dev/null", O_RDONLY | O_CLOEXEC), p[1] };
	assert_true(stdio[0] >= 0);
	_cleanup_proto_ Crisp__SpawnReply *a = spawn_ok(h, kind, true, 0, stdio, 2);
	assert_true(a->exited);
	assert_int_equal(a->exit_code, 0);
	assert_int_equal(a->signal, 0);
	assert_false(a->timed_out);
	safe_close(stdio[0]);
	safe_close(p[1]);
	char *out = th_read_all(p[0]);
	safe_close(p[0]);
	return out;
}

static void test_exit_code(void **state)
{
	CrispSpawnHelper h = { 0 };

	helper_start(&h);
	_cleanup_proto_ Crisp__SpawnReply *a = spawn_ok(&h, K_EXIT3, true, 0, NULL, 0);
	assert_true(a->exited);
	assert_int_equal(a->exit_code, 3);
	assert_int_equal(a->signal, 0);
	assert_false(a->timed_out);
	helper_stop(&h);
}

static void test_timeout(void **state)
{
	CrispSpawnHelper h = { 0 };

	helper_start(&h);
	int64_t start = th_now_ms();
	_cleanup_proto_ Crisp__SpawnReply *a = spawn_ok(&h, K_SLEEP, true, 200, NULL, 0);
	int64_t elapsed = th_now_ms() - start;
	assert_true(a->exited);
	assert_true(a->timed_out);
	assert_int_equal(a->signal, SIGKILL);
	assert_true(elapsed >= 190);
	if (elapsed > 3000)
		fail_msg("a 200 ms timeout took %lld ms", (long long)elapsed);
	/* The program is gone: the helper reaped it. */
	assert_int_equal(kill(a->pid, 0), -1);
	helper_stop(&h);
}

static void test_stdout_pipe(void **state)
{
	CrispSpawnHelper h = { 0 };

	helper_start(&h);
	_cleanup_free_ char *out = spawn_output(&h, K_ECHO);
	assert_string_equal(out, "hi\n");
	helper_stop(&h);
}

static void test_env_and_args(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispSpawnHelper h = { 0 };
	Crisp__SpawnReply *a = NULL;
	int p[2];

	helper_start(&h);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = K_ENV;
	req.n_args = 1;
	req.args = (char *[]){ (char *)"arg-one" };
	req.wait = true;
	int stdio[2] = { p[1], p[1] };
	/* Two stdio fds; stdin being a pipe's write end is odd but harmless here. */
	if (crisp_spawn(&h, &req, stdio, 2, crisp_now_ms() + TH_TIMEOUT_MS, &a, &err) < 0)
		fail_msg("spawn: %s", err->message);
	assert_int_equal(a->exit_code, 0);
	crisp_proto_free(a);
	a = NULL;
	safe_close(p[1]);
	_cleanup_free_ char *out = th_read_all(p[0]);
	safe_close(p[0]);
	assert_string_equal(out, "from-builder arg-one\n");

	/* The builder's own checks reach the caller. */
	req.args = (char *[]){ (char *)"two\nlines" };
	assert_true(crisp_spawn(&h, &req, NULL, 0, crisp_now_ms() + TH_TIMEOUT_MS, &a, &err) < 0);
	assert_null(a);
	assert_error(err, CRISP_ERR_INVALID, "kind 6 takes one single-line argument");
	helper_stop(&h);
}

/* The program gets stdio and nothing else: not the helper's channel, not the test's fds. */
static void test_no_inherited_fds(void **state)
{
	CrispSpawnHelper h = { 0 };
	/* Left without CLOEXEC on purpose: the helper must close it anyway. */
	int leaky = open("/dev/null", O_RDONLY);

	assert_true(leaky >= 0);
	helper_start(&h);
	_cleanup_free_ char *out = spawn_output(&h, K_LIST_FDS);
	/* 0-2, and 3 is ls's own handle on /proc/self/fd. */
	assert_string_equal(out, "0\n1\n2\n3\n");
	helper_stop(&h);
	safe_close(leaky);
}

/* Not the daemon's working directory: "/", or the one the builder names. */
static void test_working_directory(void **state)
{
	CrispSpawnHelper h = { 0 };

	assert_int_equal(chdir("/proc"), 0);
	helper_start(&h);
	_cleanup_free_ char *root = spawn_output(&h, K_PWD);
	_cleanup_free_ char *tmp = spawn_output(&h, K_PWD_TMP);
	assert_string_equal(root, "/\n");
	assert_string_equal(tmp, "/tmp\n");
	helper_stop(&h);
}

static void test_refusals(void **state)
{
	CrispSpawnHelper h = { 0 };

	helper_start(&h);
	for (uint32_t kind = 0; kind <= 99; kind += 99) {
		_cleanup_error_ CrispError *err = NULL;
		Crisp__SpawnReply *a = NULL;
		char want[64];
		assert_true(spawn(&h, kind, true, 0, NULL, 0, &a, &err) < 0);
		assert_null(a);
		snprintf(want, sizeof(want), "unknown spawn kind %u", kind);
		assert_error(err, CRISP_ERR_INVALID, want);
	}

	_cleanup_error_ CrispError *err = NULL;
	Crisp__SpawnReply *a = NULL;
	assert_true(spawn(&h, K_RELATIVE, true, 0, NULL, 0, &a, &err) < 0);
	assert_error(err, CRISP_ERR_INTERNAL, "no absolute program path");
	err = crisp_error_free(err);

	assert_true(spawn(&h, K_MISSING, true, 0, NULL, 0, &a, &err) < 0);
	assert_error(err, CRISP_ERR_INTERNAL,
		     "executing /nonexistent/crisp-test-program: No such file or directory");
	err = crisp_error_free(err);

	/* A request whose n_stdio does not match the fds it carries. */
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = K_EXIT3;
	req.wait = true;
	req.n_stdio = 2;
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(crisp_ipc_client_call(h.client, CRISP_MSG_SPAWN_REQ, &req.base, &devnull,
					       1, CRISP_MSG_SPAWN_ANS,
					       &crisp__spawn_reply__descriptor,
					       crisp_now_ms() + TH_TIMEOUT_MS,
					       (ProtobufCMessage **)&a, NULL, NULL, &err) < 0,
			 1);
	assert_error(err, CRISP_ERR_INVALID, "declares 2 stdio fds but carries 1");
	safe_close(devnull);

	/* After all that the helper still works. */
	_cleanup_proto_ Crisp__SpawnReply *ok = spawn_ok(&h, K_EXIT3, true, 0, NULL, 0);
	assert_int_equal(ok->exit_code, 3);
	helper_stop(&h);
}

/* Without wait, the answer comes at once with the pid; the helper reaps the program later. */
static void test_no_wait(void **state)
{
	CrispSpawnHelper h = { 0 };

	helper_start(&h);
	int64_t start = th_now_ms();
	_cleanup_proto_ Crisp__SpawnReply *a = spawn_ok(&h, K_SLEEP, false, 0, NULL, 0);
	assert_true(th_now_ms() - start < 2000);
	assert_false(a->exited);
	/* The program is the helper's child, not ours; stop it so nothing outlives the test. */
	assert_int_equal(kill(a->pid, SIGKILL), 0);
	_cleanup_proto_ Crisp__SpawnReply *b = spawn_ok(&h, K_EXIT3, true, 0, NULL, 0);
	assert_int_equal(b->exit_code, 3);
	helper_stop(&h);
}

typedef struct SlowSpawn {
	CrispSpawnHelper *helper;
	int r;
	Crisp__SpawnReply *reply;
	CrispError *err;
} SlowSpawn;

static void *slow_spawn_main(void *arg)
{
	SlowSpawn *s = arg;
	s->r = spawn(s->helper, K_SLEEP, true, 400, NULL, 0, &s->reply, &s->err);
	return NULL;
}

/* A program being waited for does not hold up another request on the same helper. */
static void test_parallel_requests(void **state)
{
	CrispSpawnHelper h = { 0 };
	SlowSpawn slow = { .helper = &h };
	pthread_t t;

	helper_start(&h);
	int64_t start = th_now_ms();
	assert_int_equal(pthread_create(&t, NULL, slow_spawn_main, &slow), 0);
	_cleanup_proto_ Crisp__SpawnReply *quick = spawn_ok(&h, K_EXIT3, true, 0, NULL, 0);
	int64_t quick_ms = th_now_ms() - start;
	assert_int_equal(quick->exit_code, 3);
	assert_int_equal(pthread_join(t, NULL), 0);
	if (slow.r < 0)
		fail_msg("slow spawn: %s", slow.err->message);
	assert_true(slow.reply->timed_out);
	crisp_proto_free(slow.reply);
	/* Well before the slow one's 400 ms timeout, whichever was sent first. */
	if (quick_ms >= 350)
		fail_msg("the quick request took %lld ms", (long long)quick_ms);
	helper_stop(&h);
}

/* The helper names itself after the daemon, so ps shows whose helper it is. */
static void test_helper_name(void **state)
{
	CrispSpawnHelper h = { 0 };
	char path[64], comm[32] = { 0 };

	helper_start(&h);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)h.pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(comm, sizeof(comm), f));
	fclose(f);
	assert_string_equal(comm, "testd-spawn\n");
	helper_stop(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_code),	 cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_stdout_pipe),	 cmocka_unit_test(test_env_and_args),
		cmocka_unit_test(test_no_inherited_fds), cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_no_wait),		 cmocka_unit_test(test_parallel_requests),
		cmocka_unit_test(test_helper_name),	 cmocka_unit_test(test_working_directory),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
