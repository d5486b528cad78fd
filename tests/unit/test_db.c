/*
 * test_db.c - opening and migrating a daemon's database (common/db.c).
 *
 * Every test works on a database in its own temporary directory.
 */
#include "test_helpers.h"

#include "db.h"

#include <signal.h>
#include <sys/stat.h>

typedef struct Fixture {
	char *dir;
	char *path;
} Fixture;

static int setup(void **state)
{
	Fixture *f = xcalloc(1, sizeof(*f));
	f->dir = th_mkdtemp();
	f->path = xasprintf("%s/state.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	Fixture *f = *state;
	th_rm_rf(f->dir);
	free(f->dir);
	free(f->path);
	free(f);
	return 0;
}

static const CrispDbMigration migrations[] = {
	{ "containers table",
	  "CREATE TABLE containers (id TEXT PRIMARY KEY, name TEXT NOT NULL);" },
	{ "sandboxes table and a link",
	  "CREATE TABLE sandboxes (id TEXT PRIMARY KEY);"
	  "ALTER TABLE containers ADD COLUMN sandbox TEXT REFERENCES sandboxes(id);" },
	{ "an index", "CREATE INDEX containers_by_sandbox ON containers(sandbox);" },
};

static sqlite3 *open_ok(const char *path, const CrispDbMigration *m, size_t n)
{
	_cleanup_error_ CrispError *err = NULL;
	sqlite3 *db = NULL;

	if (crisp_db_open(path, m, n, &db, &err) < 0)
		fail_msg("opening %s: %s", path, err->message);
	assert_non_null(db);
	assert_null(err);
	return db;
}

static int version(sqlite3 *db)
{
	_cleanup_error_ CrispError *err = NULL;
	int v = -1;
	assert_int_equal(crisp_db_schema_version(db, &v, &err), 0);
	return v;
}

/* The first column of the first row of sql, as text (malloc'd), or NULL without a row. */
static char *query_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *out = NULL;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		out = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static bool table_exists(sqlite3 *db, const char *name)
{
	_cleanup_free_ char *sql =
		xasprintf("SELECT name FROM sqlite_master WHERE name = '%s'", name);
	_cleanup_free_ char *got = query_text(db, sql);
	return got != NULL;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
	_cleanup_error_ CrispError *err = NULL;
	if (crisp_db_exec(db, sql, &err) < 0)
		fail_msg("%s: %s", sql, err->message);
}

static void test_open_creates_wal(void **state)
{
	Fixture *f = *state;
	struct stat st;

	sqlite3 *db = open_ok(f->path, migrations, 1);
	assert_int_equal(stat(f->path, &st), 0);
	_cleanup_free_ char *mode = query_text(db, "PRAGMA journal_mode");
	assert_string_equal(mode, "wal");
	_cleanup_free_ char *fk = query_text(db, "PRAGMA foreign_keys");
	assert_string_equal(fk, "1");
	crisp_db_close(db);
	crisp_db_close(NULL);
}

static void test_migrations_in_order(void **state)
{
	Fixture *f = *state;

	sqlite3 *db = open_ok(f->path, migrations, ELEMENTSOF(migrations));
	assert_int_equal(version(db), 3);
	/* Migration 2 altered what migration 1 created, so they ran in order. */
	exec_ok(db, "INSERT INTO sandboxes VALUES ('s1');"
		    "INSERT INTO containers (id, name, sandbox) VALUES ('c1', 'web', 's1');");
	assert_true(table_exists(db, "containers_by_sandbox"));
	crisp_db_close(db);

	/* No migrations at all: an empty database at version 0. */
	_cleanup_free_ char *other = xasprintf("%s/empty.db", f->dir);
	db = open_ok(other, NULL, 0);
	assert_int_equal(version(db), 0);
	crisp_db_close(db);
}

static void test_reopen_applies_only_new(void **state)
{
	Fixture *f = *state;

	sqlite3 *db = open_ok(f->path, migrations, 1);
	assert_int_equal(version(db), 1);
	exec_ok(db, "INSERT INTO containers (id, name) VALUES ('c1', 'web');");
	crisp_db_close(db);

	/* Running migration 1 again would fail (the table exists) and would lose the row. */
	db = open_ok(f->path, migrations, ELEMENTSOF(migrations));
	assert_int_equal(version(db), 3);
	_cleanup_free_ char *name = query_text(db, "SELECT name FROM containers WHERE id = 'c1'");
	assert_string_equal(name, "web");
	crisp_db_close(db);

	/* Up to date: opening again changes nothing. */
	db = open_ok(f->path, migrations, ELEMENTSOF(migrations));
	assert_int_equal(version(db), 3);
	crisp_db_close(db);
}

static void test_failing_migration_rolls_back(void **state)
{
	Fixture *f = *state;
	_cleanup_error_ CrispError *err = NULL;
	const CrispDbMigration broken[] = {
		migrations[0],
		/* The first statement succeeds, the second fails: both must be undone. */
		{ "images table", "CREATE TABLE images (id TEXT PRIMARY KEY);"
				  "INSERT INTO no_such_table VALUES (1);" },
		migrations[2],
	};
	sqlite3 *db = NULL;

	assert_true(crisp_db_open(f->path, broken, ELEMENTSOF(broken), &db, &err) < 0);
	assert_null(db);
	assert_error(err, CRISP_ERR_INTERNAL, "migration 2 (images table)");
	assert_contains(err->message, "no_such_table");

	/* Migration 1 stays committed; migration 2 left no trace. */
	db = open_ok(f->path, migrations, 1);
	assert_int_equal(version(db), 1);
	assert_true(table_exists(db, "containers"));
	assert_false(table_exists(db, "images"));
	crisp_db_close(db);

	/* A fixed build migrates from there. */
	db = open_ok(f->path, migrations, ELEMENTSOF(migrations));
	assert_int_equal(version(db), 3);
	crisp_db_close(db);
}

static void test_newer_schema_refused(void **state)
{
	Fixture *f = *state;
	_cleanup_error_ CrispError *err = NULL;

	sqlite3 *db = open_ok(f->path, migrations, ELEMENTSOF(migrations));
	exec_ok(db, "PRAGMA user_version = 7");
	crisp_db_close(db);

	db = NULL;
	assert_true(crisp_db_open(f->path, migrations, ELEMENTSOF(migrations), &db, &err) < 0);
	assert_null(db);
	assert_error(err, CRISP_ERR_FAILED_PRECONDITION, "schema version 7 is newer");
	assert_contains(err->message, f->path);
	err = crisp_error_free(err);

	/* Refusing did not touch it (read with plain sqlite, no migrations). */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(version(db), 7);
	assert_true(table_exists(db, "containers_by_sandbox"));
	sqlite3_close(db);
}

static void test_exec_error_names_database(void **state)
{
	Fixture *f = *state;
	_cleanup_error_ CrispError *err = NULL;

	sqlite3 *db = open_ok(f->path, migrations, 1);
	assert_true(crisp_db_exec(db, "SELEKT 1", &err) < 0);
	assert_error(err, CRISP_ERR_INTERNAL, "state.db");
	assert_contains(err->message, "syntax error");
	crisp_db_close(db);
}

static void test_open_failure(void **state)
{
	Fixture *f = *state;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = xasprintf("%s/missing-dir/state.db", f->dir);
	sqlite3 *db = NULL;

	assert_true(crisp_db_open(path, migrations, 1, &db, &err) < 0);
	assert_null(db);
	assert_error(err, CRISP_ERR_INTERNAL, "opening");
	assert_contains(err->message, "missing-dir");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_wal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrations_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_applies_only_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failing_migration_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_error_names_database, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_failure, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
