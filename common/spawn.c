/*
 * spawn.c - the spawn helper process and its client.
 */
#include "spawn.h"

#include "daemon.h"
#include "ipc_types.h"
#include "log.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define SPAWN_MAX_WAITING 256

typedef struct Waiting {
	pid_t pid;
	uint64_t request_id;
	int64_t deadline_ms; /* 0: none */
	bool killed;
} Waiting;

typedef struct Helper {
	int fd;
	CrispSpawnBuilder build;
	Waiting waiting[SPAWN_MAX_WAITING];
	size_t n_waiting;
} Helper;

static void send_reply(Helper *h, uint64_t id, const Crisp__SpawnReply *a)
{
	crisp_ipc_send(h->fd, NULL, CRISP_MSG_SPAWN_ANS, id, &a->base, NULL, 0);
}

static void send_error(Helper *h, uint64_t id, const CrispError *e)
{
	Crisp__ErrorReply er = CRISP__ERROR_REPLY__INIT;
	er.code = crisp_error_to_wire(e->code);
	er.message = e->message;
	crisp_ipc_send(h->fd, NULL, CRISP_MSG_ERROR, id, &er.base, NULL, 0);
}

/* In the child: stdio from the request, nothing else open, default signals. */
_noreturn_ static void exec_child(char **argv, char **envp, const char *cwd, const int *stdio,
				  size_t n_stdio, int errpipe)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	setsid();

	/* Move every source above 2 first: a received fd may itself be 0, 1 or 2,
	 * and dup2 onto one of those would overwrite a source still needed. */
	int src[3];
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int i = 0; i < 3; i++) {
		int from = (size_t)i < n_stdio ? stdio[i] : devnull;
		src[i] = from < 0 ? -1 : fcntl(from, F_DUPFD_CLOEXEC, 3);
		if (src[i] < 0)
			goto fail;
	}
	for (int i = 0; i < 3; i++)
		if (dup2(src[i], i) < 0)
			goto fail;
	/* A terminal as stdin (an interactive exec) becomes the new session's
	 * controlling terminal: resizing it then signals SIGWINCH to the program. */
	if (isatty(0))
		(void)ioctl(0, TIOCSCTTY, 0);
	if (chdir(cwd ? cwd : "/") < 0)
		goto fail;
	/* Every other fd is CLOEXEC by convention; close_range makes sure. */
	syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */);
	fcntl(errpipe, F_SETFD, FD_CLOEXEC);
	execve(argv[0], argv, envp);
fail:;
	int e = errno;
	ssize_t _unused_ w = write(errpipe, &e, sizeof(e));
	_exit(127);
}

static void handle_request(Helper *h, CrispIpcMessage *m)
{
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_strv_free_ char **argv = NULL;
	_cleanup_strv_free_ char **envp = NULL;
	_cleanup_free_ char *cwd = NULL;
	_cleanup_proto_ Crisp__SpawnRequest *req = NULL;
	Crisp__SpawnReply a = CRISP__SPAWN_REPLY__INIT;

	req = (Crisp__SpawnRequest *)crisp_proto_unpack(&crisp__spawn_request__descriptor,
							m->payload, m->len, &err);
	if (!req) {
		send_error(h, m->request_id, err);
		return;
	}
	if (req->n_stdio != m->n_fds || m->n_fds > 3) {
		crisp_error_set(&err, CRISP_ERR_INVALID, EINVAL,
				"spawn request declares %u stdio fds but carries %zu", req->n_stdio,
				m->n_fds);
		send_error(h, m->request_id, err);
		return;
	}
	if (req->wait && h->n_waiting >= SPAWN_MAX_WAITING) {
		crisp_error_set(&err, CRISP_ERR_RESOURCE_EXHAUSTED, EAGAIN,
				"%d programs are already running", SPAWN_MAX_WAITING);
		send_error(h, m->request_id, err);
		return;
	}
	if (h->build(req, &argv, &envp, &cwd, &err) < 0 || !argv || !argv[0] || argv[0][0] != '/') {
		if (!err)
			crisp_error_set(&err, CRISP_ERR_INTERNAL, EINVAL,
					"spawn builder returned no absolute program path");
		send_error(h, m->request_id, err);
		return;
	}

	int errpipe[2];
	if (pipe2(errpipe, O_CLOEXEC) < 0) {
		crisp_error_set_errno(&err, CRISP_ERR_INTERNAL, errno, "pipe");
		send_error(h, m->request_id, err);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		crisp_error_set_errno(&err, CRISP_ERR_INTERNAL, errno, "fork");
		safe_close(errpipe[0]);
		safe_close(errpipe[1]);
		send_error(h, m->request_id, err);
		return;
	}
	if (pid == 0) {
		safe_close(errpipe[0]);
		exec_child(argv, envp ? envp : (char *[]){ NULL }, cwd, m->fds, m->n_fds,
			   errpipe[1]);
	}
	safe_close(errpipe[1]);

	int child_errno = 0;
	ssize_t n = read(errpipe[0], &child_errno, sizeof(child_errno));
	safe_close(errpipe[0]);
	if (n == sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		crisp_error_set_errno(&err, CRISP_ERR_INTERNAL, child_errno, "executing %s",
				      argv[0]);
		send_error(h, m->request_id, err);
		return;
	}

	if (req->wait) {
		h->waiting[h->n_waiting++] = (Waiting){
			.pid = pid,
			.request_id = m->request_id,
			.deadline_ms = req->timeout_ms ? crisp_now_ms() + req->timeout_ms : 0,
		};
		return;
	}
	a.pid = pid;
	send_reply(h, m->request_id, &a);
}

