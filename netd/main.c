/*
 * crisp-netd - network namespaces and CNI for crisp.
 */
#include "backend.h"
#include "netd.h"
#include "ipc_types.h"

static const CrispDbMigration netd_migrations[] = {
	CRISP_DB_MIGRATION_META,
};

static const CrispHandler netd_handlers[] = {
	{ CRISP_MSG_NETD_STATUS_REQ, &crisp__network_status_request__descriptor,
	  netd_network_status, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_NETD_POD_CIDR_REQ, &crisp__pod_cidr_request__descriptor, netd_set_pod_cidr,
	  CRISP_HANDLER_ASYNC, 0 },
};

int main(int argc, char **argv)
{
	static const CrispBackendSpec spec = {
		.name = "crisp-netd",
		.backend = CRISP__BACKEND__BACKEND_NETD,
		.profile = &netd_profile,
		.root_subdir = "net",
		.db_name = "net.db",
		.migrations = netd_migrations,
		.n_migrations = ELEMENTSOF(netd_migrations),
		.spawn_builder = netd_spawn_build,
		.handlers = netd_handlers,
		.n_handlers = ELEMENTSOF(netd_handlers),
	};
	return crisp_backend_main(&spec, argc, argv);
}
