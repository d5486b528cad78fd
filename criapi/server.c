/*
 * server.c - the CRI gRPC server on gRPC C core.
 *
 * Threads: one accept thread hands each connection on the CRI socket to gRPC
 * (gRPC 1.51 cannot adopt a listening fd), one completion-queue thread
 * receives call arrivals and completions, and a pool of workers runs the
 * handlers, so a slow call never holds up the others.  Every method of the
 * two CRI services is registered, and a generic request is kept posted so
 * an unknown method is answered UNIMPLEMENTED at once instead of hanging
 * until its deadline.
 */
#include "criapi.h"

#include "log.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

/* kubelet's limits, so that neither side cuts what the other may send. */
#define CRIAPI_MAX_MESSAGE (16 * 1024 * 1024)
/* Requests kept posted per method, so arrivals do not wait for a re-post. */
#define CRIAPI_POSTED_PER_METHOD 4

typedef struct Method {
	char *path; /* "/runtime.v1.RuntimeService/Version" */
	const char *service;
	const char *name;
	const ProtobufCMessageDescriptor *input;
	CriapiHandler handler;
	void *registered;
} Method;

typedef enum CallState {
	CALL_REQUESTED, /* posted, waiting for a client */
	CALL_FINISHING, /* answer sent, waiting for the batch to complete */
	CALL_SHUTDOWN,	/* the server's shutdown notification */
} CallState;

typedef struct Call {
	CallState state;
	struct Call *next; /* work queue */
	CriapiServer *server;
	Method *method; /* NULL: a call to an unregistered method */
	grpc_call *call;
	gpr_timespec deadline;
	grpc_metadata_array metadata;
	grpc_byte_buffer *payload;
	grpc_call_details details; /* unregistered calls only */
	grpc_byte_buffer *response;
	grpc_slice status_details;
	int cancelled;
} Call;

struct CriapiServer {
	grpc_server *server;
	grpc_completion_queue *cq;
	Method *methods;
	size_t n_methods;

	int listen_fd;
	int stop_fd; /* eventfd: wakes the accept thread */
	pthread_t accept_thread, cq_thread;
	pthread_t *workers;
	unsigned n_workers;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	Call *head, *tail;
	bool stopping;
	bool shutdown_done; /* the server's shutdown tag arrived */
	atomic_bool shutting_down;
};

grpc_status_code criapi_status_from_error(CrispErrorCode code)
{
	switch (code) {
	case CRISP_ERR_INVALID:
		return GRPC_STATUS_INVALID_ARGUMENT;
	case CRISP_ERR_NOT_FOUND:
		return GRPC_STATUS_NOT_FOUND;
	case CRISP_ERR_FAILED_PRECONDITION:
		return GRPC_STATUS_FAILED_PRECONDITION;
	case CRISP_ERR_DEADLINE:
		return GRPC_STATUS_DEADLINE_EXCEEDED;
	case CRISP_ERR_UNAVAILABLE:
		return GRPC_STATUS_UNAVAILABLE;
	case CRISP_ERR_UNIMPLEMENTED:
		return GRPC_STATUS_UNIMPLEMENTED;
	case CRISP_ERR_ALREADY_EXISTS:
		return GRPC_STATUS_ALREADY_EXISTS;
	case CRISP_ERR_RESOURCE_EXHAUSTED:
		return GRPC_STATUS_RESOURCE_EXHAUSTED;
	case CRISP_ERR_CANCELLED:
		return GRPC_STATUS_CANCELLED;
	case CRISP_ERR_PERMISSION_DENIED:
		return GRPC_STATUS_PERMISSION_DENIED;
	default:
		return GRPC_STATUS_INTERNAL;
	}
}

void criapi_response_free(ProtobufCMessage *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void call_free(Call *c)
{
	if (!c)
		return;
	if (c->call)
		grpc_call_unref(c->call);
	grpc_metadata_array_destroy(&c->metadata);
	if (!c->method)
		grpc_call_details_destroy(&c->details);
	if (c->payload)
		grpc_byte_buffer_destroy(c->payload);
	if (c->response)
		grpc_byte_buffer_destroy(c->response);
	grpc_slice_unref(c->status_details);
	free(c);
}

static void post_request(CriapiServer *s, Method *m)
{
	Call *c = xcalloc(1, sizeof(*c));
	c->state = CALL_REQUESTED;
	c->server = s;
	c->method = m;
	c->status_details = grpc_empty_slice();
	grpc_metadata_array_init(&c->metadata);

	grpc_call_error e;
	if (m) {
		e = grpc_server_request_registered_call(s->server, m->registered, &c->call,
							&c->deadline, &c->metadata, &c->payload,
							s->cq, s->cq, c);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(s->server, &c->call, &c->details, &c->metadata, s->cq,
					     s->cq, c);
	}
	if (e != GRPC_CALL_OK) {
		/* Only fails while shutting down; the call is simply not posted. */
		call_free(c);
	}
}

/* Sends the answer (message when response is set) and the status. */
static void finish(Call *c, grpc_status_code code, const char *details)
{
	grpc_op ops[4];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
	n++;
	if (c->response && code == GRPC_STATUS_OK) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n].data.send_message.send_message = c->response;
		n++;
	}
	grpc_slice_unref(c->status_details);
	c->status_details = grpc_slice_from_copied_string(details ? details : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n].data.send_status_from_server.status_details = &c->status_details;
	n++;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n].data.recv_close_on_server.cancelled = &c->cancelled;
	n++;

	c->state = CALL_FINISHING;
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
	if (e != GRPC_CALL_OK) {
		log_error("answering a call failed: %s", grpc_call_error_to_string(e));
		call_free(c);
	}
}

