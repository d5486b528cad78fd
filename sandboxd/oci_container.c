/*
 * oci_container.c - a container's OCI spec (see oci_container.h).
 *
 * What comes from where:
 *   argv      CRI command, else the image's entrypoint; then CRI args, else
 *             (without a CRI command) the image's cmd, as Kubernetes defines
 *   env       the image's, then the CRI envs (a CRI key replaces the image's)
 *   cwd       CRI working_dir, else the image's, else "/"
 *   user      uid, gid and groups imaged resolved in the image, then CRI
 *             run_as_group and supplemental groups
 *   root      the overlay sandboxd mounted; read-only on request
 *   mounts    /proc, /dev, /dev/pts, /dev/mqueue, /sys, the cgroup file
 *             system (read-only), the pod's /dev/shm, /etc/hostname, hosts
 *             and resolv.conf from the pod, then the CRI mounts
 *   namespaces the pod's network, IPC and UTS (through its infra process),
 *             its PID namespace unless the container asks for its own (or
 *             the node's), and a mount namespace of its own
 *   security  containerd's default capabilities with the CRI additions and
 *             drops; the masked and read-only paths runc and CRI-O use;
 *             no_new_privs; seccomp Unconfined, Localhost (a JSON profile
 *             file) or RuntimeDefault (crisp's profile, below); privileged
 *             containers get every capability, every device and no masks
 */
#include "oci_container.h"

#include "log.h"
#include "oci_util.h"

#include <cap-ng.h>
#include <ctype.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>

static const char *const default_caps[] = {
	"CHOWN",
	"DAC_OVERRIDE",
	"FSETID",
	"FOWNER",
	"MKNOD",
	"NET_RAW",
	"SETGID",
	"SETUID",
	"SETFCAP",
	"SETPCAP",
	"NET_BIND_SERVICE",
	"SYS_CHROOT",
	"KILL",
	"AUDIT_WRITE",
	NULL,
};

/*
 * RuntimeDefault: everything allowed but the calls that reach the kernel's
 * or the node's global state, which Docker's default profile also refuses.
 * Calls gated by capabilities the container lacks are refused by those.
 */
static const char *const runtime_default_denied[] = {
	"acct",
	"add_key",
	"bpf",
	"clock_adjtime",
	"clock_settime",
	"create_module",
	"delete_module",
	"finit_module",
	"fsconfig",
	"fsmount",
	"fsopen",
	"fspick",
	"get_kernel_syms",
	"init_module",
	"ioperm",
	"iopl",
	"kcmp",
	"kexec_file_load",
	"kexec_load",
	"keyctl",
	"lookup_dcookie",
	"mount",
	"move_mount",
	"name_to_handle_at",
	"nfsservctl",
	"open_by_handle_at",
	"open_tree",
	"perf_event_open",
	"pivot_root",
	"process_vm_readv",
	"process_vm_writev",
	"ptrace",
	"query_module",
	"quotactl",
	"reboot",
	"request_key",
	"setns",
	"settimeofday",
	"swapoff",
	"swapon",
	"sysfs",
	"_sysctl",
	"umount2",
	"unshare",
	"uselib",
	"userfaultfd",
	"ustat",
	"vm86",
	"vm86old",
	NULL,
};

static json_t *strv_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; v && (n == (size_t)-1 ? v[i] != NULL : i < n); i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static bool clean_abs_path(const char *p)
{
	if (!p || p[0] != '/' || strlen(p) > 4096)
		return false;
	for (const char *s = p; *s; s++)
		if ((unsigned char)*s < 0x20)
			return false;
	_cleanup_free_ char *copy = xstrdup(p);
	for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save))
		if (strcmp(t, "..") == 0)
			return false;
	return true;
}

/* --- argv, env --- */

