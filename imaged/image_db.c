/*
 * image_db.c - imaged's metadata in image.db (see image_db.h).
 */
#include "image_db.h"

#include <jansson.h>
#include <time.h>

const CrispDbMigration image_db_migrations[] = {
	CRISP_DB_MIGRATION_META,
	{ "images, names, layers, snapshots and containers",
	  "CREATE TABLE images ("
	  "  id TEXT PRIMARY KEY NOT NULL,"
	  "  manifest_digest TEXT NOT NULL,"
	  "  size INTEGER NOT NULL,"
	  "  pulled_at INTEGER NOT NULL,"
	  "  pinned INTEGER NOT NULL DEFAULT 0,"
	  "  config_json TEXT NOT NULL);"
	  "CREATE TABLE image_names ("
	  "  name TEXT PRIMARY KEY NOT NULL,"
	  "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	  "  is_digest INTEGER NOT NULL);"
	  "CREATE INDEX image_names_by_image ON image_names(image_id);"
	  "CREATE TABLE snapshots ("
	  "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	  "  chain_id TEXT UNIQUE NOT NULL,"
	  "  diff_id TEXT NOT NULL,"
	  "  state TEXT NOT NULL CHECK (state IN ('unpacking', 'ready')),"
	  "  size INTEGER NOT NULL DEFAULT 0,"
	  "  created_at INTEGER NOT NULL);"
	  /* No cascade to snapshots: a referenced snapshot row cannot go. */
	  "CREATE TABLE image_layers ("
	  "  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,"
	  "  idx INTEGER NOT NULL,"
	  "  blob_digest TEXT NOT NULL,"
	  "  media_type TEXT NOT NULL,"
	  "  size INTEGER NOT NULL,"
	  "  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),"
	  "  PRIMARY KEY (image_id, idx));"
	  "CREATE INDEX image_layers_by_snapshot ON image_layers(snapshot_id);"
	  "CREATE TABLE containers ("
	  "  container_id TEXT PRIMARY KEY NOT NULL,"
	  "  key TEXT UNIQUE NOT NULL,"
	  "  image_id TEXT NOT NULL,"
	  "  created_at INTEGER NOT NULL);"
	  "CREATE TABLE container_layers ("
	  "  container_id TEXT NOT NULL REFERENCES containers(container_id) ON DELETE CASCADE,"
	  "  idx INTEGER NOT NULL,"
	  "  snapshot_id INTEGER NOT NULL REFERENCES snapshots(id),"
	  "  PRIMARY KEY (container_id, idx));"
	  "CREATE INDEX container_layers_by_snapshot ON container_layers(snapshot_id);" },
};
const size_t image_db_n_migrations = ELEMENTSOF(image_db_migrations);

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void image_record_done(ImageRecord *r)
{
	free(r->id);
	free(r->manifest_digest);
	strv_free(r->repo_tags);
	strv_free(r->repo_digests);
	free(r->config_json);
	*r = (ImageRecord){ 0 };
}

void image_records_free(ImageRecord *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		image_record_done(&v[i]);
	free(v);
}

void image_layer_records_free(ImageLayerRecord *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].blob_digest);
		free(v[i].media_type);
		free(v[i].chain_id);
	}
	free(v);
}

void container_record_done(ContainerRecord *r)
{
	free(r->container_id);
	free(r->key);
	free(r->image_id);
	free(r->snapshot_ids);
	*r = (ContainerRecord){ 0 };
}

/* Runs one statement with text parameters (NULL-terminated list), no rows. */
static int exec_text(sqlite3 *db, const char *sql, CrispError **err, ...)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, sql, &st, err);
	if (r < 0)
		return r;
	va_list ap;
	va_start(ap, err);
	const char *s;
	for (int i = 1; (s = va_arg(ap, const char *)); i++)
		crisp_db_bind_text(st, i, s);
	va_end(ap);
	return crisp_db_step_done(st, err);
}

/* --- images --- */

static int insert_name(sqlite3 *db, const char *name, const char *id, bool is_digest,
		       CrispError **err)
{
	/* A tag moves to the newly pulled image; the old one keeps its other names. */
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(
		db,
		"INSERT INTO image_names(name, image_id, is_digest) VALUES(?1, ?2, ?3)"
		" ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
		&st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, name);
	crisp_db_bind_text(st, 2, id);
	sqlite3_bind_int(st, 3, is_digest);
	return crisp_db_step_done(st, err);
}

