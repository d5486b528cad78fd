/*
 * containers.h - what containers.c and container_status.c share.
 */
#ifndef CRISP_SANDBOXD_CONTAINERS_H
#define CRISP_SANDBOXD_CONTAINERS_H

#include "api.pb-c.h"
#include "sandboxd.h"

typedef struct SandboxdContainer {
	char *id;
	char *pod_id;
	char *state; /* "creating", "created", "running", "exited" */
	Runtime__V1__ContainerConfig *config;
	char *image_id, *image_ref, *log_path;
	int stop_signal;
	int pid;
	int64_t created_at, started_at, finished_at;
	int exit_code;
	char *reason;
	char *upper_dir; /* imaged's writable layer of it, for stats */
} SandboxdContainer;

void sandboxd_container_done(SandboxdContainer *c);
int sandboxd_container_get(Sandboxd *sd, const char *id, SandboxdContainer *ret, CrispError **err);
/* Every container, or those of one pod (pod_id may be NULL), in creation order. */
int sandboxd_container_list(Sandboxd *sd, const char *pod_id, SandboxdContainer **ret,
			    size_t *ret_n, CrispError **err);
/* The CRI state of a container's recorded state. */
Runtime__V1__ContainerState sandboxd_container_cri_state(const SandboxdContainer *c);
/* Frees what sandboxd_container_list returned. */
void sandboxd_containers_free(SandboxdContainer *v, size_t n);
/* A whole ID or a unique prefix; -ENOENT (with *err) when none matches. */
int sandboxd_container_resolve(Sandboxd *sd, const char *s, char **ret, CrispError **err);
/* The container a request names (ID or prefix), read and refreshed; NOT_FOUND when none. */
int sandboxd_container_find(Sandboxd *sd, const char *asked, SandboxdContainer *ret,
			    CrispError **err);
/*
 * A running container whose process ended becomes exited, with the exit
 * code conmon wrote and the reason (Completed, Error, OOMKilled).
 */
void sandboxd_container_refresh(Sandboxd *sd, SandboxdContainer *c);

/* Kills a container's process and waits (up to timeout_ms) for it to end. */
int sandboxd_container_kill_wait(Sandboxd *sd, SandboxdContainer *c, const char *handler, int sig,
				 int timeout_ms, CrispError **err);
/* Removes a container: runtime state, rootfs mount, bundle, row.  Errors are logged. */
int sandboxd_container_destroy(Sandboxd *sd, SandboxdContainer *c, const char *handler,
			       CrispError **err);

/* The container's cgroup, in the driver's syntax (malloc'd). */
char *sandboxd_container_cgroup(Sandboxd *sd, const char *cgroup_parent, const char *id);

/* Events (events.c): queued for GetContainerEvents. */
void sandboxd_emit_container_event(Sandboxd *sd, const SandboxdContainer *c,
				   Runtime__V1__ContainerEventType type);

/*
 * Exec support (exec.c), for ExecSync and streaming exec (exec_stream.c):
 * the container's process spec with other argv, written to
 * <bundle>/exec-<token>.json; killing the command by the pid the runtime
 * wrote to <bundle>/exec-<token>.pid (false while there is none); removing
 * those and the runtime's log of the exec, <bundle>/exec-<token>.log; the
 * runtime handler a container runs under (malloc'd).
 */
int sandboxd_exec_write_spec(Sandboxd *sd, const char *id, const char *token, char **cmd,
			     size_t n_cmd, bool terminal, CrispError **err);
bool sandboxd_exec_kill(Sandboxd *sd, const char *id, const char *token);
/* Whether the runtime started the command (it wrote the pid file). */
bool sandboxd_exec_started(Sandboxd *sd, const char *id, const char *token);
void sandboxd_exec_cleanup(Sandboxd *sd, const char *id, const char *token);
char *sandboxd_container_handler(Sandboxd *sd, const SandboxdContainer *c);
/*
 * At start: the execs a previous sandboxd left (their callers lost them with
 * it) are killed, if still in the container's cgroup, and their files go.
 */
void sandboxd_exec_reap_orphans(Sandboxd *sd, const SandboxdContainer *c);

#endif
