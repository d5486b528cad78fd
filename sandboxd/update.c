/*
 * update.c - UpdateContainerResources and ReopenContainerLog.
 *
 * An update goes to the runtime (`update --resources`, a file sandboxd
 * writes in the bundle), then into the stored config, so ContainerStatus
 * reports the resources in force.  Reopening the log asks conmon through
 * its control FIFO in the bundle ("2 0 0": reopen the log files), after the
 * kubelet has rotated the old file away.
 */
#include "containers.h"

#include "log.h"
#include "oci_container.h"
#include "pods.h"
#include "runtime.h"

#include <fcntl.h>
#include <stdio.h>

#define CONMON_REOPEN_LOGS "2 0 0\n"

static int run_update(Sandboxd *sd, const SandboxdContainer *c, const char *handler,
		      const Runtime__V1__LinuxContainerResources *r, CrispError **err)
{
	char token[17];
	sandboxd_runtime_token(token);
	_cleanup_free_ char *path =
		xasprintf("%s/%s/update-%s.json", sd->bundles_dir, c->id, token);
	json_t *res = sandboxd_update_resources(sd, r);
	int k = json_dump_file(res, path, JSON_COMPACT);
	json_decref(res);
	if (k < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "writing %s", path);
	char *args[3] = { (char *)handler, (char *)"update", token };
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = SANDBOXD_SPAWN_RUNTIME;
	req.id = c->id;
	req.n_args = 3;
	req.args = args;
	req.wait = true;
	req.timeout_ms = SANDBOXD_RUNTIME_TIMEOUT_MS;
	Crisp__SpawnReply *reply = NULL;
	int rc = crisp_spawn(&sd->backend->spawn, &req, NULL, 0, 0, &reply, err);
	(void)unlink(path);
	if (rc < 0)
		return rc;
	bool ok = reply->exited && reply->exit_code == 0;
	crisp_proto_free(reply);
	if (!ok) {
		_cleanup_free_ char *msg = sandboxd_runtime_last_error(sd, c->id);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s update failed: %s",
				       handler, msg ? msg : "no message in the runtime's log");
	}
	return 0;
}

/* The stored config with the new resources, so status reports them. */
static int store_resources(Sandboxd *sd, SandboxdContainer *c,
			   Runtime__V1__LinuxContainerResources *r, CrispError **err)
{
	Runtime__V1__LinuxContainerConfig empty = RUNTIME__V1__LINUX_CONTAINER_CONFIG__INIT;
	Runtime__V1__LinuxContainerConfig *linux = c->config->linux ? c->config->linux : &empty;
	Runtime__V1__LinuxContainerResources *old = linux->resources;
	Runtime__V1__LinuxContainerConfig *old_linux = c->config->linux;
	linux->resources = r;
	c->config->linux = linux;
	size_t len = protobuf_c_message_get_packed_size(&c->config->base);
	_cleanup_free_ uint8_t *buf = xmalloc(len + 1);
	protobuf_c_message_pack(&c->config->base, buf);
	linux->resources = old;
	c->config->linux = old_linux;

	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int k = crisp_db_prepare(sd->db, "UPDATE containers SET config = ?2 WHERE id = ?1", &st,
				 err);
	if (k == 0) {
		crisp_db_bind_text(st, 1, c->id);
		sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_TRANSIENT);
		k = crisp_db_step_done(st, err);
	}
	pthread_mutex_unlock(&sd->lock);
	return k;
}

static int open_running(Sandboxd *sd, const char *asked, SandboxdContainer *ret, char **ret_handler,
			CrispError **err)
{
	int r = sandboxd_container_find(sd, asked, ret, err);
	if (r < 0)
		return r;
	if (strcmp(ret->state, "running") != 0 && strcmp(ret->state, "created") != 0) {
		r = crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EINVAL,
				    "container %s is not running", ret->id);
		sandboxd_container_done(ret);
		return r;
	}
	*ret_handler = sandboxd_container_handler(sd, ret);
	return 0;
}

int sandboxd_update_container(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__UpdateContainerResourcesRequest *q = (const void *)req->msg;
	if (!q->linux)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "linux resources are missing");
	SandboxdContainer c = { 0 };
	_cleanup_free_ char *handler = NULL;
	int r = open_running(sd, q->container_id, &c, &handler, err);
	if (r < 0)
		return r;
	r = run_update(sd, &c, handler, q->linux, err);
	if (r == 0)
		r = store_resources(sd, &c, q->linux, err);
	if (r == 0)
		log_info("container %s: resources updated", c.id);
	sandboxd_container_done(&c);
	if (r < 0)
		return r;
	Runtime__V1__UpdateContainerResourcesResponse a =
		RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}

int sandboxd_reopen_log(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ReopenContainerLogRequest *q = (const void *)req->msg;
	SandboxdContainer c = { 0 };
	_cleanup_free_ char *handler = NULL;
	int r = open_running(sd, q->container_id, &c, &handler, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *ctl = xasprintf("%s/%s/ctl", sd->bundles_dir, c.id);
	int fd = open(ctl, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	size_t n = strlen(CONMON_REOPEN_LOGS);
	if (fd < 0 || write(fd, CONMON_REOPEN_LOGS, n) != (ssize_t)n)
		r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					  "asking conmon to reopen the log of %s", c.id);
	safe_close(fd);
	sandboxd_container_done(&c);
	if (r < 0)
		return r;
	Runtime__V1__ReopenContainerLogResponse a =
		RUNTIME__V1__REOPEN_CONTAINER_LOG_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
