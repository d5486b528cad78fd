/*
 * stats.c - ContainerStats, ListContainerStats, PodSandboxStats and
 * ListPodSandboxStats, from the cgroups (cgroups.h) and the writable layer.
 *
 * CPU: usage_core_nano_seconds is the cgroup's counter; usage_nano_cores is
 * the rate since the previous sample of the same cgroup (kept here), absent
 * on the first.  Memory: usage, working set (usage less inactive file
 * pages), RSS, page faults, and what is left under the limit.  Writable
 * layer: what the container's upper directory uses.  A pod is the sum of
 * its infra process's and its containers' cgroups, with its process count;
 * its network counters come from netd, which criapi asks (rpc_stats.c).
 *
 * Answers are built with malloc throughout and freed with
 * protobuf_c_message_free_unpacked(..., NULL).
 */
#include "cgroups.h"
#include "containers.h"
#include "fsutil.h"
#include "pods.h"

#include <stdio.h>
#include <time.h>

#define RATE_SLOTS 1024

/* The previous sample of each cgroup, for usage_nano_cores. */
typedef struct Rate {
	char id[65];
	int64_t at_ns;
	uint64_t cpu_ns;
} Rate;

static pthread_mutex_t rate_lock = PTHREAD_MUTEX_INITIALIZER;
static Rate rates[RATE_SLOTS];

