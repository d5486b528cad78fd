/*
 * netd/spawn.c - the CNI plugin runs netd's spawn helper may start.
 *
 * Runs inside the spawn helper, outside the seccomp filter.  The networking
 * issue adds the CNI kinds (plugin type checked against the configured
 * plugin directories, no '/' or '..'); until then every kind is refused.
 */
#include "netd.h"

int netd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
		     CrispError **err)
{
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
			       "spawn kind %u is not a program netd runs", req->kind);
}
