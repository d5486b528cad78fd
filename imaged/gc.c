/*
 * gc.c - collection of content nothing references.
 *
 * What is kept: every blob an image names (its config and its layers), every
 * snapshot in an image's layer chain, and every snapshot a container's
 * writable layer sits on, whether or not its image still exists.  The rest
 * goes: snapshots (directory first, then row) and blobs, including
 * temporaries of interrupted downloads.
 *
 * A pull holds content that is in the store but not yet in the database, so
 * collection waits while any pull is active (im->active_pulls) and runs at
 * the end of the last one instead (pull.c).  It runs under im->lock, so no
 * container can be prepared on a snapshot while it is being removed.
 */
#include "imaged.h"

#include "image_db.h"
#include "log.h"
#include "snapshots.h"

static void collect_snapshots(Imaged *im)
{
	_cleanup_error_ CrispError *err = NULL;
	int64_t *ids = NULL;
	size_t n = 0, removed = 0;
	if (image_db_snapshots_unreferenced(im->db, &ids, &n, &err) < 0) {
		log_error("collection: %s", err->message);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (imaged_snapshot_remove_locked(im, ids[i], &err) < 0) {
			log_error("collection: %s", err->message);
			crisp_error_free(err);
			err = NULL;
			continue;
		}
		removed++;
	}
	free(ids);
	if (removed)
		log_info("collection: removed %zu unused snapshot%s", removed,
			 removed == 1 ? "" : "s");
}

static void collect_blobs(Imaged *im)
{
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_strv_free_ char **keep = NULL;
	size_t removed = 0;
	if (image_db_referenced_blobs(im->db, &keep, &err) < 0 ||
	    crisp_store_collect(im->store, keep, &removed, &err) < 0) {
		log_error("collection: %s", err->message);
		return;
	}
	if (removed)
		log_info("collection: removed %zu unused blob%s", removed, removed == 1 ? "" : "s");
}

void imaged_collect_locked(Imaged *im)
{
	if (im->active_pulls > 0) {
		im->gc_pending = true;
		return;
	}
	im->gc_pending = false;
	collect_snapshots(im);
	collect_blobs(im);
}
