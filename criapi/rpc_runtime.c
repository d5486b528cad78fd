/*
 * rpc_runtime.c - RuntimeService calls criapi answers itself:
 * Version, Status, RuntimeConfig and UpdateRuntimeConfig.
 */
#include "criapi.h"

#include "ipc_types.h"
#include "version.h"

#include <pthread.h>

/* The version of the kubelet-runtime API this answers; "0.1.0" is what kubelet expects. */
#define CRI_KUBELET_API_VERSION "0.1.0"
#define CRI_RUNTIME_API_VERSION "v1"
/* How long Status waits for a backend's health answer at most. */
#define STATUS_BACKEND_TIMEOUT_MS 2000

int criapi_rpc_version(const CriapiCall *call _unused_, CriapiResponse *ret,
		       CrispError **err _unused_)
{
	Runtime__V1__VersionResponse *v = xmalloc(sizeof(*v));
	runtime__v1__version_response__init(v);
	v->version = xstrdup(CRI_KUBELET_API_VERSION);
	v->runtime_name = xstrdup(CRISP_NAME);
	v->runtime_version = xstrdup(CRISP_VERSION);
	v->runtime_api_version = xstrdup(CRI_RUNTIME_API_VERSION);
	*ret = (CriapiResponse){ &v->base, criapi_response_free_plain };
	return 0;
}

static int64_t sub_deadline(const CriapiCall *call)
{
	int64_t d = crisp_now_ms() + STATUS_BACKEND_TIMEOUT_MS;
	return call->deadline_ms && call->deadline_ms < d ? call->deadline_ms : d;
}

static Runtime__V1__RuntimeCondition *condition(const char *type, bool status, const char *reason,
						const char *message)
{
	Runtime__V1__RuntimeCondition *c = xmalloc(sizeof(*c));
	runtime__v1__runtime_condition__init(c);
	c->type = xstrdup(type);
	c->status = status;
	c->reason = xstrdup(status ? "" : reason);
	c->message = xstrdup(status ? "" : message);
	return c;
}

static void add_info(Runtime__V1__StatusResponse *s, const char *key, char *value)
{
	s->info = xrealloc(s->info, (s->n_info + 1) * sizeof(*s->info));
	Runtime__V1__StatusResponse__InfoEntry *e = xmalloc(sizeof(*e));
	runtime__v1__status_response__info_entry__init(e);
	e->key = xstrdup(key);
	e->value = value;
	s->info[s->n_info++] = e;
}

/*
 * Status asks every backend at once, asynchronously, and answers when the
 * last one answered or timed out: a hung backend costs the caller at most
 * STATUS_BACKEND_TIMEOUT_MS and holds no thread.
 */
typedef struct StatusGather {
	pthread_mutex_t lock;
	unsigned outstanding;
	CriapiReply *reply;
	bool verbose;
	bool runtime_ready;
	char *problems; /* "<backend>: <why>; ..." */
	Runtime__V1__RuntimeCondition *network;
} StatusGather;

static void add_problem(StatusGather *g, const char *why)
{
	char *all = g->problems ? xasprintf("%s; %s", g->problems, why) : xstrdup(why);
	free(g->problems);
	g->problems = all;
}

