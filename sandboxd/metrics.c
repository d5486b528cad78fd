/*
 * metrics.c - ListMetricDescriptors, ListPodSandboxMetrics and
 * UpdatePodSandboxResources.
 *
 * Metrics are the cgroup counters of stats.c under the names cAdvisor uses
 * (so the kubelet's metrics endpoint reads the same series either way),
 * labelled container, pod and namespace, for every running container of
 * every ready pod.  CRI values are integers: CPU comes in whole seconds, as
 * the counter's name says.
 *
 * UpdatePodSandboxResources comes after the kubelet has resized the pod's
 * cgroups itself; sandboxd records the new overhead and resources in the
 * pod's config, so later answers carry them.
 */
#include "cgroups.h"
#include "containers.h"
#include "pods.h"

#include <time.h>

typedef struct MetricDef {
	const char *name, *help;
	Runtime__V1__MetricType type;
} MetricDef;

static const MetricDef metrics[] = {
	{ "container_cpu_usage_seconds_total", "Cumulative CPU time consumed, in seconds",
	  RUNTIME__V1__METRIC_TYPE__COUNTER },
	{ "container_memory_usage_bytes", "Current memory usage, in bytes",
	  RUNTIME__V1__METRIC_TYPE__GAUGE },
	{ "container_memory_working_set_bytes", "Current working set, in bytes",
	  RUNTIME__V1__METRIC_TYPE__GAUGE },
	{ "container_memory_rss", "Size of RSS, in bytes", RUNTIME__V1__METRIC_TYPE__GAUGE },
	{ "container_processes", "Number of processes running inside the container",
	  RUNTIME__V1__METRIC_TYPE__GAUGE },
};
static const char *const label_keys[] = { "container", "pod", "namespace" };

int sandboxd_list_metric_descriptors(CrispRequest *req, void *userdata _unused_,
				     CrispError **err _unused_)
{
	Runtime__V1__MetricDescriptor d[ELEMENTSOF(metrics)];
	Runtime__V1__MetricDescriptor *p[ELEMENTSOF(metrics)];
	for (size_t i = 0; i < ELEMENTSOF(metrics); i++) {
		runtime__v1__metric_descriptor__init(&d[i]);
		d[i].name = (char *)metrics[i].name;
		d[i].help = (char *)metrics[i].help;
		d[i].n_label_keys = ELEMENTSOF(label_keys);
		d[i].label_keys = (char **)label_keys;
		p[i] = &d[i];
	}
	Runtime__V1__ListMetricDescriptorsResponse a =
		RUNTIME__V1__LIST_METRIC_DESCRIPTORS_RESPONSE__INIT;
	a.n_descriptors = ELEMENTSOF(metrics);
	a.descriptors = p;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}

static Runtime__V1__Metric *metric(size_t i, uint64_t value, int64_t now, const char *container,
				   const SandboxdPod *pod)
{
	Runtime__V1__Metric *m = xmalloc(sizeof(*m));
	runtime__v1__metric__init(m);
	m->name = xstrdup(metrics[i].name);
	m->timestamp = now;
	m->metric_type = metrics[i].type;
	m->n_label_values = 3;
	m->label_values = xcalloc(3, sizeof(char *));
	m->label_values[0] = xstrdup(container);
	m->label_values[1] = xstrdup(pod->config->metadata->name);
	m->label_values[2] = xstrdup(pod->config->metadata->namespace_);
	m->value = xmalloc(sizeof(*m->value));
	runtime__v1__uint64_value__init(m->value);
	m->value->value = value;
	return m;
}

static Runtime__V1__ContainerMetrics *container_metrics(Sandboxd *sd, const SandboxdContainer *c,
							const SandboxdPod *pod, int64_t now)
{
	_cleanup_free_ char *cg = sandboxd_container_cgroup(sd, pod->cgroup_parent, c->id);
	CgroupSample s;
	sandboxd_cgroup_read(cg, &s);
	Runtime__V1__ContainerMetrics *cm = xmalloc(sizeof(*cm));
	runtime__v1__container_metrics__init(cm);
	cm->container_id = xstrdup(c->id);
	uint64_t values[] = { s.cpu_ns / 1000000000u, s.mem_usage, s.mem_working_set, s.mem_rss,
			      s.pids };
	cm->metrics = xcalloc(ELEMENTSOF(values), sizeof(*cm->metrics));
	for (size_t i = 0; s.ok && i < ELEMENTSOF(values); i++)
		cm->metrics[cm->n_metrics++] =
			metric(i, values[i], now, c->config->metadata->name, pod);
	return cm;
}

