/*
 * backends.c - criapi's channels to the backends.
 *
 * The supervisor hands us the client end of each backend's channel over the
 * control channel, again whenever that backend restarts.  We check the
 * backend's handshake, swap the channel into that backend's client (calls in
 * flight on the old one fail UNAVAILABLE), and report the success back, which
 * is how the supervisor knows the suite is ready.
 *
 * Under systemd there is no supervisor: each backend's socket unit listens
 * on <state>/internal/<backend>.sock, and a connector thread dials every
 * backend that is down, every half second.
 */
#include "criapi.h"

#include "ipc_types.h"
#include "log.h"
#include "thread.h"

#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>

#define HANDSHAKE_TIMEOUT_MS 5000

static const char *const backend_names[] = {
	[CRISP__BACKEND__BACKEND_IMAGED] = "crisp-imaged",
	[CRISP__BACKEND__BACKEND_SANDBOXD] = "crisp-sandboxd",
	[CRISP__BACKEND__BACKEND_NETD] = "crisp-netd",
	[CRISP__BACKEND__BACKEND_STREAMD] = "crisp-streamd",
};
#define N_BACKENDS ELEMENTSOF(backend_names)

static CrispIpcClient *clients[N_BACKENDS];
static int control_fd = -1;
static pthread_mutex_t control_send_lock = PTHREAD_MUTEX_INITIALIZER;

CrispIpcClient *criapi_backend(Crisp__Backend b)
{
	if ((unsigned)b == 0 || (unsigned)b >= N_BACKENDS)
		abort(); /* every caller names a backend it knows */
	return clients[b];
}

/* Between attempts while the backend is down (restarting, as a rule). */
#define LONG_POLL_RETRY_MS 200
/* The answer's allowance beyond the backend's own wait. */
#define LONG_POLL_SLACK_MS 5000

ProtobufCMessage *criapi_backend_long_poll(Crisp__Backend b, uint16_t type,
					   const ProtobufCMessage *msg,
					   const ProtobufCMessageDescriptor *ans_desc, int wait_ms)
{
	ProtobufCMessage *answer = NULL;
	CrispError *err = NULL;
	if (crisp_ipc_client_call(criapi_backend(b), type, msg, NULL, 0, type + 1, ans_desc,
				  crisp_now_ms() + wait_ms + LONG_POLL_SLACK_MS, &answer, NULL,
				  NULL, &err) == 0)
		return answer;
	crisp_error_free(err);
	struct timespec ts = { 0, LONG_POLL_RETRY_MS * 1000 * 1000 };
	nanosleep(&ts, NULL);
	return NULL;
}

static void report(uint16_t type, const ProtobufCMessage *m)
{
	if (control_fd < 0)
		return;
	int r = crisp_ipc_send(control_fd, &control_send_lock, type, 0, m, NULL, 0);
	if (r < 0)
		log_warning("reporting to the supervisor: %s", strerror(-r));
}

void criapi_backends_report_serving(const char *listen)
{
	Crisp__FrontServing f = CRISP__FRONT_SERVING__INIT;
	f.listen = (char *)listen;
	report(CRISP_MSG_CTL_FRONT_SERVING, &f.base);
}

static void take_channel(CrispIpcMessage *m)
{
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_proto_ Crisp__BackendChannel *bc = (Crisp__BackendChannel *)crisp_proto_unpack(
		&crisp__backend_channel__descriptor, m->payload, m->len, &err);
	if (!bc || (unsigned)bc->backend == 0 || (unsigned)bc->backend >= N_BACKENDS) {
		log_error("control channel: a backend channel message that names no backend");
		return;
	}
	int fd = crisp_ipc_message_take_fd(m, 0);
	if (crisp_ipc_client_attach(clients[bc->backend], fd, HANDSHAKE_TIMEOUT_MS, &err) < 0) {
		log_warning("channel to %s: %s", backend_names[bc->backend], err->message);
		return;
	}
	log_info("connected to %s", backend_names[bc->backend]);

	Crisp__BackendUp up = CRISP__BACKEND_UP__INIT;
	up.backend = bc->backend;
	up.generation = bc->generation;
	report(CRISP_MSG_CTL_BACKEND_UP, &up.base);
}

static void *control_main(void *arg _unused_)
{
	for (;;) {
		_cleanup_error_ CrispError *err = NULL;
		CrispIpcMessage m = { 0 };
		int r = crisp_ipc_recv(control_fd, &m, &err);
		if (r <= 0) {
			/* Without the supervisor nobody restarts our backends: stop too. */
			log_error("the supervisor's control channel %s; stopping",
				  r == 0 ? "closed" : err->message);
			/* To the main thread, which waits for it in sigwaitinfo. */
			syscall(SYS_tgkill, getpid(), getpid(), SIGTERM);
			return NULL;
		}
		if (m.type == CRISP_MSG_CTL_BACKEND_CHANNEL && m.n_fds == 1)
			take_channel(&m);
		else
			log_error("control channel: unexpected message type %u with %zu fds",
				  m.type, m.n_fds);
		crisp_ipc_message_done(&m);
	}
}

static char *internal_dir;

static int dial(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s.sock", internal_dir,
			 name + strlen("crisp-"));
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		safe_close(fd);
		return -e;
	}
	return fd;
}

static void *connector_main(void *arg _unused_)
{
	for (;;) {
		for (size_t i = 1; i < N_BACKENDS; i++) {
			_cleanup_error_ CrispError *err = NULL;
			if (crisp_ipc_client_is_up(clients[i]))
				continue;
			int fd = dial(backend_names[i]);
			if (fd < 0)
				continue;
			if (crisp_ipc_client_attach(clients[i], fd, HANDSHAKE_TIMEOUT_MS, &err) < 0)
				log_warning("channel to %s: %s", backend_names[i], err->message);
			else
				log_info("connected to %s", backend_names[i]);
		}
		struct timespec ts = { 0, 500 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

int criapi_backends_start(int fd, const char *state_dir, CrispError **err)
{
	for (size_t i = 1; i < N_BACKENDS; i++)
		clients[i] = crisp_ipc_client_new(backend_names[i]);
	control_fd = fd;
	internal_dir = xasprintf("%s/internal", state_dir);

	int r = crisp_thread_start_detached(fd >= 0 ? control_main : connector_main, NULL);
	if (r != 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, r, "starting control thread: %s",
				       strerror(r));
	return 0;
}

void criapi_backends_stop(void)
{
	for (size_t i = 1; i < N_BACKENDS; i++)
		if (clients[i])
			crisp_ipc_client_shutdown(clients[i]);
}
