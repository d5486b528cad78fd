/*
 * container_status.c - containers' rows, ContainerStatus and ListContainers.
 *
 * A container's state follows its process: a running one whose process
 * ended is exited, with the exit code conmon wrote to <exits>/<id> (and the
 * time it wrote it), and the reason the kubelet expects: OOMKilled when
 * conmon saw the OOM killer (the "oom" file in the bundle), else Completed
 * for 0 and Error for anything else.
 */
#include "containers.h"

#include "log.h"
#include "pods.h"

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

void sandboxd_container_done(SandboxdContainer *c)
{
	free(c->id);
	free(c->pod_id);
	free(c->state);
	crisp_proto_free(c->config);
	free(c->image_id);
	free(c->image_ref);
	free(c->log_path);
	free(c->reason);
	free(c->upper_dir);
	*c = (SandboxdContainer){ 0 };
}

void sandboxd_containers_free(SandboxdContainer *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sandboxd_container_done(&v[i]);
	free(v);
}

#define CONTAINER_COLUMNS                                                                          \
	"id, pod_id, state, config, image_id, image_ref, log_path, stop_signal, pid, created_at,"  \
	" started_at, finished_at, exit_code, reason, upper_dir"

static int read_row(sqlite3_stmt *st, SandboxdContainer *c, CrispError **err)
{
	*c = (SandboxdContainer){
		.id = crisp_db_column_strdup(st, 0),
		.pod_id = crisp_db_column_strdup(st, 1),
		.state = crisp_db_column_strdup(st, 2),
		.image_id = crisp_db_column_strdup(st, 4),
		.image_ref = crisp_db_column_strdup(st, 5),
		.log_path = crisp_db_column_strdup(st, 6),
		.stop_signal = sqlite3_column_int(st, 7),
		.pid = sqlite3_column_int(st, 8),
		.created_at = sqlite3_column_int64(st, 9),
		.started_at = sqlite3_column_int64(st, 10),
		.finished_at = sqlite3_column_int64(st, 11),
		.exit_code = sqlite3_column_int(st, 12),
		.reason = crisp_db_column_strdup(st, 13),
		.upper_dir = crisp_db_column_strdup(st, 14),
	};
	c->config = (Runtime__V1__ContainerConfig *)crisp_proto_unpack(
		&runtime__v1__container_config__descriptor, sqlite3_column_blob(st, 3),
		(size_t)sqlite3_column_bytes(st, 3), err);
	if (!c->config) {
		sandboxd_container_done(c);
		return -EIO;
	}
	return 0;
}

int sandboxd_container_get(Sandboxd *sd, const char *id, SandboxdContainer *ret, CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(
		sd->db, "SELECT " CONTAINER_COLUMNS " FROM containers WHERE id = ?1", &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		r = crisp_db_step(st, err);
		r = r > 0 ? read_row(st, ret, err) : r == 0 ? -ENOENT : r;
	}
	pthread_mutex_unlock(&sd->lock);
	return r;
}

int sandboxd_container_list(Sandboxd *sd, const char *pod_id, SandboxdContainer **ret,
			    size_t *ret_n, CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	SandboxdContainer *v = NULL;
	size_t n = 0;
	int r = crisp_db_prepare(sd->db,
				 "SELECT " CONTAINER_COLUMNS " FROM containers"
				 " WHERE ?1 IS NULL OR pod_id = ?1 ORDER BY created_at",
				 &st, err);
	if (r == 0)
		crisp_db_bind_text(st, 1, pod_id);
	while (r == 0 && (r = crisp_db_step(st, err)) > 0) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		r = read_row(st, &v[n], err);
		if (r == 0)
			n++;
	}
	pthread_mutex_unlock(&sd->lock);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			sandboxd_container_done(&v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int sandboxd_container_resolve(Sandboxd *sd, const char *s, char **ret, CrispError **err)
{
	return sandboxd_resolve_id(sd, "containers", "container", s, ret, err);
}

static bool conmon_alive(Sandboxd *sd, const char *id)
{
	_cleanup_free_ char *path = xasprintf("%s/%s/conmon.pid", sd->bundles_dir, id);
	int pid = sandboxd_read_int(path, 0);
	return pid > 0 && sandboxd_pid_alive(pid);
}

int sandboxd_container_find(Sandboxd *sd, const char *asked, SandboxdContainer *ret,
			    CrispError **err)
{
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_container_resolve(sd, asked, &id, err);
	if (r < 0)
		return r;
	if ((r = sandboxd_container_get(sd, id, ret, err)) < 0)
		return r == -ENOENT ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
						      "no container %s", id)
				    : r;
	sandboxd_container_refresh(sd, ret);
	return 0;
}

