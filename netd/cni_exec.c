/*
 * cni_exec.c - running CNI plugins (see cni_exec.h).
 */
#include "cni_exec.h"

#include "log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int memfd_with(const char *name, const char *data, CrispError **err)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "memfd_create");
	size_t n = data ? strlen(data) : 0, off = 0;
	while (off < n) {
		ssize_t k = write(fd, data + off, n - off);
		if (k < 0) {
			int e = errno;
			close(fd);
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, e, "writing a memfd");
		}
		off += (size_t)k;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* What a plugin wrote, at most NETD_CNI_OUTPUT_MAX bytes. */
static char *read_output(int fd, bool *ret_truncated)
{
	struct stat st;
	size_t n = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size : 0;
	*ret_truncated = n > NETD_CNI_OUTPUT_MAX;
	if (*ret_truncated)
		n = NETD_CNI_OUTPUT_MAX;
	char *buf = xmalloc(n + 1);
	ssize_t k = pread(fd, buf, n, 0);
	buf[k > 0 ? (size_t)k : 0] = 0;
	return buf;
}

/* The plugin's stdin: its object, the list's name and version, prevResult, runtimeConfig. */
static json_t *plugin_config(const json_t *list, const json_t *plugin, const NetdCniPod *pod,
			     const json_t *prev)
{
	json_t *c = json_deep_copy(plugin);
	json_object_set(c, "name", json_object_get(list, "name"));
	json_object_set(c, "cniVersion", json_object_get(list, "cniVersion"));
	if (prev)
		json_object_set(c, "prevResult", (json_t *)prev);
	json_t *caps = json_object_get(plugin, "capabilities");
	json_t *rc = json_object();
	const char *key;
	json_t *on;
	json_object_foreach(caps, key, on)
	{
		json_t *v = pod && pod->runtime ? json_object_get(pod->runtime, key) : NULL;
		if (json_is_true(on) && v)
			json_object_set(rc, key, v);
	}
	if (json_object_size(rc))
		json_object_set_new(c, "runtimeConfig", rc);
	else
		json_decref(rc);
	return c;
}

/*
 * Runs one plugin.  On success *ret_result (may be NULL) gets its output
 * parsed, for ADD.  A failure's message quotes the plugin's error.
 */
static int run_plugin(Netd *nd, const char *command, const json_t *list, const json_t *plugin,
		      const NetdCniPod *pod, const json_t *prev, json_t **ret_result,
		      CrispError **err)
{
	const char *type = json_string_value(json_object_get(plugin, "type"));
	const char *net = netd_network_name(list);
	json_t *conf = plugin_config(list, plugin, pod, prev);
	_cleanup_free_ char *text = json_dumps(conf, JSON_COMPACT);
	json_decref(conf);

	int fds[3] = { -1, -1, -1 };
	_cleanup_free_ char *out = NULL;
	bool truncated = false;
	int r = fds[0] = memfd_with("cni-stdin", text, err);
	if (r >= 0)
		r = fds[1] = memfd_with("cni-stdout", NULL, err);
	if (r >= 0)
		r = fds[2] = memfd_with("cni-stderr", NULL, err);
	if (r < 0)
		goto out;

	char *args[4] = { (char *)command, (char *)type, (char *)(pod ? pod->ifname : ""),
			  (char *)(pod && pod->cni_args ? pod->cni_args : "") };
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = NETD_SPAWN_CNI;
	req.id = (char *)(pod ? pod->pod_id : "");
	req.n_args = 4;
	req.args = args;
	req.wait = true;
	req.timeout_ms = (uint32_t)nd->config->cni_plugin_timeout * 1000;
	Crisp__SpawnReply *reply = NULL;
	r = crisp_spawn(&nd->backend->spawn, &req, fds, 3, 0, &reply, err);
	if (r < 0) {
		crisp_error_wrap(err, "CNI %s of network %s, plugin %s", command, net, type);
		goto out;
	}
	out = read_output(fds[1], &truncated);
	if (reply->timed_out || !reply->exited || reply->exit_code != 0) {
		json_t *j = json_loads(out, 0, NULL);
		const char *msg = json_string_value(json_object_get(j, "msg"));
		const char *details = json_string_value(json_object_get(j, "details"));
		_cleanup_free_ char *errout = read_output(fds[2], &truncated);
		if (reply->timed_out)
			r = crisp_error_set(
				err, CRISP_ERR_DEADLINE, ETIMEDOUT,
				"CNI %s of network %s: plugin %s ran longer than %lld s", command,
				net, type, (long long)nd->config->cni_plugin_timeout);
		else
			r = crisp_error_set(
				err, CRISP_ERR_UNAVAILABLE, EIO,
				"CNI %s of network %s: plugin %s failed: %.500s%s%.500s", command,
				net, type, msg ? msg : (*errout ? errout : "no error message"),
				details && *details ? ": " : "", details ? details : "");
		json_decref(j);
	} else if (ret_result) {
		json_error_t jerr;
		json_t *j = truncated ? NULL : json_loads(out, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(j)) {
			json_decref(j);
			r = crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EPROTO,
					    "CNI %s of network %s: plugin %s answered no result",
					    command, net, type);
		} else {
			*ret_result = j;
		}
	}
	crisp_proto_free(reply);
