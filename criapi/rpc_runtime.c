/*
 * rpc_runtime.c - RuntimeService calls answered by criapi itself.
 */
#include "criapi.h"

#include "version.h"

/* The version of the kubelet-runtime API this answers; "0.1.0" is what kubelet expects. */
#define CRI_KUBELET_API_VERSION "0.1.0"
#define CRI_RUNTIME_API_VERSION "v1"

static int rpc_version(const CriapiCall *call _unused_, ProtobufCMessage **ret,
		       CrispError **err _unused_)
{
	Runtime__V1__VersionResponse *v = xmalloc(sizeof(*v));
	runtime__v1__version_response__init(v);
	v->version = xstrdup(CRI_KUBELET_API_VERSION);
	v->runtime_name = xstrdup(CRISP_NAME);
	v->runtime_version = xstrdup(CRISP_VERSION);
	v->runtime_api_version = xstrdup(CRI_RUNTIME_API_VERSION);
	*ret = &v->base;
	return 0;
}

typedef struct HandlerEntry {
	const char *service;
	const char *method;
	CriapiHandler handler;
} HandlerEntry;

static const HandlerEntry handlers[] = {
	{ "runtime.v1.RuntimeService", "Version", rpc_version },
};

CriapiHandler criapi_find_handler(const char *service, const char *method)
{
	for (size_t i = 0; i < ELEMENTSOF(handlers); i++)
		if (strcmp(handlers[i].service, service) == 0 &&
		    strcmp(handlers[i].method, method) == 0)
			return handlers[i].handler;
	return NULL;
}