static int record_pull_locked(sqlite3 *db, const ImagePullRecord *p, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(
		db,
		"INSERT INTO images(id, manifest_digest, size, pulled_at, pinned, config_json)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET"
		" manifest_digest = excluded.manifest_digest, size = excluded.size,"
		" pulled_at = excluded.pulled_at, pinned = images.pinned OR excluded.pinned",
		&st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, p->id);
	crisp_db_bind_text(st, 2, p->manifest_digest);
	sqlite3_bind_int64(st, 3, p->size);
	sqlite3_bind_int64(st, 4, now_ns());
	sqlite3_bind_int(st, 5, p->pinned);
	crisp_db_bind_text(st, 6, p->config_json);
	if ((r = crisp_db_step_done(st, err)) < 0)
		return r;

	/* The same config pulled again (another tag, another registry) keeps one layer list. */
	if ((r = exec_text(db, "DELETE FROM image_layers WHERE image_id = ?1", err, p->id, NULL)) <
	    0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *layer = NULL;
	r = crisp_db_prepare(
		db,
		"INSERT INTO image_layers(image_id, idx, blob_digest, media_type, size,"
		" snapshot_id) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
		&layer, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < p->n_layers; i++) {
		sqlite3_reset(layer);
		crisp_db_bind_text(layer, 1, p->id);
		sqlite3_bind_int64(layer, 2, (int64_t)i);
		crisp_db_bind_text(layer, 3, p->layers[i].blob_digest);
		crisp_db_bind_text(layer, 4, p->layers[i].media_type);
		sqlite3_bind_int64(layer, 5, p->layers[i].size);
		sqlite3_bind_int64(layer, 6, p->layers[i].snapshot_id);
		if ((r = crisp_db_step_done(layer, err)) < 0)
			return r;
	}
	if (p->repo_tag && (r = insert_name(db, p->repo_tag, p->id, false, err)) < 0)
		return r;
	return insert_name(db, p->repo_digest, p->id, true, err);
}

int image_db_record_pull(sqlite3 *db, const ImagePullRecord *p, CrispError **err)
{
	int r = crisp_db_begin(db, err);
	if (r < 0)
		return r;
	r = record_pull_locked(db, p, err);
	if (r == 0)
		r = crisp_db_commit(db, err);
	if (r < 0)
		crisp_db_rollback(db);
	return r;
}

int image_db_lookup_name(sqlite3 *db, const char *name, char **ret_id, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT image_id FROM image_names WHERE name = ?1", &st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, name);
	r = crisp_db_step(st, err);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	*ret_id = crisp_db_column_strdup(st, 0);
	return 0;
}

static int load_names(sqlite3 *db, ImageRecord *rec, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(
		db, "SELECT name, is_digest FROM image_names WHERE image_id = ?1 ORDER BY name",
		&st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, rec->id);
	while ((r = crisp_db_step(st, err)) > 0) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		strv_push(sqlite3_column_int(st, 1) ? &rec->repo_digests : &rec->repo_tags, name);
	}
	return r;
}

#define IMAGE_COLUMNS "id, manifest_digest, size, pulled_at, pinned, config_json"

static void read_image_row(sqlite3_stmt *st, ImageRecord *rec)
{
	rec->id = crisp_db_column_strdup(st, 0);
	rec->manifest_digest = crisp_db_column_strdup(st, 1);
	rec->size = sqlite3_column_int64(st, 2);
	rec->pulled_at_ns = sqlite3_column_int64(st, 3);
	rec->pinned = sqlite3_column_int(st, 4) != 0;
	rec->config_json = crisp_db_column_strdup(st, 5);
}

int image_db_get(sqlite3 *db, const char *id, ImageRecord *ret, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT " IMAGE_COLUMNS " FROM images WHERE id = ?1", &st,
				 err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, id);
	r = crisp_db_step(st, err);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	ImageRecord rec = { 0 };
	read_image_row(st, &rec);
	if ((r = load_names(db, &rec, err)) < 0) {
		image_record_done(&rec);
		return r;
	}
	*ret = rec;
	return 0;
}

