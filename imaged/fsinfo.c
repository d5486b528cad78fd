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
#include "ipc_types.h"

#include <ftw.h>
#include <search.h>
#include <sys/stat.h>
#include <time.h>

/* nftw has no user pointer; handlers run one at a time per thread. */
static _Thread_local struct {
	uint64_t bytes, inodes;
	void *seen; /* tsearch tree of inode numbers with more than one link */
} walk;

static int compare_ino(const void *a, const void *b)
{
	ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;
	return x < y ? -1 : x > y;
}

static int count_entry(const char *path _unused_, const struct stat *st, int flag _unused_,
		       struct FTW *ftw _unused_)
{
	if (st->st_nlink > 1 && !S_ISDIR(st->st_mode)) {
		ino_t *key = xmalloc(sizeof(*key));
		*key = st->st_ino;
		ino_t **found = tsearch(key, &walk.seen, compare_ino);
		if (!found)
			return -1;
		if (*found != key) {
			free(key);
			return 0; /* another link to an inode already counted */
		}
	}
	walk.bytes += (uint64_t)st->st_blocks * 512;
	walk.inodes++;
	return 0;
}

static int measure(const char *dir, uint64_t *ret_bytes, uint64_t *ret_inodes, CrispError **err)
{
	walk.bytes = walk.inodes = 0;
	walk.seen = NULL;
	int r = nftw(dir, count_entry, 32, FTW_PHYS | FTW_MOUNT);
	tdestroy(walk.seen, free);
	walk.seen = NULL;
	if (r != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "measuring %s", dir);
	*ret_bytes = walk.bytes;
	*ret_inodes = walk.inodes;
	return 0;
}

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
	if (measure(dir, &bytes->value, &inodes->value, err) < 0)
		return NULL;
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