static json_t *argv_of(const Runtime__V1__ContainerConfig *c, const Crisp__ImageRuntimeConfig *im)
{
	json_t *a = json_array();
	if (c->n_command) {
		for (size_t i = 0; i < c->n_command; i++)
			json_array_append_new(a, json_string(c->command[i]));
	} else {
		for (size_t i = 0; i < im->n_entrypoint; i++)
			json_array_append_new(a, json_string(im->entrypoint[i]));
	}
	if (c->n_args) {
		for (size_t i = 0; i < c->n_args; i++)
			json_array_append_new(a, json_string(c->args[i]));
	} else if (!c->n_command) {
		for (size_t i = 0; i < im->n_cmd; i++)
			json_array_append_new(a, json_string(im->cmd[i]));
	}
	return a;
}

static json_t *env_of(const Runtime__V1__ContainerConfig *c, const Crisp__ImageRuntimeConfig *im)
{
	json_t *order = json_array(), *byname = json_object();
	for (size_t i = 0; i < im->n_env; i++) {
		const char *eq = strchr(im->env[i], '=');
		if (!eq || eq == im->env[i])
			continue; /* imaged refuses these; never trust a peer's word */
		_cleanup_free_ char *k = xstrndup(im->env[i], (size_t)(eq - im->env[i]));
		if (!json_object_get(byname, k))
			json_array_append_new(order, json_string(k));
		json_object_set_new(byname, k, json_string(eq + 1));
	}
	for (size_t i = 0; i < c->n_envs; i++) {
		const char *k = c->envs[i]->key;
		if (!json_object_get(byname, k))
			json_array_append_new(order, json_string(k));
		json_object_set_new(byname, k, json_string(c->envs[i]->value));
	}
	if (!json_object_get(byname, "PATH")) {
		json_array_insert_new(order, 0, json_string("PATH"));
		json_object_set_new(
			byname, "PATH",
			json_string(
				"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	}
	json_t *env = json_array();
	size_t i;
	json_t *k;
	json_array_foreach(order, i, k)
	{
		const char *name = json_string_value(k);
		_cleanup_free_ char *kv =
			xasprintf("%s=%s", name, json_string_value(json_object_get(byname, name)));
		json_array_append_new(env, json_string(kv));
	}
	json_decref(order);
	json_decref(byname);
	return env;
}

/* --- capabilities --- */

/* "CAP_NET_ADMIN", "net_admin", "NET_ADMIN" -> CAP_NET_ADMIN's number, or -1. */
static int cap_number(const char *name)
{
	if (strncasecmp(name, "CAP_", 4) == 0)
		name += 4;
	char lower[64];
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof(lower))
		return -1;
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	return capng_name_to_capability(lower);
}

static json_t *caps_json(const bool set[CAP_LAST_CAP + 1])
{
	json_t *a = json_array();
	for (int i = 0; i <= CAP_LAST_CAP; i++) {
		if (!set[i])
			continue;
		const char *n = capng_capability_to_name((unsigned)i);
		if (!n)
			continue;
		char upper[64] = "CAP_";
		for (size_t j = 0; n[j] && j < sizeof(upper) - 5; j++)
			upper[4 + j] = (char)toupper((unsigned char)n[j]);
		json_array_append_new(a, json_string(upper));
	}
	return a;
}

static int capabilities(const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
			json_t **ret, CrispError **err)
{
	bool set[CAP_LAST_CAP + 1] = { false };
	for (const char *const *d = default_caps; *d; d++)
		set[cap_number(*d)] = true;
	const Runtime__V1__Capability *c = sc ? sc->capabilities : NULL;
	for (size_t i = 0; c && i < c->n_add_capabilities; i++) {
		if (strcasecmp(c->add_capabilities[i], "ALL") == 0) {
			for (int k = 0; k <= CAP_LAST_CAP; k++)
				set[k] = true;
			continue;
		}
		int n = cap_number(c->add_capabilities[i]);
		if (n < 0 || n > CAP_LAST_CAP)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "capability \"%.40s\" is not one this kernel knows",
					       c->add_capabilities[i]);
		set[n] = true;
	}
	for (size_t i = 0; c && i < c->n_drop_capabilities; i++) {
		if (strcasecmp(c->drop_capabilities[i], "ALL") == 0) {
			for (int k = 0; k <= CAP_LAST_CAP; k++)
				set[k] = false;
			continue;
		}
		int n = cap_number(c->drop_capabilities[i]);
		if (n < 0 || n > CAP_LAST_CAP)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "capability \"%.40s\" is not one this kernel knows",
					       c->drop_capabilities[i]);
		set[n] = false;
	}
	if (privileged)
		for (int k = 0; k <= CAP_LAST_CAP; k++)
			set[k] = true;
	json_t *list = caps_json(set);
	*ret = json_pack("{s:O, s:O, s:O, s:[]}", "bounding", list, "effective", list, "permitted",
			 list, "ambient");
	json_decref(list);
	return 0;
}

