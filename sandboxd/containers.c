/*
 * containers.c - creating, starting, stopping and removing containers.
 *
 * Create records the container ('creating') before anything is made, then
 * mounts its root file system (an overlay of the snapshot imaged prepared:
 * sandboxd accepts only paths of imaged's layout, by their ID forms), writes
 * the OCI spec and has conmon run the runtime's create.  The container is
 * 'created' when that returns; any failure undoes it all, row last.  Start
 * is the runtime's start; Stop sends the stop signal, waits the grace
 * period, then SIGKILL; Remove undoes Create (criapi then releases the
 * snapshot in imaged).
 */
#include "containers.h"

#include "fsutil.h"
#include "ipc_types.h"
#include "log.h"
#include "oci_container.h"
#include "pods.h"
#include "runtime.h"

#include <ctype.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#define KILL_WAIT_MS 10000
#define EXIT_FILE_WAIT_MS 5000

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- the snapshot imaged prepared --- */

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

static bool is_key(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

/*
 * The paths must be what imaged's layout makes: <image>/store/snapshots/<n>
 * for lowers, <image>/containers/<32 hex>/upper and .../work for the rest.
 * A front that names any other folder gets nothing mounted.
 */
static int check_snapshot(Sandboxd *sd, const Crisp__PrepareContainerSnapshotReply *s,
			  CrispError **err)
{
	_cleanup_free_ char *snaps = xasprintf("%s/store/snapshots/", sd->image_dir);
	_cleanup_free_ char *conts = xasprintf("%s/containers/", sd->image_dir);
	size_t ls = strlen(snaps), lc = strlen(conts);
	bool ok = s && s->config && s->n_lower_dirs > 0 && s->n_lower_dirs <= 128;
	for (size_t i = 0; ok && i < s->n_lower_dirs; i++)
		ok = strncmp(s->lower_dirs[i], snaps, ls) == 0 && all_digits(s->lower_dirs[i] + ls);
	ok = ok && strncmp(s->upper_dir, conts, lc) == 0 && strlen(s->upper_dir) == lc + 32 + 6 &&
	     is_key(s->upper_dir + lc, 32) && strcmp(s->upper_dir + lc + 32, "/upper") == 0;
	ok = ok && strncmp(s->work_dir, s->upper_dir, lc + 32) == 0 &&
	     strcmp(s->work_dir + lc + 32, "/work") == 0;
	if (!ok)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "the snapshot names folders imaged does not make");
	return 0;
}

static int mount_rootfs(Sandboxd *sd, const char *id, const Crisp__PrepareContainerSnapshotReply *s,
			char **ret_rootfs, CrispError **err)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", sd->containers_dir, id);
	_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", dir);
	if (mkdir(dir, 0711) < 0 || mkdir(rootfs, 0755) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", rootfs);
	_cleanup_free_ char *lower = xstrdup("");
	for (size_t i = 0; i < s->n_lower_dirs; i++) {
		char *t = xasprintf("%s%s%s", lower, i ? ":" : "", s->lower_dirs[i]);
		free(lower);
		lower = t;
	}
	/* imaged writes opaque dirs as user.overlay.opaque (it lacks CAP_SYS_ADMIN). */
	_cleanup_free_ char *opts = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", lower,
					      s->upper_dir, s->work_dir);
	if (strlen(opts) >= 4096)
		return crisp_error_set(err, CRISP_ERR_INVALID, E2BIG,
				       "the image has too many layers for one overlay mount");
	if (mount("overlay", rootfs, "overlay", MS_NODEV, opts) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "mounting the root file system of %s", id);
	*ret_rootfs = TAKE_PTR(rootfs);
	return 0;
}

/* --- Create --- */

char *sandboxd_container_cgroup(Sandboxd *sd, const char *cgroup_parent, const char *id)
{
	if (strcmp(sd->config->cgroup_driver, "systemd") == 0)
		return xasprintf("%s:crisp:%s", cgroup_parent, id);
	return xasprintf("%s/%s", strcmp(cgroup_parent, "/") == 0 ? "" : cgroup_parent, id);
}

static int log_path_of(const SandboxdPod *pod, const Runtime__V1__ContainerConfig *c, char **ret,
		       CrispError **err)
{
	const char *dir = pod->config->log_directory;
	const char *rel = c->log_path;
	bool ok = dir && dir[0] == '/' && rel && *rel && rel[0] != '/' && !strstr(rel, "..") &&
		  !strstr(dir, "..");
	for (const char *p = rel; ok && *p; p++)
		ok = isgraph((unsigned char)*p);
	if (!ok)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "log_path \"%.100s\" must be a relative path without \"..\" "
				       "under the pod's log_directory",
				       rel ? rel : "");
	*ret = xasprintf("%s/%s", dir, rel);
	_cleanup_free_ char *parent = xstrdup(*ret);
	*strrchr(parent, '/') = 0;
	int r = crisp_mkdir_p(parent, 0755);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "creating %s", parent);
	return 0;
}

