/*
 * rpc_stats.c - PodSandboxStats and ListPodSandboxStats: sandboxd's
 * answer (cgroups, containers), completed with each pod's network counters
 * from netd.
 *
 * sandboxd answers first; then netd is asked about each pod in turn, and
 * its interface counters fill the pod's linux.network (the default
 * interface is eth0).  A pod netd has no network for (host network, or gone
 * meanwhile) simply has none.  The answer is built in criapi's memory: the
 * backend's answers are unpacked with protobuf-c's budget allocator, so
 * sandboxd's is packed and unpacked again with plain malloc before netd's
 * counters are grafted onto it.
 */
#include "criapi.h"

#include "flow.h"
#include "ipc_types.h"

typedef struct StatsFlow {
	CriapiReply *reply;
	CriapiStream *stream; /* StreamPodSandboxStats: the answer goes out in chunks */
	int64_t deadline_ms;
	bool list;
	ProtobufCMessage *answer; /* malloc'd: PodSandboxStatsResponse or the List one */
	Runtime__V1__PodSandboxStats **pods;
	size_t n_pods, next;
} StatsFlow;

static void finish(StatsFlow *f, const CrispError *err)
{
	if (f->stream) {
		if (err) {
			criapi_stream_finish(f->stream, criapi_status_from_error(err->code),
					     err->message);
		} else {
			criapi_stream_send_list(f->stream, f->answer);
			criapi_stream_finish(f->stream, GRPC_STATUS_OK, NULL);
		}
		criapi_stream_unref(f->stream);
		if (f->answer)
			protobuf_c_message_free_unpacked(f->answer, NULL);
		free(f);
		return;
	}
	if (err) {
		criapi_reply_finish(f->reply, NULL, err);
		if (f->answer)
			protobuf_c_message_free_unpacked(f->answer, NULL);
	} else {
		CriapiResponse resp = { f->answer, criapi_response_free_plain };
		criapi_reply_finish(f->reply, &resp, NULL);
	}
	free(f);
}

static Runtime__V1__UInt64Value *u64(uint64_t v)
{
	Runtime__V1__UInt64Value *x = xmalloc(sizeof(*x));
	runtime__v1__uint64_value__init(x);
	x->value = v;
	return x;
}

static Runtime__V1__NetworkInterfaceUsage *interface_usage(const Crisp__InterfaceStats *s)
{
	Runtime__V1__NetworkInterfaceUsage *u = xmalloc(sizeof(*u));
	runtime__v1__network_interface_usage__init(u);
	u->name = xstrdup(s->name);
	u->rx_bytes = u64(s->rx_bytes);
	u->rx_errors = u64(s->rx_errors);
	u->tx_bytes = u64(s->tx_bytes);
	u->tx_errors = u64(s->tx_errors);
	return u;
}

static void ask_next(StatsFlow *f);

static void network_read(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	StatsFlow *f = flow;
	Runtime__V1__PodSandboxStats *p = f->pods[f->next - 1];
	const Crisp__PodNetworkReply *a = (const void *)answer;
	if (!err && a->n_interfaces && p->linux) {
		Runtime__V1__NetworkUsage *n = xmalloc(sizeof(*n));
		runtime__v1__network_usage__init(n);
		n->timestamp = p->linux->cpu ? p->linux->cpu->timestamp : 0;
		n->interfaces = xcalloc(a->n_interfaces, sizeof(*n->interfaces));
		for (size_t i = 0; i < a->n_interfaces; i++) {
			if (strcmp(a->interfaces[i]->name, "eth0") == 0 && !n->default_interface)
				n->default_interface = interface_usage(a->interfaces[i]);
			else
				n->interfaces[n->n_interfaces++] =
					interface_usage(a->interfaces[i]);
		}
		p->linux->network = n;
	}
	ask_next(f);
}

static void ask_next(StatsFlow *f)
{
	if (f->next >= f->n_pods) {
		finish(f, NULL);
		return;
	}
	Runtime__V1__PodSandboxStats *p = f->pods[f->next++];
	Crisp__PodNetworkRequest m = CRISP__POD_NETWORK_REQUEST__INIT;
	m.pod_id = p->attributes ? p->attributes->id : "";
	m.stats = true;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_NETD, CRISP_MSG_NETD_POD_NETWORK_REQ, &m.base,
			 &crisp__pod_network_reply__descriptor, f->deadline_ms, network_read);
}

static void stats_read(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	StatsFlow *f = flow;
	if (err) {
		finish(f, err);
		return;
	}
	/* A copy in plain malloc'd memory, which the answer may grow. */
	size_t len = protobuf_c_message_get_packed_size(answer);
	_cleanup_free_ uint8_t *buf = xmalloc(len + 1);
	protobuf_c_message_pack(answer, buf);
	f->answer = protobuf_c_message_unpack(answer->descriptor, NULL, len, buf);
	if (!f->answer)
		abort(); /* our own bytes of a message that just unpacked */
	if (f->list) {
		Runtime__V1__ListPodSandboxStatsResponse *l = (void *)f->answer;
		f->pods = l->stats;
		f->n_pods = l->n_stats;
	} else {
		Runtime__V1__PodSandboxStatsResponse *s = (void *)f->answer;
		f->pods = s->stats ? &s->stats : NULL;
		f->n_pods = s->stats ? 1 : 0;
	}
	ask_next(f);
}

static int start(const CriapiCall *call, bool list, uint16_t type,
		 const ProtobufCMessageDescriptor *desc)
{
	StatsFlow *f = xcalloc(1, sizeof(*f));
	f->reply = call->reply;
	f->deadline_ms = call->deadline_ms;
	f->list = list;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, type, call->request, desc,
			 call->deadline_ms, stats_read);
	return CRIAPI_ANSWER_LATER;
}

int criapi_rpc_stream_pod_sandbox_stats(const CriapiCall *call, CriapiStream *stream,
					CrispError **err _unused_)
{
	StatsFlow *f = xcalloc(1, sizeof(*f));
	f->stream = criapi_stream_ref(stream);
	f->deadline_ms = call->deadline_ms;
	f->list = true;
	/* The Stream request's bytes are those of the List request (rpc.c). */
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 34,
			 call->request, &runtime__v1__list_pod_sandbox_stats_response__descriptor,
			 call->deadline_ms, stats_read);
	return CRIAPI_STREAM_DETACHED;
}

int criapi_rpc_pod_sandbox_stats(const CriapiCall *call, CriapiResponse *ret _unused_,
				 CrispError **err _unused_)
{
	return start(call, false, CRISP_MSG_SANDBOXD_BASE + 32,
		     &runtime__v1__pod_sandbox_stats_response__descriptor);
}

int criapi_rpc_list_pod_sandbox_stats(const CriapiCall *call, CriapiResponse *ret _unused_,
				      CrispError **err _unused_)
{
	return start(call, true, CRISP_MSG_SANDBOXD_BASE + 34,
		     &runtime__v1__list_pod_sandbox_stats_response__descriptor);
}
