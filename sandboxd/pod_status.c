/*
 * pod_status.c - pods' rows, PodSandboxStatus and ListPodSandbox.
 *
 * A pod is READY while its row says so and its infra process runs; a pod
 * whose infra process died is NOTREADY whatever the row says.
 */
#include "sandboxd.h"

#include "ipc_types.h"
#include "pods.h"

#include <ctype.h>
#include <poll.h>
#include <sys/syscall.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>

void sandboxd_pod_done(SandboxdPod *p)
{
	free(p->id);
	free(p->state);
	crisp_proto_free(p->config);
	free(p->handler);
	free(p->cgroup_parent);
	free(p->netns);
	strv_free(p->ips);
	*p = (SandboxdPod){ 0 };
}

bool sandboxd_pid_alive(int pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *close_paren = strrchr(buf, ')');
	return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z' &&
	       close_paren[2] != 'X';
}

int sandboxd_read_int(const char *path, int fallback)
{
	FILE *f = fopen(path, "re");
	int v = fallback;
	if (f && fscanf(f, "%d", &v) != 1)
		v = fallback;
	if (f)
		fclose(f);
	return v;
}

bool sandboxd_pid_wait_gone(int pid, int timeout_ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int k = poll(&p, 1, timeout_ms);
	close(fd);
	return k == 1;
}

void sandboxd_pods_free(SandboxdPod *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sandboxd_pod_done(&v[i]);
	free(v);
}

#define POD_COLUMNS "id, state, config, runtime_handler, cgroup_parent, netns, ips, pid, created_at"

static int read_row(sqlite3_stmt *st, SandboxdPod *p, CrispError **err)
{
	*p = (SandboxdPod){
		.id = crisp_db_column_strdup(st, 0),
		.state = crisp_db_column_strdup(st, 1),
		.handler = crisp_db_column_strdup(st, 3),
		.cgroup_parent = crisp_db_column_strdup(st, 4),
		.netns = crisp_db_column_strdup(st, 5),
		.pid = sqlite3_column_int(st, 7),
		.created_at = sqlite3_column_int64(st, 8),
	};
	_cleanup_free_ char *ips = crisp_db_column_strdup(st, 6);
	for (char *save = NULL, *t = strtok_r(ips, ",", &save); t; t = strtok_r(NULL, ",", &save))
		strv_push(&p->ips, t);
	/* Our own bytes, checked when the pod was made; still unpacked with a budget. */
	p->config = (Runtime__V1__PodSandboxConfig *)crisp_proto_unpack(
		&runtime__v1__pod_sandbox_config__descriptor, sqlite3_column_blob(st, 2),
		(size_t)sqlite3_column_bytes(st, 2), err);
	if (!p->config) {
		sandboxd_pod_done(p);
		return -EIO;
	}
	return 0;
}

int sandboxd_pod_get(Sandboxd *sd, const char *id, SandboxdPod *ret, CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(sd->db, "SELECT " POD_COLUMNS " FROM pods WHERE id = ?1", &st,
				 err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		r = crisp_db_step(st, err);
		r = r > 0 ? read_row(st, ret, err) : r == 0 ? -ENOENT : r;
	}
	pthread_mutex_unlock(&sd->lock);
	return r;
}

