/*
 * fsinfo.c - ImageFsInfo: what imaged's store uses on disk.
 *
 * Image content (blobs, unpacked layers, metadata) lives in <root>/image/store
 * and containers' writable layers in <root>/image/containers, so the two are
 * reported separately, as image and container filesystems.  Usage is counted
 * by walking the tree: allocated bytes (st_blocks), and each inode once even
 * when hard links reach it several times, as the kubelet's eviction expects.
 */
#include "imaged.h"

#include "api.pb-c.h"
#include "backend.h"
#include "fsutil.h"
#include "ipc_types.h"

#include <time.h>

static Runtime__V1__FilesystemUsage *usage_of(const char *dir, int64_t now_ns,
					      Runtime__V1__FilesystemIdentifier *id,
					      Runtime__V1__UInt64Value *bytes,
					      Runtime__V1__UInt64Value *inodes,
					      Runtime__V1__FilesystemUsage *u, CrispError **err)
{
	runtime__v1__filesystem_usage__init(u);
	runtime__v1__filesystem_identifier__init(id);
	runtime__v1__uint64_value__init(bytes);
	runtime__v1__uint64_value__init(inodes);
	int r = crisp_disk_usage(dir, &bytes->value, &inodes->value);
	if (r < 0) {
		crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "measuring %s", dir);
		return NULL;
	}
	id->mountpoint = (char *)dir;
	u->timestamp = now_ns;
	u->fs_id = id;
	u->used_bytes = bytes;
	u->inodes_used = inodes;
	return u;
}

int imaged_image_fs_info(CrispRequest *req, void *userdata, CrispError **err)
{
	CrispBackend *b = userdata;
	_cleanup_free_ char *store = xasprintf("%s/%s", b->dir, IMAGED_STORE_DIR);
	_cleanup_free_ char *containers = xasprintf("%s/%s", b->dir, IMAGED_CONTAINERS_DIR);
	Runtime__V1__FilesystemIdentifier ids[2];
	Runtime__V1__UInt64Value values[4];
	Runtime__V1__FilesystemUsage usage[2];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

	Runtime__V1__FilesystemUsage *image =
		usage_of(store, now, &ids[0], &values[0], &values[1], &usage[0], err);
	if (!image)
		return -EIO;
	Runtime__V1__FilesystemUsage *container =
		usage_of(containers, now, &ids[1], &values[2], &values[3], &usage[1], err);
	if (!container)
		return -EIO;

	Runtime__V1__ImageFsInfoResponse a = RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT;
	a.n_image_filesystems = 1;
	a.image_filesystems = &image;
	a.n_container_filesystems = 1;
	a.container_filesystems = &container;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
