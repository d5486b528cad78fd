/*
 * supervise.c - the daemons' lifecycle under `crisp run`.
 *
 * Each daemon gets a control channel (fd 3) from us.  For every backend we
 * create a SEQPACKET socketpair and hand one end to the backend ("serve this
 * channel") and the other to criapi ("this is your channel to imaged"),
 * both over the control channels.  When a backend restarts it gets a fresh
 * pair and criapi the new client end; when criapi restarts every backend
 * gets a fresh pair.  criapi reports each successful handshake and when it
 * serves the CRI socket; once all of that happened we tell systemd READY.
 */
#include "supervisor.h"

#include "internal.pb-c.h"
#include "ipc.h"
#include "ipc_client.h"
#include "ipc_types.h"
#include "log.h"
#include "sandbox.h"
#include "version.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>

#define RESTART_DELAY_MIN_MS 100
#define RESTART_DELAY_MAX_MS 10000
#define STABLE_AFTER_MS 10000
#define STOP_GRACE_MS 10000

typedef struct Daemon {
	const char *binary;	/* e.g. "crisp-imaged" */
	Crisp__Backend backend; /* BACKEND_NONE for criapi */
	pid_t pid;
	int control_fd;
	unsigned generation;
	unsigned failures; /* consecutive short-lived runs */
	int64_t started_ms;
	int64_t restart_at_ms; /* 0: not waiting to restart */
	bool up;	       /* criapi: serving; backend: handshake done */
} Daemon;

/* Start order; stop order is the reverse. */
static Daemon daemons[] = {
	{ .binary = "crisp-imaged", .backend = CRISP__BACKEND__BACKEND_IMAGED },
	{ .binary = "crisp-netd", .backend = CRISP__BACKEND__BACKEND_NETD },
	{ .binary = "crisp-sandboxd", .backend = CRISP__BACKEND__BACKEND_SANDBOXD },
	{ .binary = "crisp-streamd", .backend = CRISP__BACKEND__BACKEND_STREAMD },
	{ .binary = "crisp-criapi", .backend = CRISP__BACKEND__BACKEND_NONE },
};
#define N_DAEMONS ELEMENTSOF(daemons)
#define CRIAPI (&daemons[N_DAEMONS - 1])

typedef struct Supervisor {
	CrispOptions *opts;
	char *libexec_dir;
	bool notified_ready;
} Supervisor;

static Daemon *find_backend(Crisp__Backend b)
{
	for (size_t i = 0; i < N_DAEMONS; i++)
		if (daemons[i].backend == b && b != CRISP__BACKEND__BACKEND_NONE)
			return &daemons[i];
	return NULL;
}

static char *find_libexec_dir(const CrispConfig *c)
{
	if (c->libexec_dir && c->libexec_dir[0])
		return xstrdup(c->libexec_dir);

	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return xstrdup("/usr/libexec/crisp");
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	/* A build tree keeps every binary together; an install puts the daemons
	 * in <prefix>/libexec/crisp beside <prefix>/bin/crisp. */
	_cleanup_free_ char *probe = xasprintf("%s/crisp-criapi", self);
	if (access(probe, X_OK) == 0)
		return xstrdup(self);
	return xasprintf("%s/../libexec/crisp", self);
}

/* Takes the state directory's lock: one `crisp run` per state dir. */
static int take_lock(const CrispConfig *c, CrispError **err)
{
	_cleanup_free_ char *path = crisp_state_path(c, "crisp.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "opening %s", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		safe_close(fd);
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EBUSY,
				       "another crisp (pid %s) is already running with state "
				       "directory %s; stop it first or use --state",
				       pid[0] ? pid : "unknown", c->state);
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len) {
		int e = errno;
		safe_close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, e, "writing %s", path);
	}
	return fd; /* held, and so the lock, until exit */
}

