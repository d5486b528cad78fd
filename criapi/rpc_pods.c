/*
 * rpc_pods.c - the pod calls that take more than one backend:
 * RunPodSandbox, StopPodSandbox and RemovePodSandbox.
 *
 * RunPodSandbox (ARCHITECTURE.md §5):
 *   1. criapi draws the pod ID;
 *   2. netd creates and pins the pod's network namespace (not for a pod
 *      on the host's network);
 *   3. sandboxd records the pod and starts its infra process in it;
 *   4. netd runs CNI ADD (loopback and the pod networks) -> the pod's IPs;
 *   5. sandboxd records the IPs: the pod is READY.
 * A failure at any step undoes the earlier ones, sandboxd's pod first (its
 * processes leave the namespace), then netd's network and namespace, and
 * the caller gets the failing step's error.
 *
 * StopPodSandbox stops the pod in sandboxd, then tears its network down in
 * netd; RemovePodSandbox removes it from sandboxd, then from netd (both
 * idempotent).  A request may name a pod by a unique ID prefix, which
 * sandboxd resolves first, since netd knows only whole IDs.
 *
 * Every step runs asynchronously: each backend's answer starts the next
 * step on the channel's thread, and no criapi thread waits.
 */
#include "criapi.h"

#include "flow.h"
#include "ipc_types.h"
#include "log.h"

#include <stdio.h>

typedef struct PodFlow PodFlow;

struct PodFlow {
	CriapiReply *reply;
	int64_t deadline_ms;
	char id[65];
	/* RunPodSandbox */
	uint8_t *config;
	size_t config_len;
	char *handler;
	bool host_network;
	Runtime__V1__PodSandboxConfig *cfg; /* config, unpacked */
	bool netns_made, pod_made;
	char **ips;
	CrispError *failure;
	/* Stop and Remove */
	bool remove;
	char **containers; /* Remove: the pod's containers, whose snapshots go back to imaged */
	size_t released;
};

static void flow_free(PodFlow *f)
{
	free(f->config);
	free(f->handler);
	crisp_proto_free(f->cfg);
	strv_free(f->ips);
	strv_free(f->containers);
	crisp_error_free(f->failure);
	free(f);
}

static void finish(PodFlow *f, CriapiResponse *resp, const CrispError *err)
{
	criapi_reply_finish(f->reply, resp, err);
	flow_free(f);
}

/* --- RunPodSandbox: undoing --- */

static void undo_done(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err)
		log_warning("pod %s: undoing a failed start: %s", f->id, err->message);
	finish(f, NULL, f->failure);
}

static void undo_network(PodFlow *f)
{
	if (!f->netns_made) {
		finish(f, NULL, f->failure);
		return;
	}
	Crisp__NetworkTeardownRequest m = CRISP__NETWORK_TEARDOWN_REQUEST__INIT;
	m.pod_id = f->id;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_NETD, CRISP_MSG_NETD_TEARDOWN_REQ, &m.base,
			 &crisp__network_teardown_reply__descriptor, criapi_flow_undo_deadline(),
			 undo_done);
}

static void undo_pod_done(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err)
		log_warning("pod %s: undoing a failed start: %s", f->id, err->message);
	undo_network(f);
}

static void fail(PodFlow *f, const CrispError *err)
{
	crisp_error_set(&f->failure, err->code, EIO, "%s", err->message);
	log_info("RunPodSandbox %s failed, undoing: %s", f->id, err->message);
	if (!f->pod_made) {
		undo_network(f);
		return;
	}
	Runtime__V1__RemovePodSandboxRequest m = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
	m.pod_sandbox_id = f->id;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 4, &m.base,
			 &runtime__v1__remove_pod_sandbox_response__descriptor,
			 criapi_flow_undo_deadline(), undo_pod_done);
}

/* --- RunPodSandbox: the steps --- */

