/*
 * pods.h - what pods.c and pod_status.c share: a pod's row, per-pod
 * serialization, and resolving the IDs requests name.
 */
#ifndef CRISP_SANDBOXD_PODS_H
#define CRISP_SANDBOXD_PODS_H

#include "api.pb-c.h"
#include "sandboxd.h"

typedef struct SandboxdPod {
	char *id;
	char *state; /* "creating", "ready", "notready" */
	Runtime__V1__PodSandboxConfig *config;
	char *handler;
	char *cgroup_parent;
	char *netns;
	char **ips;
	int pid;
	int64_t created_at;
} SandboxdPod;

void sandboxd_pod_done(SandboxdPod *p);

/* Reads a pod's row; -ENOENT when there is none. */
int sandboxd_pod_get(Sandboxd *sd, const char *id, SandboxdPod *ret, CrispError **err);
/* Every pod, in creation order. */
int sandboxd_pod_list(Sandboxd *sd, SandboxdPod **ret, size_t *ret_n, CrispError **err);
/* The pod's state, or NULL in *ret when sandboxd has no such pod. */
int sandboxd_pod_state(Sandboxd *sd, const char *id, char **ret, CrispError **err);
/*
 * The full ID a request names: the whole ID or a unique prefix of it (as
 * crictl users type them).  -ENOENT (with *err) when no pod matches;
 * CRISP_ERR_INVALID when the text is not hex, or the prefix is ambiguous.
 */
int sandboxd_pod_resolve(Sandboxd *sd, const char *s, char **ret, CrispError **err);
/* The same for any of our tables ("pods", "containers"); what names it in messages. */
int sandboxd_resolve_id(Sandboxd *sd, const char *table, const char *what, const char *s,
			char **ret, CrispError **err);
/* Every selector entry is among the labels, with the same value (CRI map entries). */
bool sandboxd_labels_match(size_t n_have, void *const *have, size_t n_want, void *const *want);
/* Runs sql with ?1 = id, ?2 = value, ?3 = text, under the lock. */
int sandboxd_db_exec(Sandboxd *sd, const char *sql, const char *id, int64_t value, const char *text,
		     CrispError **err);

void sandboxd_pod_claim(Sandboxd *sd, const char *id);
void sandboxd_pod_release(Sandboxd *sd, const char *id);
/* Removes what a pod has on the node (runtime state, shm, files); errors are logged. */
void sandboxd_pod_undo(Sandboxd *sd, const char *id, const char *handler);
/* True while pid runs (a zombie does not). */
bool sandboxd_pid_alive(int pid);
/* The number a pid or exit-code file holds, or fallback when it holds none. */
int sandboxd_read_int(const char *path, int fallback);
/* Waits until pid is gone (or a zombie), at most timeout_ms; true when it is. */
bool sandboxd_pid_wait_gone(int pid, int timeout_ms);
/* READY while the record says so and the infra process runs, else NOTREADY. */
Runtime__V1__PodSandboxState sandboxd_pod_cri_state(const SandboxdPod *p);
/* Frees what sandboxd_pod_list returned. */
void sandboxd_pods_free(SandboxdPod *v, size_t n);

/* Queues a pod event for GetContainerEvents (events.c); the pod's row must exist. */
void sandboxd_emit_pod_event(Sandboxd *sd, const char *pod_id,
			     Runtime__V1__ContainerEventType type);

#endif