static int start_daemon(Supervisor *s, Daemon *d)
{
	int sp[2];
	int r = crisp_ipc_socketpair(sp);
	if (r < 0)
		return log_error_errno(r, "socketpair for %s: %s", d->binary, strerror(-r));

	_cleanup_free_ char *path = xasprintf("%s/%s", s->libexec_dir, d->binary);
	const CrispConfig *c = &s->opts->config;
	/* The daemons read the same config; only what the command line said is repeated. */
	char *argv[] = {
		path,
		(char *)"--root",
		c->root,
		(char *)"--state",
		c->state,
		(char *)"--listen",
		c->listen,
		(char *)"--log-level",
		c->log_level,
		(char *)"--control-fd",
		(char *)"3",
		s->opts->config_given ? (char *)"--config" : NULL,
		s->opts->config_path,
		NULL,
	};

	pid_t pid = fork();
	if (pid < 0) {
		safe_close(sp[0]);
		safe_close(sp[1]);
		return log_error_errno(-errno, "fork for %s: %s", d->binary, strerror(errno));
	}
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* The child's end becomes fd 3, without CLOEXEC (dup2 onto itself keeps it). */
		if (sp[1] == 3)
			fcntl(3, F_SETFD, 0);
		else if (dup2(sp[1], 3) < 0)
			_exit(127);
		/* Readiness is ours to report; socket activation is not for children. */
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
		execv(path, argv);
		fprintf(stderr, "crisp: executing %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	safe_close(sp[1]);
	d->pid = pid;
	d->control_fd = sp[0];
	d->generation++;
	d->started_ms = crisp_now_ms();
	d->restart_at_ms = 0;
	d->up = false;
	log_info("started %s (pid %d)", d->binary, (int)pid);
	return 0;
}

/* A fresh channel between criapi and backend b, each end over its control channel. */
static void connect_backend(Daemon *b)
{
	int sp[2];

	if (b->pid <= 0 || CRIAPI->pid <= 0)
		return;
	if (crisp_ipc_socketpair(sp) < 0) {
		log_error("socketpair for the %s channel: %s", b->binary, strerror(errno));
		return;
	}
	Crisp__ServeChannel serve = CRISP__SERVE_CHANNEL__INIT;
	Crisp__BackendChannel give = CRISP__BACKEND_CHANNEL__INIT;
	give.backend = b->backend;
	give.generation = b->generation;

	int r = crisp_ipc_send(b->control_fd, NULL, CRISP_MSG_CTL_SERVE_CHANNEL, 0, &serve.base,
			       &sp[0], 1);
	if (r == 0)
		r = crisp_ipc_send(CRIAPI->control_fd, NULL, CRISP_MSG_CTL_BACKEND_CHANNEL, 0,
				   &give.base, &sp[1], 1);
	if (r < 0)
		log_warning("handing out the %s channel: %s (the process is probably restarting)",
			    b->binary, strerror(-r));
	safe_close(sp[0]);
	safe_close(sp[1]);
}

static void maybe_ready(Supervisor *s)
{
	if (s->notified_ready)
		return;
	for (size_t i = 0; i < N_DAEMONS; i++)
		if (!daemons[i].up)
			return;
	s->notified_ready = true;
	sd_notify(0, "READY=1\nSTATUS=serving CRI");
	log_info("ready: serving CRI on %s", s->opts->config.listen);
}

/* criapi's reports on its control channel. */
static void read_criapi(Supervisor *s)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcMessage m = { 0 };

	int r = crisp_ipc_recv(CRIAPI->control_fd, &m, &err);
	if (r <= 0) {
		/* criapi is going away; SIGCHLD will tell us when. */
		CRIAPI->control_fd = safe_close(CRIAPI->control_fd);
		return;
	}
	if (m.type == CRISP_MSG_CTL_BACKEND_UP && m.n_fds == 0) {
		_cleanup_proto_ Crisp__BackendUp *up = (Crisp__BackendUp *)crisp_proto_unpack(
			&crisp__backend_up__descriptor, m.payload, m.len, &err);
		Daemon *b = up ? find_backend(up->backend) : NULL;
		if (b && up->generation == b->generation) {
			b->up = true;
			log_debug("criapi reached %s", b->binary);
		}
	} else if (m.type == CRISP_MSG_CTL_FRONT_SERVING && m.n_fds == 0) {
		CRIAPI->up = true;
	} else {
		log_warning("criapi sent an unexpected control message (type %u); ignoring it",
			    m.type);
	}
	crisp_ipc_message_done(&m);
	maybe_ready(s);
}

static void describe_exit(const Daemon *d, int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "%s (pid %d) exited with status %d", d->binary, (int)d->pid,
			 WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "%s (pid %d) was killed by signal %d (%s)%s", d->binary,
			 (int)d->pid, WTERMSIG(status), strsignal(WTERMSIG(status)),
			 WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "%s (pid %d) ended with status 0x%x", d->binary, (int)d->pid,
			 status);
}

static void reap(void)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (size_t i = 0; i < N_DAEMONS; i++) {
			Daemon *d = &daemons[i];
			if (d->pid != pid)
				continue;
			int64_t now = crisp_now_ms();
			if (now - d->started_ms >= STABLE_AFTER_MS)
				d->failures = 0;
			unsigned shift = d->failures < 7 ? d->failures : 7;
			int64_t delay = (int64_t)RESTART_DELAY_MIN_MS << shift;
			if (delay > RESTART_DELAY_MAX_MS)
				delay = RESTART_DELAY_MAX_MS;
			d->failures++;

			char what[256];
			describe_exit(d, status, what, sizeof(what));
			log_warning("%s; restarting it in %lld ms", what, (long long)delay);

			d->pid = 0;
			d->up = false;
			d->control_fd = safe_close(d->control_fd);
			d->restart_at_ms = now + delay;
		}
	}
}

