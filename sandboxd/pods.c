/*
 * pods.c - running, stopping and removing pods.
 *
 * PodRun records the pod first ('creating'), then makes its files, its
 * /dev/shm and its bundle, and has the runtime create and start crisp-pause
 * in the pod's namespaces; any failure undoes all of it, row last.  The
 * pod becomes 'ready' when criapi reports the network netd attached
 * (PodSetNetwork), and 'notready' once stopped.  Remove is idempotent;
 * Stop of a pod sandboxd never made is NOT_FOUND, as containerd answers.
 */
#include "sandboxd.h"

#include "api.pb-c.h"
#include "containers.h"
#include "fsutil.h"
#include "ipc_types.h"
#include "log.h"
#include "oci_pod.h"
#include "pods.h"
#include "runtime.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>

#define SHM_SIZE "65536k"
#define STOP_WAIT_MS 10000

void sandboxd_pod_claim(Sandboxd *sd, const char *id)
{
	_cleanup_free_ char *key = xasprintf("pod:%s", id);
	crisp_inflight_take(&sd->busy, &sd->lock, key);
}

void sandboxd_pod_release(Sandboxd *sd, const char *id)
{
	_cleanup_free_ char *key = xasprintf("pod:%s", id);
	crisp_inflight_put(&sd->busy, &sd->lock, key);
}

/* --- files of a pod --- */

static int write_file(const char *dir, const char *name, const char *text, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
	_cleanup_close_ int fd =
		open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	size_t n = strlen(text);
	if (fd < 0 || write(fd, text, n) != (ssize_t)n)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "writing %s", path);
	return 0;
}

/* *s += a + b + "\n" when newline, else *s += a + b. */
static void append(char **s, const char *a, const char *b, bool newline)
{
	char *t = xasprintf("%s%s%s%s", *s, a, b, newline ? "\n" : "");
	free(*s);
	*s = t;
}

/* "keyword v1 v2 ...\n", when there are values. */
static void append_line(char **s, const char *keyword, char **v, size_t n)
{
	if (!n)
		return;
	append(s, keyword, "", false);
	for (size_t i = 0; i < n; i++)
		append(s, " ", v[i], false);
	append(s, "", "", true);
}

/* resolv.conf from the pod's DNSConfig, or the node's when it has none. */
static char *resolv_conf(const Runtime__V1__DNSConfig *dns)
{
	if (!dns || (!dns->n_servers && !dns->n_searches && !dns->n_options)) {
		FILE *f = fopen("/etc/resolv.conf", "re");
		char *text = NULL;
		size_t len = 0;
		if (f) {
			char buf[65536];
			len = fread(buf, 1, sizeof(buf) - 1, f);
			buf[len] = 0;
			text = xstrdup(buf);
			fclose(f);
		}
		return text ? text : xstrdup("");
	}
	char *s = xstrdup("");
	for (size_t i = 0; i < dns->n_servers; i++)
		append(&s, "nameserver ", dns->servers[i], 1);
	append_line(&s, "search", dns->searches, dns->n_searches);
	append_line(&s, "options", dns->options, dns->n_options);
	return s;
}

/* DNS values become lines of resolv.conf: nothing may start another line. */
static int check_dns(const Runtime__V1__DNSConfig *dns, CrispError **err)
{
	if (!dns)
		return 0;
	char **lists[] = { dns->servers, dns->searches, dns->options };
	size_t ns[] = { dns->n_servers, dns->n_searches, dns->n_options };
	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < ns[l]; i++)
			for (const char *p = lists[l][i]; *p; p++)
				if (!isgraph((unsigned char)*p))
					return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
							       "dns_config value \"%.80s\" has a "
							       "space or control character",
							       lists[l][i]);
	return 0;
}

static int check_hostname(const char *h, CrispError **err)
{
	size_t n = strlen(h);
	bool ok = n > 0 && n <= 64;
	for (const char *p = h; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || *p == '-' || *p == '.';
	if (!ok)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "hostname \"%.80s\" is not a host name", h);
	return 0;
}

/* --- cgroups --- */