int image_db_list(sqlite3 *db, ImageRecord **ret, size_t *ret_n, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT " IMAGE_COLUMNS " FROM images ORDER BY id", &st, err);
	if (r < 0)
		return r;
	ImageRecord *v = NULL;
	size_t n = 0;
	while ((r = crisp_db_step(st, err)) > 0) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n] = (ImageRecord){ 0 };
		read_image_row(st, &v[n]);
		n++;
		if ((r = load_names(db, &v[n - 1], err)) < 0)
			break;
	}
	if (r < 0) {
		image_records_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int image_db_layers(sqlite3 *db, const char *id, ImageLayerRecord **ret, size_t *ret_n,
		    CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db,
				 "SELECT l.blob_digest, l.media_type, l.size, l.snapshot_id,"
				 " s.chain_id FROM image_layers l JOIN snapshots s"
				 " ON s.id = l.snapshot_id WHERE l.image_id = ?1 ORDER BY l.idx",
				 &st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, id);
	ImageLayerRecord *v = NULL;
	size_t n = 0;
	while ((r = crisp_db_step(st, err)) > 0) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n] = (ImageLayerRecord){
			.blob_digest = crisp_db_column_strdup(st, 0),
			.media_type = crisp_db_column_strdup(st, 1),
			.size = sqlite3_column_int64(st, 2),
			.snapshot_id = sqlite3_column_int64(st, 3),
			.chain_id = crisp_db_column_strdup(st, 4),
		};
		n++;
	}
	if (r < 0) {
		image_layer_records_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int image_db_remove_name(sqlite3 *db, const char *name, const char *id, int64_t *ret_left,
			 CrispError **err)
{
	int r = exec_text(db, "DELETE FROM image_names WHERE name = ?1 AND image_id = ?2", err,
			  name, id, NULL);
	if (r < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	r = crisp_db_prepare(db, "SELECT count(*) FROM image_names WHERE image_id = ?1", &st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, id);
	if ((r = crisp_db_step(st, err)) < 0)
		return r;
	*ret_left = sqlite3_column_int64(st, 0);
	return 0;
}

int image_db_remove_image(sqlite3 *db, const char *id, CrispError **err)
{
	/* Names and layer rows go with it (ON DELETE CASCADE). */
	return exec_text(db, "DELETE FROM images WHERE id = ?1", err, id, NULL);
}

/* --- snapshots --- */

int image_db_snapshot_find(sqlite3 *db, const char *chain_id, int64_t *ret_id,
			   ImageSnapshotState *ret_state, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT id, state FROM snapshots WHERE chain_id = ?1", &st,
				 err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, chain_id);
	r = crisp_db_step(st, err);
	if (r < 0)
		return r;
	if (r == 0) {
		*ret_state = SNAPSHOT_ABSENT;
		*ret_id = 0;
		return 0;
	}
	*ret_id = sqlite3_column_int64(st, 0);
	*ret_state = streq_ptr((const char *)sqlite3_column_text(st, 1), "ready")
			     ? SNAPSHOT_READY
			     : SNAPSHOT_UNPACKING;
	return 0;
}

int image_db_snapshot_begin(sqlite3 *db, const char *chain_id, const char *diff_id, int64_t *ret_id,
			    CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db,
				 "INSERT INTO snapshots(chain_id, diff_id, state, created_at)"
				 " VALUES(?1, ?2, 'unpacking', ?3)",
				 &st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, chain_id);
	crisp_db_bind_text(st, 2, diff_id);
	sqlite3_bind_int64(st, 3, now_ns());
	if ((r = crisp_db_step_done(st, err)) < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(db);
	return 0;
}

int image_db_snapshot_ready(sqlite3 *db, int64_t id, int64_t size, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(
		db, "UPDATE snapshots SET state = 'ready', size = ?2 WHERE id = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, size);
	return crisp_db_step_done(st, err);
}

int image_db_snapshot_delete(sqlite3 *db, int64_t id, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "DELETE FROM snapshots WHERE id = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	return crisp_db_step_done(st, err);
}

int image_db_snapshot_exists(sqlite3 *db, int64_t id, bool *ret, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT 1 FROM snapshots WHERE id = ?1", &st, err);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, id);
	if ((r = crisp_db_step(st, err)) < 0)
		return r;
	*ret = r > 0;
	return 0;
}

static int select_ids(sqlite3 *db, const char *sql, int64_t **ret, size_t *ret_n, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, sql, &st, err);
	if (r < 0)
		return r;
	int64_t *v = NULL;
	size_t n = 0;
	while ((r = crisp_db_step(st, err)) > 0) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = sqlite3_column_int64(st, 0);
	}
	if (r < 0) {
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int image_db_snapshots_unreferenced(sqlite3 *db, int64_t **ret, size_t *ret_n, CrispError **err)
{
	return select_ids(
		db,
		"SELECT id FROM snapshots s WHERE state = 'ready'"
		" AND NOT EXISTS (SELECT 1 FROM image_layers l WHERE l.snapshot_id = s.id)"
		" AND NOT EXISTS (SELECT 1 FROM container_layers c"
		" WHERE c.snapshot_id = s.id) ORDER BY id",
		ret, ret_n, err);
}

int image_db_snapshots_unpacking(sqlite3 *db, int64_t **ret, size_t *ret_n, CrispError **err)
{
	return select_ids(db, "SELECT id FROM snapshots WHERE state = 'unpacking' ORDER BY id", ret,
			  ret_n, err);
}

int image_db_referenced_blobs(sqlite3 *db, char ***ret, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db,
				 "SELECT id FROM images UNION SELECT blob_digest FROM image_layers"
				 " ORDER BY 1",
				 &st, err);
	if (r < 0)
		return r;
	char **v = NULL;
	while ((r = crisp_db_step(st, err)) > 0)
		strv_push(&v, (const char *)sqlite3_column_text(st, 0));
	if (r < 0) {
		strv_free(v);
		return r;
	}
	*ret = v;
	return 0;
}

/* --- containers --- */

static int container_insert_locked(sqlite3 *db, const char *container_id, const char *key,
				   const char *image_id, const ImageLayerRecord *layers, size_t n,
				   CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db,
				 "INSERT INTO containers(container_id, key, image_id, created_at)"
				 " VALUES(?1, ?2, ?3, ?4)",
				 &st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, container_id);
	crisp_db_bind_text(st, 2, key);
	crisp_db_bind_text(st, 3, image_id);
	sqlite3_bind_int64(st, 4, now_ns());
	if ((r = crisp_db_step_done(st, err)) < 0)
		return r;
	_cleanup_stmt_ sqlite3_stmt *layer = NULL;
	r = crisp_db_prepare(db,
			     "INSERT INTO container_layers(container_id, idx, snapshot_id)"
			     " VALUES(?1, ?2, ?3)",
			     &layer, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(layer);
		crisp_db_bind_text(layer, 1, container_id);
		sqlite3_bind_int64(layer, 2, (int64_t)i);
		sqlite3_bind_int64(layer, 3, layers[i].snapshot_id);
		if ((r = crisp_db_step_done(layer, err)) < 0)
			return r;
	}
	return 0;
}

