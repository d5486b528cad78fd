/*
 * rpc.c - how criapi answers each CRI method.
 *
 * Most calls are forwarded to the backend that acts on them (common/
 * cri_routes.c) with the caller's deadline; a backend's typed error becomes
 * the gRPC status.  A few calls criapi answers itself (rpc_runtime.c).  The
 * Stream* calls run their List counterpart and send the result in chunks:
 * each Stream request has the List request's fields (field 1, the filter),
 * and each Stream response the List response's repeated field 1, so the
 * bytes of one are the bytes of the other.
 */
#include "criapi.h"

#include "ipc_types.h"

/* A chunk of a Stream* answer stays well below the 16 MiB message limit. */
#define STREAM_CHUNK_BYTES (1024 * 1024)

static void forward_done(void *userdata, ProtobufCMessage *answer, int *fds _unused_,
			 size_t n_fds _unused_, CrispError *err)
{
	CriapiResponse resp = { answer, crisp_proto_free };
	criapi_reply_finish(userdata, answer ? &resp : NULL, err);
}

/* Sends the call to its backend; the backend's answer completes it, on the channel's thread. */
static int forward(const CriapiCall *call, CriapiResponse *ret _unused_, CrispError **err)
{
	const CrispCriRoute *r = call->route;
	int rc = crisp_ipc_client_call_async(criapi_backend(r->backend), r->type, call->request,
					     NULL, 0, r->type + 1, r->response, call->deadline_ms,
					     forward_done, call->reply, err);
	return rc < 0 ? rc : CRIAPI_ANSWER_LATER;
}

/* The repeated message field with number 1 of a List response. */
static const ProtobufCFieldDescriptor *items_field(const ProtobufCMessageDescriptor *d)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, 1);
	if (!f || f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		abort(); /* the routing table names a List call that is not one */
	return f;
}

typedef struct StreamList {
	CriapiStream *stream;
	const CrispCriRoute *route;
} StreamList;

void criapi_stream_send_list(CriapiStream *stream, const ProtobufCMessage *answer)
{
	const ProtobufCMessageDescriptor *d = answer->descriptor;
	const ProtobufCFieldDescriptor *f = items_field(d);
	size_t n = *(const size_t *)((const char *)answer + f->quantifier_offset);
	ProtobufCMessage **items = *(ProtobufCMessage ***)((const char *)answer + f->offset);

	/* A copy of the answer whose item array is a window onto the real one. */
	_cleanup_free_ ProtobufCMessage *chunk = xmalloc(d->sizeof_message);
	size_t start = 0;
	int r = 0;
	do {
		size_t end = start, bytes = 0;
		while (end < n && (end == start || bytes < STREAM_CHUNK_BYTES))
			bytes += protobuf_c_message_get_packed_size(items[end++]) + 8;
		d->message_init(chunk);
		*(size_t *)((char *)chunk + f->quantifier_offset) = end - start;
		*(ProtobufCMessage ***)((char *)chunk + f->offset) = items + start;
		r = criapi_stream_send(stream, chunk);
		start = end;
	} while (r == 0 && start < n);
}

/* The List answer arrived: send it in chunks, then end the stream. */
static void stream_list_done(void *userdata, ProtobufCMessage *answer, int *fds _unused_,
			     size_t n_fds _unused_, CrispError *err)
{
	StreamList *sl = userdata;
	CriapiStream *stream = sl->stream;

	free(sl);
	if (!answer) {
		criapi_stream_finish(stream, criapi_status_from_error(err->code), err->message);
		criapi_stream_unref(stream);
		return;
	}
	criapi_stream_send_list(stream, answer);
	crisp_proto_free(answer);
	criapi_stream_finish(stream, GRPC_STATUS_OK, NULL);
	criapi_stream_unref(stream);
}

