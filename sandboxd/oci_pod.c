/*
 * oci_pod.c - the infra process's OCI spec, and pod sysctl policy.
 *
 * The infra process is crisp-pause on a shared read-only root, as an
 * unprivileged user (65535) with no capabilities and no_new_privs.  It owns
 * the pod's namespaces: PID (unless the pod shares the node's), IPC, UTS,
 * mount, and network through netd's pin (or the node's).
 */
#include "oci_pod.h"
#include "oci_util.h"

#include <ctype.h>
#include <fnmatch.h>

#define PAUSE_UID 65535
#define SYSCTL_VALUE_MAX 256

/* kubelet's safe set, plus the namespaced IPC ones a pod may tune. */
static const char *const default_sysctls[] = {
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.tcp_syncookies",
	"net.ipv4.ping_group_range",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_rmem",
	"net.ipv4.tcp_wmem",
	NULL,
};

bool sandboxd_pod_uses_host(const Runtime__V1__PodSandboxConfig *c, char kind)
{
	const Runtime__V1__NamespaceOption *o =
		c->linux && c->linux->security_context
			? c->linux->security_context->namespace_options
			: NULL;
	if (!o)
		return false;
	Runtime__V1__NamespaceMode m = kind == 'n' ? o->network : kind == 'p' ? o->pid : o->ipc;
	return m == RUNTIME__V1__NAMESPACE_MODE__NODE;
}

/*
 * Names come in two spellings: "net.ipv4.ip_forward", and the slash form
 * the kubelet passes when a part holds a dot ("net/ipv4/conf/eth0.100/
 * forwarding").  Policy is checked on the dotted form, with dots inside a
 * part turned into slashes, as Kubernetes normalizes them.
 */
static char *sysctl_dotted(const char *n)
{
	char *d = xstrdup(n);
	if (strchr(n, '/'))
		for (char *p = d; *p; p++)
			*p = *p == '/' ? '.' : *p == '.' ? '/' : *p;
	return d;
}

static bool sysctl_allowed(const CrispConfig *cfg, const char *name)
{
	_cleanup_free_ char *dotted = sysctl_dotted(name);
	if (cfg->allowed_sysctls) {
		for (char **p = cfg->allowed_sysctls; *p; p++)
			if (fnmatch(*p, dotted, 0) == 0)
				return true;
		return false;
	}
	for (const char *const *p = default_sysctls; *p; p++)
		if (strcmp(*p, dotted) == 0)
			return true;
	return false;
}

/* Parts of [a-z0-9_-], and dots only inside parts of the slash form. */
static bool sysctl_name_ok(const char *n)
{
	size_t len = strlen(n);
	char sep = strchr(n, '/') ? '/' : '.';
	if (len == 0 || len > 255 || n[0] == sep || n[len - 1] == sep || strstr(n, "..") ||
	    strstr(n, "//"))
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("_.-/", *p)))
			return false;
	return true;
}

static bool sysctl_value_ok(const char *v)
{
	if (strlen(v) > SYSCTL_VALUE_MAX)
		return false;
	for (const char *p = v; *p; p++)
		if (*p != ' ' && *p != '\t' && !isgraph((unsigned char)*p))
			return false;
	return true;
}

int sandboxd_check_sysctls(const CrispConfig *cfg, const Runtime__V1__PodSandboxConfig *c,
			   CrispError **err)
{
	if (!c->linux)
		return 0;
	for (size_t i = 0; i < c->linux->n_sysctls; i++) {
		const char *n = c->linux->sysctls[i]->key, *v = c->linux->sysctls[i]->value;
		if (!sysctl_name_ok(n))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "sysctl \"%.80s\" is not a sysctl name", n);
		if (!sysctl_value_ok(v))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "sysctl %s: the value has a control character or "
					       "is longer than %d bytes",
					       n, SYSCTL_VALUE_MAX);
		if (!sysctl_allowed(cfg, n))
			return crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EPERM,
					       "sysctl %s is not allowed on this node "
					       "([runtime] allowed_sysctls)",
					       n);
		_cleanup_free_ char *d = sysctl_dotted(n);
		bool net = strncmp(d, "net.", 4) == 0;
		bool ipc = strncmp(d, "kernel.shm", 10) == 0 || strncmp(d, "kernel.msg", 10) == 0 ||
			   strcmp(d, "kernel.sem") == 0 || strncmp(d, "fs.mqueue.", 10) == 0;
		if ((net && sandboxd_pod_uses_host(c, 'n')) ||
		    (ipc && sandboxd_pod_uses_host(c, 'i')))
			return crisp_error_set(
				err, CRISP_ERR_INVALID, EINVAL,
				"sysctl %s would change the node: the pod shares the "
				"node's %s namespace",
				n, net ? "network" : "IPC");
		if (!net && !ipc && strncmp(d, "kernel.", 7) != 0)
			return crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EPERM,
					       "sysctl %s is not namespaced", n);
	}
	return 0;
}

