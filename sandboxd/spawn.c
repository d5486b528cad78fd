/*
 * sandboxd/spawn.c - the OCI runtime runs sandboxd's spawn helper may start.
 *
 * Runs inside the spawn helper, outside the seccomp filter, as root with
 * the helper's full privileges: this is where the command line of runc or
 * crun is decided, so every field is checked here again:
 *   - the handler names a runtime of the config, whose binary and root come
 *     from the config only;
 *   - the verb is one of a fixed set, with fixed flags;
 *   - the container ID is 64 hex digits, and the bundle, pid file and log
 *     are built from it and sandboxd's own state dir;
 *   - a signal is a number from 1 to 64.
 */
#include "sandboxd.h"

#include <ctype.h>

bool sandboxd_id_is_valid(const char *id)
{
	size_t n = 0;
	for (; id && id[n]; n++)
		if (!isdigit((unsigned char)id[n]) && !(id[n] >= 'a' && id[n] <= 'f'))
			return false;
	return n == 64;
}

static const CrispRuntimeHandler *find_handler(const char *name)
{
	const CrispConfig *c = crisp_backend_config;
	for (size_t i = 0; i < c->n_runtimes; i++)
		if (strcmp(c->runtimes[i].name, name) == 0)
			return &c->runtimes[i];
	return NULL;
}

static bool valid_signal(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return *s && !*end && errno == 0 && v >= 1 && v <= 64;
}

int sandboxd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
			 CrispError **err)
{
	if (req->kind != SANDBOXD_SPAWN_RUNTIME || req->n_args < 2)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "spawn kind %u is not a program sandboxd runs", req->kind);
	const CrispRuntimeHandler *h = find_handler(req->args[0]);
	if (!h)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "\"%.40s\" is not a configured runtime handler",
				       req->args[0]);
	if (!sandboxd_id_is_valid(req->id))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "a container ID must be 64 lowercase hex digits");
	const char *verb = req->args[1];
	_cleanup_free_ char *bundles = crisp_state_path(crisp_backend_config, "sandbox/bundles");
	_cleanup_free_ char *bundle = xasprintf("%s/%s", bundles, req->id);
	_cleanup_free_ char *log = xasprintf("%s/runc.log", bundle);

	char **argv = NULL;
	strv_push(&argv, h->binary);
	strv_push(&argv, "--root");
	strv_push(&argv, h->root);
	strv_push(&argv, "--log");
	strv_push(&argv, log);
	strv_push(&argv, "--log-format");
	strv_push(&argv, "json");
	if (strcmp(verb, "create") == 0 && req->n_args == 2) {
		_cleanup_free_ char *pid = xasprintf("%s/pid", bundle);
		strv_push(&argv, "create");
		strv_push(&argv, "--bundle");
		strv_push(&argv, bundle);
		strv_push(&argv, "--pid-file");
		strv_push(&argv, pid);
	} else if (strcmp(verb, "start") == 0 && req->n_args == 2) {
		strv_push(&argv, "start");
	} else if (strcmp(verb, "kill") == 0 && req->n_args == 3 && valid_signal(req->args[2])) {
		strv_push(&argv, "kill");
	} else if (strcmp(verb, "delete") == 0 && req->n_args == 2) {
		strv_push(&argv, "delete");
		strv_push(&argv, "--force");
	} else {
		strv_free(argv);
		return crisp_error_set(
			err, CRISP_ERR_INVALID, EINVAL,
			"\"%.20s\" with %zu arguments is not a runtime verb sandboxd "
			"uses",
			verb, req->n_args);
	}
	strv_push(&argv, req->id);
	if (strcmp(verb, "kill") == 0)
		strv_push(&argv, req->args[2]);
	char **envp = NULL;
	strv_push(&envp, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	*ret_argv = argv;
	*ret_envp = envp;
	return 0;
}
