/*
 * netd/spawn.c - the CNI plugin runs netd's spawn helper may start.
 *
 * Runs inside the spawn helper, outside the seccomp filter, as root with
 * the helper's full privileges: this is the place that decides what program
 * runs.  Every field is checked here again, whatever netd checked before:
 *   - the command is one of the CNI spec's;
 *   - the plugin type is a plain file name, found in the configured plugin
 *     dirs only (never a path from the request);
 *   - the pod ID is 64 hex digits, and CNI_NETNS is built from it and
 *     netd's own pins dir;
 *   - the interface name and CNI_ARGS carry only characters that cannot
 *     smuggle another key in.
 */
#include "netd.h"

#include "cni_config.h"

#include <ctype.h>
#include <sys/stat.h>

static const char *const cni_commands[] = { "ADD", "DEL", "CHECK", "STATUS", "VERSION", NULL };

bool netd_pod_id_is_valid(const char *id)
{
	return crisp_is_lower_hex(id, 64);
}

static bool valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 15)
		return false;
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return false;
	return true;
}

/* "K=V;K=V": printable, no spaces; the values come from pod metadata netd checked. */
static bool valid_cni_args(const char *s)
{
	if (strlen(s) > 4096)
		return false;
	for (const char *p = s; *p; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	return true;
}

static char *find_plugin(const char *type)
{
	for (char **d = crisp_backend_config->cni_bin_dirs; d && *d; d++) {
		char *path = xasprintf("%s/%s", *d, type);
		struct stat st;
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0)
			return path;
		free(path);
	}
	return NULL;
}

static void push_env(char ***envp, const char *key, const char *value)
{
	_cleanup_free_ char *e = xasprintf("%s=%s", key, value);
	strv_push(envp, e);
}

int netd_spawn_build(const Crisp__SpawnRequest *req, char ***ret_argv, char ***ret_envp,
		     char **ret_cwd _unused_, CrispError **err)
{
	if (req->kind != NETD_SPAWN_CNI || req->n_args != 4)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "spawn kind %u with %zu args is not a program netd runs",
				       req->kind, req->n_args);
	const char *command = req->args[0], *type = req->args[1], *ifname = req->args[2],
		   *cni_args = req->args[3];
	bool known = false;
	for (const char *const *c = cni_commands; *c; c++)
		known = known || strcmp(*c, command) == 0;
	if (!known)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "\"%.20s\" is not a CNI command", command);
	if (!netd_cni_type_is_valid(type))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "CNI plugin type \"%.80s\" is not a plain file name", type);
	bool per_pod = strcmp(command, "STATUS") != 0 && strcmp(command, "VERSION") != 0;
	if (per_pod && (!netd_pod_id_is_valid(req->id) || !valid_ifname(ifname)))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "CNI %s needs a pod ID and an interface name", command);
	if (!valid_cni_args(cni_args))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "CNI_ARGS has characters it must not have");
	char *path = find_plugin(type);
	if (!path)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, ENOENT,
				       "CNI plugin \"%s\" is not in the plugin dirs", type);

	char **argv = NULL, **envp = NULL;
	strv_push(&argv, path);
	_cleanup_free_ char *cni_path = xstrdup("");
	for (char **d = crisp_backend_config->cni_bin_dirs; d && *d; d++) {
		char *next = xasprintf("%s%s%s", cni_path, *cni_path ? ":" : "", *d);
		free(cni_path);
		cni_path = next;
	}
	_cleanup_free_ char *netns = NULL;
	if (per_pod) {
		_cleanup_free_ char *pins = crisp_state_path(crisp_backend_config, NETD_PINS_DIR);
		netns = xasprintf("%s/%s", pins, req->id);
	}
	push_env(&envp, "CNI_COMMAND", command);
	push_env(&envp, "CNI_CONTAINERID", per_pod ? req->id : "");
	push_env(&envp, "CNI_NETNS", netns ? netns : "");
	push_env(&envp, "CNI_IFNAME", per_pod ? ifname : "");
	push_env(&envp, "CNI_ARGS", cni_args);
	push_env(&envp, "CNI_PATH", cni_path);
	/* Plugins run iptables, ip and friends. */
	strv_push(&envp, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
	free(path);
	*ret_argv = argv;
	*ret_envp = envp;
	return 0;
}
