/*
 * exec_stream.c - the container side of streaming exec and attach: sandboxd
 * starts the command or connects to conmon, and hands the fds over; streamd
 * (through criapi) relays them to the client.
 *
 * Exec: the runtime's exec runs in the foreground under the spawn helper,
 * with pipes for stdio or, for a tty, the slave of a pty sandboxd opened
 * (the runtime makes the container's own pty and copies between the two;
 * a resize of our pty reaches it as SIGWINCH, since the slave is the
 * runtime's controlling terminal).  Its exit status is the command's.
 *
 * A session thread per exec ties the command's life to the client's: it
 * holds one end of a socketpair whose other end goes to streamd.  When the
 * command ends, the exit code is sent there as one packet; when streamd
 * closes its end first (the client went away, or streamd died), the command
 * is killed.  Either way the process spec and pid file go.
 *
 * Attach: conmon's attach socket is connected here (its path is sandboxd's
 * state, and too long for a sockaddr_un: it is reached through
 * /proc/self/fd), and for a tty container the control FIFO is opened for
 * the resize messages streamd writes ("1 <rows> <cols>").
 */
#include "containers.h"

#include "ipc_types.h"
#include "log.h"
#include "runtime.h"
#include "thread.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#define KILL_RETRY_MS 100
#define EXEC_ERROR_MAX 2048 /* bytes of the runtime's message passed on */

typedef struct ExecSession {
	Sandboxd *sd;
	char id[65];
	char token[17];
	int status_fd;	   /* ours of the socketpair; streamd has the other end */
	int wake[2];	   /* the spawn helper's answer arrived */
	int exit_code;	   /* set before wake is written */
	char *start_error; /* the runtime could not start the command: why */
} ExecSession;

static void session_free(ExecSession *s)
{
	sandboxd_exec_cleanup(s->sd, s->id, s->token);
	safe_close(s->status_fd);
	safe_close(s->wake[0]);
	safe_close(s->wake[1]);
	free(s->start_error);
	free(s);
}

/* The spawn helper's answer: the runtime (and so the command) ended. */
static void exec_ended(void *userdata, ProtobufCMessage *answer, int *fds, size_t n_fds,
		       CrispError *err)
{
	ExecSession *s = userdata;
	const Crisp__SpawnReply *a = (const void *)answer;
	for (size_t i = 0; i < n_fds; i++)
		safe_close(fds[i]);
	if (err)
		s->exit_code = -1;
	else
		s->exit_code = a->exited ? a->exit_code : 128 + a->signal;
	/* The runtime writes the pid file once the command runs: none, and it never did. */
	if (!err && s->exit_code != 0 && !sandboxd_exec_started(s->sd, s->id, s->token)) {
		_cleanup_free_ char *log =
			xasprintf("%s/%s/exec-%s.log", s->sd->bundles_dir, s->id, s->token);
		s->start_error = sandboxd_runtime_log_error(log);
		if (!s->start_error)
			s->start_error = xstrdup("the runtime could not start the command");
	}
	if (err)
		log_warning("exec in %s: %s", s->id, err->message);
	crisp_proto_free(answer);
	ssize_t _unused_ w = write(s->wake[1], "x", 1);
}