/* --- mounts and devices --- */

static bool mounted_by_cri(const Runtime__V1__ContainerConfig *c, const char *dest)
{
	for (size_t i = 0; i < c->n_mounts; i++)
		if (strcmp(c->mounts[i]->container_path, dest) == 0)
			return true;
	return false;
}

static int mounts(Sandboxd *sd, const Runtime__V1__ContainerConfig *c, const ContainerSpecInput *in,
		  bool privileged, json_t **ret, CrispError **err)
{
	json_t *m = json_array();
	json_array_append_new(m, oci_mount("/proc", "proc", "proc", "nosuid,noexec,nodev"));
	json_array_append_new(
		m, oci_mount("/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k"));
	json_array_append_new(m,
			      oci_mount("/dev/pts", "devpts", "devpts",
					"nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5"));
	json_array_append_new(m,
			      oci_mount("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"));
	json_array_append_new(
		m, oci_mount("/sys", "sysfs", "sysfs",
			     privileged ? "nosuid,noexec,nodev,rw" : "nosuid,noexec,nodev,ro"));
	json_array_append_new(m, oci_mount("/sys/fs/cgroup", "cgroup", "cgroup",
					   privileged ? "nosuid,noexec,nodev,relatime,rw"
						      : "nosuid,noexec,nodev,relatime,ro"));
	_cleanup_free_ char *shm = xasprintf("%s/%s/shm", sd->run_dir, in->pod->id);
	struct stat st;
	if (stat(shm, &st) == 0 && !mounted_by_cri(c, "/dev/shm"))
		json_array_append_new(
			m, oci_mount("/dev/shm", "bind", shm, "rbind,nosuid,noexec,nodev"));
	static const char *const files[] = { "hostname", "hosts", "resolv.conf" };
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *dst = xasprintf("/etc/%s", files[i]);
		if (mounted_by_cri(c, dst))
			continue;
		_cleanup_free_ char *src =
			xasprintf("%s/%s/%s", sd->pods_dir, in->pod->id, files[i]);
		json_array_append_new(m,
				      oci_mount(dst, "bind", src, "rbind,ro,nosuid,nodev,noexec"));
	}
	for (size_t i = 0; i < c->n_mounts; i++) {
		const Runtime__V1__Mount *cm = c->mounts[i];
		if (!clean_abs_path(cm->container_path) || !clean_abs_path(cm->host_path)) {
			json_decref(m);
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "mount %zu: \"%.100s\" -> \"%.100s\" needs absolute "
					       "paths without \"..\"",
					       i, cm->host_path, cm->container_path);
		}
		if (stat(cm->host_path, &st) < 0) {
			int e = errno;
			json_decref(m);
			return crisp_error_set_errno(err, CRISP_ERR_INVALID, e,
						     "mount %zu: the host path %s", i,
						     cm->host_path);
		}
		const char *prop =
			cm->propagation == RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_BIDIRECTIONAL
				? "rshared"
			: cm->propagation ==
					RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_HOST_TO_CONTAINER
				? "rslave"
				: "rprivate";
		_cleanup_free_ char *opts =
			xasprintf("rbind,%s,%s", cm->readonly ? "ro" : "rw", prop);
		json_array_append_new(m,
				      oci_mount(cm->container_path, "bind", cm->host_path, opts));
	}
	*ret = m;
	return 0;
}

