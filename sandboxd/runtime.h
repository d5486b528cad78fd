/*
 * runtime.h - the OCI runtime (runc, crun) run through the spawn helper.
 *
 * Each call runs one runtime verb for one container and waits for it.  A
 * failure's message is the runtime's own, from its JSON log in the bundle.
 */
#ifndef CRISP_SANDBOXD_RUNTIME_H
#define CRISP_SANDBOXD_RUNTIME_H

#include "sandboxd.h"

#define SANDBOXD_RUNTIME_TIMEOUT_MS 60000

/* "create" (bundle from the ID), "start", "delete" (forced). */
int sandboxd_runtime(Sandboxd *sd, const char *handler, const char *id, const char *verb,
		     CrispError **err);
int sandboxd_runtime_kill(Sandboxd *sd, const char *handler, const char *id, int sig,
			  CrispError **err);

/* A name for one exec or update of a container: 16 hex digits, for its files in the bundle. */
void sandboxd_runtime_token(char ret[static 17]);

/* The last error the runtime logged in the container's bundle, or NULL (malloc'd). */
char *sandboxd_runtime_last_error(Sandboxd *sd, const char *id);
/* The same from another log the runtime wrote (an exec's). */
char *sandboxd_runtime_log_error(const char *path);

#endif