static bool nano_cores(const char *id, int64_t now, uint64_t cpu_ns, uint64_t *ret)
{
	unsigned h = 5381;
	for (const char *p = id; *p; p++)
		h = h * 33 + (unsigned char)*p;
	pthread_mutex_lock(&rate_lock);
	Rate *r = &rates[h % RATE_SLOTS];
	bool have = strcmp(r->id, id) == 0 && now > r->at_ns && cpu_ns >= r->cpu_ns;
	if (have)
		*ret = (uint64_t)((double)(cpu_ns - r->cpu_ns) * 1e9 / (double)(now - r->at_ns));
	snprintf(r->id, sizeof(r->id), "%s", id);
	r->at_ns = now;
	r->cpu_ns = cpu_ns;
	pthread_mutex_unlock(&rate_lock);
	return have;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static Runtime__V1__UInt64Value *u64(uint64_t v)
{
	Runtime__V1__UInt64Value *x = xmalloc(sizeof(*x));
	runtime__v1__uint64_value__init(x);
	x->value = v;
	return x;
}

static Runtime__V1__CpuUsage *cpu_of(const char *id, const CgroupSample *s, int64_t now)
{
	Runtime__V1__CpuUsage *c = xmalloc(sizeof(*c));
	runtime__v1__cpu_usage__init(c);
	c->timestamp = now;
	c->usage_core_nano_seconds = u64(s->cpu_ns);
	uint64_t rate;
	if (nano_cores(id, now, s->cpu_ns, &rate))
		c->usage_nano_cores = u64(rate);
	return c;
}

static Runtime__V1__MemoryUsage *memory_of(const CgroupSample *s, int64_t now)
{
	Runtime__V1__MemoryUsage *m = xmalloc(sizeof(*m));
	runtime__v1__memory_usage__init(m);
	m->timestamp = now;
	m->working_set_bytes = u64(s->mem_working_set);
	m->usage_bytes = u64(s->mem_usage);
	m->rss_bytes = u64(s->mem_rss);
	m->page_faults = u64(s->page_faults);
	m->major_page_faults = u64(s->major_page_faults);
	if (s->mem_limit)
		m->available_bytes = u64(
			s->mem_limit > s->mem_working_set ? s->mem_limit - s->mem_working_set : 0);
	return m;
}

/* Copies of the map entries: the answer owns everything it points to. */
static void copy_map(size_t n, Runtime__V1__ContainerConfig__LabelsEntry **from, size_t *ret_n,
		     void ***ret, const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage **v = xcalloc(n + 1, sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		Runtime__V1__ContainerConfig__LabelsEntry *e = xmalloc(d->sizeof_message);
		d->message_init(&e->base);
		e->key = xstrdup(from[i]->key);
		e->value = xstrdup(from[i]->value);
		v[i] = &e->base;
	}
	*ret_n = n;
	*ret = (void **)v;
}

static Runtime__V1__ContainerStats *container_stats(Sandboxd *sd, const SandboxdContainer *c,
						    const char *cgroup_parent,
						    CgroupSample *ret_raw)
{
	int64_t now = now_ns();
	_cleanup_free_ char *cg = sandboxd_container_cgroup(sd, cgroup_parent, c->id);
	CgroupSample s;
	sandboxd_cgroup_read(cg, &s);
	if (ret_raw)
		*ret_raw = s;

	Runtime__V1__ContainerStats *st = xmalloc(sizeof(*st));
	runtime__v1__container_stats__init(st);
	Runtime__V1__ContainerAttributes *a = xmalloc(sizeof(*a));
	runtime__v1__container_attributes__init(a);
	a->id = xstrdup(c->id);
	Runtime__V1__ContainerMetadata *m = xmalloc(sizeof(*m));
	runtime__v1__container_metadata__init(m);
	m->name = xstrdup(c->config->metadata->name);
	m->attempt = c->config->metadata->attempt;
	a->metadata = m;
	copy_map(c->config->n_labels, c->config->labels, &a->n_labels, (void ***)&a->labels,
		 &runtime__v1__container_attributes__labels_entry__descriptor);
	copy_map(c->config->n_annotations,
		 (Runtime__V1__ContainerConfig__LabelsEntry **)c->config->annotations,
		 &a->n_annotations, (void ***)&a->annotations,
		 &runtime__v1__container_attributes__annotations_entry__descriptor);
	st->attributes = a;
	if (s.ok) {
		st->cpu = cpu_of(c->id, &s, now);
		st->memory = memory_of(&s, now);
	}
	if (c->upper_dir && *c->upper_dir) {
		uint64_t bytes = 0, inodes = 0;
		if (crisp_disk_usage(c->upper_dir, &bytes, &inodes) == 0) {
			Runtime__V1__FilesystemUsage *w = xmalloc(sizeof(*w));
			runtime__v1__filesystem_usage__init(w);
			Runtime__V1__FilesystemIdentifier *fs = xmalloc(sizeof(*fs));
			runtime__v1__filesystem_identifier__init(fs);
			fs->mountpoint = xstrdup(c->upper_dir);
			w->timestamp = now;
			w->fs_id = fs;
			w->used_bytes = u64(bytes);
			w->inodes_used = u64(inodes);
			st->writable_layer = w;
		}
	}
	return st;
}

/* The stats of matching containers; running ones only, as the kubelet wants. */
static Runtime__V1__ContainerStats **
containers_stats(Sandboxd *sd, const char *id_prefix, const char *pod_id, size_t n_sel,
		 Runtime__V1__ContainerStatsFilter__LabelSelectorEntry **sel, size_t *ret_n,
		 CgroupSample *sum)
{
	SandboxdContainer *v = NULL;
	size_t n = 0, k = 0;
	Runtime__V1__ContainerStats **out = NULL;
	if (sandboxd_container_list(sd, pod_id, &v, &n, NULL) < 0)
		n = 0;
	out = xcalloc(n + 1, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		SandboxdContainer *c = &v[i];
		sandboxd_container_refresh(sd, c);
		if (strcmp(c->state, "running") != 0)
			continue;
		if (id_prefix && *id_prefix && strncmp(c->id, id_prefix, strlen(id_prefix)) != 0)
			continue;
		if (!sandboxd_labels_match(c->config->n_labels, (void *const *)c->config->labels,
					   n_sel, (void *const *)sel))
			continue;
		SandboxdPod pod = { 0 };
		if (sandboxd_pod_get(sd, c->pod_id, &pod, NULL) < 0)
			continue;
		CgroupSample raw;
		out[k++] = container_stats(sd, c, pod.cgroup_parent, &raw);
		if (sum)
			sandboxd_cgroup_add(sum, &raw);
		sandboxd_pod_done(&pod);
	}
	sandboxd_containers_free(v, n);
	*ret_n = k;
	return out;
}

int sandboxd_container_stats(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ContainerStatsRequest *q = (const void *)req->msg;
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_container_resolve(sd, q->container_id, &id, err);
	if (r < 0)
		return r;
	SandboxdContainer c = { 0 };
	SandboxdPod pod = { 0 };
	if ((r = sandboxd_container_get(sd, id, &c, err)) < 0 ||
	    (r = sandboxd_pod_get(sd, c.pod_id, &pod, err)) < 0) {
		sandboxd_container_done(&c);
		return r == -ENOENT ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
						      "no container %s", id)
				    : r;
	}
	Runtime__V1__ContainerStatsResponse *a = xmalloc(sizeof(*a));
	runtime__v1__container_stats_response__init(a);
	a->stats = container_stats(sd, &c, pod.cgroup_parent, NULL);
	r = crisp_reply(req, req->type + 1, &a->base, NULL, 0);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	sandboxd_container_done(&c);
	sandboxd_pod_done(&pod);
	return r;
}

