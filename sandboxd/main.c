/*
 * crisp-sandboxd - runs pods and containers for crisp.
 */
#include "backend.h"
#include "sandboxd.h"

static const CrispDbMigration sandboxd_migrations[] = {
	CRISP_DB_MIGRATION_META,
};

int main(int argc, char **argv)
{
	static const CrispBackendSpec spec = {
		.name = "crisp-sandboxd",
		.backend = CRISP__BACKEND__BACKEND_SANDBOXD,
		.profile = &sandboxd_profile,
		.root_subdir = "sandbox",
		.db_name = "sandbox.db",
		.migrations = sandboxd_migrations,
		.n_migrations = ELEMENTSOF(sandboxd_migrations),
		.spawn_builder = sandboxd_spawn_build,
	};
	return crisp_backend_main(&spec, argc, argv);
}