static void status_answer(StatusGather *g)
{
	Runtime__V1__StatusResponse *s = xmalloc(sizeof(*s));
	runtime__v1__status_response__init(s);
	s->status = xmalloc(sizeof(*s->status));
	runtime__v1__runtime_status__init(s->status);
	s->status->n_conditions = 2;
	s->status->conditions = xcalloc(2, sizeof(*s->status->conditions));
	s->status->conditions[0] = condition("RuntimeReady", g->runtime_ready, "BackendNotReady",
					     g->problems ? g->problems : "");
	s->status->conditions[1] = g->network;

	const CrispConfig *c = criapi_config;
	s->n_runtime_handlers = c->n_runtimes;
	s->runtime_handlers = xcalloc(c->n_runtimes ? c->n_runtimes : 1, sizeof(void *));
	for (size_t i = 0; i < c->n_runtimes; i++) {
		Runtime__V1__RuntimeHandler *h = xmalloc(sizeof(*h));
		runtime__v1__runtime_handler__init(h);
		h->name = xstrdup(c->runtimes[i].name);
		h->features = xmalloc(sizeof(*h->features));
		runtime__v1__runtime_handler_features__init(h->features);
		s->runtime_handlers[i] = h;
	}
	s->features = xmalloc(sizeof(*s->features));
	runtime__v1__runtime_features__init(s->features);
	if (g->verbose)
		add_info(s, "config", crisp_config_to_json(c));

	CriapiResponse resp = { &s->base, criapi_response_free_plain };
	criapi_reply_finish(g->reply, &resp, NULL);
	pthread_mutex_destroy(&g->lock);
	free(g->problems);
	free(g);
}

/* One answer is in (under no lock); the last one sends the status. */
static void status_done_one(StatusGather *g)
{
	pthread_mutex_lock(&g->lock);
	bool last = --g->outstanding == 0;
	pthread_mutex_unlock(&g->lock);
	if (last)
		status_answer(g);
}

static void health_done(void *userdata, ProtobufCMessage *answer, int *fds _unused_,
			size_t n_fds _unused_, CrispError *err)
{
	StatusGather *g = userdata;
	Crisp__HealthReply *h = (Crisp__HealthReply *)answer;

	pthread_mutex_lock(&g->lock);
	if (!h || !h->ready) {
		g->runtime_ready = false;
		_cleanup_free_ char *why = h ? xasprintf("%s: %s", h->peer, h->message) : NULL;
		add_problem(g, why ? why : err->message);
	}
	pthread_mutex_unlock(&g->lock);
	crisp_proto_free(answer);
	status_done_one(g);
}

static void network_done(void *userdata, ProtobufCMessage *answer, int *fds _unused_,
			 size_t n_fds _unused_, CrispError *err)
{
	StatusGather *g = userdata;
	Crisp__NetworkStatusReply *n = (Crisp__NetworkStatusReply *)answer;

	/* Only this callback writes g->network, so no lock is needed for it. */
	if (n)
		g->network = condition("NetworkReady", n->ready, n->reason, n->message);
	else
		g->network =
			condition("NetworkReady", false, "NetworkBackendUnavailable", err->message);
	crisp_proto_free(answer);
	status_done_one(g);
}

int criapi_rpc_status(const CriapiCall *call, CriapiResponse *ret _unused_,
		      CrispError **err _unused_)
{
	static const Crisp__Backend runtime_backends[] = {
		CRISP__BACKEND__BACKEND_IMAGED,
		CRISP__BACKEND__BACKEND_SANDBOXD,
		CRISP__BACKEND__BACKEND_STREAMD,
	};
	const Runtime__V1__StatusRequest *req = (const Runtime__V1__StatusRequest *)call->request;
	Crisp__HealthRequest health = CRISP__HEALTH_REQUEST__INIT;
	Crisp__NetworkStatusRequest net = CRISP__NETWORK_STATUS_REQUEST__INIT;
	int64_t deadline = sub_deadline(call);

	StatusGather *g = xcalloc(1, sizeof(*g));
	pthread_mutex_init(&g->lock, NULL);
	g->reply = call->reply;
	g->verbose = req->verbose;
	g->runtime_ready = true;
	/* One extra count, dropped below, so no answer can complete g while we start calls. */
	g->outstanding = ELEMENTSOF(runtime_backends) + 2;

	/* The runtime can run containers when every backend it needs answers ready. */
	for (size_t i = 0; i < ELEMENTSOF(runtime_backends); i++) {
		_cleanup_error_ CrispError *e = NULL;
		if (crisp_ipc_client_call_async(
			    criapi_backend(runtime_backends[i]), CRISP_MSG_HEALTH_REQ, &health.base,
			    NULL, 0, CRISP_MSG_HEALTH_ANS, &crisp__health_reply__descriptor,
			    deadline, health_done, g, &e) < 0)
			health_done(g, NULL, NULL, 0, e);
	}
	_cleanup_error_ CrispError *e = NULL;
	if (crisp_ipc_client_call_async(
		    criapi_backend(CRISP__BACKEND__BACKEND_NETD), CRISP_MSG_NETD_STATUS_REQ,
		    &net.base, NULL, 0, CRISP_MSG_NETD_STATUS_ANS,
		    &crisp__network_status_reply__descriptor, deadline, network_done, g, &e) < 0)
		network_done(g, NULL, NULL, 0, e);
	status_done_one(g);
	return CRIAPI_ANSWER_LATER;
}