static void restart_due(Supervisor *s)
{
	int64_t now = crisp_now_ms();

	for (size_t i = 0; i < N_DAEMONS; i++) {
		Daemon *d = &daemons[i];
		if (!d->restart_at_ms || d->restart_at_ms > now)
			continue;
		if (start_daemon(s, d) < 0) {
			d->restart_at_ms = now + RESTART_DELAY_MAX_MS;
			continue;
		}
		if (d == CRIAPI) {
			for (size_t j = 0; j + 1 < N_DAEMONS; j++)
				connect_backend(&daemons[j]);
		} else {
			connect_backend(d);
		}
	}
}

static int next_restart_timeout(void)
{
	int64_t now = crisp_now_ms(), best = -1;
	for (size_t i = 0; i < N_DAEMONS; i++) {
		int64_t at = daemons[i].restart_at_ms;
		if (!at)
			continue;
		int64_t left = at > now ? at - now : 0;
		if (best < 0 || left < best)
			best = left;
	}
	return (int)best;
}

/* Stops each daemon in reverse start order: SIGTERM, a grace period, then SIGKILL. */
static void stop_all(void)
{
	for (size_t i = N_DAEMONS; i-- > 0;) {
		Daemon *d = &daemons[i];
		d->restart_at_ms = 0;
		if (d->pid <= 0)
			continue;
		kill(d->pid, SIGTERM);
		int64_t deadline = crisp_now_ms() + STOP_GRACE_MS;
		int status;
		for (;;) {
			pid_t r = waitpid(d->pid, &status, WNOHANG);
			if (r == d->pid || (r < 0 && errno == ECHILD))
				break;
			if (crisp_now_ms() >= deadline) {
				log_warning("%s (pid %d) did not stop within %d ms; killing it",
					    d->binary, (int)d->pid, STOP_GRACE_MS);
				kill(d->pid, SIGKILL);
				waitpid(d->pid, &status, 0);
				break;
			}
			struct timespec ts = { 0, 10 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
		log_info("stopped %s", d->binary);
		d->pid = 0;
		d->control_fd = safe_close(d->control_fd);
	}
}

int supervisor_run(CrispOptions *opts)
{
	_cleanup_error_ CrispError *err = NULL;
	Supervisor s = { .opts = opts };
	const CrispConfig *c = &opts->config;
	CrispSandboxUser user;
	sigset_t mask;
	int r;

	if (geteuid() != 0) {
		log_error("crisp run must be started as root (it starts the daemons with the "
			  "privileges each one needs, and no more)");
		return 1;
	}
	/* criapi and streamd drop to this user; refuse early rather than restart forever. */
	if (sandbox_lookup_user(c->user, &user, &err) < 0) {
		log_error("%s", err->message);
		return 1;
	}
	if ((r = crisp_mkdir_p(c->state, 0755)) < 0 || (r = crisp_mkdir_p(c->root, 0700)) < 0) {
		log_error("creating %s or %s: %s", c->state, c->root, strerror(-r));
		return 1;
	}
	int lock_fd = take_lock(c, &err);
	if (lock_fd < 0) {
		log_error("%s", err->message);
		return 1;
	}

	s.libexec_dir = find_libexec_dir(c);
	for (size_t i = 0; i < N_DAEMONS; i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", s.libexec_dir, daemons[i].binary);
		if (access(p, X_OK) < 0) {
			log_error("cannot run %s: %s (set libexec_dir in the config)", p,
				  strerror(errno));
			safe_close(lock_fd);
			free(s.libexec_dir);
			return 1;
		}
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return 1;
	}

	log_info("crisp %s starting (root %s, state %s, CRI on %s)", CRISP_VERSION, c->root,
		 c->state, c->listen);
	for (size_t i = 0; i < N_DAEMONS; i++)
		if (start_daemon(&s, &daemons[i]) < 0)
			daemons[i].restart_at_ms = crisp_now_ms() + RESTART_DELAY_MIN_MS;
	for (size_t i = 0; i + 1 < N_DAEMONS; i++)
		connect_backend(&daemons[i]);

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = CRIAPI->control_fd, .events = POLLIN },
		};
		if (poll(pfd, 2, next_restart_timeout()) < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		bool stop = false;
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGCHLD)
					reap();
				else if (si.ssi_signo == SIGHUP)
					log_info(
						"SIGHUP: nothing to reload; restart crisp to apply "
						"config changes");
				else
					stop = true;
			}
		}
		if (stop) {
			log_info("stopping");
			break;
		}
		if (pfd[1].revents && CRIAPI->control_fd >= 0)
			read_criapi(&s);
		restart_due(&s);
	}

	sd_notify(0, "STOPPING=1");
	stop_all();
	safe_close(sfd);
	free(s.libexec_dir);
	/* The lock goes with the fd; the pid file content is harmless when stale. */
	safe_close(lock_fd);
	log_info("stopped");
	return 0;
}