void sandboxd_container_refresh(Sandboxd *sd, SandboxdContainer *c)
{
	bool live = strcmp(c->state, "running") == 0 || strcmp(c->state, "created") == 0;
	if (!live || (c->pid > 0 && sandboxd_pid_alive(c->pid)))
		return;
	_cleanup_free_ char *path = xasprintf("%s/%s", sd->exits_dir, c->id);
	_cleanup_free_ char *oom = xasprintf("%s/%s/oom", sd->bundles_dir, c->id);
	struct stat st;
	int code = -1;
	FILE *f = fopen(path, "re");
	if (f && fscanf(f, "%d", &code) != 1)
		code = -1;
	int64_t finished = 0;
	if (f && fstat(fileno(f), &st) == 0)
		finished = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	if (f)
		fclose(f);
	if (code < 0 && strcmp(c->state, "created") == 0)
		return; /* never started: conmon waits for the start that never came */
	if (code < 0 && conmon_alive(sd, c->id))
		return; /* ended a moment ago: conmon is about to write its exit code */
	bool oomed = stat(oom, &st) == 0;
	const char *reason = oomed ? "OOMKilled" : code == 0 ? "Completed" : "Error";
	free(c->state);
	c->state = xstrdup("exited");
	free(c->reason);
	c->reason = xstrdup(reason);
	c->exit_code = code < 0 ? 255 : code;
	c->finished_at = finished ? finished : c->started_at;
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *u = NULL;
	if (crisp_db_prepare(
		    sd->db,
		    "UPDATE containers SET state = 'exited', exit_code = ?2, finished_at = ?3,"
		    " reason = ?4 WHERE id = ?1 AND state != 'exited'",
		    &u, NULL) == 0) {
		crisp_db_bind_text(u, 1, c->id);
		sqlite3_bind_int(u, 2, c->exit_code);
		sqlite3_bind_int64(u, 3, c->finished_at);
		crisp_db_bind_text(u, 4, reason);
		(void)sqlite3_step(u);
	}
	/* Whoever noticed first (the exit watcher, a status call) tells the subscribers. */
	bool changed = sqlite3_changes(sd->db) == 1;
	pthread_mutex_unlock(&sd->lock);
	if (changed)
		sandboxd_emit_container_event(
			sd, c, RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_STOPPED_EVENT);
}

/* --- the CRI view --- */

Runtime__V1__ContainerState sandboxd_container_cri_state(const SandboxdContainer *c)
{
	if (strcmp(c->state, "running") == 0)
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	if (strcmp(c->state, "created") == 0)
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	if (strcmp(c->state, "exited") == 0)
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
	return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
}