static int start_conmon(Sandboxd *sd, const char *handler, const char *id, const char *log,
			const Runtime__V1__ContainerConfig *c, CrispError **err)
{
	char flags[4] = "";
	size_t n = 0;
	if (c->tty)
		flags[n++] = 't';
	if (c->stdin)
		flags[n++] = 'i';
	if (c->stdin_once)
		flags[n++] = 'o';
	char *args[3] = { (char *)handler, (char *)log, flags };
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = SANDBOXD_SPAWN_CONMON;
	req.id = (char *)id;
	req.n_args = 3;
	req.args = args;
	req.wait = true; /* conmon's first process ends once the container is created */
	req.timeout_ms = SANDBOXD_RUNTIME_TIMEOUT_MS;
	Crisp__SpawnReply *reply = NULL;
	int r = crisp_spawn(&sd->backend->spawn, &req, NULL, 0, 0, &reply, err);
	if (r < 0)
		return crisp_error_wrap(err, "starting conmon for %s", id);
	bool ok = reply->exited && reply->exit_code == 0;
	crisp_proto_free(reply);
	if (!ok) {
		_cleanup_free_ char *path = xasprintf("%s/%s/runc.log", sd->bundles_dir, id);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO,
				       "creating container %s failed (see %s)", id, path);
	}
	return 0;
}

/*
 * conmon's first process returns before the runtime's create is done (its
 * daemon half runs it), so wait for the pid file, as long as conmon lives.
 */
static int wait_for_pid(Sandboxd *sd, const char *id, int *ret, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s/pid", sd->bundles_dir, id);
	_cleanup_free_ char *conmon = xasprintf("%s/%s/conmon.pid", sd->bundles_dir, id);
	for (int waited = 0; waited < SANDBOXD_RUNTIME_TIMEOUT_MS; waited += 5) {
		int pid = sandboxd_read_int(path, 0);
		if (pid > 0) {
			*ret = pid;
			return 0;
		}
		int cpid = sandboxd_read_int(conmon, 0);
		if (waited > 1000 && (cpid <= 0 || !sandboxd_pid_alive(cpid)))
			break;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	_cleanup_free_ char *msg = sandboxd_runtime_last_error(sd, id);
	return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "creating container %s failed: %s", id,
			       msg ? msg : "conmon ended without a container");
}

static int insert_container(Sandboxd *sd, const Crisp__ContainerCreateRequest *q,
			    const Runtime__V1__ContainerConfig *c, const char *log, int stop_signal,
			    CrispError **err)
{
	_cleanup_free_ char *name_key =
		xasprintf("%s_%s_%u", q->pod_id, c->metadata->name, c->metadata->attempt);
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(sd->db, "SELECT id FROM containers WHERE name_key = ?1 OR id = ?2",
				 &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, name_key);
		crisp_db_bind_text(st, 2, q->container_id);
		if ((r = crisp_db_step(st, err)) > 0)
			r = crisp_error_set(err, CRISP_ERR_ALREADY_EXISTS, EEXIST,
					    "the container name %s is taken by container %s until "
					    "it is removed",
					    c->metadata->name, sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	st = NULL;
	if (r == 0)
		r = crisp_db_prepare(sd->db,
				     "INSERT INTO containers(id, pod_id, name_key, state, config,"
				     " image_id, image_ref, log_path, stop_signal, created_at)"
				     " VALUES(?1, ?2, ?3, 'creating', ?4, ?5, ?6, ?7, ?8, ?9)",
				     &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, q->container_id);
		crisp_db_bind_text(st, 2, q->pod_id);
		crisp_db_bind_text(st, 3, name_key);
		sqlite3_bind_blob(st, 4, q->config.data, (int)q->config.len, SQLITE_TRANSIENT);
		crisp_db_bind_text(st, 5, q->snapshot->image_id);
		crisp_db_bind_text(st, 6, q->image_ref);
		crisp_db_bind_text(st, 7, log);
		sqlite3_bind_int(st, 8, stop_signal);
		sqlite3_bind_int64(st, 9, now_ns());
		r = crisp_db_step_done(st, err);
	}
	pthread_mutex_unlock(&sd->lock);
	return r;
}