static void pod_ready(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		fail(f, err);
		return;
	}
	Runtime__V1__RunPodSandboxResponse *r = xmalloc(sizeof(*r));
	runtime__v1__run_pod_sandbox_response__init(r);
	r->pod_sandbox_id = xstrdup(f->id);
	CriapiResponse resp = { &r->base, criapi_response_free_plain };
	log_info("pod %s ready%s%s", f->id, f->ips && f->ips[0] ? " at " : "",
		 f->ips && f->ips[0] ? f->ips[0] : "");
	finish(f, &resp, NULL);
}

static void set_network(PodFlow *f)
{
	Crisp__PodSetNetworkRequest m = CRISP__POD_SET_NETWORK_REQUEST__INIT;
	m.pod_id = f->id;
	m.n_ips = strv_length(f->ips);
	m.ips = f->ips;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD,
			 CRISP_MSG_SANDBOXD_POD_SET_NETWORK_REQ, &m.base,
			 &crisp__pod_set_network_reply__descriptor, f->deadline_ms, pod_ready);
}

static void attached(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		fail(f, err);
		return;
	}
	const Crisp__NetworkAttachReply *a = (const void *)answer;
	for (size_t i = 0; i < a->n_ips; i++)
		strv_push(&f->ips, a->ips[i]);
	set_network(f);
}

static const char *annotation(const Runtime__V1__PodSandboxConfig *c, const char *key)
{
	for (size_t i = 0; i < c->n_annotations; i++)
		if (strcmp(c->annotations[i]->key, key) == 0)
			return c->annotations[i]->value;
	return "";
}

static void attach(PodFlow *f, const char *cgroup_parent)
{
	const Runtime__V1__PodSandboxConfig *c = f->cfg;
	Crisp__NetworkAttachRequest m = CRISP__NETWORK_ATTACH_REQUEST__INIT;
	m.pod_id = f->id;
	m.name = c->metadata->name;
	m.namespace_ = c->metadata->namespace_;
	m.uid = c->metadata->uid;
	Crisp__PortMapping *pm = xcalloc(c->n_port_mappings + 1, sizeof(*pm));
	Crisp__PortMapping **pmp = xcalloc(c->n_port_mappings + 1, sizeof(*pmp));
	static const char *const protocols[] = { "tcp", "udp", "sctp" };
	for (size_t i = 0; i < c->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *p = c->port_mappings[i];
		crisp__port_mapping__init(&pm[i]);
		pm[i].protocol = (char *)(p->protocol < 3 ? protocols[p->protocol] : "tcp");
		pm[i].container_port = p->container_port;
		pm[i].host_port = p->host_port;
		pm[i].host_ip = p->host_ip;
		pmp[i] = &pm[i];
	}
	m.n_port_mappings = c->n_port_mappings;
	m.port_mappings = pmp;
	m.cgroup_parent = (char *)cgroup_parent;
	if (c->dns_config) {
		m.n_dns_servers = c->dns_config->n_servers;
		m.dns_servers = c->dns_config->servers;
		m.n_dns_searches = c->dns_config->n_searches;
		m.dns_searches = c->dns_config->searches;
		m.n_dns_options = c->dns_config->n_options;
		m.dns_options = c->dns_config->options;
	}
	m.ingress_bandwidth = (char *)annotation(c, "kubernetes.io/ingress-bandwidth");
	m.egress_bandwidth = (char *)annotation(c, "kubernetes.io/egress-bandwidth");
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_NETD, CRISP_MSG_NETD_ATTACH_REQ, &m.base,
			 &crisp__network_attach_reply__descriptor, f->deadline_ms, attached);
	free(pm);
	free(pmp);
}

static void pod_started(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		fail(f, err);
		return;
	}
	f->pod_made = true;
	const Crisp__PodRunReply *a = (const void *)answer;
	if (f->host_network)
		set_network(f);
	else
		attach(f, a->cgroup_parent);
}

static void run_pod(PodFlow *f)
{
	Crisp__PodRunRequest m = CRISP__POD_RUN_REQUEST__INIT;
	m.pod_id = f->id;
	m.config.data = f->config;
	m.config.len = f->config_len;
	m.runtime_handler = f->handler;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_POD_RUN_REQ,
			 &m.base, &crisp__pod_run_reply__descriptor, f->deadline_ms, pod_started);
}

