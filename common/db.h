/*
 * db.h - sqlite helpers: each daemon owns one database.
 *
 * crisp_db_open() opens (creating if needed) a database in WAL mode with a
 * busy timeout and foreign keys on, then brings its schema up to date: the
 * schema version is PRAGMA user_version, and migration i (0-based) takes the
 * schema from version i to i+1 inside one transaction.  A database newer
 * than this build is refused rather than guessed at.
 */
#ifndef CRISP_DB_H
#define CRISP_DB_H

#include "error.h"

#include <sqlite3.h>

typedef struct CrispDbMigration {
	const char *description;
	const char *sql; /* one or more statements */
} CrispDbMigration;

/* The migration every daemon database starts with: a key/value table for facts about the store. */
#define CRISP_DB_MIGRATION_META                                                                    \
	{                                                                                          \
		"metadata table",                                                                  \
			"CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"  \
	}

int crisp_db_open(const char *path, const CrispDbMigration *migrations, size_t n_migrations,
		  sqlite3 **ret, CrispError **err);
void crisp_db_close(sqlite3 *db);

/* Runs statements with no results; the error names the database and statement. */
int crisp_db_exec(sqlite3 *db, const char *sql, CrispError **err);
/*
 * Sets key to value in the daemon's `meta` table (CRISP_DB_MIGRATION_META),
 * replacing an earlier value.
 */
int crisp_db_meta_set(sqlite3 *db, const char *key, const char *value, CrispError **err);
/* Prepares one statement; the error names the database and what failed. */
int crisp_db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret, CrispError **err);
static inline void crisp_db_finalizep(sqlite3_stmt **st)
{
	sqlite3_finalize(*st);
}
#define _cleanup_stmt_ _cleanup_(crisp_db_finalizep)
/* One step: 1 for a row, 0 when done, or a negative errno with *err set. */
int crisp_db_step(sqlite3_stmt *st, CrispError **err);
/* Steps a statement that returns no rows. */
int crisp_db_step_done(sqlite3_stmt *st, CrispError **err);
/* Binds text (copied) to parameter i; NULL binds SQL NULL. */
void crisp_db_bind_text(sqlite3_stmt *st, int i, const char *s);
/* A text column, malloc'd; NULL for SQL NULL. */
char *crisp_db_column_strdup(sqlite3_stmt *st, int i);
/* BEGIN IMMEDIATE, COMMIT and ROLLBACK (which never fails the caller). */
int crisp_db_begin(sqlite3 *db, CrispError **err);
int crisp_db_commit(sqlite3 *db, CrispError **err);
void crisp_db_rollback(sqlite3 *db);
/* Reads PRAGMA user_version. */
int crisp_db_schema_version(sqlite3 *db, int *ret, CrispError **err);

#endif
