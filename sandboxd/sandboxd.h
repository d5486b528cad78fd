/*
 * sandboxd.h - crisp-sandboxd: pods and containers under conmon and runc/crun.
 */
#ifndef CRISP_SANDBOXD_H
#define CRISP_SANDBOXD_H

#include "sandbox.h"
#include "spawn.h"

extern const CrispProfile sandboxd_profile;

/* Builds the command line of each program sandboxd runs (spawn.c in this folder). */
int sandboxd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
			 CrispError **err);

#endif
