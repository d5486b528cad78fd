/*
 * exec.c - ExecSync: a command run in a running container, with a timeout
 * and its output captured.
 *
 * The command runs as the container's process does (user, env, cwd,
 * capabilities), through the runtime's exec, started by the spawn helper.
 * Its stdout and stderr come back through pipes that two threads drain,
 * keeping at most 16 MiB of each (the rest is read and dropped, so the
 * command never blocks on a full pipe).  On timeout the command is killed
 * (by the pid the runtime wrote) and the call fails DEADLINE_EXCEEDED, as
 * the kubelet expects of a probe that took too long.
 */
#include "containers.h"

#include "log.h"
#include "pods.h"
#include "runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>

#define EXEC_OUTPUT_MAX (16u * 1024 * 1024)
#define ORPHAN_PID_WAIT_MS 1000
#define READER_GRACE_MS 2000

typedef struct Output {
	int fd;
	char *buf;
	size_t len;
	pthread_t thread;
} Output;

static void *drain(void *arg)
{
	Output *o = arg;
	char chunk[65536];
	for (;;) {
		ssize_t k = read(o->fd, chunk, sizeof(chunk));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		size_t keep = o->len < EXEC_OUTPUT_MAX ? EXEC_OUTPUT_MAX - o->len : 0;
		if ((size_t)k < keep)
			keep = (size_t)k;
		if (keep) {
			o->buf = xrealloc(o->buf, o->len + keep + 1);
			memcpy(o->buf + o->len, chunk, keep);
			o->len += keep;
		}
	}
	return NULL;
}

int sandboxd_exec_write_spec(Sandboxd *sd, const char *id, const char *token, char **cmd,
			     size_t n_cmd, bool terminal, CrispError **err)
{
	_cleanup_free_ char *config = xasprintf("%s/%s/config.json", sd->bundles_dir, id);
	_cleanup_free_ char *path = xasprintf("%s/%s/exec-%s.json", sd->bundles_dir, id, token);
	json_error_t jerr;
	json_t *spec = json_load_file(config, 0, &jerr);
	json_t *process = json_object_get(spec, "process");
	if (!json_is_object(process)) {
		json_decref(spec);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s: %s", config, jerr.text);
	}
	json_t *argv = json_array();
	for (size_t i = 0; i < n_cmd; i++)
		json_array_append_new(argv, json_string(cmd[i]));
	json_object_set_new(process, "args", argv);
	json_object_set_new(process, "terminal", json_boolean(terminal));
	/* The size comes from the terminal runc is handed, and resizes after. */
	json_object_del(process, "consoleSize");
	int r = json_dump_file(process, path, JSON_COMPACT) < 0
			? crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "writing %s", path)
			: 0;
	json_decref(spec);
	return r;
}

bool sandboxd_exec_kill(Sandboxd *sd, const char *id, const char *token)
{
	_cleanup_free_ char *path = xasprintf("%s/%s/exec-%s.pid", sd->bundles_dir, id, token);
	int pid = sandboxd_read_int(path, 0);
	return pid > 0 && kill(pid, SIGKILL) == 0;
}

bool sandboxd_exec_started(Sandboxd *sd, const char *id, const char *token)
{
	_cleanup_free_ char *path = xasprintf("%s/%s/exec-%s.pid", sd->bundles_dir, id, token);
	return access(path, F_OK) == 0;
}

void sandboxd_exec_cleanup(Sandboxd *sd, const char *id, const char *token)
{
	_cleanup_free_ char *spec = xasprintf("%s/%s/exec-%s.json", sd->bundles_dir, id, token);
	_cleanup_free_ char *pid = xasprintf("%s/%s/exec-%s.pid", sd->bundles_dir, id, token);
	_cleanup_free_ char *log = xasprintf("%s/%s/exec-%s.log", sd->bundles_dir, id, token);
	(void)unlink(spec);
	(void)unlink(pid);
	(void)unlink(log);
}

/* /proc/<pid>/cgroup, which anyone may read (a pid namespace link needs ptrace rights). */
static char *cgroup_of(int pid)
{
	_cleanup_free_ char *path = xasprintf("/proc/%d/cgroup", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *text = NULL;
	size_t len = 0;
	ssize_t n = getdelim(&text, &len, '\0', f);
	fclose(f);
	if (n <= 0) {
		free(text);
		return NULL;
	}
	return text;
}

void sandboxd_exec_reap_orphans(Sandboxd *sd, const SandboxdContainer *c)
{
	_cleanup_free_ char *bundle = xasprintf("%s/%s", sd->bundles_dir, c->id);
	DIR *d = opendir(bundle);
	if (!d)
		return;
	_cleanup_strv_free_ char **tokens = NULL;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *dot = strrchr(e->d_name, '.');
		if (strncmp(e->d_name, "exec-", 5) == 0 && dot && strcmp(dot, ".json") == 0) {
			_cleanup_free_ char *token =
				xstrndup(e->d_name + 5, (size_t)(dot - e->d_name - 5));
			strv_push(&tokens, token);
		}
	}
	closedir(d);
	_cleanup_free_ char *container_cgroup = c->pid > 0 ? cgroup_of(c->pid) : NULL;
	/*
	 * A runtime cut off from the old sandboxd while it started the command
	 * writes the pid file a moment after the command runs: its spec alone
	 * is given a short while (at most ORPHAN_PID_WAIT_MS per container).
	 */
	int64_t pid_deadline = crisp_now_ms() + ORPHAN_PID_WAIT_MS;
	for (char **t = tokens; t && *t; t++) {
		_cleanup_free_ char *pid_path = xasprintf("%s/exec-%s.pid", bundle, *t);
		int pid = sandboxd_read_int(pid_path, 0);
		while (pid <= 0 && crisp_now_ms() < pid_deadline) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			pid = sandboxd_read_int(pid_path, 0);
		}
		_cleanup_free_ char *cgroup = pid > 0 ? cgroup_of(pid) : NULL;
		/* Only a process still in the container's cgroup: the pid may have been reused. */
		if (cgroup && container_cgroup && strcmp(cgroup, container_cgroup) == 0 &&
		    kill(pid, SIGKILL) == 0)
			log_warning("container %s: killed exec %d, left running by the sandboxd "
				    "before this one",
				    c->id, pid);
		else if (cgroup)
			log_warning("container %s: exec %d outside the container's cgroup is "
				    "left alone",
				    c->id, pid);
		sandboxd_exec_cleanup(sd, c->id, *t);
	}
}