static void *session_main(void *arg)
{
	ExecSession *s = arg;
	bool client_gone = false, killed = false;

	for (;;) {
		struct pollfd p[2] = { { .fd = client_gone ? -1 : s->status_fd, .events = POLLIN },
				       { .fd = s->wake[0], .events = POLLIN } };
		int timeout = client_gone && !killed ? KILL_RETRY_MS : -1;
		int n = poll(p, 2, timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (p[1].revents)
			break;
		if (p[0].revents) /* streamd never writes: readable means closed */
			client_gone = true;
		if (client_gone && !killed)
			/* The pid file appears once the runtime started the command. */
			killed = sandboxd_exec_kill(s->sd, s->id, s->token);
	}
	if (!client_gone && (s->exit_code >= 0 || s->start_error)) {
		/* One packet: the exit code in decimal, or "error: " and why it never started. */
		_cleanup_free_ char *msg =
			s->start_error ? xasprintf("error: %.*s", EXEC_ERROR_MAX, s->start_error)
				       : xasprintf("%d", s->exit_code);
		(void)send(s->status_fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	log_debug("exec in %s ended (%d)%s", s->id, s->exit_code,
		  client_gone ? " after its client went away" : "");
	session_free(s);
	return NULL;
}

/* A pty pair: the master for streamd, the slave for the runtime. */
static int open_pty(int *ret_master, int *ret_slave, CrispError **err)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "opening /dev/ptmx");
	int unlock = 0;
	int slave = -1;
	if (ioctl(master, TIOCSPTLCK, &unlock) == 0)
		slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		int e = errno;
		safe_close(master);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, e, "opening a pty's slave");
	}
	*ret_master = master;
	*ret_slave = slave;
	return 0;
}

/*
 * The command's stdio: child[] for the runtime, mine[] for streamd (in the
 * order ExecStartRequest gives: with tty the master, else stdin's write
 * end, stdout's and stderr's read ends, each only when asked for).
 */
static int open_stdio(const Crisp__ExecStartRequest *q, int child[3], int mine[3],
		      size_t *ret_n_mine, CrispError **err)
{
	size_t n = 0;
	if (q->tty) {
		int master = -1, slave = -1;
		int r = open_pty(&master, &slave, err);
		if (r < 0)
			return r;
		mine[n++] = master;
		child[0] = slave;
		child[1] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
		child[2] = fcntl(slave, F_DUPFD_CLOEXEC, 3);
		*ret_n_mine = n;
		return child[1] < 0 || child[2] < 0
			       ? crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "dup")
			       : 0;
	}
	bool want[3] = { q->stdin, q->stdout, q->stderr };
	for (int i = 0; i < 3; i++) {
		int p[2];
		if (!want[i]) {
			child[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
			if (child[i] < 0)
				return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
							     "/dev/null");
			continue;
		}
		if (pipe2(p, O_CLOEXEC) < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "pipe");
		child[i] = i == 0 ? p[0] : p[1];
		mine[n++] = i == 0 ? p[1] : p[0];
	}
	*ret_n_mine = n;
	return 0;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		safe_close(fds[i]);
}

static int start_exec(Sandboxd *sd, const SandboxdContainer *c, const Crisp__ExecStartRequest *q,
		      int *ret_fds, size_t *ret_n, CrispError **err)
{
	_cleanup_free_ char *handler = sandboxd_container_handler(sd, c);
	ExecSession *s = xcalloc(1, sizeof(*s));
	s->sd = sd;
	s->status_fd = -1;
	s->wake[0] = s->wake[1] = -1;
	snprintf(s->id, sizeof(s->id), "%s", c->id);
	sandboxd_runtime_token(s->token);

	int child[3] = { -1, -1, -1 }, mine[3] = { -1, -1, -1 };
	int pair[2] = { -1, -1 };
	size_t n_mine = 0;
	int r = sandboxd_exec_write_spec(sd, c->id, s->token, q->cmd, q->n_cmd, q->tty, err);
	if (r == 0 && (pipe2(s->wake, O_CLOEXEC) < 0 ||
		       socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0))
		r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "exec session channels");
	if (r == 0)
		r = open_stdio(q, child, mine, &n_mine, err);
	if (r == 0) {
		char *args[3] = { handler, (char *)"exec", s->token };
		Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
		req.kind = SANDBOXD_SPAWN_RUNTIME;
		req.id = (char *)c->id;
		req.n_args = 3;
		req.args = args;
		req.wait = true;
		r = crisp_spawn_async(&sd->backend->spawn, &req, child, 3, exec_ended, s, err);
	}
	close_all(child, 3); /* the helper has its copies (or none: it failed) */
	if (r < 0) {
		close_all(mine, n_mine);
		safe_close(pair[0]);
		safe_close(pair[1]);
		session_free(s);
		return r;
	}
	/* From here exec_ended will run once: the session thread must exist to see it. */
	s->status_fd = pair[0];
	if (crisp_thread_start_detached(session_main, s) != 0)
		abort(); /* the callback would write to a session nobody frees */
	ret_fds[0] = pair[1];
	for (size_t i = 0; i < n_mine; i++)
		ret_fds[1 + i] = mine[i];
	*ret_n = 1 + n_mine;
	log_info("container %s: exec %s started (tty %d, stdin %d)", c->id, s->token, q->tty,
		 q->stdin);
	return 0;
}

