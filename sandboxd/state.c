/*
 * state.c - sandboxd's start-up: its folders, the infra process's root
 * file system, and the floor for oom_score_adj.
 */
#include "sandboxd.h"

#include "containers.h"
#include "log.h"
#include "pods.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

const CrispDbMigration sandboxd_migrations[] = {
	CRISP_DB_MIGRATION_META,
	{ "pods", "CREATE TABLE pods ("
		  "  id TEXT PRIMARY KEY NOT NULL,"
		  /* name, namespace, uid and attempt: unique until the pod is removed */
		  "  name_key TEXT UNIQUE NOT NULL,"
		  "  state TEXT NOT NULL CHECK (state IN ('creating', 'ready', 'notready')),"
		  "  config BLOB NOT NULL,"
		  "  runtime_handler TEXT NOT NULL,"
		  "  cgroup_parent TEXT NOT NULL,"
		  "  netns TEXT NOT NULL DEFAULT '',"
		  "  ips TEXT NOT NULL DEFAULT '',"
		  "  pid INTEGER NOT NULL DEFAULT 0,"
		  "  created_at INTEGER NOT NULL);" },
	{ "containers",
	  "CREATE TABLE containers ("
	  "  id TEXT PRIMARY KEY NOT NULL,"
	  "  pod_id TEXT NOT NULL REFERENCES pods(id),"
	  "  name_key TEXT UNIQUE NOT NULL,"
	  "  state TEXT NOT NULL CHECK (state IN ('creating', 'created', 'running', 'exited')),"
	  "  config BLOB NOT NULL,"
	  "  image_id TEXT NOT NULL,"
	  "  image_ref TEXT NOT NULL,"
	  "  log_path TEXT NOT NULL,"
	  "  stop_signal INTEGER NOT NULL,"
	  "  pid INTEGER NOT NULL DEFAULT 0,"
	  "  created_at INTEGER NOT NULL,"
	  "  started_at INTEGER NOT NULL DEFAULT 0,"
	  "  finished_at INTEGER NOT NULL DEFAULT 0,"
	  "  exit_code INTEGER NOT NULL DEFAULT 0,"
	  "  reason TEXT NOT NULL DEFAULT '');"
	  "CREATE INDEX containers_by_pod ON containers(pod_id);" },
	{ "containers' writable layer, for its usage in stats",
	  "ALTER TABLE containers ADD COLUMN upper_dir TEXT NOT NULL DEFAULT '';" },
};
const size_t sandboxd_n_migrations = ELEMENTSOF(sandboxd_migrations);

/* Copies the static crisp-pause next to our binary into the shared root. */
static int make_pause_rootfs(Sandboxd *sd, CrispError **err)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "/proc/self/exe");
	self[n] = 0;
	_cleanup_free_ char *src = xasprintf("%s/crisp-pause", dirname(self));
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return crisp_error_set_errno(err, CRISP_ERR_FAILED_PRECONDITION, errno,
					     "the infra binary %s", src);
	int r = crisp_mkdir_p(sd->pause_rootfs, 0755);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "creating %s",
					     sd->pause_rootfs);
	/* Mount points: the root is read-only, so runc cannot make them. */
	static const char *const dirs[] = { "proc", "dev", "sys", "etc" };
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		_cleanup_free_ char *d = xasprintf("%s/%s", sd->pause_rootfs, dirs[i]);
		if (mkdir(d, 0755) < 0 && errno != EEXIST)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s",
						     d);
	}
	static const char *const files[] = { "etc/hostname", "etc/hosts", "etc/resolv.conf" };
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *f = xasprintf("%s/%s", sd->pause_rootfs, files[i]);
		int fd = open(f, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s",
						     f);
		close(fd);
	}
	/* A fresh copy each start: the binary may have been rebuilt. */
	_cleanup_free_ char *tmp = xasprintf("%s/.pause.tmp", sd->pause_rootfs);
	_cleanup_free_ char *dst = xasprintf("%s/pause", sd->pause_rootfs);
	_cleanup_close_ int out =
		open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0755);
	if (out < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", tmp);
	char buf[65536];
	ssize_t k;
	while ((k = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)k) != k)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "writing %s",
						     tmp);
	if (k < 0 || fchmod(out, 0755) < 0 || rename(tmp, dst) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "installing %s", dst);
	return 0;
}

/*
 * Lowering oom_score_adj needs CAP_SYS_RESOURCE.  Where the node's bounding
 * set lacks it (some VMs), runc could only fail: the floor is then our own
 * value, and pods asking lower get it, with a log line.
 */