int sandboxd_list_container_stats(CrispRequest *req, void *userdata, CrispError **err _unused_)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ListContainerStatsRequest *q = (const void *)req->msg;
	const Runtime__V1__ContainerStatsFilter *f = q->filter;
	Runtime__V1__ListContainerStatsResponse *a = xmalloc(sizeof(*a));
	runtime__v1__list_container_stats_response__init(a);
	a->stats = containers_stats(
		sd, f ? f->id : NULL,
		f && f->pod_sandbox_id && *f->pod_sandbox_id ? f->pod_sandbox_id : NULL,
		f ? f->n_label_selector : 0, f ? f->label_selector : NULL, &a->n_stats, NULL);
	int r = crisp_reply(req, req->type + 1, &a->base, NULL, 0);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	return r;
}

static Runtime__V1__PodSandboxStats *pod_stats(Sandboxd *sd, const SandboxdPod *p)
{
	int64_t now = now_ns();
	Runtime__V1__PodSandboxStats *st = xmalloc(sizeof(*st));
	runtime__v1__pod_sandbox_stats__init(st);
	Runtime__V1__PodSandboxAttributes *a = xmalloc(sizeof(*a));
	runtime__v1__pod_sandbox_attributes__init(a);
	a->id = xstrdup(p->id);
	Runtime__V1__PodSandboxMetadata *m = xmalloc(sizeof(*m));
	runtime__v1__pod_sandbox_metadata__init(m);
	m->name = xstrdup(p->config->metadata->name);
	m->uid = xstrdup(p->config->metadata->uid);
	m->namespace_ = xstrdup(p->config->metadata->namespace_);
	m->attempt = p->config->metadata->attempt;
	a->metadata = m;
	copy_map(p->config->n_labels,
		 (Runtime__V1__ContainerConfig__LabelsEntry **)p->config->labels, &a->n_labels,
		 (void ***)&a->labels,
		 &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor);
	copy_map(p->config->n_annotations,
		 (Runtime__V1__ContainerConfig__LabelsEntry **)p->config->annotations,
		 &a->n_annotations, (void ***)&a->annotations,
		 &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor);
	st->attributes = a;

	Runtime__V1__LinuxPodSandboxStats *l = xmalloc(sizeof(*l));
	runtime__v1__linux_pod_sandbox_stats__init(l);
	_cleanup_free_ char *infra = sandboxd_container_cgroup(sd, p->cgroup_parent, p->id);
	CgroupSample sum;
	sandboxd_cgroup_read(infra, &sum);
	l->containers = containers_stats(sd, NULL, p->id, 0, NULL, &l->n_containers, &sum);
	if (sum.ok) {
		l->cpu = cpu_of(p->id, &sum, now);
		l->memory = memory_of(&sum, now);
		Runtime__V1__ProcessUsage *pu = xmalloc(sizeof(*pu));
		runtime__v1__process_usage__init(pu);
		pu->timestamp = now;
		pu->process_count = u64(sum.pids);
		l->process = pu;
	}
	st->linux = l;
	return st;
}

int sandboxd_pod_stats(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__PodSandboxStatsRequest *q = (const void *)req->msg;
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_pod_resolve(sd, q->pod_sandbox_id, &id, err);
	if (r < 0)
		return r;
	SandboxdPod p = { 0 };
	if ((r = sandboxd_pod_get(sd, id, &p, err)) < 0)
		return r == -ENOENT
			       ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "no pod %s", id)
			       : r;
	Runtime__V1__PodSandboxStatsResponse *a = xmalloc(sizeof(*a));
	runtime__v1__pod_sandbox_stats_response__init(a);
	a->stats = pod_stats(sd, &p);
	r = crisp_reply(req, req->type + 1, &a->base, NULL, 0);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	sandboxd_pod_done(&p);
	return r;
}

int sandboxd_list_pod_stats(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__ListPodSandboxStatsRequest *q = (const void *)req->msg;
	const Runtime__V1__PodSandboxStatsFilter *f = q->filter;
	SandboxdPod *pods = NULL;
	size_t n = 0;
	int r = sandboxd_pod_list(sd, &pods, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__ListPodSandboxStatsResponse *a = xmalloc(sizeof(*a));
	runtime__v1__list_pod_sandbox_stats_response__init(a);
	a->stats = xcalloc(n + 1, sizeof(*a->stats));
	for (size_t i = 0; i < n; i++) {
		SandboxdPod *p = &pods[i];
		bool ready =
			sandboxd_pod_cri_state(p) == RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY;
		if (!ready || (f && f->id && *f->id && strncmp(p->id, f->id, strlen(f->id)) != 0))
			continue;
		if (f &&
		    !sandboxd_labels_match(p->config->n_labels, (void *const *)p->config->labels,
					   f->n_label_selector, (void *const *)f->label_selector))
			continue;
		a->stats[a->n_stats++] = pod_stats(sd, p);
	}
	r = crisp_reply(req, req->type + 1, &a->base, NULL, 0);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	sandboxd_pods_free(pods, n);
	return r;
}
