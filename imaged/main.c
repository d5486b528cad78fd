/*
 * crisp-imaged - pulls and stores images for crisp.
 */
#include "backend.h"
#include "imaged.h"
#include "api.pb-c.h"
#include "ipc_types.h"

static const CrispDbMigration imaged_migrations[] = {
	CRISP_DB_MIGRATION_META,
};

static const char *const imaged_subdirs[] = { IMAGED_STORE_DIR, IMAGED_CONTAINERS_DIR, NULL };

static const CrispHandler imaged_handlers[] = {
	{ CRISP_MSG_IMAGED_BASE + 8, &runtime__v1__image_fs_info_request__descriptor,
	  imaged_image_fs_info, CRISP_HANDLER_ASYNC, 0 },
};

int main(int argc, char **argv)
{
	static const CrispBackendSpec spec = {
		.name = "crisp-imaged",
		.backend = CRISP__BACKEND__BACKEND_IMAGED,
		.profile = &imaged_profile,
		.root_subdir = "image",
		.db_name = "image.db",
		.migrations = imaged_migrations,
		.n_migrations = ELEMENTSOF(imaged_migrations),
		.subdirs = imaged_subdirs,
		.handlers = imaged_handlers,
		.n_handlers = ELEMENTSOF(imaged_handlers),
	};
	return crisp_backend_main(&spec, argc, argv);
}
