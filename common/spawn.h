/*
 * spawn.h - the spawn helper (ARCHITECTURE.md §3).
 *
 * A daemon that must run external programs (runc, conmon, CNI plugins) forks
 * this helper before it enters its sandbox, so the programs do not inherit
 * the daemon's seccomp filter, bounding set or no_new_privs.  The helper
 * accepts a single message type, CRISP_MSG_SPAWN_REQ, over its own channel.
 * It builds argv and environment with the daemon's builder, which validates
 * every field and uses only the daemon's own paths; it parses nothing else.
 * It answers with the pid, or, for `wait` requests, when the program exits
 * (killing it after timeout_ms).  Programs get stdin/stdout/stderr from the
 * fds sent with the request (or /dev/null) and no other fd.
 */
#ifndef CRISP_SPAWN_H
#define CRISP_SPAWN_H

#include "error.h"
#include "internal.pb-c.h"
#include "ipc_client.h"

#include <sys/types.h>

/*
 * Runs in the helper for every request: checks the request and returns argv
 * and envp (NULL-terminated, malloc'd) and the working directory (malloc'd;
 * left NULL: "/"), or an error that goes back to the daemon.  Programs never
 * start in the daemon's own working directory: conmon, for one, writes a
 * file named "oom" into its own.
 */
typedef int (*CrispSpawnBuilder)(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
				 char **ret_cwd, CrispError **err);

typedef struct CrispSpawnHelper {
	pid_t pid;
	CrispIpcClient *client;
} CrispSpawnHelper;

/* Forks the helper (named "<name>-spawn" in ps) and connects to it. */
int crisp_spawn_helper_start(const char *name, CrispSpawnBuilder build, CrispSpawnHelper *ret,
			     CrispError **err);

/* Sends one request (stdio fds: 0 to 3) and returns the helper's answer. */
int crisp_spawn(CrispSpawnHelper *h, const Crisp__SpawnRequest *req, const int *stdio_fds,
		size_t n_stdio, int64_t deadline_ms, Crisp__SpawnReply **ret, CrispError **err);

/*
 * As crisp_spawn, without waiting: callback gets the answer (a
 * Crisp__SpawnReply) once, as crisp_ipc_client_call_async describes; with
 * req->wait that is when the program ends.  No deadline.
 */
int crisp_spawn_async(CrispSpawnHelper *h, const Crisp__SpawnRequest *req, const int *stdio_fds,
		      size_t n_stdio, CrispIpcCallback callback, void *userdata, CrispError **err);

/* Closes the channel (the helper exits) and reaps it. */
void crisp_spawn_helper_stop(CrispSpawnHelper *h);

#endif