static int devices(const Runtime__V1__ContainerConfig *c, bool privileged, json_t **ret_devices,
		   json_t **ret_allow, CrispError **err)
{
	json_t *devs = json_array();
	json_t *allow = json_array();
	/* Everything denied, then what containers always need, as runc's defaults. */
	json_array_append_new(allow, json_pack("{s:b, s:s}", "allow", privileged, "access", "rwm"));
	for (size_t i = 0; i < c->n_devices; i++) {
		const Runtime__V1__Device *d = c->devices[i];
		struct stat st;
		const char *perm = d->permissions && *d->permissions ? d->permissions : "rwm";
		bool perm_ok = strlen(perm) <= 3 && strspn(perm, "rwm") == strlen(perm);
		if (!clean_abs_path(d->host_path) || !clean_abs_path(d->container_path) ||
		    !perm_ok || stat(d->host_path, &st) < 0 ||
		    !(S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
			json_decref(devs);
			json_decref(allow);
			return crisp_error_set(
				err, CRISP_ERR_INVALID, EINVAL,
				"device %zu: %.100s is not a device node on the host "
				"(or the permissions \"%.8s\" are not r, w, m)",
				i, d->host_path, perm);
		}
		const char *type = S_ISCHR(st.st_mode) ? "c" : "b";
		json_array_append_new(devs, json_pack("{s:s, s:s, s:I, s:I, s:i}", "path",
						      d->container_path, "type", type, "major",
						      (json_int_t)major(st.st_rdev), "minor",
						      (json_int_t)minor(st.st_rdev), "fileMode",
						      (int)(st.st_mode & 07777)));
		json_array_append_new(
			allow, json_pack("{s:b, s:s, s:I, s:I, s:s}", "allow", 1, "type", type,
					 "major", (json_int_t)major(st.st_rdev), "minor",
					 (json_int_t)minor(st.st_rdev), "access", perm));
	}
	*ret_devices = devs;
	*ret_allow = allow;
	return 0;
}

/* --- seccomp --- */

static json_t *runtime_default_seccomp(void)
{
	struct utsname u;
	uname(&u);
	json_t *arches = json_array();
	if (strcmp(u.machine, "x86_64") == 0) {
		json_array_append_new(arches, json_string("SCMP_ARCH_X86_64"));
		json_array_append_new(arches, json_string("SCMP_ARCH_X86"));
		json_array_append_new(arches, json_string("SCMP_ARCH_X32"));
	} else if (strcmp(u.machine, "aarch64") == 0) {
		json_array_append_new(arches, json_string("SCMP_ARCH_AARCH64"));
		json_array_append_new(arches, json_string("SCMP_ARCH_ARM"));
	}
	return json_pack("{s:s, s:o, s:[{s:o, s:s, s:i}]}", "defaultAction", "SCMP_ACT_ALLOW",
			 "architectures", arches, "syscalls", "names",
			 strv_json(runtime_default_denied, (size_t)-1), "action", "SCMP_ACT_ERRNO",
			 "errnoRet", EPERM);
}

static int seccomp(const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
		   json_t **ret, CrispError **err)
{
	*ret = NULL;
	const Runtime__V1__SecurityProfile *p = sc ? sc->seccomp : NULL;
	if (privileged || !p ||
	    p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined)
		return 0;
	if (p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault) {
		*ret = runtime_default_seccomp();
		return 0;
	}
	/* Localhost: a profile in the OCI spec's form, from a file on the node. */
	if (!clean_abs_path(p->localhost_ref))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "seccomp localhost_ref \"%.100s\" is not an absolute path",
				       p->localhost_ref);
	json_error_t jerr;
	json_t *j = json_load_file(p->localhost_ref, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "seccomp profile %s: %s",
				       p->localhost_ref, j ? "not a JSON object" : jerr.text);
	}
	*ret = j;
	return 0;
}

