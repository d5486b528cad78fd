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
	return crisp_is_lower_hex(id, 64);
}

static const CrispRuntimeHandler *find_handler(const char *name)
{
	const CrispConfig *c = crisp_backend_config;
	for (size_t i = 0; i < c->n_runtimes; i++)
		if (strcmp(c->runtimes[i].name, name) == 0)
			return &c->runtimes[i];
	return NULL;
}

/* An exec session's name: 16 lowercase hex digits sandboxd drew. */
static bool valid_token(const char *s)
{
	return crisp_is_lower_hex(s, 16);
}

static bool valid_signal(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	return *s && !*end && errno == 0 && v >= 1 && v <= 64;
}

/* An absolute path without "..", spaces or control characters: the log path. */
static bool clean_path(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) > 4096 || strstr(p, "/../") ||
	    (strlen(p) >= 3 && strcmp(p + strlen(p) - 3, "/..") == 0))
		return false;
	for (; *p; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	return true;
}

/*
 * conmon watches one container: it runs the runtime's create, holds the
 * container's stdio, writes its output to the log in the CRI format, and
 * writes its exit code to <exits>/<id>.  Everything but the log path is
 * derived from the container ID and our own state dir.
 */
static int build_conmon(const Crisp__SpawnRequest *req, const CrispRuntimeHandler *h,
			char ***ret_argv, CrispError **err)
{
	const char *log = req->args[1], *flags = req->args[2];
	if (!clean_path(log) || strspn(flags, "tio") != strlen(flags))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "conmon needs a clean absolute log path and known flags");
	const CrispConfig *c = crisp_backend_config;
	_cleanup_free_ char *bundles = crisp_state_path(c, "sandbox/bundles");
	_cleanup_free_ char *exits = crisp_state_path(c, "sandbox/exits");
	_cleanup_free_ char *sockets = crisp_state_path(c, "sandbox/attach");
	_cleanup_free_ char *bundle = xasprintf("%s/%s", bundles, req->id);
	char **argv = NULL;
	const char *fixed[] = { "/usr/bin/conmon",
				"--api-version",
				"1",
				"-c",
				req->id,
				"-u",
				req->id,
				"-n",
				req->id,
				"-r",
				h->binary,
				"-b",
				bundle,
				NULL };
	for (const char *const *a = fixed; *a; a++)
		strv_push(&argv, *a);
	_cleanup_free_ char *pid = xasprintf("%s/pid", bundle);
	_cleanup_free_ char *conmon_pid = xasprintf("%s/conmon.pid", bundle);
	_cleanup_free_ char *log_opt = xasprintf("k8s-file:%s", log);
	_cleanup_free_ char *root = xasprintf("--root=%s", h->root);
	_cleanup_free_ char *rlog = xasprintf("--log=%s/runc.log", bundle);
	const char *more[] = { "-p",
			       pid,
			       "-P",
			       conmon_pid,
			       "-l",
			       log_opt,
			       "--exit-dir",
			       exits,
			       "--socket-dir-path",
			       sockets,
			       "--persist-dir",
			       bundle,
			       "--runtime-arg",
			       root,
			       "--runtime-arg",
			       rlog,
			       "--runtime-arg",
			       "--log-format=json",
			       "--log-level",
			       "info",
			       NULL };
	for (const char *const *a = more; *a; a++)
		strv_push(&argv, *a);
	if (strcmp(c->cgroup_driver, "systemd") == 0)
		strv_push(&argv, "--systemd-cgroup");
	if (strchr(flags, 't'))
		strv_push(&argv, "-t");
	if (strchr(flags, 'i'))
		strv_push(&argv, "-i");
	if (strchr(flags, 'i') && !strchr(flags, 'o'))
		strv_push(&argv, "--leave-stdin-open");
	*ret_argv = argv;
	return 0;
}

int sandboxd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
			 char **ret_cwd, CrispError **err)
{
	if (req->kind == SANDBOXD_SPAWN_CONMON && req->n_args == 3) {
		const CrispRuntimeHandler *h = find_handler(req->args[0]);
		if (!h || !sandboxd_id_is_valid(req->id))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "conmon needs a configured handler and a container "
					       "ID");
		int r = build_conmon(req, h, ret_argv, err);
		if (r == 0) {
			/* conmon writes its "oom" file into the bundle and into its cwd. */
			_cleanup_free_ char *bundles =
				crisp_state_path(crisp_backend_config, "sandbox/bundles");
			*ret_cwd = xasprintf("%s/%s", bundles, req->id);
			*ret_envp = NULL;
			strv_push(ret_envp, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/"
					    "bin:/sbin:/bin");
		}
		return r;
	}
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
	/* An exec logs on its own: its start failure is read back for its caller alone. */
	bool exec = strcmp(verb, "exec") == 0 && req->n_args == 3 && valid_token(req->args[2]);
	_cleanup_free_ char *log = exec ? xasprintf("%s/exec-%s.log", bundle, req->args[2])
					: xasprintf("%s/runc.log", bundle);

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
	} else if (exec) {
		/* The process spec sandboxd wrote next to the container's own. */
		_cleanup_free_ char *spec = xasprintf("%s/exec-%s.json", bundle, req->args[2]);
		_cleanup_free_ char *pid = xasprintf("%s/exec-%s.pid", bundle, req->args[2]);
		strv_push(&argv, "exec");
		strv_push(&argv, "--process");
		strv_push(&argv, spec);
		strv_push(&argv, "--pid-file");
		strv_push(&argv, pid);
	} else if (strcmp(verb, "update") == 0 && req->n_args == 3 && valid_token(req->args[2])) {
		/* The resources sandboxd wrote next to the container's spec. */
		_cleanup_free_ char *res = xasprintf("%s/update-%s.json", bundle, req->args[2]);
		strv_push(&argv, "update");
		strv_push(&argv, "--resources");
		strv_push(&argv, res);
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
