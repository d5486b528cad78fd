/*
 * crisp-imaged - pulls and stores images for crisp, and prepares containers'
 * writable snapshots.
 */
#include "api.pb-c.h"
#include "backend.h"
#include "image_db.h"
#include "imaged.h"
#include "internal.pb-c.h"
#include "ipc_types.h"

static const char *const imaged_subdirs[] = { IMAGED_STORE_DIR, IMAGED_CONTAINERS_DIR, NULL };

#define CRI(n, desc, fn)                                                                           \
	{                                                                                          \
		CRISP_MSG_IMAGED_BASE + (n), &(desc), fn, CRISP_HANDLER_ASYNC, 0                   \
	}

static const CrispHandler imaged_handlers[] = {
	CRI(0, runtime__v1__list_images_request__descriptor, imaged_list_images),
	CRI(2, runtime__v1__image_status_request__descriptor, imaged_image_status),
	CRI(4, runtime__v1__pull_image_request__descriptor, imaged_pull_image),
	CRI(6, runtime__v1__remove_image_request__descriptor, imaged_remove_image),
	CRI(8, runtime__v1__image_fs_info_request__descriptor, imaged_image_fs_info),
	{ CRISP_MSG_IMAGED_PREPARE_REQ, &crisp__prepare_container_snapshot_request__descriptor,
	  imaged_prepare_container, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_IMAGED_RELEASE_REQ, &crisp__release_container_snapshot_request__descriptor,
	  imaged_release_container, CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_IMAGED_LIST_CONTAINERS_REQ,
	  &crisp__list_container_snapshots_request__descriptor, imaged_list_containers,
	  CRISP_HANDLER_ASYNC, 0 },
};

int main(int argc, char **argv)
{
	const CrispBackendSpec spec = {
		.name = "crisp-imaged",
		.backend = CRISP__BACKEND__BACKEND_IMAGED,
		.profile = &imaged_profile,
		.root_subdir = "image",
		.db_name = "image.db",
		.migrations = image_db_migrations,
		.n_migrations = image_db_n_migrations,
		.subdirs = imaged_subdirs,
		.handlers = imaged_handlers,
		.n_handlers = ELEMENTSOF(imaged_handlers),
		.setup = imaged_setup,
		.teardown = imaged_teardown,
	};
	return crisp_backend_main(&spec, argc, argv);
}
