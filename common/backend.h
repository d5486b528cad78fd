/*
 * backend.h - the start-up skeleton of a backend daemon.
 *
 * Like Postfix's single_server: the daemon's main() declares what it is and
 * calls crisp_backend_main(), which, while still privileged, parses options,
 * creates the daemon's directories, opens its database, forks the spawn
 * helper if the daemon runs programs, takes a systemd listening socket if one
 * was passed, then enters the daemon's profile and serves its channels.
 * Nothing is done with privileges the profile does not keep after that.
 */
#ifndef CRISP_BACKEND_H
#define CRISP_BACKEND_H

#include "cri_routes.h"
#include "daemon.h"
#include "db.h"
#include "options.h"
#include "sandbox.h"
#include "spawn.h"

typedef struct CrispBackend {
	CrispOptions opts;
	char *dir;		/* <root>/<root_subdir>, created 0700 */
	sqlite3 *db;		/* <dir>/<db_name> */
	CrispSpawnHelper spawn; /* when spawn_builder is set */
	void *state;		/* the daemon's own, from spec->setup */
} CrispBackend;

typedef struct CrispBackendSpec {
	const char *name;	/* "crisp-imaged" */
	Crisp__Backend backend; /* which CRI calls it answers (common/cri_routes.c) */
	const CrispProfile *profile;
	const char *root_subdir;    /* "image" */
	const char *db_name;	    /* "image.db" */
	const char *const *subdirs; /* created 0700 under dir, NULL-terminated */
	const CrispDbMigration *migrations;
	size_t n_migrations;
	CrispSpawnBuilder spawn_builder; /* NULL: the daemon runs no programs */
	/*
	 * Optional: runs before the sandbox, with the privileges the daemon was
	 * started with, to read files the sandboxed daemon may not (streamd's
	 * TLS key, root's alone).  It reads; it parses nothing untrusted.
	 */
	int (*before_sandbox)(CrispBackend *b, CrispError **err);
	const CrispHandler *handlers;
	size_t n_handlers;
	unsigned n_workers;
	/*
	 * Optional: run inside the sandbox, before the first channel is served,
	 * to open the daemon's stores and reconcile them with its database
	 * (b->state is the daemon's to set).  A failure stops the daemon.
	 * teardown runs after the last channel closed.
	 */
	int (*setup)(CrispBackend *b, CrispError **err);
	void (*teardown)(CrispBackend *b);
} CrispBackendSpec;

int crisp_backend_main(const CrispBackendSpec *spec, int argc, char **argv);

/*
 * The daemon's parsed config, set before the spawn helper forks: a spawn
 * builder (which runs in the helper) reads its paths from here, never from
 * a request.
 */
extern const CrispConfig *crisp_backend_config;

#endif
