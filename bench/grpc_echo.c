/*
 * grpc_echo - the gRPC C core floor under criapi, for cri_bench to compare.
 *
 * A server with criapi's shape and none of its work: connections accepted by
 * hand and handed to grpc_server_add_channel_from_fd, one completion queue
 * thread, the Version method registered with its payload read up front and
 * four requests kept posted.  Each Version call is decoded as a
 * VersionRequest and answered OK with the VersionResponse criapi sends.
 *
 * --workers 0 (the default) answers on the completion-queue thread: that is
 * the least any server on gRPC C core can do per call here.  --workers N
 * hands each call to a pool of N threads through a mutex and a condition
 * variable, as criapi does, so the cost of that handoff shows on its own.
 * Unknown methods are answered UNIMPLEMENTED on the completion-queue thread.
 *
 * Usage: grpc_echo --socket PATH [--workers N]; stops on SIGTERM or SIGINT.
 */
#include "api.pb-c.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define VERSION_METHOD "/runtime.v1.RuntimeService/Version"
#define POSTED 4

typedef enum State {
	REQUESTED,
	FINISHING,
	SHUTDOWN,
} State;

typedef struct Call {
	State state;
	bool registered; /* false: the generic request for unknown methods */
	struct Call *next;
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array metadata;
	grpc_byte_buffer *payload;
	grpc_call_details details;
	grpc_byte_buffer *response;
	grpc_slice status_details;
	int cancelled;
} Call;

static grpc_server *server;
static grpc_completion_queue *cq;
static void *version_method;
static int listen_fd, stop_fd;
static atomic_bool shutting_down; /* no re-posting once shutdown has begun */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static Call *head, *tail;
static bool stopping, shutdown_done;

static void *xmalloc0(size_t n)
{
	void *p = calloc(1, n);
	if (!p)
		abort();
	return p;
}

static void call_free(Call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->metadata);
	if (!c->registered)
		grpc_call_details_destroy(&c->details);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->response)
		grpc_byte_buffer_destroy(c->response);
	grpc_slice_unref(c->status_details);
	free(c);
}

static void post(bool registered)
{
	Call *c = xmalloc0(sizeof(*c));
	c->state = REQUESTED;
	c->registered = registered;
	c->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&c->metadata);
	grpc_call_error e;
	if (registered) {
		e = grpc_server_request_registered_call(server, version_method, &c->call,
							&c->deadline, &c->metadata, &c->payload, cq,
							cq, c);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(server, &c->call, &c->details, &c->metadata, cq, cq,
					     c);
	}
	if (e != GRPC_CALL_OK)
		call_free(c);
}

static void finish(Call *c, grpc_status_code code, const char *details)
{
	grpc_op ops[4];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->response) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->response;
	}
	c->status_details = grpc_slice_from_copied_string(details);
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &c->status_details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->state = FINISHING;
	if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK)
		call_free(c);
}

/* The same decode and encode criapi does for Version, minus its budget
 * allocator, validation and logging. */
static void answer_version(Call *c)
{
	if (!c->payload) {
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message");
		return;
	}
	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, c->payload)) {
		finish(c, GRPC_STATUS_INTERNAL, "unreadable payload");
		return;
	}
	grpc_slice raw = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	Runtime__V1__VersionRequest *req = runtime__v1__version_request__unpack(
		NULL, GRPC_SLICE_LENGTH(raw), GRPC_SLICE_START_PTR(raw));
	grpc_slice_unref(raw);
	if (!req) {
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, "malformed VersionRequest");
		return;
	}
	runtime__v1__version_request__free_unpacked(req, NULL);

	Runtime__V1__VersionResponse v;
	runtime__v1__version_response__init(&v);
	v.version = (char *)"0.1.0";
	v.runtime_name = (char *)"grpc_echo";
	v.runtime_version = (char *)"0.1.0";
	v.runtime_api_version = (char *)"v1";
	grpc_slice out = grpc_slice_malloc(runtime__v1__version_response__get_packed_size(&v));
	runtime__v1__version_response__pack(&v, GRPC_SLICE_START_PTR(out));
	c->response = grpc_raw_byte_buffer_create(&out, 1);
	grpc_slice_unref(out);
	finish(c, GRPC_STATUS_OK, "");
}