static int find_running(Sandboxd *sd, const char *asked, SandboxdContainer *ret, CrispError **err)
{
	int r = sandboxd_container_find(sd, asked, ret, err);
	if (r < 0)
		return r;
	if (strcmp(ret->state, "running") != 0) {
		r = crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				    "container %s is not running (it is %s)", ret->id, ret->state);
		sandboxd_container_done(ret);
	}
	return r;
}

int sandboxd_exec_start(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Crisp__ExecStartRequest *q = (const void *)req->msg;
	if (q->n_cmd == 0 || !q->cmd[0][0])
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "cmd is empty");
	if (q->tty && q->stderr)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "a tty has no separate stderr");
	SandboxdContainer c = { 0 };
	int r = find_running(sd, q->container_id, &c, err);
	if (r < 0)
		return r;
	int fds[4];
	size_t n = 0;
	r = start_exec(sd, &c, q, fds, &n, err);
	sandboxd_container_done(&c);
	if (r < 0)
		return r;
	Crisp__ExecStartReply a = CRISP__EXEC_START_REPLY__INIT;
	r = crisp_reply(req, CRISP_MSG_SANDBOXD_EXEC_START_ANS, &a.base, fds, n);
	close_all(fds, n); /* sent (duplicated), or the channel is gone: either way not ours */
	return r;
}

/* Connects to <bundle>/attach, whose full path may not fit a sockaddr_un. */
static int connect_attach(Sandboxd *sd, const char *id, CrispError **err)
{
	_cleanup_free_ char *bundle = xasprintf("%s/%s", sd->bundles_dir, id);
	_cleanup_close_ int dir = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "%s", bundle);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/attach", dir);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		safe_close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, e,
					     "connecting to conmon's attach socket of %s", id);
	}
	return fd;
}

int sandboxd_attach(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Crisp__ContainerAttachRequest *q = (const void *)req->msg;
	SandboxdContainer c = { 0 };
	int r = find_running(sd, q->container_id, &c, err);
	if (r < 0)
		return r;
	const Runtime__V1__ContainerConfig *cfg = c.config;
	Crisp__ContainerAttachReply a = CRISP__CONTAINER_ATTACH_REPLY__INIT;
	a.tty = cfg && cfg->tty;
	a.stdin = cfg && cfg->stdin;
	a.stdin_once = cfg && cfg->stdin_once;
	int fds[2] = { -1, -1 };
	size_t n = 0;
	if (q->stdin && !a.stdin)
		r = crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				    "container %s was not created with stdin: nothing to attach "
				    "stdin to",
				    c.id);
	if (r == 0 && (r = connect_attach(sd, c.id, err)) >= 0) {
		fds[n++] = r;
		r = 0;
	}
	if (r == 0 && a.tty) {
		_cleanup_free_ char *ctl = xasprintf("%s/%s/ctl", sd->bundles_dir, c.id);
		fds[n] = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
		if (fds[n] < 0)
			r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						  "conmon's control FIFO of %s", c.id);
		else
			n++;
	}
	if (r == 0)
		log_info("container %s: attached (stdin %d)", c.id, q->stdin);
	sandboxd_container_done(&c);
	if (r == 0)
		r = crisp_reply(req, CRISP_MSG_SANDBOXD_ATTACH_ANS, &a.base, fds, n);
	close_all(fds, n);
	return r;
}
