/*
 * db.c - opening, configuring and migrating a daemon's sqlite database.
 */
#include "db.h"

#define DB_BUSY_TIMEOUT_MS 5000

int crisp_db_exec(sqlite3 *db, const char *sql, CrispError **err)
{
	char *msg = NULL;
	int r = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (r != SQLITE_OK) {
		int ret = crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s: %s",
					  sqlite3_db_filename(db, "main"),
					  msg ? msg : sqlite3_errstr(r));
		sqlite3_free(msg);
		return ret;
	}
	return 0;
}

int crisp_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, CrispError **err)
{
	if (sqlite3_prepare_v2(db, sql, -1, ret, NULL) != SQLITE_OK)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s: preparing \"%.60s\": %s",
				       sqlite3_db_filename(db, "main"), sql, sqlite3_errmsg(db));
	return 0;
}

int crisp_db_step(sqlite3_stmt *st, CrispError **err)
{
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		return 1;
	if (r == SQLITE_DONE)
		return 0;
	sqlite3 *db = sqlite3_db_handle(st);
	return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s: \"%.60s\": %s",
			       sqlite3_db_filename(db, "main"), sqlite3_sql(st),
			       sqlite3_errmsg(db));
}

int crisp_db_step_done(sqlite3_stmt *st, CrispError **err)
{
	int r = crisp_db_step(st, err);
	if (r > 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO,
				       "\"%.60s\" returned rows where none were expected",
				       sqlite3_sql(st));
	return r;
}

void crisp_db_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(st, i);
}

char *crisp_db_column_strdup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? xstrdup((const char *)s) : NULL;
}

int crisp_db_begin(sqlite3 *db, CrispError **err)
{
	return crisp_db_exec(db, "BEGIN IMMEDIATE", err);
}

int crisp_db_commit(sqlite3 *db, CrispError **err)
{
	return crisp_db_exec(db, "COMMIT", err);
}

void crisp_db_rollback(sqlite3 *db)
{
	/* Fails only when no transaction is open, which is then what we want. */
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int crisp_db_meta_set(sqlite3 *db, const char *key, const char *value, CrispError **err)
{
	sqlite3_stmt *st = NULL;
	int r = sqlite3_prepare_v2(db,
				   "INSERT INTO meta(key, value) VALUES(?1, ?2) "
				   "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
				   -1, &st, NULL);
	if (r == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
		r = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	if (r != SQLITE_DONE)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s: setting %s: %s",
				       sqlite3_db_filename(db, "main"), key, sqlite3_errmsg(db));
	return 0;
}

int crisp_db_schema_version(sqlite3 *db, int *ret, CrispError **err)
{
	sqlite3_stmt *st = NULL;
	int r = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (r == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		*ret = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_finalize(st);
	return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s: reading user_version: %s",
			       sqlite3_db_filename(db, "main"), sqlite3_errmsg(db));
}

static int migrate(sqlite3 *db, const char *path, const CrispDbMigration *m, size_t n,
		   CrispError **err)
{
	int version, r;

	if ((r = crisp_db_schema_version(db, &version, err)) < 0)
		return r;
	if (version < 0 || (size_t)version > n)
		return crisp_error_set(
			err, CRISP_ERR_FAILED_PRECONDITION, EPROTO,
			"%s: schema version %d is newer than this crisp knows (%zu); "
			"refusing to touch it",
			path, version, n);

	for (size_t i = (size_t)version; i < n; i++) {
		_cleanup_free_ char *bump = xasprintf("PRAGMA user_version = %zu", i + 1);
		r = crisp_db_exec(db, "BEGIN IMMEDIATE", err);
		if (r == 0)
			r = crisp_db_exec(db, m[i].sql, err);
		if (r == 0)
			r = crisp_db_exec(db, bump, err);
		if (r == 0)
			r = crisp_db_exec(db, "COMMIT", err);
		if (r < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return crisp_error_wrap(err, "migration %zu (%s)", i + 1, m[i].description);
		}
	}
	return 0;
}

int crisp_db_open(const char *path, const CrispDbMigration *migrations, size_t n_migrations,
		  sqlite3 **ret, CrispError **err)
{
	sqlite3 *db = NULL;
	int r = sqlite3_open_v2(path, &db,
				SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX |
					SQLITE_OPEN_NOFOLLOW,
				NULL);
	if (r != SQLITE_OK) {
		int e = crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "opening %s: %s", path,
					db ? sqlite3_errmsg(db) : sqlite3_errstr(r));
		sqlite3_close(db);
		return e;
	}
	sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(db, 1);

	r = crisp_db_exec(db,
			  "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = NORMAL;"
			  "PRAGMA foreign_keys = ON;",
			  err);
	if (r == 0)
		r = migrate(db, path, migrations, n_migrations, err);
	if (r < 0) {
		sqlite3_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

void crisp_db_close(sqlite3 *db)
{
	sqlite3_close(db);
}