static int64_t deadline_to_ms(gpr_timespec deadline)
{
	gpr_timespec mono = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
	gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
	if (gpr_time_cmp(mono, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0)
		return 0;
	gpr_timespec left = gpr_time_sub(mono, now);
	int64_t ms = left.tv_sec * 1000 + left.tv_nsec / 1000000;
	/* An already expired deadline still counts as one: 1 ms, not "none". */
	return crisp_now_ms() + (ms > 0 ? ms : 1);
}

static void run_call(Call *c)
{
	_cleanup_error_ CrispError *err = NULL;
	Method *m = c->method;

	if (!m->handler) {
		_cleanup_free_ char *msg = xasprintf("%s is not implemented by crisp yet", m->path);
		finish(c, GRPC_STATUS_UNIMPLEMENTED, msg);
		return;
	}
	if (!c->payload) {
		finish(c, GRPC_STATUS_INVALID_ARGUMENT, "the call carried no request message");
		return;
	}

	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, c->payload)) {
		finish(c, GRPC_STATUS_INTERNAL, "unreadable request payload");
		return;
	}
	grpc_slice raw = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);

	ProtobufCMessage *req = crisp_proto_unpack(m->input, GRPC_SLICE_START_PTR(raw),
						   GRPC_SLICE_LENGTH(raw), &err);
	grpc_slice_unref(raw);
	if (!req) {
		finish(c, criapi_status_from_error(err->code), err->message);
		return;
	}

	CriapiCall call = { .request = req, .deadline_ms = deadline_to_ms(c->deadline) };
	ProtobufCMessage *resp = NULL;
	int r = m->handler(&call, &resp, &err);
	crisp_proto_free(req);
	if (r < 0 || !resp) {
		if (!err)
			crisp_error_set(&err, CRISP_ERR_INTERNAL, EIO, "%s failed", m->name);
		log_debug("%s: %s: %s", m->path, crisp_error_code_name(err->code), err->message);
		criapi_response_free(resp);
		finish(c, criapi_status_from_error(err->code), err->message);
		return;
	}

	size_t len;
	_cleanup_free_ uint8_t *buf = crisp_proto_pack(resp, &len);
	criapi_response_free(resp);
	if (len > CRIAPI_MAX_MESSAGE) {
		finish(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "the answer exceeds 16 MiB");
		return;
	}
	grpc_slice out = grpc_slice_from_copied_buffer((const char *)buf, len);
	c->response = grpc_raw_byte_buffer_create(&out, 1);
	grpc_slice_unref(out);
	finish(c, GRPC_STATUS_OK, NULL);
}

static void *worker_main(void *arg)
{
	CriapiServer *s = arg;

	for (;;) {
		pthread_mutex_lock(&s->lock);
		while (!s->head && !s->stopping)
			pthread_cond_wait(&s->cond, &s->lock);
		Call *c = s->head;
		if (!c) {
			pthread_mutex_unlock(&s->lock);
			return NULL;
		}
		s->head = c->next;
		if (!s->head)
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);
		run_call(c);
	}
}

