/*
 * cri_routes.c - the routing table of CRI calls to backends.
 */
#include "cri_routes.h"

#include "api.pb-c.h"
#include "ipc_types.h"

#define RT "runtime.v1.RuntimeService"
#define IS "runtime.v1.ImageService"
#define ROUTE(svc, name, backend, type, snake)                                                     \
	{                                                                                          \
		svc, #name, CRISP__BACKEND__BACKEND_##backend, type,                               \
			&runtime__v1__##snake##_request__descriptor,                               \
			&runtime__v1__##snake##_response__descriptor                               \
	}

const CrispCriRoute crisp_cri_routes[] = {
	/* imaged */
	ROUTE(IS, ListImages, IMAGED, CRISP_MSG_IMAGED_BASE + 0, list_images),
	ROUTE(IS, ImageStatus, IMAGED, CRISP_MSG_IMAGED_BASE + 2, image_status),
	ROUTE(IS, PullImage, IMAGED, CRISP_MSG_IMAGED_BASE + 4, pull_image),
	ROUTE(IS, RemoveImage, IMAGED, CRISP_MSG_IMAGED_BASE + 6, remove_image),
	ROUTE(IS, ImageFsInfo, IMAGED, CRISP_MSG_IMAGED_BASE + 8, image_fs_info),

	/* sandboxd */
	ROUTE(RT, RunPodSandbox, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 0, run_pod_sandbox),
	ROUTE(RT, StopPodSandbox, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 2, stop_pod_sandbox),
	ROUTE(RT, RemovePodSandbox, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 4, remove_pod_sandbox),
	ROUTE(RT, PodSandboxStatus, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 6, pod_sandbox_status),
	ROUTE(RT, ListPodSandbox, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 8, list_pod_sandbox),
	ROUTE(RT, CreateContainer, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 10, create_container),
	ROUTE(RT, StartContainer, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 12, start_container),
	ROUTE(RT, StopContainer, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 14, stop_container),
	ROUTE(RT, RemoveContainer, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 16, remove_container),
	ROUTE(RT, ListContainers, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 18, list_containers),
	ROUTE(RT, ContainerStatus, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 20, container_status),
	ROUTE(RT, UpdateContainerResources, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 22,
	      update_container_resources),
	ROUTE(RT, ReopenContainerLog, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 24, reopen_container_log),
	ROUTE(RT, ExecSync, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 26, exec_sync),
	ROUTE(RT, ContainerStats, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 28, container_stats),
	ROUTE(RT, ListContainerStats, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 30, list_container_stats),
	ROUTE(RT, PodSandboxStats, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 32, pod_sandbox_stats),
	ROUTE(RT, ListPodSandboxStats, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 34,
	      list_pod_sandbox_stats),
	ROUTE(RT, CheckpointContainer, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 36,
	      checkpoint_container),
	ROUTE(RT, ListMetricDescriptors, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 38,
	      list_metric_descriptors),
	ROUTE(RT, ListPodSandboxMetrics, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 40,
	      list_pod_sandbox_metrics),
	ROUTE(RT, UpdatePodSandboxResources, SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 42,
	      update_pod_sandbox_resources),

	/* streamd: registers the session and returns its URL */
	ROUTE(RT, Exec, STREAMD, CRISP_MSG_STREAMD_BASE + 0, exec),
	ROUTE(RT, Attach, STREAMD, CRISP_MSG_STREAMD_BASE + 2, attach),
	ROUTE(RT, PortForward, STREAMD, CRISP_MSG_STREAMD_BASE + 4, port_forward),
};
const size_t crisp_cri_n_routes = ELEMENTSOF(crisp_cri_routes);

const CrispCriRoute *crisp_cri_route_find(const char *service, const char *method)
{
	for (size_t i = 0; i < crisp_cri_n_routes; i++)
		if (strcmp(crisp_cri_routes[i].service, service) == 0 &&
		    strcmp(crisp_cri_routes[i].method, method) == 0)
			return &crisp_cri_routes[i];
	return NULL;
}

const CrispCriRoute *crisp_cri_route_by_type(uint16_t type)
{
	for (size_t i = 0; i < crisp_cri_n_routes; i++)
		if (crisp_cri_routes[i].type == type)
			return &crisp_cri_routes[i];
	return NULL;
}

static const char *backend_name(Crisp__Backend b)
{
	switch (b) {
	case CRISP__BACKEND__BACKEND_IMAGED:
		return "crisp-imaged";
	case CRISP__BACKEND__BACKEND_SANDBOXD:
		return "crisp-sandboxd";
	case CRISP__BACKEND__BACKEND_NETD:
		return "crisp-netd";
	case CRISP__BACKEND__BACKEND_STREAMD:
		return "crisp-streamd";
	default:
		return "crisp";
	}
}

static int not_implemented(CrispRequest *req, void *userdata _unused_, CrispError **err)
{
	const CrispCriRoute *r = crisp_cri_route_by_type(req->type);
	return crisp_error_set(err, CRISP_ERR_UNIMPLEMENTED, ENOSYS, "%s does not implement %s yet",
			       backend_name(r->backend), r->method);
}

CrispHandler *crisp_cri_backend_handlers(Crisp__Backend backend, const CrispHandler *own,
					 size_t n_own, size_t *ret_n)
{
	CrispHandler *t = xcalloc(n_own + crisp_cri_n_routes, sizeof(*t));
	size_t n = 0;

	for (size_t i = 0; i < n_own; i++)
		t[n++] = own[i];
	for (size_t i = 0; i < crisp_cri_n_routes; i++) {
		const CrispCriRoute *r = &crisp_cri_routes[i];
		bool handled = false;
		if (r->backend != backend)
			continue;
		for (size_t j = 0; j < n_own; j++)
			handled |= own[j].type == r->type;
		if (!handled)
			t[n++] = (CrispHandler){ r->type, r->request, not_implemented, 0, 0 };
	}
	*ret_n = n;
	return t;
}
