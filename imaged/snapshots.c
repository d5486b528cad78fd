/*
 * snapshots.c - unpacked layers by chain ID (see snapshots.h).
 */
#include "snapshots.h"

#include "image_db.h"
#include "log.h"
#include "unpack.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>

int imaged_chain_ids(const CrispDigest *diff_ids, size_t n, CrispDigest *ret, CrispError **err)
{
	for (size_t i = 0; i < n; i++) {
		if (i == 0) {
			ret[0] = diff_ids[0];
			continue;
		}
		_cleanup_free_ char *s = xasprintf("%s %s", ret[i - 1].string, diff_ids[i].string);
		int r = crisp_digest_compute(CRISP_DIGEST_SHA256, s, strlen(s), &ret[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

void imaged_snapshot_name(int64_t id, char buf[static 24])
{
	snprintf(buf, 24, "%" PRId64, id);
}

char *imaged_snapshot_path(const Imaged *im, int64_t id)
{
	return xasprintf("%s/%" PRId64, im->snapshots_path, id);
}

int imaged_snapshot_remove_locked(Imaged *im, int64_t id, CrispError **err)
{
	char name[24];
	imaged_snapshot_name(id, name);
	int r = crisp_remove_tree_at(im->snapshots_fd, name);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "removing snapshot %s/%s",
					     im->snapshots_path, name);
	return image_db_snapshot_delete(im->db, id, err);
}

/* Unpacks the layer blob into the (new, empty) snapshot directory id. */
static int unpack_into(Imaged *im, int64_t id, const CrispDigest *diff_id,
		       const CrispDescriptor *layer, int64_t *ret_size, CrispError **err)
{
	char name[24];
	imaged_snapshot_name(id, name);
	if (mkdirat(im->snapshots_fd, name, 0755) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating snapshot %s",
					     name);
	_cleanup_close_ int dirfd =
		openat(im->snapshots_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dirfd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "opening snapshot %s",
					     name);
	_cleanup_close_ int blob = crisp_store_open_blob(im->store, &layer->digest, err);
	if (blob < 0)
		return blob;
	CrispUnpackStats stats = { 0 };
	int r = crisp_unpack_layer(blob, diff_id->string, dirfd, NULL, &stats, err);
	if (r < 0)
		return crisp_error_wrap(err, "layer %s", layer->digest.string);
	if (stats.xattrs_skipped)
		log_warning("layer %s: %" PRIu64 " extended attributes not kept",
			    layer->digest.string, stats.xattrs_skipped);
	/* The row says 'ready' only once the content is on disk. */
	if (syncfs(dirfd) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "syncing snapshot %s",
					     name);
	*ret_size = (int64_t)stats.content_size;
	return 0;
}

int imaged_snapshot_ensure(Imaged *im, const CrispDigest *chain_id, const CrispDigest *diff_id,
			   const CrispDescriptor *layer, int64_t *ret_id, CrispError **err)
{
	_cleanup_free_ char *key = xasprintf("snapshot:%s", chain_id->string);
	ImageSnapshotState state;
	int64_t id;
	int r;

	pthread_mutex_lock(&im->lock);
	for (;;) {
		r = image_db_snapshot_find(im->db, chain_id->string, &id, &state, err);
		if (r < 0 || state == SNAPSHOT_READY) {
			pthread_mutex_unlock(&im->lock);
			if (r == 0)
				*ret_id = id;
			return r;
		}
		if (crisp_inflight_claim(&im->inflight, &im->lock, key))
			break;
	}
	/* Ours now.  An 'unpacking' row without an owner is a failed attempt's. */
	if (state == SNAPSHOT_UNPACKING)
		r = imaged_snapshot_remove_locked(im, id, err);
	if (r == 0)
		r = image_db_snapshot_begin(im->db, chain_id->string, diff_id->string, &id, err);
	pthread_mutex_unlock(&im->lock);

	int64_t size = 0;
	if (r == 0)
		r = unpack_into(im, id, diff_id, layer, &size, err);

	pthread_mutex_lock(&im->lock);
	if (r == 0) {
		r = image_db_snapshot_ready(im->db, id, size, err);
	} else if (id > 0) {
		/* A refused layer leaves nothing behind: no directory, no row. */
		CrispError *cleanup = NULL;
		if (imaged_snapshot_remove_locked(im, id, &cleanup) < 0) {
			log_error("%s", cleanup->message);
			crisp_error_free(cleanup);
		}
	}
	crisp_inflight_release(&im->inflight, key);
	pthread_mutex_unlock(&im->lock);
	if (r == 0)
		*ret_id = id;
	return r;
}