static void netns_made(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		fail(f, err);
		return;
	}
	f->netns_made = true;
	run_pod(f);
}

int criapi_rpc_run_pod_sandbox(const CriapiCall *call, CriapiResponse *ret _unused_,
			       CrispError **err)
{
	const Runtime__V1__RunPodSandboxRequest *q = (const void *)call->request;
	if (!q->config || !q->config->metadata)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "config.metadata is missing");
	PodFlow *f = xcalloc(1, sizeof(*f));
	if (criapi_flow_new_id(f->id, err) < 0) {
		flow_free(f);
		return -EIO;
	}
	f->reply = call->reply;
	f->deadline_ms = call->deadline_ms;
	f->handler = xstrdup(q->runtime_handler ? q->runtime_handler : "");
	/* Our own copy: the request is gone when this handler returns. */
	f->config_len = protobuf_c_message_get_packed_size(&q->config->base);
	f->config = xmalloc(f->config_len + 1);
	protobuf_c_message_pack(&q->config->base, f->config);
	f->cfg = (Runtime__V1__PodSandboxConfig *)crisp_proto_unpack(
		&runtime__v1__pod_sandbox_config__descriptor, f->config, f->config_len, err);
	if (!f->cfg) {
		flow_free(f);
		return -EINVAL;
	}
	const Runtime__V1__NamespaceOption *ns =
		q->config->linux && q->config->linux->security_context
			? q->config->linux->security_context->namespace_options
			: NULL;
	f->host_network = ns && ns->network == RUNTIME__V1__NAMESPACE_MODE__NODE;

	if (f->host_network) {
		run_pod(f);
	} else {
		Crisp__NetnsCreateRequest m = CRISP__NETNS_CREATE_REQUEST__INIT;
		m.pod_id = f->id;
		criapi_flow_call(f, CRISP__BACKEND__BACKEND_NETD, CRISP_MSG_NETD_NETNS_CREATE_REQ,
				 &m.base, &crisp__netns_create_reply__descriptor, f->deadline_ms,
				 netns_made);
	}
	return CRIAPI_ANSWER_LATER;
}

/* --- StopPodSandbox and RemovePodSandbox --- */

static void network_down(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		finish(f, NULL, err);
		return;
	}
	ProtobufCMessage *r;
	if (f->remove) {
		Runtime__V1__RemovePodSandboxResponse *m = xmalloc(sizeof(*m));
		runtime__v1__remove_pod_sandbox_response__init(m);
		r = &m->base;
	} else {
		Runtime__V1__StopPodSandboxResponse *m = xmalloc(sizeof(*m));
		runtime__v1__stop_pod_sandbox_response__init(m);
		r = &m->base;
	}
	CriapiResponse resp = { r, criapi_response_free_plain };
	finish(f, &resp, NULL);
}

static void teardown_network(PodFlow *f)
{
	Crisp__NetworkTeardownRequest m = CRISP__NETWORK_TEARDOWN_REQUEST__INIT;
	m.pod_id = f->id;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_NETD, CRISP_MSG_NETD_TEARDOWN_REQ, &m.base,
			 &crisp__network_teardown_reply__descriptor, f->deadline_ms, network_down);
}

static void release_next(PodFlow *f);

static void released(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err && err->code != CRISP_ERR_NOT_FOUND) {
		finish(f, NULL, err);
		return;
	}
	release_next(f);
}

/* The removed pod's containers give their snapshots back to imaged, one by one. */
static void release_next(PodFlow *f)
{
	size_t n = strv_length(f->containers);
	if (f->released >= n) {
		teardown_network(f);
		return;
	}
	Crisp__ReleaseContainerSnapshotRequest m = CRISP__RELEASE_CONTAINER_SNAPSHOT_REQUEST__INIT;
	m.container_id = f->containers[f->released++];
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_IMAGED, CRISP_MSG_IMAGED_RELEASE_REQ, &m.base,
			 &crisp__release_container_snapshot_reply__descriptor, f->deadline_ms,
			 released);
}