/*
 * PID namespace mode TARGET shares another container's PID namespace: it
 * must be a running container of the same pod.
 */
static int target_of(Sandboxd *sd, const Runtime__V1__ContainerConfig *c, const char *pod_id,
		     int *ret_pid, CrispError **err)
{
	const Runtime__V1__NamespaceOption *o =
		c->linux && c->linux->security_context
			? c->linux->security_context->namespace_options
			: NULL;
	if (!o || o->pid != RUNTIME__V1__NAMESPACE_MODE__TARGET)
		return 0;
	SandboxdContainer t = { 0 };
	int r = sandboxd_container_get(sd, o->target_id, &t, NULL);
	if (r == 0)
		sandboxd_container_refresh(sd, &t);
	bool ok = r == 0 && strcmp(t.pod_id, pod_id) == 0 && strcmp(t.state, "running") == 0;
	if (ok)
		*ret_pid = t.pid;
	sandboxd_container_done(&t);
	if (!ok)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				       "target container \"%.80s\" is not running in this pod",
				       o->target_id);
	return 0;
}

/* Everything but the row: runtime state, the rootfs mount, its folder and the bundle. */
static void undo_create(Sandboxd *sd, const char *id, const char *handler)
{
	_cleanup_free_ char *bundle = xasprintf("%s/%s", sd->bundles_dir, id);
	struct stat st;
	if (stat(bundle, &st) == 0) {
		CrispError *e = NULL;
		if (sandboxd_runtime(sd, handler, id, "delete", &e) < 0 &&
		    !strstr(e->message, "not exist"))
			log_warning("container %s: %s", id, e->message);
		crisp_error_free(e);
	}
	_cleanup_free_ char *dir = xasprintf("%s/%s", sd->containers_dir, id);
	_cleanup_free_ char *rootfs = xasprintf("%s/rootfs", dir);
	if (umount2(rootfs, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		log_warning("container %s: unmounting %s: %s", id, rootfs, strerror(errno));
	const char *paths[] = { dir, bundle };
	for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
		int r = crisp_remove_tree_at(AT_FDCWD, paths[i]);
		if (r < 0)
			log_warning("container %s: removing %s: %s", id, paths[i], strerror(-r));
	}
	_cleanup_free_ char *exit_file = xasprintf("%s/%s", sd->exits_dir, id);
	(void)unlink(exit_file);
}

static int create(Sandboxd *sd, const Crisp__ContainerCreateRequest *q,
		  const Runtime__V1__ContainerConfig *c, CrispError **err)
{
	SandboxdPod pod = { 0 };
	int r = sandboxd_pod_get(sd, q->pod_id, &pod, err);
	if (r == -ENOENT)
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "no pod %s", q->pod_id);
	if (r < 0)
		return r;
	if (strcmp(pod.state, "ready") != 0 || !sandboxd_pid_alive(pod.pid)) {
		sandboxd_pod_done(&pod);
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				       "pod %s is not ready", q->pod_id);
	}
	_cleanup_free_ char *log = NULL, *cg = NULL, *rootfs = NULL;
	r = check_snapshot(sd, q->snapshot, err);
	if (r == 0)
		r = log_path_of(&pod, c, &log, err);
	if (r == 0)
		r = insert_container(sd, q, c, log,
				     sandboxd_container_stop_signal(c, q->snapshot->config), err);
	if (r < 0) {
		sandboxd_pod_done(&pod);
		return r;
	}
	int target_pid = 0;
	r = target_of(sd, c, q->pod_id, &target_pid, err);
	if (r < 0) {
		(void)sandboxd_db_exec(sd, "DELETE FROM containers WHERE id = ?1", q->container_id,
				       0, NULL, NULL);
		sandboxd_pod_done(&pod);
		return r;
	}
	cg = sandboxd_container_cgroup(sd, pod.cgroup_parent, q->container_id);
	r = mount_rootfs(sd, q->container_id, q->snapshot, &rootfs, err);
	json_t *spec = NULL;
	if (r == 0) {
		ContainerSpecInput in = {
			q->container_id, &pod, q->snapshot, rootfs, cg, target_pid
		};
		r = sandboxd_container_spec(sd, c, &in, &spec, err);
	}
	if (r == 0) {
		_cleanup_free_ char *bundle = xasprintf("%s/%s", sd->bundles_dir, q->container_id);
		_cleanup_free_ char *path = xasprintf("%s/config.json", bundle);
		if (mkdir(bundle, 0700) < 0 || json_dump_file(spec, path, JSON_COMPACT) < 0)
			r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "writing %s",
						  path);
	}
	json_decref(spec);
	if (r == 0)
		r = start_conmon(sd, pod.handler, q->container_id, log, c, err);
	int pid = 0;
	if (r == 0)
		r = wait_for_pid(sd, q->container_id, &pid, err);
	if (r == 0)
		r = sandboxd_db_exec(
			sd, "UPDATE containers SET state = 'created', pid = ?2 WHERE id = ?1",
			q->container_id, pid, NULL, err);
	if (r == 0)
		r = sandboxd_db_exec(sd, "UPDATE containers SET upper_dir = ?3 WHERE id = ?1",
				     q->container_id, 0, q->snapshot->upper_dir, err);
	if (r < 0) {
		undo_create(sd, q->container_id, pod.handler);
		(void)sandboxd_db_exec(sd, "DELETE FROM containers WHERE id = ?1", q->container_id,
				       0, NULL, NULL);
	}
	sandboxd_pod_done(&pod);
	return r;
}

