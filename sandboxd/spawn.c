/*
 * sandboxd/spawn.c - the programs sandboxd's spawn helper may start.
 *
 * Runs inside the spawn helper, outside the seccomp filter.  Each kind of
 * program gets its argv and environment from validated fields and from
 * sandboxd's own paths only.  The container lifecycle (its own issue) adds
 * the conmon and runc kinds; until then every kind is refused.
 */
#include "sandboxd.h"

int sandboxd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
			 CrispError **err)
{
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
			       "spawn kind %u is not a program sandboxd runs", req->kind);
}
