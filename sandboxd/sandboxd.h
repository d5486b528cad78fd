/*
 * sandboxd.h - crisp-sandboxd: pods and containers under conmon and runc/crun.
 *
 * State:
 *   <root>/sandbox/sandbox.db        pods (and, later, containers)
 *   <root>/sandbox/pause/rootfs/     the infra process's root: crisp-pause
 *                                    and empty mount points, shared read-only
 *   <root>/sandbox/pods/<id>/        a pod's hostname, hosts and resolv.conf
 *   <state>/sandbox/pods/<id>/shm    the pod's /dev/shm (a tmpfs)
 *   <state>/sandbox/bundles/<id>/    OCI bundles (config.json, pid, runc.log)
 * Every path is derived from an ID sandboxd recorded; no request names one.
 *
 * Locking: `lock` guards the database and `busy`; work on one pod is
 * serialized by claiming "pod:<id>" in `busy`, and runs without the lock.
 */
#ifndef CRISP_SANDBOXD_H
#define CRISP_SANDBOXD_H

#include "backend.h"
#include "inflight.h"
#include "sandbox.h"
#include "spawn.h"

#include <pthread.h>

/* What the spawn helper runs for sandboxd. */
enum {
	SANDBOXD_SPAWN_RUNTIME = 1, /* args: handler, verb, verb args; id: the container */
	SANDBOXD_SPAWN_CONMON = 2,  /* args: handler, log path, flags ("t", "i", "o"); id */
};

typedef struct Sandboxd {
	CrispBackend *backend;
	const CrispConfig *config;
	sqlite3 *db;
	char *pods_dir;	   /* <root>/sandbox/pods */
	char *run_dir;	   /* <state>/sandbox/pods */
	char *bundles_dir; /* <state>/sandbox/bundles */
	char *pause_rootfs;
	char *netns_dir;	 /* netd's pins: <state>/netns */
	char *containers_dir;	 /* <state>/sandbox/containers: each one's rootfs mount */
	char *exits_dir;	 /* <state>/sandbox/exits: conmon's exit files */
	char *attach_dir;	 /* <state>/sandbox/attach: conmon's attach sockets */
	char *image_dir;	 /* imaged's <root>/image, whose snapshot paths we accept */
	int oom_score_adj_floor; /* the lowest oom_score_adj runc may set here */

	pthread_mutex_t lock;
	CrispInflight busy;
} Sandboxd;

extern const CrispProfile sandboxd_profile;
extern const CrispDbMigration sandboxd_migrations[];
extern const size_t sandboxd_n_migrations;

static inline Sandboxd *sandboxd_of(void *userdata)
{
	return ((CrispBackend *)userdata)->state;
}

/* Start-up (state.c). */
int sandboxd_setup(CrispBackend *b, CrispError **err);
void sandboxd_teardown(CrispBackend *b);

/* Pods (pods.c, pod_status.c). */
int sandboxd_pod_run(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_pod_set_network(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_stop_pod(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_remove_pod(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_pod_status(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_list_pods(CrispRequest *req, void *userdata, CrispError **err);

/* Containers (containers.c, container_status.c). */
int sandboxd_container_create(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_start_container(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_stop_container(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_remove_container(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_container_status(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_list_containers(CrispRequest *req, void *userdata, CrispError **err);
/* Events (events.c): the long poll criapi makes, and the exit watcher. */
int sandboxd_wait_events(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_events_start(Sandboxd *sd, CrispError **err);

/* UpdateContainerResources and ReopenContainerLog (update.c). */
int sandboxd_update_container(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_reopen_log(CrispRequest *req, void *userdata, CrispError **err);

/* Stats (stats.c). */
int sandboxd_container_stats(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_list_container_stats(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_pod_stats(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_list_pod_stats(CrispRequest *req, void *userdata, CrispError **err);

/* Metrics and pod resources (metrics.c). */
int sandboxd_list_metric_descriptors(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_list_pod_metrics(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_update_pod_resources(CrispRequest *req, void *userdata, CrispError **err);

/* ExecSync (exec.c). */
int sandboxd_exec_sync(CrispRequest *req, void *userdata, CrispError **err);
/* Streaming exec and attach (exec_stream.c): fds for streamd, through criapi. */
int sandboxd_exec_start(CrispRequest *req, void *userdata, CrispError **err);
int sandboxd_attach(CrispRequest *req, void *userdata, CrispError **err);

/* Builds the command line of each program sandboxd runs (spawn.c in this folder). */
int sandboxd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
			 char **ret_cwd, CrispError **err);
/* True for an ID sandboxd accepts: 64 lowercase hex digits. */
bool sandboxd_id_is_valid(const char *id);

#endif