static void *worker_main(void *arg)
{
	for (;;) {
		pthread_mutex_lock(&lock);
		while (!head && !stopping)
			pthread_cond_wait(&cond, &lock);
		Call *c = head;
		if (!c) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		head = c->next;
		if (!head)
			tail = NULL;
		pthread_mutex_unlock(&lock);
		answer_version(c);
	}
}

static void enqueue(Call *c)
{
	pthread_mutex_lock(&lock);
	c->next = NULL;
	if (tail)
		tail->next = c;
	else
		head = c;
	tail = c;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

typedef struct CqArgs {
	unsigned workers;
} CqArgs;

static void *cq_main(void *arg)
{
	const CqArgs *a = arg;
	for (;;) {
		grpc_event ev =
			grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		Call *c = ev.tag;
		switch (c->state) {
		case SHUTDOWN:
			free(c);
			pthread_mutex_lock(&lock);
			shutdown_done = true;
			pthread_cond_broadcast(&cond);
			pthread_mutex_unlock(&lock);
			break;
		case FINISHING:
			call_free(c);
			break;
		case REQUESTED:
			if (!ev.success) {
				call_free(c);
				break;
			}
			if (!atomic_load(&shutting_down))
				post(c->registered);
			if (!c->registered)
				finish(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
			else if (a->workers)
				enqueue(c);
			else
				answer_version(c);
			break;
		}
	}
}

static void *accept_main(void *arg)
{
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
	for (;;) {
		struct pollfd pfd[2] = { { .fd = listen_fd, .events = POLLIN },
					 { .fd = stop_fd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0)
			grpc_server_add_channel_from_fd(server, fd, creds);
	}
	grpc_server_credentials_release(creds);
	return NULL;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "grpc_echo: socket path too long\n");
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		fprintf(stderr, "grpc_echo: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	CqArgs args = { 0 };

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--socket") == 0)
			path = argv[i + 1];
		else if (strcmp(argv[i], "--workers") == 0)
			args.workers = (unsigned)strtoul(argv[i + 1], NULL, 10);
	}
	if (!path || argc % 2 == 0) {
		fprintf(stderr, "usage: grpc_echo --socket PATH [--workers N]\n");
		return 2;
	}

	/* Signals go to sigwait below; the threads started later inherit the mask. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	listen_fd = listen_unix(path);
	stop_fd = eventfd(0, EFD_CLOEXEC);
	if (listen_fd < 0 || stop_fd < 0)
		return 1;

	grpc_init();
	cq = grpc_completion_queue_create_for_next(NULL);
	server = grpc_server_create(NULL, NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	version_method = grpc_server_register_method(server, VERSION_METHOD, NULL,
						     GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	grpc_server_start(server);
	for (int k = 0; k < POSTED; k++) {
		post(true);
		post(false);
	}

	pthread_t *workers = xmalloc0((args.workers + 1) * sizeof(pthread_t));
	pthread_t cq_thread, accept_thread;
	for (unsigned i = 0; i < args.workers; i++)
		if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0)
			abort();
	if (pthread_create(&cq_thread, NULL, cq_main, &args) != 0 ||
	    pthread_create(&accept_thread, NULL, accept_main, NULL) != 0)
		abort();
	printf("grpc_echo: serving on %s with %u workers\n", path, args.workers);
	fflush(stdout);

	int sig;
	sigwait(&mask, &sig);

	/* criapi's shutdown order (ARCHITECTURE.md §9). */
	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof(one)) < 0)
		abort();
	pthread_join(accept_thread, NULL);
	atomic_store(&shutting_down, true);
	Call *tag = xmalloc0(sizeof(*tag));
	tag->state = SHUTDOWN;
	grpc_server_shutdown_and_notify(server, cq, tag);
	grpc_server_cancel_all_calls(server);
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < args.workers; i++)
		pthread_join(workers[i], NULL);
	while (head) {
		Call *c = head;
		head = c->next;
		call_free(c);
	}
	pthread_mutex_lock(&lock);
	while (!shutdown_done)
		pthread_cond_wait(&cond, &lock);
	pthread_mutex_unlock(&lock);
	grpc_server_destroy(server);
	grpc_completion_queue_shutdown(cq);
	pthread_join(cq_thread, NULL);
	grpc_completion_queue_destroy(cq);
	grpc_shutdown();
	free(workers);
	close(listen_fd);
	close(stop_fd);
	unlink(path);
	return 0;
}
