/*
 * rpc_streams.c - Exec, Attach and PortForward, and the work streamd needs
 * done when a client connects (ARCHITECTURE.md §5).
 *
 * The calls: sandboxd first confirms the container runs (or the pod is
 * ready), so a call for something that is not there fails at once, as with
 * containerd; then streamd registers the request and answers with the URL.
 *
 * The work: streamd holds no privilege and talks to nobody but criapi, so
 * when a client connects with a token, streamd needs criapi to have the
 * command started (sandboxd), conmon's attach socket connected (sandboxd)
 * or a port dialled in the pod (netd).  A poller thread long-polls streamd
 * for such work, has the daemon do it, and sends the outcome back with the
 * fds the daemon handed over.  Each piece runs asynchronously: a slow start
 * never holds up the next client.
 */
#include "criapi.h"

#include "flow.h"
#include "ipc_types.h"
#include "log.h"
#include "thread.h"

#include <pthread.h>

#define WORK_WAIT_MS 1000

/* --- Exec, Attach, PortForward --- */

typedef struct StreamCall {
	CriapiReply *reply;
	int64_t deadline_ms;
	uint16_t streamd_type; /* the CRI call's type on streamd's channel */
	const ProtobufCMessageDescriptor *response;
	ProtobufCMessage *request; /* our copy: the call's is gone when the handler returns */
} StreamCall;

static void call_free(StreamCall *c)
{
	protobuf_c_message_free_unpacked(c->request, NULL);
	free(c);
}

static void registered(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	StreamCall *c = flow;
	if (err) {
		criapi_reply_finish(c->reply, NULL, err);
		call_free(c);
		return;
	}
	/* The answer is freed after this step: the response gets its own copy. */
	CriapiResponse resp = { crisp_proto_copy(answer), criapi_response_free_plain };
	criapi_reply_finish(c->reply, &resp, NULL);
	call_free(c);
}

