/*
 * server.c - the CRI gRPC server on gRPC C core.
 *
 * Threads: one accept thread hands each connection on the CRI socket to gRPC
 * (gRPC 1.51 cannot adopt a listening fd), one completion-queue thread
 * receives call arrivals and completions, and a pool of workers runs the
 * handlers, so a slow call never holds up the others.  Every method of the
 * two CRI services is registered, and a generic request is kept posted so an
 * unknown method is answered UNIMPLEMENTED at once instead of hanging until
 * its deadline.
 *
 * A server stream keeps a queue of packed messages: gRPC allows one send in
 * flight per call, so the completion of each send starts the next, and the
 * status goes out after the last.  A pending RECV_CLOSE_ON_SERVER tells us
 * when the client went away, or when shutdown cancelled the call.
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
	const char *name;
	const ProtobufCMessageDescriptor *input;
	bool streaming;
	bool known;
	CriapiMethod impl;
	void *registered;
} Method;

typedef enum TagKind {
	TAG_REQUESTED,	 /* the call arrived (or the request was cancelled) */
	TAG_UNARY_DONE,	 /* a unary answer, or a stream's status, went out */
	TAG_STREAM_OPEN, /* RECV_CLOSE_ON_SERVER of a stream: the call ended */
	TAG_STREAM_SENT, /* one message of a stream went out */
	TAG_SHUTDOWN,	 /* the server's shutdown notification */
} TagKind;

typedef struct Call Call;
typedef struct Tag {
	TagKind kind;
	Call *call;
} Tag;

typedef struct Queued {
	struct Queued *next;
	grpc_byte_buffer *buf;
} Queued;

struct Call {
	atomic_int refs;
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
	Tag requested_tag, done_tag, open_tag, sent_tag;

	/* Streams only, under lock. */
	pthread_mutex_t lock;
	Queued *head, *tail;
	grpc_byte_buffer *in_flight;
	bool closed;	/* the call ended: nothing more can be sent */
	bool finishing; /* a status was asked for */
	bool status_started;
	grpc_status_code status;
	char *status_message;
	void (*on_close)(CriapiStream *s, void *userdata);
	void *on_close_userdata;
};

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

static Tag shutdown_tag = { TAG_SHUTDOWN, NULL };

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