int sandboxd_pod_list(Sandboxd *sd, SandboxdPod **ret, size_t *ret_n, CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	SandboxdPod *v = NULL;
	size_t n = 0;
	int r = crisp_db_prepare(sd->db, "SELECT " POD_COLUMNS " FROM pods ORDER BY created_at",
				 &st, err);
	while (r == 0 && (r = crisp_db_step(st, err)) > 0) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		r = read_row(st, &v[n], err);
		if (r == 0)
			n++;
	}
	pthread_mutex_unlock(&sd->lock);
	if (r < 0) {
		for (size_t i = 0; i < n; i++)
			sandboxd_pod_done(&v[i]);
		free(v);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int sandboxd_pod_state(Sandboxd *sd, const char *id, char **ret, CrispError **err)
{
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(sd->db, "SELECT state FROM pods WHERE id = ?1", &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		r = crisp_db_step(st, err);
		*ret = r > 0 ? crisp_db_column_strdup(st, 0) : NULL;
	}
	pthread_mutex_unlock(&sd->lock);
	return r < 0 ? r : 0;
}

int sandboxd_resolve_id(Sandboxd *sd, const char *table, const char *what, const char *s,
			char **ret, CrispError **err)
{
	size_t n = s ? strlen(s) : 0;
	bool hex = n > 0 && n <= 64;
	for (size_t i = 0; hex && i < n; i++)
		hex = isdigit((unsigned char)s[i]) || (s[i] >= 'a' && s[i] <= 'f');
	if (!hex)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "\"%.80s\" is not a %s ID",
				       s ? s : "", what);
	pthread_mutex_lock(&sd->lock);
	_cleanup_stmt_ sqlite3_stmt *st = NULL;
	/* A prefix of hex digits has no LIKE wildcards in it; table is one of ours. */
	_cleanup_free_ char *sql = xasprintf("SELECT id FROM %s WHERE id LIKE ?1 LIMIT 2", table);
	_cleanup_free_ char *pattern = xasprintf("%s%%", s);
	int r = crisp_db_prepare(sd->db, sql, &st, err);
	char *found = NULL;
	int matches = 0;
	if (r == 0) {
		crisp_db_bind_text(st, 1, pattern);
		while ((r = crisp_db_step(st, err)) > 0)
			if (!matches++)
				found = crisp_db_column_strdup(st, 0);
	}
	pthread_mutex_unlock(&sd->lock);
	if (r < 0 || matches != 1) {
		free(found);
		if (r < 0)
			return r;
		if (matches == 0) {
			crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "no %s %s", what, s);
			return -ENOENT;
		}
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s ID prefix %s matches more than one %s", what, s, what);
	}
	*ret = found;
	return 0;
}

int sandboxd_pod_resolve(Sandboxd *sd, const char *s, char **ret, CrispError **err)
{
	return sandboxd_resolve_id(sd, "pods", "pod", s, ret, err);
}

bool sandboxd_labels_match(size_t n_have, void *const *have, size_t n_want, void *const *want)
{
	/* Map entries of every CRI message share this layout (see the status answers). */
	typedef struct {
		ProtobufCMessage base;
		char *key, *value;
	} Entry;
	for (size_t i = 0; i < n_want; i++) {
		const Entry *w = want[i];
		bool found = false;
		for (size_t j = 0; j < n_have && !found; j++) {
			const Entry *h = have[j];
			found = strcmp(h->key, w->key) == 0 && strcmp(h->value, w->value) == 0;
		}
		if (!found)
			return false;
	}
	return true;
}

/* --- the CRI view of a pod --- */

Runtime__V1__PodSandboxState sandboxd_pod_cri_state(const SandboxdPod *p)
{
	return strcmp(p->state, "ready") == 0 && p->pid > 0 && sandboxd_pid_alive(p->pid)
		       ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
		       : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
}