static int oom_floor(void)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)getppid());
	FILE *f = fopen(path, "re");
	unsigned long long bnd = ~0ULL;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapBnd: %llx", &bnd) == 1)
			break;
	if (f)
		fclose(f);
	if (bnd & (1ULL << 24)) /* CAP_SYS_RESOURCE */
		return -1000;
	int v = sandboxd_read_int("/proc/self/oom_score_adj", 0);
	log_info("the node has no CAP_SYS_RESOURCE: oom_score_adj below %d is raised to %d", v, v);
	return v;
}

/*
 * After a restart: containers and pods left half made ('creating': the call
 * never answered) are undone, and the state of every other container is
 * brought up to date from its process and conmon's exit file (a container
 * that ended while sandboxd was away shows its real exit code, and its
 * STOPPED event goes out).  Running containers are left alone: they never
 * depended on sandboxd running.
 */
static int reconcile(Sandboxd *sd, CrispError **err)
{
	SandboxdContainer *cs = NULL;
	size_t n = 0;
	int r = sandboxd_container_list(sd, NULL, &cs, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		SandboxdContainer *c = &cs[i];
		if (strcmp(c->state, "creating") != 0) {
			sandboxd_container_refresh(sd, c);
			sandboxd_exec_reap_orphans(sd, c);
			continue;
		}
		SandboxdPod pod = { 0 };
		_cleanup_free_ char *handler = NULL;
		if (sandboxd_pod_get(sd, c->pod_id, &pod, NULL) == 0)
			handler = xstrdup(pod.handler);
		sandboxd_pod_done(&pod);
		log_warning("removing container %s, left half made", c->id);
		r = sandboxd_container_destroy(
			sd, c, handler ? handler : sd->config->default_runtime, err);
	}
	sandboxd_containers_free(cs, n);
	if (r < 0)
		return r;

	SandboxdPod *pods = NULL;
	n = 0;
	if ((r = sandboxd_pod_list(sd, &pods, &n, err)) < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (strcmp(pods[i].state, "creating") != 0)
			continue;
		log_warning("removing pod %s, left half made", pods[i].id);
		sandboxd_pod_undo(sd, pods[i].id, pods[i].handler);
		r = sandboxd_db_exec(sd, "DELETE FROM pods WHERE id = ?1", pods[i].id, 0, NULL,
				     err);
	}
	sandboxd_pods_free(pods, n);
	return r;
}

int sandboxd_setup(CrispBackend *b, CrispError **err)
{
	Sandboxd *sd = xcalloc(1, sizeof(*sd));
	b->state = sd;
	sd->backend = b;
	sd->config = &b->opts.config;
	sd->db = b->db;
	pthread_mutex_init(&sd->lock, NULL);
	crisp_inflight_init(&sd->busy);
	sd->pods_dir = xasprintf("%s/pods", b->dir);
	sd->pause_rootfs = xasprintf("%s/pause/rootfs", b->dir);
	sd->run_dir = crisp_state_path(sd->config, "sandbox/pods");
	sd->bundles_dir = crisp_state_path(sd->config, "sandbox/bundles");
	sd->netns_dir = crisp_state_path(sd->config, "netns");
	sd->containers_dir = crisp_state_path(sd->config, "sandbox/containers");
	sd->exits_dir = crisp_state_path(sd->config, "sandbox/exits");
	sd->attach_dir = crisp_state_path(sd->config, "sandbox/attach");
	sd->image_dir = crisp_root_path(sd->config, "image");
	const char *dirs[] = { sd->pods_dir,	   sd->run_dir,	  sd->bundles_dir,
			       sd->containers_dir, sd->exits_dir, sd->attach_dir };
	for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
		int r = crisp_mkdir_p(dirs[i], 0700);
		if (r < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "creating %s",
						     dirs[i]);
	}
	sd->oom_score_adj_floor = oom_floor();
	int r = make_pause_rootfs(sd, err);
	if (r == 0)
		r = reconcile(sd, err);
	if (r == 0)
		r = sandboxd_events_start(sd, err);
	return r;
}

void sandboxd_teardown(CrispBackend *b)
{
	Sandboxd *sd = b->state;
	if (!sd)
		return;
	crisp_inflight_done(&sd->busy);
	free(sd->pods_dir);
	free(sd->run_dir);
	free(sd->bundles_dir);
	free(sd->pause_rootfs);
	free(sd->netns_dir);
	free(sd->containers_dir);
	free(sd->exits_dir);
	free(sd->attach_dir);
	free(sd->image_dir);
	free(sd);
	b->state = NULL;
}