int sandboxd_container_create(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Crisp__ContainerCreateRequest *q = (const void *)req->msg;
	if (!sandboxd_id_is_valid(q->container_id) || !sandboxd_id_is_valid(q->pod_id))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "container_id and pod_id must be 64 lowercase hex digits");
	_cleanup_proto_ Runtime__V1__ContainerConfig *c =
		(Runtime__V1__ContainerConfig *)crisp_proto_unpack(
			&runtime__v1__container_config__descriptor, q->config.data, q->config.len,
			err);
	if (!c)
		return crisp_error_wrap(err, "the container config");
	if (!c->metadata || !*c->metadata->name)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "the container config needs metadata with a name");
	/* The pod is claimed: no stop or remove of it runs meanwhile. */
	sandboxd_pod_claim(sd, q->pod_id);
	int r = create(sd, q, c, err);
	sandboxd_pod_release(sd, q->pod_id);
	if (r < 0)
		return crisp_error_wrap(err, "container %s", c->metadata->name);
	log_info("container %s (%s) created in pod %s", q->container_id, c->metadata->name,
		 q->pod_id);
	SandboxdContainer made = { 0 };
	if (sandboxd_container_get(sd, q->container_id, &made, NULL) == 0)
		sandboxd_emit_container_event(
			sd, &made, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_CREATED_EVENT);
	sandboxd_container_done(&made);
	Crisp__ContainerCreateReply a = CRISP__CONTAINER_CREATE_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_SANDBOXD_CONTAINER_CREATE_ANS, &a.base, NULL, 0);
}

/* --- Start, Stop, Remove --- */

static char *handler_of_pod(Sandboxd *sd, const char *pod_id)
{
	SandboxdPod pod = { 0 };
	char *h = NULL;
	if (sandboxd_pod_get(sd, pod_id, &pod, NULL) == 0)
		h = xstrdup(pod.handler);
	sandboxd_pod_done(&pod);
	return h ? h : xstrdup(sd->config->default_runtime);
}

/* Resolves the request's ID, claims the pod and reads the container. */
static int open_container(Sandboxd *sd, const char *asked, SandboxdContainer *ret,
			  char **ret_handler, CrispError **err)
{
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_container_resolve(sd, asked, &id, err);
	if (r < 0)
		return r;
	SandboxdContainer c = { 0 };
	if ((r = sandboxd_container_get(sd, id, &c, err)) < 0)
		return r == -ENOENT ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
						      "no container %s", id)
				    : r;
	_cleanup_free_ char *pod_id = xstrdup(c.pod_id);
	sandboxd_container_done(&c);
	sandboxd_pod_claim(sd, pod_id);
	/* Read again under the claim: a stop or remove may have run meanwhile. */
	if ((r = sandboxd_container_get(sd, id, &c, err)) < 0) {
		sandboxd_pod_release(sd, pod_id);
		return r == -ENOENT ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
						      "no container %s", id)
				    : r;
	}
	sandboxd_container_refresh(sd, &c);
	*ret_handler = handler_of_pod(sd, c.pod_id);
	*ret = c;
	return 0;
}

static void close_container(Sandboxd *sd, SandboxdContainer *c, char *handler)
{
	sandboxd_pod_release(sd, c->pod_id);
	sandboxd_container_done(c);
	free(handler);
}

