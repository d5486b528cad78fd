/*
 * crisp-netd - network namespaces and CNI for crisp.
 */
#include "backend.h"
#include "netd.h"

static const CrispDbMigration netd_migrations[] = {
	CRISP_DB_MIGRATION_META,
};

int main(int argc, char **argv)
{
	static const CrispBackendSpec spec = {
		.name = "crisp-netd",
		.profile = &netd_profile,
		.root_subdir = "net",
		.db_name = "net.db",
		.migrations = netd_migrations,
		.n_migrations = ELEMENTSOF(netd_migrations),
		.spawn_builder = netd_spawn_build,
	};
	return crisp_backend_main(&spec, argc, argv);
}
