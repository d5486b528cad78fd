/*
 * netd.h - crisp-netd: network namespaces, CNI, in-netns dialing.
 *
 * State: pods in net.db (pods, and per pod the networks attached with the
 * config and runtime values used, so DEL repeats exactly what ADD did), pins
 * under <state>/netns/<pod id>, and the loaded CNI configs in memory,
 * reloaded when the conf dir changes.
 *
 * Locking: `lock` guards the database, the `networks` pointer and `busy`.
 * Work on one pod is serialized by claiming "pod:<id>" in `busy`; plugins
 * run without the lock, so pods are set up in parallel.
 */
#ifndef CRISP_NETD_H
#define CRISP_NETD_H

#include "backend.h"
#include "cni_config.h"
#include "daemon.h"
#include "inflight.h"
#include "sandbox.h"
#include "spawn.h"

#include <pthread.h>

#define NETD_PINS_DIR "netns" /* under <state> */

/* What the spawn helper runs for netd. */
enum {
	NETD_SPAWN_CNI = 1, /* args: command, plugin type, ifname, CNI_ARGS; id: pod or "" */
};

typedef struct Netd {
	CrispBackend *backend;
	const CrispConfig *config;
	sqlite3 *db;
	char *pins_dir;

	pthread_mutex_t lock;
	NetdNetworks *networks;
	CrispInflight busy;
	int inotify_fd;
	bool reloading;		 /* the watcher has taken events and not yet swapped networks */
	pthread_cond_t reloaded; /* signalled when it has */
	int stop_fd;		 /* an eventfd that ends the watcher */
	pthread_t watcher;
	bool watcher_started;
} Netd;

extern const CrispProfile netd_profile;
extern const CrispDbMigration netd_migrations[];
extern const size_t netd_n_migrations;

static inline Netd *netd_of(void *userdata)
{
	return ((CrispBackend *)userdata)->state;
}

/* Start-up, the conf dir watcher, reconciliation (state.c). */
int netd_setup(CrispBackend *b, CrispError **err);
void netd_teardown(CrispBackend *b);
/*
 * The current networks, referenced (netd_networks_unref when done).  A change
 * to the conf dir made before the call is seen: the call waits (up to a
 * second) for the watcher to load it.
 */
NetdNetworks *netd_current_networks(Netd *nd);

/* Network readiness and the pod CIDR (status.c). */
int netd_network_status(CrispRequest *req, void *userdata, CrispError **err);
int netd_set_pod_cidr(CrispRequest *req, void *userdata, CrispError **err);

/* Pods' networks (pods.c). */
int netd_netns_create_handler(CrispRequest *req, void *userdata, CrispError **err);
int netd_attach_handler(CrispRequest *req, void *userdata, CrispError **err);
int netd_teardown_handler(CrispRequest *req, void *userdata, CrispError **err);
int netd_pod_network_handler(CrispRequest *req, void *userdata, CrispError **err);
int netd_dial_handler(CrispRequest *req, void *userdata, CrispError **err);

/* Builds the command line of each CNI plugin run (spawn.c in this folder). */
int netd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
		     char **ret_cwd, CrispError **err);
/* True for a pod ID netd accepts: 64 lowercase hex digits. */
bool netd_pod_id_is_valid(const char *id);

#endif