int image_db_container_insert(sqlite3 *db, const char *container_id, const char *key,
			      const char *image_id, const ImageLayerRecord *layers, size_t n,
			      CrispError **err)
{
	int r = crisp_db_begin(db, err);
	if (r < 0)
		return r;
	r = container_insert_locked(db, container_id, key, image_id, layers, n, err);
	if (r == 0)
		r = crisp_db_commit(db, err);
	if (r < 0)
		crisp_db_rollback(db);
	return r;
}

int image_db_container_get(sqlite3 *db, const char *container_id, ContainerRecord *ret,
			   CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT key, image_id FROM containers WHERE container_id = ?1",
				 &st, err);
	if (r < 0)
		return r;
	crisp_db_bind_text(st, 1, container_id);
	r = crisp_db_step(st, err);
	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	ContainerRecord rec = {
		.container_id = xstrdup(container_id),
		.key = crisp_db_column_strdup(st, 0),
		.image_id = crisp_db_column_strdup(st, 1),
	};
	_cleanup_stmt_ sqlite3_stmt *layers = NULL;
	r = crisp_db_prepare(db,
			     "SELECT snapshot_id FROM container_layers WHERE container_id = ?1"
			     " ORDER BY idx",
			     &layers, err);
	if (r == 0) {
		crisp_db_bind_text(layers, 1, container_id);
		while ((r = crisp_db_step(layers, err)) > 0) {
			rec.snapshot_ids = xrealloc(rec.snapshot_ids,
						    (rec.n_snapshot_ids + 1) * sizeof(int64_t));
			rec.snapshot_ids[rec.n_snapshot_ids++] = sqlite3_column_int64(layers, 0);
		}
	}
	if (r < 0) {
		container_record_done(&rec);
		return r;
	}
	*ret = rec;
	return 0;
}

