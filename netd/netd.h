/*
 * netd.h - crisp-netd: network namespaces, CNI, in-netns dialing.
 */
#ifndef CRISP_NETD_H
#define CRISP_NETD_H

#include "daemon.h"
#include "sandbox.h"
#include "spawn.h"

extern const CrispProfile netd_profile;

/* Network readiness and the pod CIDR (status.c). */
int netd_network_status(CrispRequest *req, void *userdata, CrispError **err);
int netd_set_pod_cidr(CrispRequest *req, void *userdata, CrispError **err);

/* Builds the command line of each CNI plugin run (spawn.c in this folder). */
int netd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
		     CrispError **err);

#endif