char *sandboxd_container_handler(Sandboxd *sd, const SandboxdContainer *c)
{
	SandboxdPod pod = { 0 };
	char *handler = NULL;
	if (sandboxd_pod_get(sd, c->pod_id, &pod, NULL) == 0 && pod.handler && *pod.handler)
		handler = xstrdup(pod.handler);
	sandboxd_pod_done(&pod);
	return handler ? handler : xstrdup(sd->config->default_runtime);
}

static int run_exec(Sandboxd *sd, const SandboxdContainer *c, const char *handler,
		    const Runtime__V1__ExecSyncRequest *q, Output out[2], int *ret_code,
		    CrispError **err)
{
	char token[17];
	sandboxd_runtime_token(token);
	int r = sandboxd_exec_write_spec(sd, c->id, token, q->cmd, q->n_cmd, false, err);
	if (r < 0)
		return r;

	int pipes[2][2] = { { -1, -1 }, { -1, -1 } };
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 2; i++)
		if (pipe2(pipes[i], O_CLOEXEC) < 0)
			r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "pipe");
	for (int i = 0; r == 0 && i < 2; i++) {
		out[i].fd = pipes[i][0];
		pthread_create(&out[i].thread, NULL, drain, &out[i]);
	}
	if (r == 0) {
		char *args[3] = { (char *)handler, (char *)"exec", token };
		Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
		req.kind = SANDBOXD_SPAWN_RUNTIME;
		req.id = c->id;
		req.n_args = 3;
		req.args = args;
		req.wait = true;
		int stdio[3] = { null, pipes[0][1], pipes[1][1] };
		int64_t deadline = q->timeout > 0 ? crisp_now_ms() + q->timeout * 1000 : 0;
		Crisp__SpawnReply *reply = NULL;
		r = crisp_spawn(&sd->backend->spawn, &req, stdio, 3, deadline, &reply, err);
		/* Ours are the last write ends once the helper has its copies. */
		safe_close(pipes[0][1]);
		safe_close(pipes[1][1]);
		if (r < 0 && *err && (*err)->code == CRISP_ERR_DEADLINE) {
			sandboxd_exec_kill(sd, c->id, token);
			crisp_error_free(*err);
			*err = NULL;
			r = crisp_error_set(err, CRISP_ERR_DEADLINE, ETIMEDOUT,
					    "command timed out after %lld s",
					    (long long)q->timeout);
		} else if (r == 0) {
			*ret_code = reply->exited ? reply->exit_code : 128 + reply->signal;
			crisp_proto_free(reply);
		}
		/* A background child may hold the pipes open: give the readers a moment. */
		for (int i = 0; i < 2; i++) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += READER_GRACE_MS / 1000;
			if (pthread_timedjoin_np(out[i].thread, NULL, &ts) != 0) {
				pthread_cancel(
					out[i].thread); /* blocked in read(): a cancellation point */
				pthread_join(out[i].thread, NULL);
			}
		}
	} else {
		safe_close(pipes[0][1]);
		safe_close(pipes[1][1]);
	}
	safe_close(pipes[0][0]);
	safe_close(pipes[1][0]);
	safe_close(null);
	sandboxd_exec_cleanup(sd, c->id, token);
	return r;
}

int sandboxd_exec_sync(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ExecSyncRequest *q = (const void *)req->msg;
	if (q->n_cmd == 0)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "cmd is empty");
	SandboxdContainer c = { 0 };
	int r = sandboxd_container_find(sd, q->container_id, &c, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *handler = sandboxd_container_handler(sd, &c);
	if (strcmp(c.state, "running") != 0)
		r = crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				    "container %s is not running", c.id);
	Output out[2] = { { .fd = -1 }, { .fd = -1 } };
	int code = 0;
	if (r == 0)
		r = run_exec(sd, &c, handler, q, out, &code, err);
	sandboxd_container_done(&c);
	if (r == 0) {
		/*
		 * Each stream keeps up to 16 MiB, but one answer (here, and the
		 * kubelet's gRPC limit) holds 16 MiB in all: stderr gives way first.
		 */
		size_t room = CRISP_IPC_MAX_MESSAGE - 64 * 1024;
		if (out[0].len > room)
			out[0].len = room;
		if (out[0].len + out[1].len > room)
			out[1].len = room - out[0].len;
		Runtime__V1__ExecSyncResponse a = RUNTIME__V1__EXEC_SYNC_RESPONSE__INIT;
		a.stdout.data = (uint8_t *)out[0].buf;
		a.stdout.len = out[0].len;
		a.stderr.data = (uint8_t *)out[1].buf;
		a.stderr.len = out[1].len;
		a.exit_code = code;
		r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	}
	free(out[0].buf);
	free(out[1].buf);
	return r;
}
