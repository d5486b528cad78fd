/*
 * snapshots.h - unpacked layers keyed by chain ID, and containers' writable
 * directories.
 *
 * A snapshot is one layer unpacked on its own (unpack.h) into
 * <store>/snapshots/<id>, where <id> is its row in image.db; the chain ID
 * (the OCI image spec's: the diff ID of the base layer, then
 * sha256("<parent chain ID> <diff ID>") for each layer above) says which
 * layer on top of which, so a layer shared by two images with the same lower
 * layers is unpacked once.  The row is written 'unpacking' before the
 * directory exists and 'ready' only after the layer is complete and synced;
 * start-up (state.c) removes what a crash left in between.
 */
#ifndef CRISP_IMAGED_SNAPSHOTS_H
#define CRISP_IMAGED_SNAPSHOTS_H

#include "imaged.h"
#include "manifest.h"

/* ret[i] is the chain ID of diff_ids[0..i]. */
int imaged_chain_ids(const CrispDigest *diff_ids, size_t n, CrispDigest *ret, CrispError **err);

/*
 * Makes sure the snapshot for chain_id exists, unpacking the stored blob of
 * layer into it when it does not.  Concurrent calls for one chain ID share
 * one unpack.  The blob must be in the store.  Call without im->lock.
 */
int imaged_snapshot_ensure(Imaged *im, const CrispDigest *chain_id, const CrispDigest *diff_id,
			   const CrispDescriptor *layer, int64_t *ret_id, CrispError **err);

/* "<store>/snapshots/<id>" (malloc'd). */
char *imaged_snapshot_path(const Imaged *im, int64_t id);
/* The name of its directory under im->snapshots_fd. */
void imaged_snapshot_name(int64_t id, char buf[static 24]);

/* Removes a snapshot's directory, then its row.  With im->lock held. */
int imaged_snapshot_remove_locked(Imaged *im, int64_t id, CrispError **err);

#endif