static int stream_list(const CriapiCall *call, CriapiStream *stream, CrispError **err)
{
	const CrispCriRoute *r = call->route;
	StreamList *sl = xmalloc(sizeof(*sl));
	sl->stream = criapi_stream_ref(stream);
	sl->route = r;

	/* The Stream request's bytes are those of the List request. */
	int rc = crisp_ipc_client_call_async(criapi_backend(r->backend), r->type, call->request,
					     NULL, 0, r->type + 1, r->response, call->deadline_ms,
					     stream_list_done, sl, err);
	if (rc < 0) {
		criapi_stream_unref(stream);
		free(sl);
		return rc;
	}
	return CRIAPI_STREAM_DETACHED;
}

typedef struct OwnMethod {
	const char *service;
	const char *method;
	CriapiUnaryHandler unary;
	CriapiStreamHandler stream;
	const char *list_of; /* Stream* calls: the List method behind it */
	bool on_cq_thread;   /* the handler only computes: no backend, no lock held long */
} OwnMethod;

#define RT "runtime.v1.RuntimeService"
#define IS "runtime.v1.ImageService"

static const OwnMethod own_methods[] = {
	{ RT, "Version", criapi_rpc_version, NULL, NULL, true },
	{ RT, "Status", criapi_rpc_status, NULL, NULL, false },
	{ RT, "RuntimeConfig", criapi_rpc_runtime_config, NULL, NULL, true },
	{ RT, "UpdateRuntimeConfig", criapi_rpc_update_runtime_config, NULL, NULL, false },
	{ RT, "GetContainerEvents", NULL, criapi_events_subscribe, NULL, false },
	{ RT, "RunPodSandbox", criapi_rpc_run_pod_sandbox, NULL, NULL, false },
	{ RT, "StopPodSandbox", criapi_rpc_stop_pod_sandbox, NULL, NULL, false },
	{ RT, "RemovePodSandbox", criapi_rpc_remove_pod_sandbox, NULL, NULL, false },
	{ RT, "CreateContainer", criapi_rpc_create_container, NULL, NULL, false },
	{ RT, "RemoveContainer", criapi_rpc_remove_container, NULL, NULL, false },
	{ RT, "Exec", criapi_rpc_exec, NULL, NULL, false },
	{ RT, "Attach", criapi_rpc_attach, NULL, NULL, false },
	{ RT, "PortForward", criapi_rpc_port_forward, NULL, NULL, false },
	{ RT, "PodSandboxStats", criapi_rpc_pod_sandbox_stats, NULL, NULL, false },
	{ RT, "ListPodSandboxStats", criapi_rpc_list_pod_sandbox_stats, NULL, NULL, false },
	{ RT, "StreamPodSandboxes", NULL, stream_list, "ListPodSandbox", false },
	{ RT, "StreamContainers", NULL, stream_list, "ListContainers", false },
	{ RT, "StreamContainerStats", NULL, stream_list, "ListContainerStats", false },
	{ RT, "StreamPodSandboxStats", NULL, criapi_rpc_stream_pod_sandbox_stats,
	  "ListPodSandboxStats", false },
	{ RT, "StreamPodSandboxMetrics", NULL, stream_list, "ListPodSandboxMetrics", false },
	{ IS, "StreamImages", NULL, stream_list, "ListImages", false },
};

bool criapi_method_lookup(const char *service, const char *method, bool streaming,
			  CriapiMethod *ret)
{
	*ret = (CriapiMethod){ 0 };
	for (size_t i = 0; i < ELEMENTSOF(own_methods); i++) {
		const OwnMethod *o = &own_methods[i];
		if (strcmp(o->service, service) != 0 || strcmp(o->method, method) != 0)
			continue;
		if ((o->stream != NULL) != streaming)
			abort(); /* the table and the list of streams disagree */
		ret->unary = o->unary;
		ret->stream = o->stream;
		ret->on_cq_thread = o->on_cq_thread;
		ret->route = o->list_of ? crisp_cri_route_find(service, o->list_of) : NULL;
		return true;
	}
	ret->route = crisp_cri_route_find(service, method);
	if (!ret->route || streaming)
		return false;
	ret->unary = forward;
	return true;
}