int sandboxd_container_status(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ContainerStatusRequest *q = (const void *)req->msg;
	SandboxdContainer c = { 0 };
	int r = sandboxd_container_find(sd, q->container_id, &c, err);
	if (r < 0)
		return r;
	const Runtime__V1__ContainerConfig *cfg = c.config;

	Runtime__V1__ContainerStatus s = RUNTIME__V1__CONTAINER_STATUS__INIT;
	Runtime__V1__ImageSpec image = RUNTIME__V1__IMAGE_SPEC__INIT;
	image.image = cfg->image && cfg->image->image ? cfg->image->image : c.image_ref;
	s.id = c.id;
	s.metadata = cfg->metadata;
	s.state = sandboxd_container_cri_state(&c);
	s.created_at = c.created_at;
	s.started_at = c.started_at;
	s.finished_at =
		s.state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ? c.finished_at : 0;
	s.exit_code = c.exit_code;
	s.image = &image;
	s.image_ref = c.image_id;
	s.image_id = c.image_id;
	s.reason = s.state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ? c.reason : "";
	/* Map entries share a layout across CRI messages (see pod_status.c). */
	s.n_labels = cfg->n_labels;
	s.labels = (Runtime__V1__ContainerStatus__LabelsEntry **)cfg->labels;
	s.n_annotations = cfg->n_annotations;
	s.annotations = (Runtime__V1__ContainerStatus__AnnotationsEntry **)cfg->annotations;
	s.n_mounts = cfg->n_mounts;
	s.mounts = cfg->mounts;
	s.log_path = c.log_path;
	Runtime__V1__ContainerResources res = RUNTIME__V1__CONTAINER_RESOURCES__INIT;
	if (cfg->linux && cfg->linux->resources) {
		res.linux = cfg->linux->resources;
		s.resources = &res;
	}

	Runtime__V1__ContainerStatusResponse a = RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INIT;
	a.status = &s;
	Runtime__V1__ContainerStatusResponse__InfoEntry info =
		RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__ContainerStatusResponse__InfoEntry *infos[1] = { &info };
	_cleanup_free_ char *json = NULL;
	if (q->verbose) {
		_cleanup_free_ char *spec_path =
			xasprintf("%s/%s/config.json", sd->bundles_dir, c.id);
		json_t *spec = json_load_file(spec_path, 0, NULL);
		json_t *o = json_pack("{s:i, s:s, s:o?}", "pid", c.pid, "sandboxID", c.pod_id,
				      "runtimeSpec", spec);
		json = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		info.key = "info";
		info.value = json;
		a.n_info = 1;
		a.info = infos;
	}
	r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	sandboxd_container_done(&c);
	return r;
}

int sandboxd_list_containers(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ListContainersRequest *q = (const void *)req->msg;
	const Runtime__V1__ContainerFilter *f = q->filter;
	SandboxdContainer *v = NULL;
	size_t n = 0;
	int r = sandboxd_container_list(sd, NULL, &v, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__Container *items = xcalloc(n + 1, sizeof(*items));
	Runtime__V1__Container **ptrs = xcalloc(n + 1, sizeof(*ptrs));
	Runtime__V1__ImageSpec *images = xcalloc(n + 1, sizeof(*images));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		SandboxdContainer *c = &v[i];
		sandboxd_container_refresh(sd, c);
		Runtime__V1__ContainerState state = sandboxd_container_cri_state(c);
		if (f && f->id && *f->id && strncmp(c->id, f->id, strlen(f->id)) != 0)
			continue;
		if (f && f->pod_sandbox_id && *f->pod_sandbox_id &&
		    strncmp(c->pod_id, f->pod_sandbox_id, strlen(f->pod_sandbox_id)) != 0)
			continue;
		if (f && f->state && f->state->state != state)
			continue;
		if (f &&
		    !sandboxd_labels_match(c->config->n_labels, (void *const *)c->config->labels,
					   f->n_label_selector, (void *const *)f->label_selector))
			continue;
		Runtime__V1__Container *it = &items[k];
		runtime__v1__container__init(it);
		runtime__v1__image_spec__init(&images[k]);
		images[k].image = c->config->image && c->config->image->image
					  ? c->config->image->image
					  : c->image_ref;
		it->id = c->id;
		it->pod_sandbox_id = c->pod_id;
		it->metadata = c->config->metadata;
		it->image = &images[k];
		it->image_ref = c->image_id;
		it->image_id = c->image_id;
		it->state = state;
		it->created_at = c->created_at;
		it->n_labels = c->config->n_labels;
		it->labels = (Runtime__V1__Container__LabelsEntry **)c->config->labels;
		it->n_annotations = c->config->n_annotations;
		it->annotations =
			(Runtime__V1__Container__AnnotationsEntry **)c->config->annotations;
		ptrs[k++] = it;
	}
	Runtime__V1__ListContainersResponse a = RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT;
	a.n_containers = k;
	a.containers = ptrs;
	r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	sandboxd_containers_free(v, n);
	free(items);
	free(ptrs);
	free(images);
	return r;
}