int sandboxd_pod_status(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__PodSandboxStatusRequest *q = (const void *)req->msg;
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_pod_resolve(sd, q->pod_sandbox_id, &id, err);
	if (r < 0)
		return r;
	SandboxdPod p = { 0 };
	if ((r = sandboxd_pod_get(sd, id, &p, err)) < 0)
		return r == -ENOENT
			       ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "no pod %s", id)
			       : r;
	const Runtime__V1__PodSandboxConfig *c = p.config;

	Runtime__V1__PodSandboxStatus s = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
	Runtime__V1__PodSandboxNetworkStatus net = RUNTIME__V1__POD_SANDBOX_NETWORK_STATUS__INIT;
	Runtime__V1__LinuxPodSandboxStatus linux = RUNTIME__V1__LINUX_POD_SANDBOX_STATUS__INIT;
	Runtime__V1__Namespace ns = RUNTIME__V1__NAMESPACE__INIT;
	Runtime__V1__NamespaceOption opts = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	size_t n_ips = strv_length(p.ips);
	Runtime__V1__PodIP *extra = xcalloc(n_ips + 1, sizeof(*extra));
	Runtime__V1__PodIP **extra_p = xcalloc(n_ips + 1, sizeof(*extra_p));
	for (size_t i = 1; i < n_ips; i++) {
		runtime__v1__pod_ip__init(&extra[i]);
		extra[i].ip = p.ips[i];
		extra_p[i - 1] = &extra[i];
	}
	net.ip = n_ips ? p.ips[0] : "";
	net.n_additional_ips = n_ips > 1 ? n_ips - 1 : 0;
	net.additional_ips = extra_p;
	const Runtime__V1__NamespaceOption *asked =
		c->linux && c->linux->security_context
			? c->linux->security_context->namespace_options
			: NULL;
	if (asked) {
		opts.network = asked->network;
		opts.pid = asked->pid;
		opts.ipc = asked->ipc;
	}
	ns.options = &opts;
	linux.namespaces = &ns;

	s.id = id;
	s.metadata = c->metadata;
	s.state = sandboxd_pod_cri_state(&p);
	s.created_at = p.created_at;
	s.network = &net;
	s.linux = &linux;
	/*
	 * Map entries of every CRI message share one layout and one encoding
	 * (key 1, value 2), and protobuf-c packs each entry with its own
	 * descriptor: the config's entries serve as the answer's.
	 */
	s.n_labels = c->n_labels;
	s.labels = (Runtime__V1__PodSandboxStatus__LabelsEntry **)c->labels;
	s.n_annotations = c->n_annotations;
	s.annotations = (Runtime__V1__PodSandboxStatus__AnnotationsEntry **)c->annotations;
	s.runtime_handler = p.handler;

	Runtime__V1__PodSandboxStatusResponse a = RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT;
	a.status = &s;
	Runtime__V1__PodSandboxStatusResponse__InfoEntry info =
		RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__PodSandboxStatusResponse__InfoEntry *infos[1] = { &info };
	_cleanup_free_ char *json = NULL;
	if (q->verbose) {
		json_t *o = json_pack("{s:i, s:s, s:s, s:s, s:s}", "pid", p.pid, "runtimeHandler",
				      p.handler, "cgroupParent", p.cgroup_parent, "netns", p.netns,
				      "state", p.state);
		json = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		info.key = "info";
		info.value = json;
		a.n_info = 1;
		a.info = infos;
	}
	r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	free(extra);
	free(extra_p);
	sandboxd_pod_done(&p);
	return r;
}

int sandboxd_list_pods(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ListPodSandboxRequest *q = (const void *)req->msg;
	const Runtime__V1__PodSandboxFilter *f = q->filter;
	SandboxdPod *pods = NULL;
	size_t n = 0;
	int r = sandboxd_pod_list(sd, &pods, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__PodSandbox *items = xcalloc(n + 1, sizeof(*items));
	Runtime__V1__PodSandbox **ptrs = xcalloc(n + 1, sizeof(*ptrs));
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		SandboxdPod *p = &pods[i];
		Runtime__V1__PodSandboxState state = sandboxd_pod_cri_state(p);
		if (f && f->id && *f->id && strncmp(p->id, f->id, strlen(f->id)) != 0)
			continue;
		if (f && f->state && f->state->state != state)
			continue;
		if (f &&
		    !sandboxd_labels_match(p->config->n_labels, (void *const *)p->config->labels,
					   f->n_label_selector, (void *const *)f->label_selector))
			continue;
		Runtime__V1__PodSandbox *it = &items[k];
		runtime__v1__pod_sandbox__init(it);
		it->id = p->id;
		it->metadata = p->config->metadata;
		it->state = state;
		it->created_at = p->created_at;
		it->n_labels = p->config->n_labels;
		it->labels = (Runtime__V1__PodSandbox__LabelsEntry **)p->config->labels;
		it->n_annotations = p->config->n_annotations;
		it->annotations =
			(Runtime__V1__PodSandbox__AnnotationsEntry **)p->config->annotations;
		it->runtime_handler = p->handler;
		ptrs[k++] = it;
	}
	Runtime__V1__ListPodSandboxResponse a = RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT;
	a.n_items = k;
	a.items = ptrs;
	r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	sandboxd_pods_free(pods, n);
	free(items);
	free(ptrs);
	return r;
}