static void pod_gone(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		finish(f, NULL, err);
		return;
	}
	if (f->remove)
		release_next(f);
	else
		teardown_network(f);
}

static void remove_in_sandboxd(PodFlow *f)
{
	Runtime__V1__RemovePodSandboxRequest m = RUNTIME__V1__REMOVE_POD_SANDBOX_REQUEST__INIT;
	m.pod_sandbox_id = f->id;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 4, &m.base,
			 &runtime__v1__remove_pod_sandbox_response__descriptor, f->deadline_ms,
			 pod_gone);
}

static void containers_listed(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	PodFlow *f = flow;
	if (err) {
		finish(f, NULL, err);
		return;
	}
	const Runtime__V1__ListContainersResponse *a = (const void *)answer;
	for (size_t i = 0; i < a->n_containers; i++)
		strv_push(&f->containers, a->containers[i]->id);
	remove_in_sandboxd(f);
}

static void stop_or_remove(PodFlow *f)
{
	if (f->remove) {
		/* Which containers go with the pod: their snapshots are imaged's to release. */
		Runtime__V1__ContainerFilter filter = RUNTIME__V1__CONTAINER_FILTER__INIT;
		filter.pod_sandbox_id = f->id;
		Runtime__V1__ListContainersRequest m = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
		m.filter = &filter;
		criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 18,
				 &m.base, &runtime__v1__list_containers_response__descriptor,
				 f->deadline_ms, containers_listed);
	} else {
		Runtime__V1__StopPodSandboxRequest m = RUNTIME__V1__STOP_POD_SANDBOX_REQUEST__INIT;
		m.pod_sandbox_id = f->id;
		criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 2,
				 &m.base, &runtime__v1__stop_pod_sandbox_response__descriptor,
				 f->deadline_ms, pod_gone);
	}
}

static void resolved(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	PodFlow *f = flow;
	if (err && err->code == CRISP_ERR_NOT_FOUND && f->remove) {
		network_down(f, NULL, NULL); /* removed already */
		return;
	}
	if (err) {
		finish(f, NULL, err);
		return;
	}
	const Runtime__V1__PodSandboxStatusResponse *a = (const void *)answer;
	snprintf(f->id, sizeof(f->id), "%s", a->status ? a->status->id : "");
	stop_or_remove(f);
}

static int stop_remove(const CriapiCall *call, const char *id, bool remove, CrispError **err)
{
	if (!id || !*id)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "pod_sandbox_id is empty");
	PodFlow *f = xcalloc(1, sizeof(*f));
	f->reply = call->reply;
	f->deadline_ms = call->deadline_ms;
	f->remove = remove;
	snprintf(f->id, sizeof(f->id), "%s", id);
	if (strlen(id) == 64) {
		stop_or_remove(f);
	} else {
		/* A prefix: sandboxd knows which pod it names; netd needs the whole ID. */
		Runtime__V1__PodSandboxStatusRequest m =
			RUNTIME__V1__POD_SANDBOX_STATUS_REQUEST__INIT;
		m.pod_sandbox_id = (char *)id;
		criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 6,
				 &m.base, &runtime__v1__pod_sandbox_status_response__descriptor,
				 f->deadline_ms, resolved);
	}
	return CRIAPI_ANSWER_LATER;
}

int criapi_rpc_stop_pod_sandbox(const CriapiCall *call, CriapiResponse *ret _unused_,
				CrispError **err)
{
	const Runtime__V1__StopPodSandboxRequest *q = (const void *)call->request;
	return stop_remove(call, q->pod_sandbox_id, false, err);
}

int criapi_rpc_remove_pod_sandbox(const CriapiCall *call, CriapiResponse *ret _unused_,
				  CrispError **err)
{
	const Runtime__V1__RemovePodSandboxRequest *q = (const void *)call->request;
	return stop_remove(call, q->pod_sandbox_id, true, err);
}
