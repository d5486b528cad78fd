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
/* Reads PRAGMA user_version. */
int crisp_db_schema_version(sqlite3 *db, int *ret, CrispError **err);

#endif