/* --- AppArmor --- */

/*
 * This node's AppArmor, if any.  Without it, RuntimeDefault means nothing
 * to enforce (as containerd treats it) and a Localhost profile cannot be
 * honoured, so it is refused.  With it, a Localhost profile is applied;
 * crisp loads no profile of its own, so RuntimeDefault leaves the container
 * unconfined by AppArmor and says so in the log.
 */
static int apparmor(const Runtime__V1__LinuxContainerSecurityContext *sc, bool privileged,
		    json_t *process, CrispError **err)
{
	const Runtime__V1__SecurityProfile *p = sc ? sc->apparmor : NULL;
	if (privileged || !p ||
	    p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined)
		return 0;
	struct stat st;
	bool present = stat("/sys/kernel/security/apparmor", &st) == 0;
	if (p->profile_type == RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost) {
		if (!present)
			return crisp_error_set(
				err, CRISP_ERR_INVALID, EINVAL,
				"AppArmor profile \"%.100s\" was asked for, but this "
				"node has no AppArmor",
				p->localhost_ref);
		json_object_set_new(process, "apparmorProfile", json_string(p->localhost_ref));
		return 0;
	}
	if (present)
		log_warning("AppArmor RuntimeDefault: crisp loads no default profile; the "
			    "container is not confined by AppArmor");
	return 0;
}

/* --- resources --- */

static json_t *resources(Sandboxd *sd, const Runtime__V1__LinuxContainerResources *r,
			 json_t *device_allow, int *ret_oom)
{
	json_t *res = json_object();
	json_object_set_new(res, "devices", device_allow);
	*ret_oom = 0;
	if (!r)
		return res;
	json_t *cpu = json_object();
	if (r->cpu_shares)
		json_object_set_new(cpu, "shares", json_integer(r->cpu_shares));
	if (r->cpu_quota)
		json_object_set_new(cpu, "quota", json_integer(r->cpu_quota));
	if (r->cpu_period)
		json_object_set_new(cpu, "period", json_integer(r->cpu_period));
	if (r->cpuset_cpus && *r->cpuset_cpus)
		json_object_set_new(cpu, "cpus", json_string(r->cpuset_cpus));
	if (r->cpuset_mems && *r->cpuset_mems)
		json_object_set_new(cpu, "mems", json_string(r->cpuset_mems));
	json_object_set_new(res, "cpu", cpu);
	if (r->memory_limit_in_bytes) {
		json_t *mem = json_pack("{s:I}", "limit", (json_int_t)r->memory_limit_in_bytes);
		if (r->memory_swap_limit_in_bytes)
			json_object_set_new(mem, "swap",
					    json_integer(r->memory_swap_limit_in_bytes));
		json_object_set_new(res, "memory", mem);
	}
	json_t *huge = json_array();
	for (size_t i = 0; i < r->n_hugepage_limits; i++)
		json_array_append_new(huge, json_pack("{s:s, s:I}", "pageSize",
						      r->hugepage_limits[i]->page_size, "limit",
						      (json_int_t)r->hugepage_limits[i]->limit));
	json_object_set_new(res, "hugepageLimits", huge);
	if (r->n_unified) {
		json_t *u = json_object();
		for (size_t i = 0; i < r->n_unified; i++)
			json_object_set_new(u, r->unified[i]->key,
					    json_string(r->unified[i]->value));
		json_object_set_new(res, "unified", u);
	}
	int oom = (int)r->oom_score_adj;
	if (oom < sd->oom_score_adj_floor) {
		log_info("oom_score_adj %d raised to %d: the node cannot lower it", oom,
			 sd->oom_score_adj_floor);
		oom = sd->oom_score_adj_floor;
	}
	*ret_oom = oom > 1000 ? 1000 : oom;
	return res;
}