static int cgroup_of(Sandboxd *sd, const Runtime__V1__PodSandboxConfig *c, const char *id,
		     char **ret_parent, char **ret_path, CrispError **err)
{
	const char *parent = c->linux && c->linux->cgroup_parent && *c->linux->cgroup_parent
				     ? c->linux->cgroup_parent
				     : NULL;
	bool systemd = strcmp(sd->config->cgroup_driver, "systemd") == 0;
	if (systemd) {
		parent = parent ? parent : "crisp.slice";
		size_t n = strlen(parent);
		bool ok = n > 6 && strcmp(parent + n - 6, ".slice") == 0 && !strchr(parent, '/');
		for (const char *p = parent; ok && *p; p++)
			ok = isalnum((unsigned char)*p) || strchr("-_.:@", *p);
		if (!ok)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "cgroup_parent \"%.80s\" is not a systemd slice "
					       "(the systemd cgroup driver is configured)",
					       parent);
		*ret_parent = xstrdup(parent);
		*ret_path = sandboxd_container_cgroup(sd, parent, id);
		return 0;
	}
	parent = parent ? parent : "/crisp";
	bool ok = parent[0] == '/' && !strstr(parent, "..") && !strstr(parent, "//");
	for (const char *p = parent; ok && *p; p++)
		ok = isalnum((unsigned char)*p) || strchr("/-_.:@", *p);
	if (!ok || strstr(parent, ".slice"))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "cgroup_parent \"%.80s\" is not an absolute cgroup path "
				       "(the cgroupfs cgroup driver is configured)",
				       parent);
	*ret_parent = xstrdup(parent);
	/* The infra process sits in the pod's cgroup as its containers do. */
	*ret_path = sandboxd_container_cgroup(sd, parent, id);
	return 0;
}

/* --- undoing a pod --- */