static void enqueue(CriapiServer *s, Call *c)
{
	pthread_mutex_lock(&s->lock);
	c->next = NULL;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static void *cq_main(void *arg)
{
	CriapiServer *s = arg;

	for (;;) {
		grpc_event ev =
			grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			return NULL;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		Call *c = ev.tag;
		switch (c->state) {
		case CALL_SHUTDOWN:
			free(c);
			pthread_mutex_lock(&s->lock);
			s->shutdown_done = true;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			break;
		case CALL_FINISHING:
			call_free(c);
			break;
		case CALL_REQUESTED:
			if (!ev.success) {
				/* Cancelled by shutdown before any client came. */
				call_free(c);
				break;
			}
			if (!atomic_load(&s->shutting_down))
				post_request(s, c->method);
			if (c->method) {
				enqueue(s, c);
			} else {
				_cleanup_free_ char *path =
					grpc_slice_to_c_string(c->details.method);
				_cleanup_free_ char *msg =
					xasprintf("unknown method %s", path ? path : "?");
				finish(c, GRPC_STATUS_UNIMPLEMENTED, msg);
			}
			break;
		}
	}
}

static void *accept_main(void *arg)
{
	CriapiServer *s = arg;
	grpc_server_credentials *creds = grpc_insecure_server_credentials_create();

	for (;;) {
		struct pollfd pfd[2] = { { .fd = s->listen_fd, .events = POLLIN },
					 { .fd = s->stop_fd, .events = POLLIN } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("poll on the CRI socket: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents)
			break;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("accepting on the CRI socket: %s", strerror(errno));
			continue;
		}
		/* gRPC owns the fd from here, and closes it with the connection. */
		grpc_server_add_channel_from_fd(s->server, fd, creds);
	}
	grpc_server_credentials_release(creds);
	return NULL;
}

static void add_service_methods(CriapiServer *s, const ProtobufCServiceDescriptor *svc)
{
	s->methods = xrealloc(s->methods, (s->n_methods + svc->n_methods) * sizeof(Method));
	for (unsigned i = 0; i < svc->n_methods; i++) {
		Method *m = &s->methods[s->n_methods++];
		m->service = svc->name;
		m->name = svc->methods[i].name;
		m->path = xasprintf("/%s/%s", svc->name, svc->methods[i].name);
		m->input = svc->methods[i].input;
		m->handler = criapi_find_handler(svc->name, svc->methods[i].name);
		m->registered = grpc_server_register_method(
			s->server, m->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	}
}

int criapi_server_start(int listen_fd, unsigned n_workers, CriapiServer **ret, CrispError **err)
{
	CriapiServer *s = xcalloc(1, sizeof(*s));
	int r;

	s->listen_fd = listen_fd;
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0) {
		r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "eventfd");
		free(s);
		return r;
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);

	grpc_arg args[] = {
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
		  .value.integer = CRIAPI_MAX_MESSAGE },
		{ .type = GRPC_ARG_INTEGER,
		  .key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
		  .value.integer = CRIAPI_MAX_MESSAGE },
	};
	grpc_channel_args cargs = { .num_args = ELEMENTSOF(args), .args = args };

	s->cq = grpc_completion_queue_create_for_next(NULL);
	s->server = grpc_server_create(&cargs, NULL);
	grpc_server_register_completion_queue(s->server, s->cq, NULL);
	add_service_methods(s, &runtime__v1__runtime_service__descriptor);
	add_service_methods(s, &runtime__v1__image_service__descriptor);
	grpc_server_start(s->server);

	for (size_t i = 0; i < s->n_methods; i++)
		for (int k = 0; k < CRIAPI_POSTED_PER_METHOD; k++)
			post_request(s, &s->methods[i]);
	for (int k = 0; k < CRIAPI_POSTED_PER_METHOD; k++)
		post_request(s, NULL);

	s->n_workers = n_workers;
	s->workers = xcalloc(n_workers, sizeof(pthread_t));
	for (unsigned i = 0; i < n_workers; i++)
		if ((r = pthread_create(&s->workers[i], NULL, worker_main, s)) != 0)
			abort();
	if ((r = pthread_create(&s->cq_thread, NULL, cq_main, s)) != 0 ||
	    (r = pthread_create(&s->accept_thread, NULL, accept_main, s)) != 0)
		abort();

	log_info("serving %zu CRI methods", s->n_methods);
	*ret = s;
	return 0;
}

void criapi_server_stop(CriapiServer *s)
{
	uint64_t one = 1;

	if (!s)
		return;
	/* No new connections, then no new calls, then cancel what is open:
	 * open streams would otherwise hold the shutdown forever. */
	ssize_t _unused_ w = write(s->stop_fd, &one, sizeof(one));
	pthread_join(s->accept_thread, NULL);

	atomic_store(&s->shutting_down, true);
	Call *tag = xcalloc(1, sizeof(*tag));
	tag->state = CALL_SHUTDOWN;
	grpc_server_shutdown_and_notify(s->server, s->cq, tag);
	grpc_server_cancel_all_calls(s->server);

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);

	/* Calls still queued were never answered: cancelled above, free them. */
	while (s->head) {
		Call *c = s->head;
		s->head = c->next;
		call_free(c);
	}

	pthread_mutex_lock(&s->lock);
	while (!s->shutdown_done)
		pthread_cond_wait(&s->cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	grpc_server_destroy(s->server);
	grpc_completion_queue_shutdown(s->cq);
	pthread_join(s->cq_thread, NULL);
	grpc_completion_queue_destroy(s->cq);

	for (size_t i = 0; i < s->n_methods; i++)
		free(s->methods[i].path);
	free(s->methods);
	free(s->workers);
	safe_close(s->listen_fd);
	safe_close(s->stop_fd);
	free(s);
}