static json_t *mounts(const PodSpecInput *in)
{
	json_t *m = json_array();
	json_array_append_new(m, oci_mount("/proc", "proc", "proc", "nosuid,noexec,nodev"));
	json_array_append_new(
		m, oci_mount("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
	json_array_append_new(m, oci_mount("/dev/pts", "devpts", "devpts",
					   "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620"));
	json_array_append_new(m, oci_mount("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"));
	if (in->shm) {
		json_array_append_new(
			m, oci_mount("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
		json_array_append_new(
			m, oci_mount("/dev/shm", "bind", in->shm, "rbind,nosuid,noexec,nodev"));
	}
	static const char *const files[] = { "hostname", "hosts", "resolv.conf" };
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *src = xasprintf("%s/%s", in->etc_dir, files[i]);
		_cleanup_free_ char *dst = xasprintf("/etc/%s", files[i]);
		json_array_append_new(m,
				      oci_mount(dst, "bind", src, "rbind,ro,nosuid,nodev,noexec"));
	}
	return m;
}

static json_t *namespaces(const Runtime__V1__PodSandboxConfig *c, const PodSpecInput *in)
{
	json_t *ns = json_array();
	if (!sandboxd_pod_uses_host(c, 'p'))
		json_array_append_new(ns, json_pack("{s:s}", "type", "pid"));
	if (in->shm)
		json_array_append_new(ns, json_pack("{s:s}", "type", "ipc"));
	json_array_append_new(ns, json_pack("{s:s}", "type", "uts"));
	json_array_append_new(ns, json_pack("{s:s}", "type", "mount"));
	if (in->netns)
		json_array_append_new(
			ns, json_pack("{s:s, s:s}", "type", "network", "path", in->netns));
	return ns;
}

static json_t *empty_caps(void)
{
	return json_pack("{s:[], s:[], s:[], s:[], s:[]}", "bounding", "effective", "inheritable",
			 "permitted", "ambient");
}

json_t *sandboxd_pod_spec(Sandboxd *sd, const Runtime__V1__PodSandboxConfig *c,
			  const PodSpecInput *in)
{
	json_t *sysctl = json_object();
	for (size_t i = 0; c->linux && i < c->linux->n_sysctls; i++)
		json_object_set_new(sysctl, c->linux->sysctls[i]->key,
				    json_string(c->linux->sysctls[i]->value));
	json_t *process =
		json_pack("{s:b, s:{s:i, s:i}, s:[s], s:[s], s:s, s:o, s:b, s:i}", "terminal", 0,
			  "user", "uid", PAUSE_UID, "gid", PAUSE_UID, "args", "/pause", "env",
			  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			  "cwd", "/", "capabilities", empty_caps(), "noNewPrivileges", 1,
			  "oomScoreAdj", in->oom_score_adj);
	json_t *linux =
		json_pack("{s:o, s:s, s:o, s:{s:{s:i}}, s:o, s:o}", "namespaces", namespaces(c, in),
			  "cgroupsPath", in->cgroups_path, "sysctl", sysctl, "resources", "cpu",
			  "shares", 2, "maskedPaths", oci_strv(oci_masked_paths), "readonlyPaths",
			  oci_strv(oci_readonly_paths));
	return json_pack("{s:s, s:o, s:{s:s, s:b}, s:s, s:o, s:o, s:{s:s, s:s}}", "ociVersion",
			 "1.0.2", "process", process, "root", "path", sd->pause_rootfs, "readonly",
			 1, "hostname", in->hostname, "mounts", mounts(in), "linux", linux,
			 "annotations", "io.kubernetes.cri.container-type", "sandbox",
			 "io.kubernetes.cri.sandbox-id", in->pod_id);
}