int criapi_rpc_runtime_config(const CriapiCall *call _unused_, CriapiResponse *ret,
			      CrispError **err _unused_)
{
	Runtime__V1__RuntimeConfigResponse *r = xmalloc(sizeof(*r));
	runtime__v1__runtime_config_response__init(r);
	r->linux = xmalloc(sizeof(*r->linux));
	runtime__v1__linux_runtime_configuration__init(r->linux);
	r->linux->cgroup_driver = strcmp(criapi_config->cgroup_driver, "systemd") == 0
					  ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
					  : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
	*ret = (CriapiResponse){ &r->base, criapi_response_free_plain };
	return 0;
}

static void pod_cidr_done(void *userdata, ProtobufCMessage *answer, int *fds _unused_,
			  size_t n_fds _unused_, CrispError *err)
{
	if (!answer) {
		crisp_error_wrap(&err, "runtime_config.network_config.pod_cidr");
		criapi_reply_finish(userdata, NULL, err);
		return;
	}
	crisp_proto_free(answer);
	Runtime__V1__UpdateRuntimeConfigResponse *r = xmalloc(sizeof(*r));
	runtime__v1__update_runtime_config_response__init(r);
	CriapiResponse resp = { &r->base, criapi_response_free_plain };
	criapi_reply_finish(userdata, &resp, NULL);
}

int criapi_rpc_update_runtime_config(const CriapiCall *call, CriapiResponse *ret, CrispError **err)
{
	const Runtime__V1__UpdateRuntimeConfigRequest *req =
		(const Runtime__V1__UpdateRuntimeConfigRequest *)call->request;
	const char *cidr = req->runtime_config && req->runtime_config->network_config
				   ? req->runtime_config->network_config->pod_cidr
				   : "";
	_cleanup_strv_free_ char **cidrs = NULL;
	_cleanup_free_ char *copy = xstrdup(cidr);

	/* The kubelet sends "" until it knows the node's range: nothing to do yet. */
	if (!*cidr) {
		Runtime__V1__UpdateRuntimeConfigResponse *r = xmalloc(sizeof(*r));
		runtime__v1__update_runtime_config_response__init(r);
		*ret = (CriapiResponse){ &r->base, criapi_response_free_plain };
		return 0;
	}

	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		size_t n = strlen(t);
		while (n > 0 && t[n - 1] == ' ')
			t[--n] = '\0';
		strv_push(&cidrs, t);
	}
	Crisp__PodCidrRequest m = CRISP__POD_CIDR_REQUEST__INIT;
	m.n_cidrs = strv_length(cidrs);
	m.cidrs = cidrs;
	int r = crisp_ipc_client_call_async(
		criapi_backend(CRISP__BACKEND__BACKEND_NETD), CRISP_MSG_NETD_POD_CIDR_REQ, &m.base,
		NULL, 0, CRISP_MSG_NETD_POD_CIDR_ANS, &crisp__pod_cidr_reply__descriptor,
		call->deadline_ms, pod_cidr_done, call->reply, err);
	return r < 0 ? r : CRIAPI_ANSWER_LATER;
}