static bool is_nsfs(const char *path)
{
	struct statfs sf;
	return statfs(path, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

static void remove_tree(const char *path)
{
	int r = crisp_remove_tree_at(AT_FDCWD, path);
	if (r < 0)
		log_warning("removing %s: %s", path, strerror(-r));
}

/* Removes everything a pod has on the node but its row.  Errors are logged. */
void sandboxd_pod_undo(Sandboxd *sd, const char *id, const char *handler)
{
	_cleanup_free_ char *bundle = xasprintf("%s/%s", sd->bundles_dir, id);
	struct stat st;
	if (stat(bundle, &st) == 0) {
		CrispError *e = NULL;
		if (sandboxd_runtime(sd, handler, id, "delete", &e) < 0 &&
		    !strstr(e->message, "does not exist") && !strstr(e->message, "not exist"))
			log_warning("pod %s: %s", id, e->message);
		crisp_error_free(e);
	}
	_cleanup_free_ char *run = xasprintf("%s/%s", sd->run_dir, id);
	_cleanup_free_ char *shm = xasprintf("%s/shm", run);
	if (umount2(shm, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		log_warning("pod %s: unmounting %s: %s", id, shm, strerror(errno));
	remove_tree(run);
	remove_tree(bundle);
	_cleanup_free_ char *files = xasprintf("%s/%s", sd->pods_dir, id);
	remove_tree(files);
}

/* --- PodRun --- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *handler_of(Sandboxd *sd, const char *asked, CrispError **err)
{
	const char *h = asked && *asked ? asked : sd->config->default_runtime;
	for (size_t i = 0; i < sd->config->n_runtimes; i++)
		if (strcmp(sd->config->runtimes[i].name, h) == 0)
			return sd->config->runtimes[i].name;
	crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
			"runtime handler \"%.40s\" is not configured ([runtimes.<name>])", h);
	return NULL;
}

static int insert_pod(Sandboxd *sd, const char *id, const char *name_key,
		      const Crisp__PodRunRequest *q, const char *handler, const char *cgroup_parent,
		      const char *netns, CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(sd->db, "SELECT id FROM pods WHERE name_key = ?1 OR id = ?2", &st,
				 err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, name_key);
		crisp_db_bind_text(st, 2, id);
		r = crisp_db_step(st, err);
		if (r > 0)
			r = crisp_error_set(err, CRISP_ERR_ALREADY_EXISTS, EEXIST,
					    "the pod name %s is taken by pod %s until it is "
					    "removed",
					    name_key, sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	st = NULL;
	if (r == 0)
		r = crisp_db_prepare(
			sd->db,
			"INSERT INTO pods(id, name_key, state, config, runtime_handler,"
			" cgroup_parent, netns, created_at)"
			" VALUES(?1, ?2, 'creating', ?3, ?4, ?5, ?6, ?7)",
			&st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		crisp_db_bind_text(st, 2, name_key);
		sqlite3_bind_blob(st, 3, q->config.data, (int)q->config.len, SQLITE_TRANSIENT);
		crisp_db_bind_text(st, 4, handler);
		crisp_db_bind_text(st, 5, cgroup_parent);
		crisp_db_bind_text(st, 6, netns ? netns : "");
		sqlite3_bind_int64(st, 7, now_ns());
		r = crisp_db_step_done(st, err);
	}
	pthread_mutex_unlock(&sd->lock);
	return r;
}

int sandboxd_db_exec(Sandboxd *sd, const char *sql, const char *id, int64_t value, const char *text,
		     CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(sd->db, sql, &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		sqlite3_bind_int64(st, 2, value);
		crisp_db_bind_text(st, 3, text);
		r = crisp_db_step_done(st, err);
	}
	pthread_mutex_unlock(&sd->lock);
	return r;
}

static int make_pod_files(Sandboxd *sd, const char *id, const Runtime__V1__PodSandboxConfig *c,
			  const char *hostname, bool own_ipc, CrispError **err)
{
	_cleanup_free_ char *etc = xasprintf("%s/%s", sd->pods_dir, id);
	if (mkdir(etc, 0755) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", etc);
	_cleanup_free_ char *hosts =
		xasprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
			  "127.0.1.1\t%s\n",
			  hostname);
	_cleanup_free_ char *hn = xasprintf("%s\n", hostname);
	_cleanup_free_ char *resolv = resolv_conf(c->dns_config);
	int r = write_file(etc, "hostname", hn, err);
	if (r == 0)
		r = write_file(etc, "hosts", hosts, err);
	if (r == 0)
		r = write_file(etc, "resolv.conf", resolv, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *run = xasprintf("%s/%s", sd->run_dir, id);
	if (mkdir(run, 0711) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", run);
	if (!own_ipc)
		return 0;
	_cleanup_free_ char *shm = xasprintf("%s/shm", run);
	if (mkdir(shm, 0755) < 0 || mount("shm", shm, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
					  "mode=1777,size=" SHM_SIZE) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "mounting %s", shm);
	return 0;
}

static int write_bundle(Sandboxd *sd, const char *id, json_t *spec, CrispError **err)
{
	_cleanup_free_ char *bundle = xasprintf("%s/%s", sd->bundles_dir, id);
	if (mkdir(bundle, 0700) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", bundle);
	_cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
	if (json_dump_file(spec, path, JSON_COMPACT) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "writing %s", path);
	return 0;
}

static int read_pid(Sandboxd *sd, const char *id, int *ret, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s/pid", sd->bundles_dir, id);
	int pid = sandboxd_read_int(path, 0);
	if (pid <= 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO,
				       "the runtime left no pid in %s", path);
	*ret = pid;
	return 0;
}

static int start_pod(Sandboxd *sd, const Crisp__PodRunRequest *q,
		     const Runtime__V1__PodSandboxConfig *c, const char *handler,
		     char **ret_cgroup_parent, CrispError **err)
{
	const char *id = q->pod_id;
	bool host_net = sandboxd_pod_uses_host(c, 'n');
	bool own_ipc = !sandboxd_pod_uses_host(c, 'i');
	_cleanup_free_ char *netns = host_net ? NULL : xasprintf("%s/%s", sd->netns_dir, id);
	if (netns && !is_nsfs(netns))
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, ENOENT,
				       "pod %s has no network namespace pinned by netd", id);
	char node[256] = "";
	gethostname(node, sizeof(node) - 1);
	const char *hostname = c->hostname && *c->hostname ? c->hostname
			       : host_net		   ? node
							   : c->metadata->name;
	int r = check_hostname(hostname, err);
	if (r == 0)
		r = check_dns(c->dns_config, err);
	if (r == 0)
		r = sandboxd_check_sysctls(sd->config, c, err);
	_cleanup_free_ char *cgroup_parent = NULL, *cgroups_path = NULL;
	if (r == 0)
		r = cgroup_of(sd, c, id, &cgroup_parent, &cgroups_path, err);
	if (r < 0)
		return r;
	const Runtime__V1__PodSandboxMetadata *m = c->metadata;
	_cleanup_free_ char *name_key =
		xasprintf("%s_%s_%s_%u", m->name, m->namespace_, m->uid, m->attempt);
	if ((r = insert_pod(sd, id, name_key, q, handler, cgroup_parent, netns, err)) < 0)
		return r;

	r = make_pod_files(sd, id, c, hostname, own_ipc, err);
	if (r == 0) {
		_cleanup_free_ char *etc = xasprintf("%s/%s", sd->pods_dir, id);
		_cleanup_free_ char *shm = own_ipc ? xasprintf("%s/%s/shm", sd->run_dir, id) : NULL;
		PodSpecInput in = {
			.pod_id = id,
			.hostname = hostname,
			.netns = netns,
			.shm = shm,
			.etc_dir = etc,
			.cgroups_path = cgroups_path,
			.oom_score_adj =
				-998 < sd->oom_score_adj_floor ? sd->oom_score_adj_floor : -998,
		};
		json_t *spec = sandboxd_pod_spec(sd, c, &in);
		r = write_bundle(sd, id, spec, err);
		json_decref(spec);
	}
	if (r == 0)
		r = sandboxd_runtime(sd, handler, id, "create", err);
	if (r == 0)
		r = sandboxd_runtime(sd, handler, id, "start", err);
	int pid = 0;
	if (r == 0)
		r = read_pid(sd, id, &pid, err);
	if (r == 0)
		r = sandboxd_db_exec(sd, "UPDATE pods SET pid = ?2 WHERE id = ?1", id, pid, NULL,
				     err);
	if (r < 0) {
		sandboxd_pod_undo(sd, id, handler);
		(void)sandboxd_db_exec(sd, "DELETE FROM pods WHERE id = ?1", id, 0, NULL, NULL);
		return r;
	}
	*ret_cgroup_parent = TAKE_PTR(cgroup_parent);
	return 0;
}

int sandboxd_pod_run(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Crisp__PodRunRequest *q = (const void *)req->msg;
	if (!sandboxd_id_is_valid(q->pod_id))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "pod_id \"%.80s\" is not 64 lowercase hex digits",
				       q->pod_id);
	_cleanup_proto_ Runtime__V1__PodSandboxConfig *c =
		(Runtime__V1__PodSandboxConfig *)crisp_proto_unpack(
			&runtime__v1__pod_sandbox_config__descriptor, q->config.data, q->config.len,
			err);
	if (!c)
		return crisp_error_wrap(err, "the pod config");
	int r;
	if (!c->metadata || !*c->metadata->name || !*c->metadata->namespace_ || !*c->metadata->uid)
		return crisp_error_set(
			err, CRISP_ERR_INVALID, EINVAL,
			"the pod config needs metadata with name, namespace and uid");
	const char *handler = handler_of(sd, q->runtime_handler, err);
	if (!handler)
		return -EINVAL;

	_cleanup_free_ char *cgroup_parent = NULL;
	sandboxd_pod_claim(sd, q->pod_id);
	r = start_pod(sd, q, c, handler, &cgroup_parent, err);
	sandboxd_pod_release(sd, q->pod_id);
	if (r < 0)
		return crisp_error_wrap(err, "pod %s_%s", c->metadata->namespace_,
					c->metadata->name);
	log_info("pod %s (%s/%s) started with %s", q->pod_id, c->metadata->namespace_,
		 c->metadata->name, handler);
	Crisp__PodRunReply a = CRISP__POD_RUN_REPLY__INIT;
	a.cgroup_parent = cgroup_parent;
	return crisp_reply(req, CRISP_MSG_SANDBOXD_POD_RUN_ANS, &a.base, NULL, 0);
}

/* --- PodSetNetwork --- */

int sandboxd_pod_set_network(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Crisp__PodSetNetworkRequest *q = (const void *)req->msg;
	if (!sandboxd_id_is_valid(q->pod_id))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "pod_id is not 64 lowercase hex digits");
	_cleanup_free_ char *ips = xstrdup("");
	for (size_t i = 0; i < q->n_ips && i < 16; i++) {
		for (const char *p = q->ips[i]; *p; p++)
			if (!isxdigit((unsigned char)*p) && *p != '.' && *p != ':')
				return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						       "\"%.60s\" is not an IP address", q->ips[i]);
		char *t = xasprintf("%s%s%s", ips, i ? "," : "", q->ips[i]);
		free(ips);
		ips = t;
	}
	sandboxd_pod_claim(sd, q->pod_id);
	_cleanup_free_ char *state = NULL;
	int r = sandboxd_pod_state(sd, q->pod_id, &state, err);
	if (r == 0 && !state)
		r = crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "no pod %s", q->pod_id);
	else if (r == 0 && strcmp(state, "creating") != 0)
		r = crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				    "pod %s is %s, not being created", q->pod_id, state);
	if (r == 0)
		r = sandboxd_db_exec(sd, "UPDATE pods SET state = 'ready', ips = ?3 WHERE id = ?1",
				     q->pod_id, 0, ips, err);
	sandboxd_pod_release(sd, q->pod_id);
	if (r < 0)
		return r;
	sandboxd_emit_pod_event(sd, q->pod_id,
				RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
	sandboxd_emit_pod_event(sd, q->pod_id,
				RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
	Crisp__PodSetNetworkReply a = CRISP__POD_SET_NETWORK_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_SANDBOXD_POD_SET_NETWORK_ANS, &a.base, NULL, 0);
}

/* --- Stop and Remove --- */

int sandboxd_stop_pod(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__StopPodSandboxRequest *q = (const void *)req->msg;
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_pod_resolve(sd, q->pod_sandbox_id, &id, err);
	if (r < 0)
		return r;
	sandboxd_pod_claim(sd, id);
	SandboxdPod pod = { 0 };
	r = sandboxd_pod_get(sd, id, &pod, err);
	/* Its containers first, forcibly, as the CRI asks. */
	SandboxdContainer *cs = NULL;
	size_t n = 0;
	if (r == 0)
		r = sandboxd_container_list(sd, id, &cs, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = sandboxd_container_kill_wait(sd, &cs[i], pod.handler, SIGKILL, STOP_WAIT_MS,
						 err);
		sandboxd_container_refresh(sd, &cs[i]);
	}
	sandboxd_containers_free(cs, n);
	if (r == 0 && pod.pid > 0 && sandboxd_pid_alive(pod.pid)) {
		CrispError *e = NULL;
		if (sandboxd_runtime_kill(sd, pod.handler, id, SIGKILL, &e) < 0) {
			log_warning("pod %s: %s", id, e->message);
			crisp_error_free(e);
		}
		if (!sandboxd_pid_wait_gone(pod.pid, STOP_WAIT_MS))
			r = crisp_error_set(err, CRISP_ERR_DEADLINE, ETIMEDOUT,
					    "pod %s: the infra process %d did not end", id,
					    pod.pid);
	}
	if (r == 0)
		r = sandboxd_db_exec(sd, "UPDATE pods SET state = 'notready' WHERE id = ?1", id, 0,
				     NULL, err);
	sandboxd_pod_done(&pod);
	sandboxd_pod_release(sd, id);
	if (r < 0)
		return r;
	log_info("pod %s stopped", id);
	sandboxd_emit_pod_event(sd, id, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
	Runtime__V1__StopPodSandboxResponse a = RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}

int sandboxd_remove_pod(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__RemovePodSandboxRequest *q = (const void *)req->msg;
	_cleanup_free_ char *id = NULL;
	Runtime__V1__RemovePodSandboxResponse a = RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT;
	int r = sandboxd_pod_resolve(sd, q->pod_sandbox_id, &id, err);
	if (r == -ENOENT) { /* removed already: fine, as the CRI asks */
		crisp_error_free(*err);
		*err = NULL;
		return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	}
	if (r < 0)
		return r;
	sandboxd_pod_claim(sd, id);
	SandboxdPod pod = { 0 };
	r = sandboxd_pod_get(sd, id, &pod, err);
	SandboxdContainer *cs = NULL;
	size_t n = 0;
	if (r == 0)
		r = sandboxd_container_list(sd, id, &cs, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = sandboxd_container_destroy(sd, &cs[i], pod.handler, err);
	sandboxd_containers_free(cs, n);
	if (r == 0) {
		sandboxd_pod_undo(sd, id, pod.handler);
		sandboxd_emit_pod_event(sd, id,
					RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
		r = sandboxd_db_exec(sd, "DELETE FROM pods WHERE id = ?1", id, 0, NULL, err);
	}
	sandboxd_pod_done(&pod);
	sandboxd_pod_release(sd, id);
	if (r < 0 && r != -ENOENT)
		return r;
	log_info("pod %s removed", id);
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
