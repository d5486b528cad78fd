/*
 * status.c - network readiness and the pod CIDR.
 *
 * Pod networking is ready when the CNI conf dir holds at least one usable
 * network config: a .conflist with a name and a non-empty plugins list whose
 * entries each name a type, or a .conf/.json with a name and a type.  Files
 * are read in lexical order, as CNI prescribes; a broken file is skipped and
 * named in the message when nothing usable is left.  (Loading and running
 * the networks themselves is the CNI layer's job.)
 */
#include "netd.h"

#include "backend.h"
#include "ipc_types.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <jansson.h>
#include <pthread.h>

#define NETD_MAX_CONFIG_BYTES (1024 * 1024)

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* The network's name, if the file is a usable network config. */
static char *usable_network(const char *path, bool list, char **ret_problem)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	char *name = NULL;

	if (!root) {
		*ret_problem = xasprintf("%s: %s (line %d)", path, jerr.text, jerr.line);
		return NULL;
	}
	const char *n = json_string_value(json_object_get(root, "name"));
	if (!n || !*n) {
		*ret_problem = xasprintf("%s: no \"name\"", path);
		goto out;
	}
	if (list) {
		json_t *plugins = json_object_get(root, "plugins");
		if (!json_is_array(plugins) || json_array_size(plugins) == 0) {
			*ret_problem = xasprintf("%s: no \"plugins\"", path);
			goto out;
		}
		size_t i;
		json_t *p;
		json_array_foreach(plugins, i, p)
		{
			const char *type = json_string_value(json_object_get(p, "type"));
			if (!type || !*type) {
				*ret_problem = xasprintf("%s: plugin %zu has no \"type\"", path, i);
				goto out;
			}
		}
	} else if (!json_string_value(json_object_get(root, "type"))) {
		*ret_problem = xasprintf("%s: no \"type\"", path);
		goto out;
	}
	name = xstrdup(n);
out:
	json_decref(root);
	return name;
}

int netd_network_status(CrispRequest *req, void *userdata, CrispError **err _unused_)
{
	CrispBackend *b = userdata;
	const char *dir = b->opts.config.cni_conf_dir;
	Crisp__NetworkStatusReply a = CRISP__NETWORK_STATUS_REPLY__INIT;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *problem = NULL;
	_cleanup_free_ char *message = NULL;
	struct dirent **entries = NULL;

	int n = scandir(dir, &entries, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		const char *f = entries[i]->d_name;
		bool list = has_suffix(f, ".conflist");
		if (f[0] != '.' && (list || has_suffix(f, ".conf") || has_suffix(f, ".json"))) {
			_cleanup_free_ char *path = xasprintf("%s/%s", dir, f);
			char *why = NULL;
			_cleanup_free_ char *name = usable_network(path, list, &why);
			if (name)
				strv_push(&names, name);
			else if (!problem)
				problem = why;
			else
				free(why);
		}
		free(entries[i]);
	}
	free(entries);

	a.ready = names != NULL;
	if (!a.ready) {
		a.reason = (char *)"NetworkPluginNotReady";
		if (n < 0)
			message = xasprintf("cannot read the CNI config dir %s: %s", dir,
					    strerror(errno));
		else if (problem)
			message = xasprintf("no usable network config in %s: %s", dir, problem);
		else
			message = xasprintf("no network config found in %s", dir);
		a.message = message;
	}
	a.n_networks = strv_length(names);
	a.networks = names;
	return crisp_reply(req, CRISP_MSG_NETD_STATUS_ANS, &a.base, NULL, 0);
}

static bool valid_cidr(const char *s)
{
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char buf[sizeof(struct in6_addr)];
	const char *slash = strchr(s, '/');
	char *end;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	long prefix = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1)
		return false;
	if (inet_pton(AF_INET, addr, buf) == 1)
		return prefix >= 0 && prefix <= 32;
	if (inet_pton(AF_INET6, addr, buf) == 1)
		return prefix >= 0 && prefix <= 128;
	return false;
}

int netd_set_pod_cidr(CrispRequest *req, void *userdata, CrispError **err)
{
	CrispBackend *b = userdata;
	const Crisp__PodCidrRequest *m = (const Crisp__PodCidrRequest *)req->msg;
	_cleanup_free_ char *joined = xstrdup("");

	if (m->n_cidrs > 2)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "at most two pod CIDRs (one per address family), got %zu",
				       m->n_cidrs);
	for (size_t i = 0; i < m->n_cidrs; i++) {
		if (!valid_cidr(m->cidrs[i]))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "pod CIDR \"%s\" is not an IP prefix", m->cidrs[i]);
		char *next = xasprintf("%s%s%s", joined, i ? "," : "", m->cidrs[i]);
		free(joined);
		joined = next;
	}

	/* Kept for the CNI layer, which hands it to IPAM as the pod range. */
	int r = crisp_db_meta_set(b->db, "pod_cidr", joined, err);
	if (r < 0)
		return crisp_error_wrap(err, "storing the pod CIDR");

	Crisp__PodCidrReply a = CRISP__POD_CIDR_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_NETD_POD_CIDR_ANS, &a.base, NULL, 0);
}