json_t *sandboxd_update_resources(Sandboxd *sd, const Runtime__V1__LinuxContainerResources *r)
{
	int oom;
	json_t *res = resources(sd, r, json_array(), &oom);
	/* An update changes limits only; the device rules stay as created. */
	json_object_del(res, "devices");
	return res;
}

/* --- namespaces --- */

static json_t *namespaces(const Runtime__V1__ContainerConfig *c, const SandboxdPod *pod,
			  int target_pid)
{
	json_t *ns = json_array();
	_cleanup_free_ char *base = xasprintf("/proc/%d/ns", pod->pid);
	const Runtime__V1__NamespaceOption *o =
		c->linux && c->linux->security_context
			? c->linux->security_context->namespace_options
			: NULL;
	Runtime__V1__NamespaceMode pid = o ? o->pid : RUNTIME__V1__NAMESPACE_MODE__POD;
	if (pid == RUNTIME__V1__NAMESPACE_MODE__CONTAINER) {
		json_array_append_new(ns, json_pack("{s:s}", "type", "pid"));
	} else if (pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
		_cleanup_free_ char *p = xasprintf("/proc/%d/ns/pid", target_pid);
		json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "pid", "path", p));
	} else if (pid != RUNTIME__V1__NAMESPACE_MODE__NODE) {
		_cleanup_free_ char *p = xasprintf("%s/pid", base);
		json_array_append_new(ns, json_pack("{s:s, s:s}", "type", "pid", "path", p));
	}
	static const char *const shared[][2] = { { "network", "net" },
						 { "ipc", "ipc" },
						 { "uts", "uts" } };
	for (size_t i = 0; i < ELEMENTSOF(shared); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", base, shared[i][1]);
		char own_path[64], own[64], target[64];
		/* The node's namespace (a pod on the host's network or IPC): not joined. */
		snprintf(own_path, sizeof(own_path), "/proc/self/ns/%s", shared[i][1]);
		ssize_t a = readlink(own_path, own, sizeof(own) - 1);
		ssize_t b = readlink(p, target, sizeof(target) - 1);
		if (a > 0 && b == a && memcmp(own, target, (size_t)a) == 0)
			continue;
		json_array_append_new(ns, json_pack("{s:s, s:s}", "type", shared[i][0], "path", p));
	}
	json_array_append_new(ns, json_pack("{s:s}", "type", "mount"));
	return ns;
}

/* --- the spec --- */

int sandboxd_container_stop_signal(const Runtime__V1__ContainerConfig *c,
				   const Crisp__ImageRuntimeConfig *image)
{
	if (c && c->stop_signal > 0 && c->stop_signal < 65)
		return (int)c->stop_signal;
	if (image && image->stop_signal > 0 && image->stop_signal < 65)
		return image->stop_signal;
	return SIGTERM;
}

