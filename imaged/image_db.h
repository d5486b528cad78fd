/*
 * image_db.h - imaged's metadata in image.db.
 *
 *   images           one row per image, keyed by its ID (the config digest):
 *                    manifest digest, size (config plus compressed layers, as
 *                    the registry served them), pull time, pinned, and the
 *                    parsed config as JSON (image_db_config_to_json)
 *   image_names      repo tags ("<domain>/<path>:<tag>") and repo digests
 *                    ("<domain>/<path>@<digest>"); a name belongs to one image
 *   image_layers     per image, base layer first: the blob and the snapshot
 *                    it was unpacked into
 *   snapshots        one unpacked layer per chain ID; `state` is 'unpacking'
 *                    from before the directory is made until the layer is
 *                    complete, so a crash in between is undone at start-up
 *   containers       writable snapshots handed out for containers: the
 *                    container ID (from the request), the key imaged chose
 *                    for the directory, the image and the layer chain
 *
 * Nothing here checks a caller: the handlers validate every string first.
 * All functions expect the caller to hold Imaged.lock; a multi-statement
 * change is made in one transaction inside the function.
 */
#ifndef CRISP_IMAGED_IMAGE_DB_H
#define CRISP_IMAGED_IMAGE_DB_H

#include "db.h"
#include "error.h"
#include "image_config.h"

#include <stdbool.h>
#include <stdint.h>

extern const CrispDbMigration image_db_migrations[];
extern const size_t image_db_n_migrations;

typedef struct ImageRecord {
	char *id; /* "sha256:<hex>" */
	char *manifest_digest;
	int64_t size;
	int64_t pulled_at_ns;
	bool pinned;
	char **repo_tags;
	char **repo_digests;
	char *config_json;
} ImageRecord;

void image_record_done(ImageRecord *r);
void image_records_free(ImageRecord *v, size_t n);

typedef struct ImageLayerRecord {
	char *blob_digest;
	char *media_type;
	int64_t size;
	int64_t snapshot_id;
	char *chain_id;
} ImageLayerRecord;

void image_layer_records_free(ImageLayerRecord *v, size_t n);

/* What a finished pull records, in one transaction. */
typedef struct ImagePullRecord {
	const char *id;
	const char *manifest_digest;
	int64_t size;
	bool pinned;
	const char *config_json;
	const char *repo_tag;	 /* NULL when pulled by digest alone */
	const char *repo_digest; /* always */
	const ImageLayerRecord *layers;
	size_t n_layers;
} ImagePullRecord;

int image_db_record_pull(sqlite3 *db, const ImagePullRecord *p, CrispError **err);

/* The image a name (repo tag or digest) belongs to; -ENOENT when none. */
int image_db_lookup_name(sqlite3 *db, const char *name, char **ret_id, CrispError **err);
/* -ENOENT when there is no such image. */
int image_db_get(sqlite3 *db, const char *id, ImageRecord *ret, CrispError **err);
int image_db_list(sqlite3 *db, ImageRecord **ret, size_t *ret_n, CrispError **err);
int image_db_layers(sqlite3 *db, const char *id, ImageLayerRecord **ret, size_t *ret_n,
		    CrispError **err);
/* Removes one name; *ret_left is how many names the image still has. */
int image_db_remove_name(sqlite3 *db, const char *name, const char *id, int64_t *ret_left,
			 CrispError **err);
/* Removes an image with its names and layer rows (absent is fine). */
int image_db_remove_image(sqlite3 *db, const char *id, CrispError **err);

/* Snapshots. */
typedef enum ImageSnapshotState {
	SNAPSHOT_ABSENT = 0,
	SNAPSHOT_UNPACKING,
	SNAPSHOT_READY,
} ImageSnapshotState;

int image_db_snapshot_find(sqlite3 *db, const char *chain_id, int64_t *ret_id,
			   ImageSnapshotState *ret_state, CrispError **err);
/* Records the intent to unpack chain_id; returns the new snapshot's id. */
int image_db_snapshot_begin(sqlite3 *db, const char *chain_id, const char *diff_id, int64_t *ret_id,
			    CrispError **err);
int image_db_snapshot_ready(sqlite3 *db, int64_t id, int64_t size, CrispError **err);
int image_db_snapshot_delete(sqlite3 *db, int64_t id, CrispError **err);
/* Snapshot ids no image and no container references, and those left 'unpacking'. */
int image_db_snapshots_unreferenced(sqlite3 *db, int64_t **ret, size_t *ret_n, CrispError **err);
int image_db_snapshots_unpacking(sqlite3 *db, int64_t **ret, size_t *ret_n, CrispError **err);
/* True when a snapshot row with this id exists (any state). */
int image_db_snapshot_exists(sqlite3 *db, int64_t id, bool *ret, CrispError **err);

/* Every blob digest an image references (configs and layers), sorted. */
int image_db_referenced_blobs(sqlite3 *db, char ***ret, CrispError **err);

/* Containers' writable snapshots. */
typedef struct ContainerRecord {
	char *container_id;
	char *key;
	char *image_id;
	int64_t *snapshot_ids; /* base layer first */
	size_t n_snapshot_ids;
} ContainerRecord;

void container_record_done(ContainerRecord *r);

int image_db_container_insert(sqlite3 *db, const char *container_id, const char *key,
			      const char *image_id, const ImageLayerRecord *layers, size_t n,
			      CrispError **err);
/* -ENOENT when imaged never handed out a snapshot for this container. */
int image_db_container_get(sqlite3 *db, const char *container_id, ContainerRecord *ret,
			   CrispError **err);
int image_db_container_delete(sqlite3 *db, const char *container_id, CrispError **err);
/* Every container ID and key, in ID order (keys[i] belongs to ids[i]). */
int image_db_container_list(sqlite3 *db, char ***ret_ids, char ***ret_keys, CrispError **err);

/* The parsed image config as stored in images.config_json, and back. */
char *image_db_config_to_json(const CrispImageConfig *c);
int image_db_config_from_json(const char *json, CrispImageConfig *ret, CrispError **err);

#endif