static void reap(Helper *h)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < h->n_waiting; i++) {
			Waiting *w = &h->waiting[i];
			if (w->pid != pid)
				continue;
			Crisp__SpawnReply a = CRISP__SPAWN_REPLY__INIT;
			a.pid = pid;
			a.exited = true;
			a.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			a.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
			a.timed_out = w->killed;
			send_reply(h, w->request_id, &a);
			h->waiting[i] = h->waiting[--h->n_waiting];
			break;
		}
		/* Programs nobody waits for (conmon detaching) are simply reaped. */
	}
}

static int next_timeout(Helper *h)
{
	int64_t now = crisp_now_ms(), best = -1;

	for (size_t i = 0; i < h->n_waiting; i++) {
		Waiting *w = &h->waiting[i];
		if (!w->deadline_ms || w->killed)
			continue;
		if (w->deadline_ms <= now) {
			kill(w->pid, SIGKILL);
			w->killed = true;
			continue;
		}
		if (best < 0 || w->deadline_ms - now < best)
			best = w->deadline_ms - now;
	}
	return (int)best;
}

_noreturn_ static void helper_main(const char *name, int fd, CrispSpawnBuilder build)
{
	Helper h = { .fd = fd, .build = build };
	sigset_t mask;

	/* Hold nothing of the daemon's: a kept copy of a channel would hide its peer's exit. */
	if (fd > 3)
		syscall(SYS_close_range, 3, (unsigned)fd - 1, 0);
	syscall(SYS_close_range, (unsigned)fd + 1, ~0U, 0);

	_cleanup_free_ char *comm =
		xasprintf("%.9s-spawn", name + (strncmp(name, "crisp-", 6) ? 0 : 6));
	prctl(PR_SET_NAME, comm, 0, 0, 0);
	/* The daemon's death closes the channel; this catches a stuck channel too. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	/* Ignore the daemon's stop signals: the daemon stops us by closing the channel. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);

	if (crisp_handshake_server_hello(fd, NULL, comm) < 0)
		_exit(1);

	bool greeted = false;
	for (;;) {
		struct pollfd pfd[2] = { { .fd = fd, .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };
		if (poll(pfd, 2, next_timeout(&h)) < 0 && errno != EINTR)
			_exit(1);
		if (pfd[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si))
				;
			reap(&h);
		}
		if (!pfd[0].revents)
			continue;

		_cleanup_error_ CrispError *err = NULL;
		CrispIpcMessage m = { 0 };
		int r = crisp_ipc_recv(fd, &m, &err);
		if (r <= 0)
			_exit(r == 0 ? 0 : 1);
		if (!greeted) {
			r = crisp_handshake_check(&m, CRISP_MSG_HELLO_CLIENT, NULL, &err);
			crisp_ipc_message_done(&m);
			if (r < 0)
				_exit(1);
			greeted = true;
			continue;
		}
		if (m.type != CRISP_MSG_SPAWN_REQ) {
			/* The one message type; anything else ends the helper. */
			log_error("spawn helper: refused message type %u; exiting", m.type);
			_exit(1);
		}
		handle_request(&h, &m);
		crisp_ipc_message_done(&m);
	}
}

int crisp_spawn_helper_start(const char *name, CrispSpawnBuilder build, CrispSpawnHelper *ret,
			     CrispError **err)
{
	int sp[2];
	int r = crisp_ipc_socketpair(sp);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "socketpair");

	pid_t pid = fork();
	if (pid < 0) {
		safe_close(sp[0]);
		safe_close(sp[1]);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "forking spawn helper");
	}
	if (pid == 0) {
		safe_close(sp[0]);
		helper_main(name, sp[1], build);
	}
	safe_close(sp[1]);

	_cleanup_free_ char *peer =
		xasprintf("%.9s-spawn", name + (strncmp(name, "crisp-", 6) ? 0 : 6));
	CrispIpcClient *c = crisp_ipc_client_new(peer);
	r = crisp_ipc_client_attach(c, sp[0], 5000, err);
	if (r < 0) {
		crisp_ipc_client_free(c);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return crisp_error_wrap(err, "starting spawn helper");
	}
	ret->pid = pid;
	ret->client = c;
	return 0;
}

int crisp_spawn(CrispSpawnHelper *h, const Crisp__SpawnRequest *req, const int *stdio_fds,
		size_t n_stdio, int64_t deadline_ms, Crisp__SpawnReply **ret, CrispError **err)
{
	Crisp__SpawnRequest copy = *req;
	copy.n_stdio = (uint32_t)n_stdio;
	return crisp_ipc_client_call(h->client, CRISP_MSG_SPAWN_REQ, &copy.base, stdio_fds, n_stdio,
				     CRISP_MSG_SPAWN_ANS, &crisp__spawn_reply__descriptor,
				     deadline_ms, (ProtobufCMessage **)ret, NULL, NULL, err);
}

int crisp_spawn_async(CrispSpawnHelper *h, const Crisp__SpawnRequest *req, const int *stdio_fds,
		      size_t n_stdio, CrispIpcCallback callback, void *userdata, CrispError **err)
{
	Crisp__SpawnRequest copy = *req;
	copy.n_stdio = (uint32_t)n_stdio;
	return crisp_ipc_client_call_async(
		h->client, CRISP_MSG_SPAWN_REQ, &copy.base, stdio_fds, n_stdio, CRISP_MSG_SPAWN_ANS,
		&crisp__spawn_reply__descriptor, 0, callback, userdata, err);
}

void crisp_spawn_helper_stop(CrispSpawnHelper *h)
{
	if (h->client) {
		crisp_ipc_client_free(h->client);
		h->client = NULL;
	}
	if (h->pid > 0) {
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
	}
}