int image_db_container_delete(sqlite3 *db, const char *container_id, CrispError **err)
{
	return exec_text(db, "DELETE FROM containers WHERE container_id = ?1", err, container_id,
			 NULL);
}

int image_db_container_list(sqlite3 *db, char ***ret_ids, char ***ret_keys, CrispError **err)
{
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(db, "SELECT container_id, key FROM containers ORDER BY 1", &st,
				 err);
	if (r < 0)
		return r;
	char **ids = NULL, **keys = NULL;
	while ((r = crisp_db_step(st, err)) > 0) {
		strv_push(&ids, (const char *)sqlite3_column_text(st, 0));
		strv_push(&keys, (const char *)sqlite3_column_text(st, 1));
	}
	if (r < 0) {
		strv_free(ids);
		strv_free(keys);
		return r;
	}
	*ret_ids = ids;
	*ret_keys = keys;
	return 0;
}

/* --- the parsed config as JSON --- */

static json_t *strv_json(char **v)
{
	if (!v)
		return json_null();
	json_t *a = json_array();
	for (; *v; v++)
		json_array_append_new(a, json_string(*v));
	return a;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

char *image_db_config_to_json(const CrispImageConfig *c)
{
	json_t *o = json_object();
	json_object_set_new(o, "architecture", string_or_null(c->architecture));
	json_object_set_new(o, "os", string_or_null(c->os));
	json_object_set_new(o, "variant", string_or_null(c->variant));
	json_object_set_new(o, "created", string_or_null(c->created));
	json_object_set_new(o, "user", string_or_null(c->user));
	json_object_set_new(o, "env", strv_json(c->env));
	json_object_set_new(o, "entrypoint", strv_json(c->entrypoint));
	json_object_set_new(o, "cmd", strv_json(c->cmd));
	json_object_set_new(o, "working_dir", string_or_null(c->working_dir));
	json_object_set_new(o, "exposed_ports", strv_json(c->exposed_ports));
	json_object_set_new(o, "volumes", strv_json(c->volumes));
	json_object_set_new(o, "labels", strv_json(c->labels));
	json_object_set_new(o, "stop_signal", json_integer(c->stop_signal));
	json_t *diff_ids = json_array();
	for (size_t i = 0; i < c->n_diff_ids; i++)
		json_array_append_new(diff_ids, json_string(c->diff_ids[i].string));
	json_object_set_new(o, "diff_ids", diff_ids);
	char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (!s)
		abort(); /* only fails on allocation */
	return s;
}

static char *json_strdup(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? xstrdup(s) : NULL;
}

static char **json_strv(json_t *o, const char *key)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a))
		return NULL;
	char **v = xcalloc(json_array_size(a) + 1, sizeof(char *));
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x) v[i] =
		xstrdup(json_string_value(x) ? json_string_value(x) : "");
	return v;
}

int image_db_config_from_json(const char *json, CrispImageConfig *ret, CrispError **err)
{
	json_error_t jerr;
	json_t *o = json_loads(json, 0, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		/* Written by image_db_config_to_json only: the database is damaged. */
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO,
				       "image.db: a stored image config does not parse: %s",
				       jerr.text);
	}
	CrispImageConfig c = {
		.architecture = json_strdup(o, "architecture"),
		.os = json_strdup(o, "os"),
		.variant = json_strdup(o, "variant"),
		.created = json_strdup(o, "created"),
		.user = json_strdup(o, "user"),
		.env = json_strv(o, "env"),
		.entrypoint = json_strv(o, "entrypoint"),
		.cmd = json_strv(o, "cmd"),
		.working_dir = json_strdup(o, "working_dir"),
		.exposed_ports = json_strv(o, "exposed_ports"),
		.volumes = json_strv(o, "volumes"),
		.labels = json_strv(o, "labels"),
		.stop_signal = (int)json_integer_value(json_object_get(o, "stop_signal")),
	};
	json_t *diff_ids = json_object_get(o, "diff_ids");
	size_t n = json_array_size(diff_ids);
	if (n) {
		c.diff_ids = xcalloc(n, sizeof(CrispDigest));
		for (size_t i = 0; i < n; i++) {
			const char *s = json_string_value(json_array_get(diff_ids, i));
			if (!s || crisp_digest_parse(s, &c.diff_ids[c.n_diff_ids], NULL) < 0)
				continue;
			c.n_diff_ids++;
		}
	}
	json_decref(o);
	*ret = c;
	return 0;
}