static void checked(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	StreamCall *c = flow;
	_cleanup_error_ CrispError *not_ready = NULL;
	if (!err && c->streamd_type == CRISP_MSG_STREAMD_BASE + 4) {
		const Runtime__V1__PodSandboxStatusResponse *a = (const void *)answer;
		if (!a->status || a->status->state != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
			crisp_error_set(&not_ready, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
					"pod sandbox %s is not ready",
					a->status ? a->status->id : "?");
	} else if (!err) {
		const Runtime__V1__ContainerStatusResponse *a = (const void *)answer;
		if (!a->status ||
		    a->status->state != RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING)
			crisp_error_set(&not_ready, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
					"container %s is not running",
					a->status ? a->status->id : "?");
	}
	if (err || not_ready) {
		criapi_reply_finish(c->reply, NULL, err ? err : not_ready);
		call_free(c);
		return;
	}
	criapi_flow_call(c, CRISP__BACKEND__BACKEND_STREAMD, c->streamd_type, c->request,
			 c->response, c->deadline_ms, registered);
}

static StreamCall *call_new(const CriapiCall *call, uint16_t streamd_type,
			    const ProtobufCMessageDescriptor *response)
{
	StreamCall *c = xcalloc(1, sizeof(*c));
	c->reply = call->reply;
	c->deadline_ms = call->deadline_ms;
	c->streamd_type = streamd_type;
	c->response = response;
	c->request = crisp_proto_copy(call->request);
	return c;
}

static int check_container(const CriapiCall *call, const char *id, uint16_t streamd_type,
			   const ProtobufCMessageDescriptor *response)
{
	StreamCall *c = call_new(call, streamd_type, response);
	Runtime__V1__ContainerStatusRequest m = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	m.container_id = (char *)id;
	criapi_flow_call(c, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 20, &m.base,
			 &runtime__v1__container_status_response__descriptor, c->deadline_ms,
			 checked);
	return CRIAPI_ANSWER_LATER;
}

int criapi_rpc_exec(const CriapiCall *call, CriapiResponse *ret _unused_, CrispError **err)
{
	const Runtime__V1__ExecRequest *q = (const void *)call->request;
	return check_container(call, q->container_id, CRISP_MSG_STREAMD_BASE + 0,
			       &runtime__v1__exec_response__descriptor);
}

int criapi_rpc_attach(const CriapiCall *call, CriapiResponse *ret _unused_, CrispError **err)
{
	const Runtime__V1__AttachRequest *q = (const void *)call->request;
	return check_container(call, q->container_id, CRISP_MSG_STREAMD_BASE + 2,
			       &runtime__v1__attach_response__descriptor);
}

int criapi_rpc_port_forward(const CriapiCall *call, CriapiResponse *ret _unused_, CrispError **err)
{
	const Runtime__V1__PortForwardRequest *q = (const void *)call->request;
	StreamCall *c = call_new(call, CRISP_MSG_STREAMD_BASE + 4,
				 &runtime__v1__port_forward_response__descriptor);
	Runtime__V1__PodSandboxStatusRequest m = RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
	m.pod_sandbox_id = q->pod_sandbox_id;
	criapi_flow_call(c, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 6, &m.base,
			 &runtime__v1__pod_sandbox_status_response__descriptor, c->deadline_ms,
			 checked);
	return CRIAPI_ANSWER_LATER;
}

/* --- streamd's work --- */

typedef struct Work {
	uint64_t session;
	Crisp__StreamWorkReply__Kind kind;
} Work;

static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
static bool work_stopped;

/* Sends the outcome to streamd; the fds stay ours (they are duplicated in sending). */
static void report(const Work *w, const CrispError *err, const Crisp__ContainerAttachReply *attach,
		   const int *fds, size_t n_fds)
{
	Crisp__StreamWorkDone m = CRISP__STREAM_WORK_DONE__INIT;
	m.session = w->session;
	if (err) {
		m.error_code = crisp_error_to_wire(err->code);
		m.error_message = err->message;
		n_fds = 0;
	}
	m.attach = (Crisp__ContainerAttachReply *)attach;
	m.n_fds = (uint32_t)n_fds;
	_cleanup_error_ CrispError *e = NULL;
	Crisp__StreamWorkDoneReply *a = NULL;
	/* Synchronous: this runs on a worker of criapi's, never a channel's reader. */
	if (crisp_ipc_client_call(
		    criapi_backend(CRISP__BACKEND__BACKEND_STREAMD),
		    CRISP_MSG_STREAMD_WORK_DONE_REQ, &m.base, fds, n_fds,
		    CRISP_MSG_STREAMD_WORK_DONE_ANS, &crisp__stream_work_done_reply__descriptor,
		    crisp_now_ms() + 10000, (ProtobufCMessage **)&a, NULL, NULL, &e) < 0)
		log_warning("streaming session %llu: streamd did not take the outcome: %s",
			    (unsigned long long)w->session, e->message);
	crisp_proto_free(a);
}

static void do_work(const Crisp__StreamWorkReply *q)
{
	Work w = { q->session, q->kind };
	Crisp__Backend backend;
	uint16_t type;
	const ProtobufCMessageDescriptor *ans;
	Crisp__ExecStartRequest exec = CRISP__EXEC_START_REQUEST__INIT;
	Crisp__ContainerAttachRequest attach = CRISP__CONTAINER_ATTACH_REQUEST__INIT;
	Crisp__PortForwardDialRequest dial = CRISP__PORT_FORWARD_DIAL_REQUEST__INIT;
	const ProtobufCMessage *msg;

	switch (q->kind) {
	case CRISP__STREAM_WORK_REPLY__KIND__EXEC:
		exec.container_id = q->container_id;
		exec.n_cmd = q->n_cmd;
		exec.cmd = q->cmd;
		exec.tty = q->tty;
		exec.stdin = q->stdin;
		exec.stdout = q->stdout;
		exec.stderr = q->stderr;
		backend = CRISP__BACKEND__BACKEND_SANDBOXD;
		type = CRISP_MSG_SANDBOXD_EXEC_START_REQ;
		ans = &crisp__exec_start_reply__descriptor;
		msg = &exec.base;
		break;
	case CRISP__STREAM_WORK_REPLY__KIND__ATTACH:
		attach.container_id = q->container_id;
		attach.stdin = q->stdin;
		backend = CRISP__BACKEND__BACKEND_SANDBOXD;
		type = CRISP_MSG_SANDBOXD_ATTACH_REQ;
		ans = &crisp__container_attach_reply__descriptor;
		msg = &attach.base;
		break;
	case CRISP__STREAM_WORK_REPLY__KIND__DIAL:
		dial.pod_id = q->pod_id;
		dial.port = q->port;
		backend = CRISP__BACKEND__BACKEND_NETD;
		type = CRISP_MSG_NETD_DIAL_REQ;
		ans = &crisp__port_forward_dial_reply__descriptor;
		msg = &dial.base;
		break;
	default:
		return;
	}
	ProtobufCMessage *a = NULL;
	int fds[CRISP_IPC_MAX_FDS];
	size_t n_fds = 0;
	_cleanup_error_ CrispError *err = NULL;
	int r = crisp_ipc_client_call(criapi_backend(backend), type, msg, NULL, 0, type + 1, ans,
				      crisp_now_ms() + 30000, &a, fds, &n_fds, &err);
	report(&w, r < 0 ? err : NULL,
	       r == 0 && q->kind == CRISP__STREAM_WORK_REPLY__KIND__ATTACH ? (const void *)a : NULL,
	       fds, r < 0 ? 0 : n_fds);
	for (size_t i = 0; r == 0 && i < n_fds; i++)
		safe_close(fds[i]);
	crisp_proto_free(a);
}

static void *work_thread(void *arg)
{
	Crisp__StreamWorkReply *q = arg;
	do_work(q);
	crisp_proto_free(q);
	return NULL;
}

static bool stopped(void)
{
	pthread_mutex_lock(&work_lock);
	bool s = work_stopped;
	pthread_mutex_unlock(&work_lock);
	return s;
}

static void *poll_streamd(void *arg _unused_)
{
	while (!stopped()) {
		Crisp__StreamWorkRequest m = CRISP__STREAM_WORK_REQUEST__INIT;
		m.max_wait_ms = WORK_WAIT_MS;
		Crisp__StreamWorkReply *a = (Crisp__StreamWorkReply *)criapi_backend_long_poll(
			CRISP__BACKEND__BACKEND_STREAMD, CRISP_MSG_STREAMD_WORK_REQ, &m.base,
			&crisp__stream_work_reply__descriptor, WORK_WAIT_MS);
		if (!a)
			continue;
		if (a->kind == CRISP__STREAM_WORK_REPLY__KIND__NONE) {
			crisp_proto_free(a);
			continue;
		}
		/* A thread per piece: starting a command may take a runtime's while. */
		if (crisp_thread_start_detached(work_thread, a) != 0) {
			do_work(a);
			crisp_proto_free(a);
		}
	}
	return NULL;
}

int criapi_stream_work_start(CrispError **err)
{
	int r = crisp_thread_start_detached(poll_streamd, NULL);
	if (r != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, r,
					     "starting the streaming work poller");
	return 0;
}

void criapi_stream_work_stop(void)
{
	pthread_mutex_lock(&work_lock);
	work_stopped = true;
	pthread_mutex_unlock(&work_lock);
}
