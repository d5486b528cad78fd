/*
 * rpc_runtime.c - RuntimeService calls criapi answers itself:
 * Version, Status, RuntimeConfig and UpdateRuntimeConfig.
 */
#include "criapi.h"

#include "ipc_types.h"
#include "version.h"

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

/* Appends "<name>: <why>" for a backend that is not ready; returns whether it is. */
static bool backend_ready(const CriapiCall *call, Crisp__Backend b, const char *name,
			  char **problems)
{
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_proto_ Crisp__HealthReply *h = NULL;
	Crisp__HealthRequest req = CRISP__HEALTH_REQUEST__INIT;
	_cleanup_free_ char *why = NULL;

	int r = crisp_ipc_client_call(criapi_backend(b), CRISP_MSG_HEALTH_REQ, &req.base, NULL, 0,
				      CRISP_MSG_HEALTH_ANS, &crisp__health_reply__descriptor,
				      sub_deadline(call), (ProtobufCMessage **)&h, NULL, NULL,
				      &err);
	if (r == 0 && h->ready)
		return true;
	why = r < 0 ? xstrdup(err->message) : xasprintf("%s: %s", name, h->message);
	char *all = *problems ? xasprintf("%s; %s", *problems, why) : TAKE_PTR(why);
	free(*problems);
	*problems = all;
	return false;
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

static Runtime__V1__RuntimeCondition *network_condition(const CriapiCall *call)
{
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_proto_ Crisp__NetworkStatusReply *n = NULL;
	Crisp__NetworkStatusRequest req = CRISP__NETWORK_STATUS_REQUEST__INIT;

	int r = crisp_ipc_client_call(
		criapi_backend(CRISP__BACKEND__BACKEND_NETD), CRISP_MSG_NETD_STATUS_REQ, &req.base,
		NULL, 0, CRISP_MSG_NETD_STATUS_ANS, &crisp__network_status_reply__descriptor,
		sub_deadline(call), (ProtobufCMessage **)&n, NULL, NULL, &err);
	if (r < 0)
		return condition("NetworkReady", false, "NetworkBackendUnavailable", err->message);
	return condition("NetworkReady", n->ready, n->reason, n->message);
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

int criapi_rpc_status(const CriapiCall *call, CriapiResponse *ret, CrispError **err _unused_)
{
	const Runtime__V1__StatusRequest *req = (const Runtime__V1__StatusRequest *)call->request;
	_cleanup_free_ char *problems = NULL;

	/* The runtime can run containers when every backend it needs answers ready. */
	bool ready = backend_ready(call, CRISP__BACKEND__BACKEND_IMAGED, "crisp-imaged", &problems);
	ready &= backend_ready(call, CRISP__BACKEND__BACKEND_SANDBOXD, "crisp-sandboxd", &problems);
	ready &= backend_ready(call, CRISP__BACKEND__BACKEND_STREAMD, "crisp-streamd", &problems);

	Runtime__V1__StatusResponse *s = xmalloc(sizeof(*s));
	runtime__v1__status_response__init(s);
	s->status = xmalloc(sizeof(*s->status));
	runtime__v1__runtime_status__init(s->status);
	s->status->n_conditions = 2;
	s->status->conditions = xcalloc(2, sizeof(*s->status->conditions));
	s->status->conditions[0] =
		condition("RuntimeReady", ready, "BackendNotReady", problems ? problems : "");
	s->status->conditions[1] = network_condition(call);

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

	if (req->verbose)
		add_info(s, "config", crisp_config_to_json(c));

	*ret = (CriapiResponse){ &s->base, criapi_response_free_plain };
	return 0;
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
	if (*cidr) {
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
		_cleanup_proto_ Crisp__PodCidrReply *a = NULL;
		int r = crisp_ipc_client_call(criapi_backend(CRISP__BACKEND__BACKEND_NETD),
					      CRISP_MSG_NETD_POD_CIDR_REQ, &m.base, NULL, 0,
					      CRISP_MSG_NETD_POD_CIDR_ANS,
					      &crisp__pod_cidr_reply__descriptor, call->deadline_ms,
					      (ProtobufCMessage **)&a, NULL, NULL, err);
		if (r < 0)
			return crisp_error_wrap(err, "runtime_config.network_config.pod_cidr");
	}

	Runtime__V1__UpdateRuntimeConfigResponse *r = xmalloc(sizeof(*r));
	runtime__v1__update_runtime_config_response__init(r);
	*ret = (CriapiResponse){ &r->base, criapi_response_free_plain };
	return 0;
}