int sandboxd_start_container(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__StartContainerRequest *q = (const void *)req->msg;
	SandboxdContainer c;
	char *handler;
	int r = open_container(sd, q->container_id, &c, &handler, err);
	if (r < 0)
		return r;
	if (strcmp(c.state, "created") != 0)
		r = crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				    "container %s is %s, not created", c.id, c.state);
	if (r == 0)
		r = sandboxd_runtime(sd, handler, c.id, "start", err);
	if (r == 0)
		r = sandboxd_db_exec(
			sd,
			"UPDATE containers SET state = 'running', started_at = ?2 WHERE id = ?1"
			" AND state = 'created'",
			c.id, now_ns(), NULL, err);
	if (r == 0) {
		log_info("container %s started", c.id);
		free(c.state);
		c.state = xstrdup("running");
		c.started_at = now_ns();
		sandboxd_emit_container_event(
			sd, &c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STARTED_EVENT);
	}
	close_container(sd, &c, handler);
	if (r < 0)
		return r;
	Runtime__V1__StartContainerResponse a = RUNTIME__V1__START_CONTAINER_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}

/*
 * The process is gone; conmon writes its exit code a moment later.  Waiting
 * for it lets Stop answer with the container already exited.
 */
static void wait_exit_file(Sandboxd *sd, const char *id)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", sd->exits_dir, id);
	struct stat st;
	for (int waited = 0; waited < EXIT_FILE_WAIT_MS; waited += 5) {
		if (stat(path, &st) == 0 && st.st_size > 0)
			return;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int sandboxd_container_kill_wait(Sandboxd *sd, SandboxdContainer *c, const char *handler, int sig,
				 int timeout_ms, CrispError **err)
{
	if (c->pid <= 0 || !sandboxd_pid_alive(c->pid))
		return 0;
	CrispError *e = NULL;
	if (sandboxd_runtime_kill(sd, handler, c->id, sig, &e) < 0) {
		log_debug("container %s: %s", c->id, e->message);
		crisp_error_free(e);
	}
	if (sandboxd_pid_wait_gone(c->pid, timeout_ms)) {
		wait_exit_file(sd, c->id);
		return 0;
	}
	if (sig == SIGKILL)
		return crisp_error_set(err, CRISP_ERR_DEADLINE, ETIMEDOUT,
				       "container %s did not end after SIGKILL", c->id);
	log_info("container %s: still running %d ms after signal %d, killing it", c->id, timeout_ms,
		 sig);
	return sandboxd_container_kill_wait(sd, c, handler, SIGKILL, KILL_WAIT_MS, err);
}

int sandboxd_stop_container(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__StopContainerRequest *q = (const void *)req->msg;
	SandboxdContainer c;
	char *handler;
	int r = open_container(sd, q->container_id, &c, &handler, err);
	if (r < 0)
		return r;
	int64_t timeout_ms = q->timeout > 0 ? q->timeout * 1000 : 0;
	if (strcmp(c.state, "running") == 0)
		r = sandboxd_container_kill_wait(sd, &c, handler,
						 timeout_ms ? c.stop_signal : SIGKILL,
						 timeout_ms ? (int)timeout_ms : KILL_WAIT_MS, err);
	else if (strcmp(c.state, "created") == 0)
		r = sandboxd_container_kill_wait(sd, &c, handler, SIGKILL, KILL_WAIT_MS, err);
	if (r == 0) {
		sandboxd_container_refresh(sd, &c);
		log_info("container %s stopped", c.id);
	}
	close_container(sd, &c, handler);
	if (r < 0)
		return r;
	Runtime__V1__StopContainerResponse a = RUNTIME__V1__STOP_CONTAINER_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}

int sandboxd_container_destroy(Sandboxd *sd, SandboxdContainer *c, const char *handler,
			       CrispError **err)
{
	int r = sandboxd_container_kill_wait(sd, c, handler, SIGKILL, KILL_WAIT_MS, err);
	if (r < 0)
		return r;
	sandboxd_container_refresh(sd, c);
	undo_create(sd, c->id, handler);
	r = sandboxd_db_exec(sd, "DELETE FROM containers WHERE id = ?1", c->id, 0, NULL, err);
	if (r == 0)
		sandboxd_emit_container_event(
			sd, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT);
	return r;
}

int sandboxd_remove_container(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__RemoveContainerRequest *q = (const void *)req->msg;
	Runtime__V1__RemoveContainerResponse a = RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT;
	SandboxdContainer c;
	char *handler;
	int r = open_container(sd, q->container_id, &c, &handler, err);
	if (r == -ENOENT || (r < 0 && *err && (*err)->code == CRISP_ERR_NOT_FOUND)) {
		crisp_error_free(*err); /* removed already: fine, as the CRI asks */
		*err = NULL;
		return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	}
	if (r < 0)
		return r;
	r = sandboxd_container_destroy(sd, &c, handler, err);
	if (r == 0)
		log_info("container %s removed", c.id);
	close_container(sd, &c, handler);
	if (r < 0)
		return r;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