out:
	for (int i = 0; i < 3; i++)
		safe_close(fds[i]);
	return r < 0 ? r : 0;
}

int netd_cni_add(Netd *nd, const json_t *list, const NetdCniPod *pod, json_t **ret_result,
		 CrispError **err)
{
	json_t *plugins = json_object_get(list, "plugins");
	json_t *prev = NULL;
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		json_t *result = NULL;
		int r = run_plugin(nd, "ADD", list, json_array_get(plugins, i), pod, prev, &result,
				   err);
		json_decref(prev);
		if (r < 0)
			return r;
		prev = result;
	}
	*ret_result = prev;
	return 0;
}

int netd_cni_del(Netd *nd, const json_t *list, const NetdCniPod *pod, const json_t *prev_result,
		 CrispError **err)
{
	json_t *plugins = json_object_get(list, "plugins");
	/* Every plugin gets its DEL even when one fails; the first failure is reported. */
	int first = 0;
	for (size_t i = json_array_size(plugins); i-- > 0;) {
		CrispError *one = NULL;
		int r = run_plugin(nd, "DEL", list, json_array_get(plugins, i), pod, prev_result,
				   NULL, &one);
		if (r < 0 && first == 0) {
			first = r;
			crisp_error_move(err, &one);
		} else if (r < 0) {
			log_warning("%s", one->message);
		}
		crisp_error_free(one);
	}
	return first;
}

/* True when the list's cniVersion is at least major.minor. */
static bool version_at_least(const json_t *list, int want_major, int want_minor)
{
	const char *v = json_string_value(json_object_get(list, "cniVersion"));
	int major = 0, minor = 0;
	if (!v || sscanf(v, "%d.%d", &major, &minor) != 2)
		return false;
	return major > want_major || (major == want_major && minor >= want_minor);
}

int netd_cni_check(Netd *nd, const json_t *list, const NetdCniPod *pod, const json_t *prev_result,
		   CrispError **err)
{
	if (!version_at_least(list, 0, 4) || json_is_true(json_object_get(list, "disableCheck")))
		return 0; /* CHECK came with CNI 0.4.0 */
	json_t *plugins = json_object_get(list, "plugins");
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		int r = run_plugin(nd, "CHECK", list, json_array_get(plugins, i), pod, prev_result,
				   NULL, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int netd_cni_status(Netd *nd, const json_t *list, CrispError **err)
{
	if (!version_at_least(list, 1, 1))
		return 0; /* STATUS came with CNI 1.1 */
	json_t *plugins = json_object_get(list, "plugins");
	for (size_t i = 0; i < json_array_size(plugins); i++) {
		int r = run_plugin(nd, "STATUS", list, json_array_get(plugins, i), NULL, NULL, NULL,
				   err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "10.88.0.5/16" -> "10.88.0.5", checked to be an address. */
static char *address_of(const char *cidr)
{
	if (!cidr)
		return NULL;
	size_t n = strcspn(cidr, "/");
	_cleanup_free_ char *a = xstrndup(cidr, n);
	unsigned char buf[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, a, buf) != 1 && inet_pton(AF_INET6, a, buf) != 1)
		return NULL;
	return TAKE_PTR(a);
}

int netd_cni_result_ips(const json_t *result, char ***ret_ips, char **ret_ifname, CrispError **err)
{
	char **ips = NULL;
	char *ifname = NULL;
	json_t *interfaces = json_object_get(result, "interfaces");
	json_t *list = json_object_get(result, "ips");
	size_t i;
	json_t *ip;
	json_array_foreach(list, i, ip)
	{
		char *a = address_of(json_string_value(json_object_get(ip, "address")));
		if (!a) {
			strv_free(ips);
			free(ifname);
			return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EPROTO,
					       "the CNI result has an address that is not one");
		}
		strv_push(&ips, a);
		free(a);
		json_t *idx = json_object_get(ip, "interface");
		const char *name =
			json_is_integer(idx)
				? json_string_value(json_object_get(
					  json_array_get(interfaces,
							 (size_t)json_integer_value(idx)),
					  "name"))
				: NULL;
		if (!ifname && name)
			ifname = xstrdup(name);
	}
	/* CNI 0.1/0.2 results. */
	const char *old[] = { "ip4", "ip6" };
	for (size_t k = 0; !list && k < 2; k++) {
		char *a = address_of(
			json_string_value(json_object_get(json_object_get(result, old[k]), "ip")));
		if (a)
			strv_push(&ips, a);
		free(a);
	}
	*ret_ips = ips;
	*ret_ifname = ifname;
	return 0;
}