int sandboxd_list_pod_metrics(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	SandboxdPod *pods = NULL;
	size_t n = 0;
	int r = sandboxd_pod_list(sd, &pods, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__ListPodSandboxMetricsResponse *a = xmalloc(sizeof(*a));
	runtime__v1__list_pod_sandbox_metrics_response__init(a);
	a->pod_metrics = xcalloc(n + 1, sizeof(*a->pod_metrics));
	for (size_t i = 0; i < n; i++) {
		SandboxdPod *p = &pods[i];
		if (sandboxd_pod_cri_state(p) != RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY)
			continue;
		Runtime__V1__PodSandboxMetrics *pm = xmalloc(sizeof(*pm));
		runtime__v1__pod_sandbox_metrics__init(pm);
		pm->pod_sandbox_id = xstrdup(p->id);
		SandboxdContainer *cs = NULL;
		size_t nc = 0;
		if (sandboxd_container_list(sd, p->id, &cs, &nc, NULL) == 0) {
			pm->container_metrics = xcalloc(nc + 1, sizeof(*pm->container_metrics));
			for (size_t j = 0; j < nc; j++) {
				sandboxd_container_refresh(sd, &cs[j]);
				if (strcmp(cs[j].state, "running") == 0)
					pm->container_metrics[pm->n_container_metrics++] =
						container_metrics(sd, &cs[j], p, now);
				sandboxd_container_done(&cs[j]);
			}
			free(cs);
		}
		a->pod_metrics[a->n_pod_metrics++] = pm;
	}
	r = crisp_reply(req, req->type + 1, &a->base, NULL, 0);
	protobuf_c_message_free_unpacked(&a->base, NULL);
	sandboxd_pods_free(pods, n);
	return r;
}

int sandboxd_update_pod_resources(CrispRequest *req, void *userdata, CrispError **err)
{
	Sandboxd *sd = sandboxd_of(userdata);
	const Runtime__V1__UpdatePodSandboxResourcesRequest *q = (const void *)req->msg;
	_cleanup_free_ char *id = NULL;
	int r = sandboxd_pod_resolve(sd, q->pod_sandbox_id, &id, err);
	if (r < 0)
		return r;
	sandboxd_pod_claim(sd, id);
	SandboxdPod p = { 0 };
	r = sandboxd_pod_get(sd, id, &p, err);
	if (r == 0) {
		Runtime__V1__LinuxPodSandboxConfig empty =
			RUNTIME__V1__LINUX_POD_SANDBOX_CONFIG__INIT;
		Runtime__V1__LinuxPodSandboxConfig *linux =
			p.config->linux ? p.config->linux : &empty;
		Runtime__V1__LinuxPodSandboxConfig *old_linux = p.config->linux;
		Runtime__V1__LinuxContainerResources *old_res = linux->resources,
						     *old_over = linux->overhead;
		linux->resources = q->resources;
		linux->overhead = q->overhead;
		p.config->linux = linux;
		size_t len = protobuf_c_message_get_packed_size(&p.config->base);
		_cleanup_free_ uint8_t *buf = xmalloc(len + 1);
		protobuf_c_message_pack(&p.config->base, buf);
		linux->resources = old_res;
		linux->overhead = old_over;
		p.config->linux = old_linux;
		pthread_mutex_lock(&sd->lock);
		_cleanup_stmt_ sqlite3_stmt *st = NULL;
		r = crisp_db_prepare(sd->db, "UPDATE pods SET config = ?2 WHERE id = ?1", &st, err);
		if (r == 0) {
			crisp_db_bind_text(st, 1, id);
			sqlite3_bind_blob(st, 2, buf, (int)len, SQLITE_TRANSIENT);
			r = crisp_db_step_done(st, err);
		}
		pthread_mutex_unlock(&sd->lock);
	}
	sandboxd_pod_done(&p);
	sandboxd_pod_release(sd, id);
	if (r < 0)
		return r == -ENOENT
			       ? crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT, "no pod %s", id)
			       : r;
	Runtime__V1__UpdatePodSandboxResourcesResponse a =
		RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