void criapi_response_free_plain(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

static Call *call_ref(Call *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

static void call_unref(Call *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
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
	if (c->in_flight)
		grpc_byte_buffer_destroy(c->in_flight);
	while (c->head) {
		Queued *q = c->head;
		c->head = q->next;
		grpc_byte_buffer_destroy(q->buf);
		free(q);
	}
	grpc_slice_unref(c->status_details);
	free(c->status_message);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

CriapiStream *criapi_stream_ref(CriapiStream *s)
{
	return (CriapiStream *)call_ref((Call *)s);
}

void criapi_stream_unref(CriapiStream *s)
{
	call_unref((Call *)s);
}

static void post_request(CriapiServer *s, Method *m)
{
	Call *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->server = s;
	c->method = m;
	c->status_details = grpc_empty_slice();
	c->requested_tag = (Tag){ TAG_REQUESTED, c };
	c->done_tag = (Tag){ TAG_UNARY_DONE, c };
	c->open_tag = (Tag){ TAG_STREAM_OPEN, c };
	c->sent_tag = (Tag){ TAG_STREAM_SENT, c };
	pthread_mutex_init(&c->lock, NULL);
	grpc_metadata_array_init(&c->metadata);

	grpc_call_error e;
	if (m) {
		e = grpc_server_request_registered_call(s->server, m->registered, &c->call,
							&c->deadline, &c->metadata, &c->payload,
							s->cq, s->cq, &c->requested_tag);
	} else {
		grpc_call_details_init(&c->details);
		e = grpc_server_request_call(s->server, &c->call, &c->details, &c->metadata, s->cq,
					     s->cq, &c->requested_tag);
	}
	if (e != GRPC_CALL_OK)
		call_unref(c); /* only while shutting down */
}

static void start_batch(Call *c, const grpc_op *ops, size_t n, Tag *tag)
{
	call_ref(c);
	grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
	if (e != GRPC_CALL_OK) {
		log_error("%s: starting a batch failed: %s", c->method ? c->method->path : "?",
			  grpc_call_error_to_string(e));
		call_unref(c);
	}
}

/* Unary: initial metadata, the answer (when response is set) and the status. */
static void finish_unary(Call *c, grpc_status_code code, const char *details)
{
	grpc_op ops[4];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (c->response && code == GRPC_STATUS_OK) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->response;
	}
	grpc_slice_unref(c->status_details);
	c->status_details = grpc_slice_from_copied_string(details ? details : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = code;
	ops[n++].data.send_status_from_server.status_details = &c->status_details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	start_batch(c, ops, n, &c->done_tag);
}

/* Streams: with c->lock held, send the next queued message or the status. */
static void stream_pump_locked(Call *c)
{
	grpc_op op;

	if (c->in_flight || c->status_started || c->closed)
		return;
	memset(&op, 0, sizeof(op));
	if (c->head) {
		Queued *q = c->head;
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		c->in_flight = q->buf;
		free(q);
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = c->in_flight;
		start_batch(c, &op, 1, &c->sent_tag);
	} else if (c->finishing) {
		c->status_started = true;
		c->status_details =
			grpc_slice_from_copied_string(c->status_message ? c->status_message : "");
		op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
		op.data.send_status_from_server.status = c->status;
		op.data.send_status_from_server.status_details = &c->status_details;
		start_batch(c, &op, 1, &c->done_tag);
	}
}

int criapi_stream_send_raw(CriapiStream *s, const uint8_t *data, size_t len)
{
	Call *c = (Call *)s;

	if (len > CRIAPI_MAX_MESSAGE)
		return -EMSGSIZE;
	grpc_slice slice = grpc_slice_from_copied_buffer((const char *)data, len);
	grpc_byte_buffer *buf = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);

	pthread_mutex_lock(&c->lock);
	if (c->closed || c->finishing) {
		pthread_mutex_unlock(&c->lock);
		grpc_byte_buffer_destroy(buf);
		return -ECANCELED;
	}
	Queued *q = xcalloc(1, sizeof(*q));
	q->buf = buf;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	stream_pump_locked(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int criapi_stream_send(CriapiStream *s, const ProtobufCMessage *msg)
{
	size_t len;
	_cleanup_free_ uint8_t *buf = crisp_proto_pack(msg, &len);
	return criapi_stream_send_raw(s, buf, len);
}

void criapi_stream_finish(CriapiStream *s, grpc_status_code code, const char *details)
{
	Call *c = (Call *)s;

	pthread_mutex_lock(&c->lock);
	if (!c->finishing) {
		c->finishing = true;
		c->status = code;
		c->status_message = details ? xstrdup(details) : NULL;
		stream_pump_locked(c);
	}
	pthread_mutex_unlock(&c->lock);
}

void criapi_stream_on_close(CriapiStream *s, void (*fn)(CriapiStream *s, void *userdata),
			    void *userdata)
{
	Call *c = (Call *)s;
	pthread_mutex_lock(&c->lock);
	bool closed = c->closed;
	if (!closed) {
		c->on_close = fn;
		c->on_close_userdata = userdata;
	}
	pthread_mutex_unlock(&c->lock);
	if (closed)
		fn(s, userdata);
}

static int64_t deadline_to_ms(gpr_timespec deadline)
{
	gpr_timespec mono = gpr_convert_clock_type(deadline, GPR_CLOCK_MONOTONIC);
	if (gpr_time_cmp(mono, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0)
		return 0;
	gpr_timespec left = gpr_time_sub(mono, gpr_now(GPR_CLOCK_MONOTONIC));
	int64_t ms = left.tv_sec * 1000 + left.tv_nsec / 1000000;
	/* An already expired deadline still counts as one: 1 ms, not "none". */
	return crisp_now_ms() + (ms > 0 ? ms : 1);
}

/* Ends a call with an error, whichever kind of call it is. */
static void fail_call(Call *c, grpc_status_code code, const char *details)
{
	if (c->method && c->method->streaming)
		criapi_stream_finish((CriapiStream *)c, code, details);
	else
		finish_unary(c, code, details);
}

static ProtobufCMessage *read_request(Call *c, CrispError **err)
{
	grpc_byte_buffer_reader reader;

	if (!c->payload) {
		crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "the call carried no request");
		return NULL;
	}
	if (!grpc_byte_buffer_reader_init(&reader, c->payload)) {
		crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "unreadable request payload");
		return NULL;
	}
	grpc_slice raw = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	/* Budgeted: a hostile 16 MiB request must not expand without bound. */
	ProtobufCMessage *req = crisp_proto_unpack(c->method->input, GRPC_SLICE_START_PTR(raw),
						   GRPC_SLICE_LENGTH(raw), err);
	grpc_slice_unref(raw);
	return req;
}

/* Sends a unary call's outcome: the response, or the error's status. */
static void complete_unary(Call *c, CriapiResponse *resp, const CrispError *error)
{
	_cleanup_error_ CrispError *fallback = NULL;

	if (error || !resp || !resp->msg) {
		if (!error)
			crisp_error_set(&fallback, CRISP_ERR_INTERNAL, EIO, "%s failed",
					c->method->name);
		const CrispError *e = error ? error : fallback;
		log_debug("%s: %s: %s", c->method->path, crisp_error_code_name(e->code),
			  e->message);
		if (resp && resp->msg)
			resp->free(resp->msg);
		finish_unary(c, criapi_status_from_error(e->code), e->message);
		return;
	}

	size_t len;
	_cleanup_free_ uint8_t *buf = crisp_proto_pack(resp->msg, &len);
	resp->free(resp->msg);
	if (len > CRIAPI_MAX_MESSAGE) {
		finish_unary(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "the answer exceeds 16 MiB");
		return;
	}
	grpc_slice out = grpc_slice_from_copied_buffer((const char *)buf, len);
	c->response = grpc_raw_byte_buffer_create(&out, 1);
	grpc_slice_unref(out);
	finish_unary(c, GRPC_STATUS_OK, NULL);
}

void criapi_reply_finish(CriapiReply *reply, CriapiResponse *resp, const CrispError *err)
{
	Call *c = (Call *)reply;
	complete_unary(c, resp, err);
	call_unref(c); /* the reference the deferring handler held */
}

static void run_unary(Call *c, CriapiCall *call, const CriapiMethod *impl)
{
	_cleanup_error_ CrispError *err = NULL;
	CriapiResponse resp = { 0 };

	call->reply = (CriapiReply *)call_ref(c);
	int r = impl->unary(call, &resp, &err);
	if (r == CRIAPI_ANSWER_LATER)
		return; /* the handler keeps the reference and answers later */
	call_unref(c);
	if (r < 0 && !err)
		crisp_error_set(&err, CRISP_ERR_INTERNAL, -r, "%s failed", c->method->name);
	complete_unary(c, r < 0 ? NULL : &resp, r < 0 ? err : NULL);
}

static void run_stream(Call *c, CriapiCall *call, const CriapiMethod *impl)
{
	_cleanup_error_ CrispError *err = NULL;

	int r = impl->stream(call, (CriapiStream *)c, &err);
	if (r == CRIAPI_STREAM_DETACHED)
		return;
	if (r < 0) {
		if (!err)
			crisp_error_set(&err, CRISP_ERR_INTERNAL, EIO, "%s failed",
					c->method->name);
		log_debug("%s: %s: %s", c->method->path, crisp_error_code_name(err->code),
			  err->message);
		criapi_stream_finish((CriapiStream *)c, criapi_status_from_error(err->code),
				     err->message);
		return;
	}
	criapi_stream_finish((CriapiStream *)c, GRPC_STATUS_OK, NULL);
}

static void run_call(Call *c)
{
	_cleanup_error_ CrispError *err = NULL;
	Method *m = c->method;

	if (!m->known) {
		_cleanup_free_ char *msg = xasprintf("%s is not implemented by crisp", m->path);
		fail_call(c, GRPC_STATUS_UNIMPLEMENTED, msg);
		return;
	}
	ProtobufCMessage *req = read_request(c, &err);
	if (!req) {
		fail_call(c, criapi_status_from_error(err->code), err->message);
		return;
	}
	if (criapi_validate_request(req, &err) < 0) {
		crisp_proto_free(req);
		fail_call(c, criapi_status_from_error(err->code), err->message);
		return;
	}

	CriapiCall call = {
		.request = req,
		.deadline_ms = deadline_to_ms(c->deadline),
		.route = m->impl.route,
	};
	if (m->streaming)
		run_stream(c, &call, &m->impl);
	else
		run_unary(c, &call, &m->impl);
	crisp_proto_free(req);
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
		call_unref(c); /* the worker's reference */
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

/* A stream is open from its arrival: metadata goes out, and we learn of its end. */
static void open_stream(Call *c)
{
	grpc_op ops[2];
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[1].data.recv_close_on_server.cancelled = &c->cancelled;
	start_batch(c, ops, 2, &c->open_tag);
}

static void stream_closed(Call *c)
{
	pthread_mutex_lock(&c->lock);
	c->closed = true;
	void (*fn)(CriapiStream *, void *) = c->on_close;
	void *ud = c->on_close_userdata;
	c->on_close = NULL;
	pthread_mutex_unlock(&c->lock);
	if (fn)
		fn((CriapiStream *)c, ud);
}

static void stream_sent(Call *c, bool ok)
{
	pthread_mutex_lock(&c->lock);
	grpc_byte_buffer_destroy(c->in_flight);
	c->in_flight = NULL;
	if (!ok)
		c->closed = true;
	else
		stream_pump_locked(c);
	pthread_mutex_unlock(&c->lock);
}

static void arrived(CriapiServer *s, Call *c)
{
	if (!atomic_load(&s->shutting_down))
		post_request(s, c->method);
	if (!c->method) {
		_cleanup_free_ char *path = grpc_slice_to_c_string(c->details.method);
		_cleanup_free_ char *msg = xasprintf("unknown method %s", path ? path : "?");
		finish_unary(c, GRPC_STATUS_UNIMPLEMENTED, msg);
		call_unref(c);
		return;
	}
	if (c->method->streaming)
		open_stream(c);
	if (c->method->impl.on_cq_thread) {
		/* Waking a worker costs more than these calls themselves (docs/PERFORMANCE.md). */
		run_call(c);
		call_unref(c);
		return;
	}
	enqueue(s, c); /* the arrival's reference becomes the worker's */
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
		Tag *t = ev.tag;
		Call *c = t->call;
		switch (t->kind) {
		case TAG_SHUTDOWN:
			pthread_mutex_lock(&s->lock);
			s->shutdown_done = true;
			pthread_cond_broadcast(&s->cond);
			pthread_mutex_unlock(&s->lock);
			break;
		case TAG_REQUESTED:
			if (ev.success)
				arrived(s, c);
			else
				call_unref(c); /* cancelled by shutdown before any client came */
			break;
		case TAG_STREAM_OPEN:
			stream_closed(c);
			call_unref(c);
			break;
		case TAG_STREAM_SENT:
			stream_sent(c, ev.success);
			call_unref(c);
			break;
		case TAG_UNARY_DONE:
			call_unref(c);
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

static void add_service_methods(CriapiServer *s, const ProtobufCServiceDescriptor *svc,
				const char *const *streaming)
{
	s->methods = xrealloc(s->methods, (s->n_methods + svc->n_methods) * sizeof(Method));
	for (unsigned i = 0; i < svc->n_methods; i++) {
		Method *m = &s->methods[s->n_methods++];
		memset(m, 0, sizeof(*m));
		m->name = svc->methods[i].name;
		m->path = xasprintf("/%s/%s", svc->name, svc->methods[i].name);
		m->input = svc->methods[i].input;
		/* protoc-c drops the `stream` keyword, so the list of streams is ours. */
		for (const char *const *n = streaming; *n; n++)
			m->streaming |= strcmp(*n, m->name) == 0;
		m->known = criapi_method_lookup(svc->name, m->name, m->streaming, &m->impl);
		m->registered = grpc_server_register_method(
			s->server, m->path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
	}
}

int criapi_server_start(int listen_fd, unsigned n_workers, CriapiServer **ret, CrispError **err)
{
	static const char *const streaming[] = {
		"GetContainerEvents",	 "StreamPodSandboxes",
		"StreamContainers",	 "StreamContainerStats",
		"StreamPodSandboxStats", "StreamPodSandboxMetrics",
		"StreamImages",		 NULL,
	};
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
	add_service_methods(s, &runtime__v1__runtime_service__descriptor, streaming);
	add_service_methods(s, &runtime__v1__image_service__descriptor, streaming);
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
	/* No new connections, then no new calls; subscriptions get a status, and
	 * whatever is still open is cancelled: open streams would otherwise hold
	 * the shutdown forever. */
	ssize_t _unused_ w = write(s->stop_fd, &one, sizeof(one));
	pthread_join(s->accept_thread, NULL);

	atomic_store(&s->shutting_down, true);
	criapi_events_close_all();
	grpc_server_shutdown_and_notify(s->server, s->cq, &shutdown_tag);
	grpc_server_cancel_all_calls(s->server);
	/* Deferred answers complete now, while the completion queue still runs. */
	criapi_backends_stop();

	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);

	/* Calls still queued were never answered: cancelled above, drop them. */
	while (s->head) {
		Call *c = s->head;
		s->head = c->next;
		call_unref(c);
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
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}
