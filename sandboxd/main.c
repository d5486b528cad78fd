/*
 * crisp-sandboxd - runs pods and containers for crisp.
 */
#include "api.pb-c.h"
#include "backend.h"
#include "ipc_types.h"
#include "sandboxd.h"

#define CRI(n, desc, fn)                                                                           \
	{                                                                                          \
		CRISP_MSG_SANDBOXD_BASE + (n), &(desc), fn, CRISP_HANDLER_ASYNC, 0                 \
	}

static const CrispHandler sandboxd_handlers[] = {
	CRI(2, runtime__v1__stop_pod_sandbox_request__descriptor, sandboxd_stop_pod),
	CRI(4, runtime__v1__remove_pod_sandbox_request__descriptor, sandboxd_remove_pod),
	CRI(6, runtime__v1__pod_sandbox_status_request__descriptor, sandboxd_pod_status),
	CRI(8, runtime__v1__list_pod_sandbox_request__descriptor, sandboxd_list_pods),
	CRI(12, runtime__v1__start_container_request__descriptor, sandboxd_start_container),
	CRI(14, runtime__v1__stop_container_request__descriptor, sandboxd_stop_container),
	CRI(16, runtime__v1__remove_container_request__descriptor, sandboxd_remove_container),
	CRI(18, runtime__v1__list_containers_request__descriptor, sandboxd_list_containers),
	CRI(20, runtime__v1__container_status_request__descriptor, sandboxd_container_status),
	CRI(22, runtime__v1__update_container_resources_request__descriptor,
	    sandboxd_update_container),
	CRI(24, runtime__v1__reopen_container_log_request__descriptor, sandboxd_reopen_log),
	CRI(26, runtime__v1__exec_sync_request__descriptor, sandboxd_exec_sync),
	CRI(28, runtime__v1__container_stats_request__descriptor, sandboxd_container_stats),
	CRI(30, runtime__v1__list_container_stats_request__descriptor,
	    sandboxd_list_container_stats),
	CRI(32, runtime__v1__pod_sandbox_stats_request__descriptor, sandboxd_pod_stats),
	CRI(34, runtime__v1__list_pod_sandbox_stats_request__descriptor, sandboxd_list_pod_stats),
	CRI(38, runtime__v1__list_metric_descriptors_request__descriptor,
	    sandboxd_list_metric_descriptors),
	CRI(40, runtime__v1__list_pod_sandbox_metrics_request__descriptor,
	    sandboxd_list_pod_metrics),
	CRI(42, runtime__v1__update_pod_sandbox_resources_request__descriptor,
	    sandboxd_update_pod_resources),
	{ CRISP_MSG_SANDBOXD_WAIT_EVENTS_REQ, &crisp__wait_events_request__descriptor,
	  sandboxd_wait_events, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_SANDBOXD_CONTAINER_CREATE_REQ, &crisp__container_create_request__descriptor,
	  sandboxd_container_create, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_SANDBOXD_POD_RUN_REQ, &crisp__pod_run_request__descriptor, sandboxd_pod_run,
	  CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_SANDBOXD_EXEC_START_REQ, &crisp__exec_start_request__descriptor,
	  sandboxd_exec_start, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_SANDBOXD_ATTACH_REQ, &crisp__container_attach_request__descriptor,
	  sandboxd_attach, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_SANDBOXD_POD_SET_NETWORK_REQ, &crisp__pod_set_network_request__descriptor,
	  sandboxd_pod_set_network, CRISP_HANDLER_ASYNC, 0 },
};

int main(int argc, char **argv)
{
	const CrispBackendSpec spec = {
		.name = "crisp-sandboxd",
		.backend = CRISP__BACKEND__BACKEND_SANDBOXD,
		.profile = &sandboxd_profile,
		.root_subdir = "sandbox",
		.db_name = "sandbox.db",
		.migrations = sandboxd_migrations,
		.n_migrations = sandboxd_n_migrations,
		.spawn_builder = sandboxd_spawn_build,
		.handlers = sandboxd_handlers,
		.n_handlers = ELEMENTSOF(sandboxd_handlers),
		.setup = sandboxd_setup,
		.teardown = sandboxd_teardown,
	};
	return crisp_backend_main(&spec, argc, argv);
}