int sandboxd_container_spec(Sandboxd *sd, const Runtime__V1__ContainerConfig *c,
			    const ContainerSpecInput *in, json_t **ret, CrispError **err)
{
	const Crisp__ImageRuntimeConfig *im = in->snapshot->config;
	const Runtime__V1__LinuxContainerSecurityContext *sc =
		c->linux ? c->linux->security_context : NULL;
	bool privileged = sc && sc->privileged;
	if (privileged && !sd->config->allow_privileged)
		return crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EPERM,
				       "privileged containers are not allowed on this node "
				       "([runtime] allow_privileged)");
	if (c->working_dir && *c->working_dir && !clean_abs_path(c->working_dir))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "working_dir \"%.100s\" is not an absolute path",
				       c->working_dir);
	json_t *argv = argv_of(c, im);
	if (json_array_size(argv) == 0) {
		json_decref(argv);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "no command: neither the config nor the image names one");
	}
	json_t *caps = NULL, *mnts = NULL, *devs = NULL, *allow = NULL, *sec = NULL;
	int r = capabilities(sc, privileged, &caps, err);
	if (r == 0)
		r = mounts(sd, c, in, privileged, &mnts, err);
	if (r == 0)
		r = devices(c, privileged, &devs, &allow, err);
	if (r == 0)
		r = seccomp(sc, privileged, &sec, err);
	if (r < 0) {
		json_decref(argv);
		json_decref(caps);
		json_decref(mnts);
		json_decref(devs);
		json_decref(allow);
		return r;
	}

	json_t *groups = json_array();
	/* Strict: only the groups the pod names, none from the image's /etc/group. */
	bool strict = sc && sc->supplemental_groups_policy ==
				    RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	for (size_t i = 0; !strict && i < in->snapshot->n_additional_gids; i++)
		json_array_append_new(groups, json_integer(in->snapshot->additional_gids[i]));
	for (size_t i = 0; sc && i < sc->n_supplemental_groups; i++)
		json_array_append_new(groups, json_integer(sc->supplemental_groups[i]));
	uint32_t gid =
		sc && sc->run_as_group ? (uint32_t)sc->run_as_group->value : in->snapshot->gid;
	const char *cwd = c->working_dir && *c->working_dir	? c->working_dir
			  : im->working_dir && *im->working_dir ? im->working_dir
								: "/";
	int oom = 0;
	json_t *res = resources(sd, c->linux ? c->linux->resources : NULL, allow, &oom);
	json_t *process =
		json_pack("{s:b, s:{s:I, s:I, s:o}, s:o, s:o, s:s, s:o, s:b, s:i}", "terminal",
			  c->tty, "user", "uid", (json_int_t)in->snapshot->uid, "gid",
			  (json_int_t)gid, "additionalGids", groups, "args", argv, "env",
			  env_of(c, im), "cwd", cwd, "capabilities", caps, "noNewPrivileges",
			  sc && sc->no_new_privs, "oomScoreAdj", oom);

	if ((r = apparmor(sc, privileged, process, err)) < 0) {
		json_decref(process);
		json_decref(mnts);
		json_decref(devs);
		json_decref(res);
		json_decref(sec);
		return r;
	}
	json_t *linux = json_pack("{s:o, s:s, s:o, s:o}", "namespaces",
				  namespaces(c, in->pod, in->target_pid), "cgroupsPath",
				  in->cgroups_path, "resources", res, "devices", devs);
	if (!privileged) {
		bool own_masks = sc && (sc->n_masked_paths || sc->n_readonly_paths);
		json_object_set_new(linux, "maskedPaths",
				    own_masks ? strv_json((const char *const *)sc->masked_paths,
							  sc->n_masked_paths)
					      : oci_strv(oci_masked_paths));
		json_object_set_new(linux, "readonlyPaths",
				    own_masks ? strv_json((const char *const *)sc->readonly_paths,
							  sc->n_readonly_paths)
					      : oci_strv(oci_readonly_paths));
	}
	if (sec)
		json_object_set_new(linux, "seccomp", sec);
	*ret = json_pack("{s:s, s:o, s:{s:s, s:b}, s:o, s:o, s:{s:s, s:s, s:s}}", "ociVersion",
			 "1.0.2", "process", process, "root", "path", in->rootfs, "readonly",
			 sc && sc->readonly_rootfs, "mounts", mnts, "linux", linux, "annotations",
			 "io.kubernetes.cri.container-type", "container",
			 "io.kubernetes.cri.sandbox-id", in->pod->id,
			 "io.kubernetes.cri.container-name", c->metadata->name);
	return 0;
}
