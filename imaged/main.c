/*
 * crisp-imaged - pulls and stores images for crisp.
 */
#include "backend.h"
#include "imaged.h"

static const CrispDbMigration imaged_migrations[] = {
	CRISP_DB_MIGRATION_META,
};

int main(int argc, char **argv)
{
	static const CrispBackendSpec spec = {
		.name = "crisp-imaged",
		.profile = &imaged_profile,
		.root_subdir = "image",
		.db_name = "image.db",
		.migrations = imaged_migrations,
		.n_migrations = ELEMENTSOF(imaged_migrations),
	};
	return crisp_backend_main(&spec, argc, argv);
}
