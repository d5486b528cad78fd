/*
 * crisp-netd - network namespaces and CNI for crisp.
 */
#include "backend.h"
#include "ipc_types.h"
#include "netd.h"

#define VERB(type, desc, fn, n_fds)                                                                \
	{                                                                                          \
		type, &(desc), fn, CRISP_HANDLER_ASYNC, n_fds                                      \
	}

static const CrispHandler netd_handlers[] = {
	VERB(CRISP_MSG_NETD_STATUS_REQ, crisp__network_status_request__descriptor,
	     netd_network_status, 0),
	VERB(CRISP_MSG_NETD_POD_CIDR_REQ, crisp__pod_cidr_request__descriptor, netd_set_pod_cidr,
	     0),
	VERB(CRISP_MSG_NETD_NETNS_CREATE_REQ, crisp__netns_create_request__descriptor,
	     netd_netns_create_handler, 0),
	VERB(CRISP_MSG_NETD_ATTACH_REQ, crisp__network_attach_request__descriptor,
	     netd_attach_handler, 0),
	VERB(CRISP_MSG_NETD_TEARDOWN_REQ, crisp__network_teardown_request__descriptor,
	     netd_teardown_handler, 0),
	VERB(CRISP_MSG_NETD_POD_NETWORK_REQ, crisp__pod_network_request__descriptor,
	     netd_pod_network_handler, 0),
	VERB(CRISP_MSG_NETD_DIAL_REQ, crisp__port_forward_dial_request__descriptor,
	     netd_dial_handler, 0),
};

int main(int argc, char **argv)
{
	const CrispBackendSpec spec = {
		.name = "crisp-netd",
		.backend = CRISP__BACKEND__BACKEND_NETD,
		.profile = &netd_profile,
		.root_subdir = "net",
		.db_name = "net.db",
		.migrations = netd_migrations,
		.n_migrations = netd_n_migrations,
		.spawn_builder = netd_spawn_build,
		.handlers = netd_handlers,
		.n_handlers = ELEMENTSOF(netd_handlers),
		.setup = netd_setup,
		.teardown = netd_teardown,
	};
	return crisp_backend_main(&spec, argc, argv);
}
