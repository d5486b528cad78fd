/*
 * pods.c - pods' networks: the namespace, CNI ADD and DEL, addresses and
 * counters, and dialing into the pod for port-forward.
 *
 * Every request names a pod by an ID of 64 hex digits, and every verb but
 * NetnsCreate acts only on a pod netd recorded: a namespace netd never made
 * is refused (NOT_FOUND), and paths come from netd's pins dir and that ID.
 * Intent goes first: the pod row before the pin, an attachment row (with
 * the config and values ADD uses) before its ADD, so that a crash leaves
 * what start-up and teardown can finish.  Work on one pod is serialized.
 */
#include "netd.h"

#include "cni_exec.h"
#include "ipc_types.h"
#include "log.h"
#include "netns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <time.h>

/* --- per-pod serialization --- */

static void pod_claim(Netd *nd, const char *id)
{
	_cleanup_free_ char *key = xasprintf("pod:%s", id);
	crisp_inflight_take(&nd->busy, &nd->lock, key);
}

static void pod_release(Netd *nd, const char *id)
{
	_cleanup_free_ char *key = xasprintf("pod:%s", id);
	crisp_inflight_put(&nd->busy, &nd->lock, key);
}

/* --- database, each call under nd->lock --- */

static int exec_locked(Netd *nd, const char *sql, CrispError **err, const char *a, const char *b)
{
	pthread_mutex_lock(&nd->lock);
	sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(nd->db, sql, &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, a);
		if (b)
			crisp_db_bind_text(st, 2, b);
		r = crisp_db_step_done(st, err);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&nd->lock);
	return r;
}

/* The pod's state ("created", "attached"), or NULL when netd does not know it. */
static int pod_state(Netd *nd, const char *id, char **ret, CrispError **err)
{
	pthread_mutex_lock(&nd->lock);
	sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(nd->db, "SELECT state FROM pods WHERE pod_id = ?1", &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		r = crisp_db_step(st, err);
		*ret = r > 0 ? crisp_db_column_strdup(st, 0) : NULL;
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&nd->lock);
	return r < 0 ? r : 0;
}

typedef struct Attachment {
	int64_t idx;
	char *network, *ifname, *cni_args;
	json_t *config, *runtime, *result;
} Attachment;

static void attachments_free(Attachment *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].network);
		free(v[i].ifname);
		free(v[i].cni_args);
		json_decref(v[i].config);
		json_decref(v[i].runtime);
		json_decref(v[i].result);
	}
	free(v);
}

static json_t *column_json(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);
	return s ? json_loads(s, 0, NULL) : NULL;
}

static int load_attachments(Netd *nd, const char *id, Attachment **ret, size_t *ret_n,
			    CrispError **err)
{
	pthread_mutex_lock(&nd->lock);
	sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(nd->db,
				 "SELECT idx, network, ifname, cni_args, config, runtime, result"
				 " FROM attachments WHERE pod_id = ?1 ORDER BY idx",
				 &st, err);
	Attachment *v = NULL;
	size_t n = 0;
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		while ((r = crisp_db_step(st, err)) > 0) {
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = (Attachment){
				.idx = sqlite3_column_int64(st, 0),
				.network = crisp_db_column_strdup(st, 1),
				.ifname = crisp_db_column_strdup(st, 2),
				.cni_args = crisp_db_column_strdup(st, 3),
				.config = column_json(st, 4),
				.runtime = column_json(st, 5),
				.result = column_json(st, 6),
			};
		}
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&nd->lock);
	if (r < 0) {
		attachments_free(v, n);
		return r;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int insert_attachment(Netd *nd, const char *id, size_t idx, const json_t *list,
			     const char *ifname, const char *cni_args, const json_t *runtime,
			     CrispError **err)
{
	_cleanup_free_ char *config = json_dumps(list, JSON_COMPACT);
	_cleanup_free_ char *rt = json_dumps(runtime, JSON_COMPACT);
	pthread_mutex_lock(&nd->lock);
	sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(nd->db,
				 "INSERT INTO attachments(pod_id, idx, network, ifname, cni_args,"
				 " config, runtime) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
				 &st, err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)idx);
		crisp_db_bind_text(st, 3, netd_network_name(list));
		crisp_db_bind_text(st, 4, ifname);
		crisp_db_bind_text(st, 5, cni_args);
		crisp_db_bind_text(st, 6, config);
		crisp_db_bind_text(st, 7, rt);
		r = crisp_db_step_done(st, err);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&nd->lock);
	return r;
}

static int set_result(Netd *nd, const char *id, size_t idx, const json_t *result, CrispError **err)
{
	_cleanup_free_ char *text = json_dumps(result, JSON_COMPACT);
	pthread_mutex_lock(&nd->lock);
	sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(
		nd->db, "UPDATE attachments SET result = ?3 WHERE pod_id = ?1 AND idx = ?2", &st,
		err);
	if (r == 0) {
		crisp_db_bind_text(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)idx);
		crisp_db_bind_text(st, 3, text);
		r = crisp_db_step_done(st, err);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&nd->lock);
	return r;
}

/* --- checks of request fields --- */

static int check_pod_id(const char *id, CrispError **err)
{
	if (!netd_pod_id_is_valid(id))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "pod_id \"%.80s\" is not 64 lowercase hex digits",
				       id ? id : "");
	return 0;
}

/* Pod metadata goes into CNI_ARGS: only what cannot end or add a key. */
static int check_meta(const char *what, const char *s, CrispError **err)
{
	if (strlen(s) > 253)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s is too long", what);
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "%s \"%.80s\" has a character other than letters, "
					       "digits, '.', '_' and '-'",
					       what, s);
	return 0;
}

static bool valid_ip(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* "10M", "1G", "100k", "1Mi": a Kubernetes quantity of bits per second. */
static int parse_rate(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || v <= 0)
		return -EINVAL;
	static const struct {
		const char *suffix;
		double mult;
	} units[] = { { "", 1 },	   { "k", 1e3 },	   { "M", 1e6 },
		      { "G", 1e9 },	   { "T", 1e12 },	   { "Ki", 1024.0 },
		      { "Mi", 1048576.0 }, { "Gi", 1073741824.0 }, { "Ti", 1099511627776.0 } };
	for (size_t i = 0; i < ELEMENTSOF(units); i++)
		if (strcmp(end, units[i].suffix) == 0 && v * units[i].mult < 9e18) {
			*ret = (int64_t)(v * units[i].mult);
			return 0;
		}
	return -EINVAL;
}

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* The capability values a pod offers its plugins, from the request. */
static int runtime_values(Netd *nd, const Crisp__NetworkAttachRequest *q, json_t **ret,
			  CrispError **err)
{
	json_t *rt = json_object();
	json_t *ports = json_array();
	for (size_t i = 0; i < q->n_port_mappings; i++) {
		const Crisp__PortMapping *m = q->port_mappings[i];
		const char *proto = m->protocol && *m->protocol ? m->protocol : "tcp";
		if (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "sctp"))
			goto bad_port;
		if (m->container_port < 1 || m->container_port > 65535 || m->host_port < 0 ||
		    m->host_port > 65535 || (m->host_ip && *m->host_ip && !valid_ip(m->host_ip)))
			goto bad_port;
		if (m->host_port == 0)
			continue; /* no host port: nothing for portmap to do */
		json_array_append_new(ports,
				      json_pack("{s:i, s:i, s:s, s:s}", "hostPort", m->host_port,
						"containerPort", m->container_port, "protocol",
						proto, "hostIP", m->host_ip ? m->host_ip : ""));
		continue;
	bad_port:
		json_decref(ports);
		json_decref(rt);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "port mapping %zu (%s %d -> %d on \"%.40s\") is not valid",
				       i, proto, m->host_port, m->container_port,
				       m->host_ip ? m->host_ip : "");
	}
	json_object_set_new(rt, "portMappings", ports);
	if (q->n_dns_servers || q->n_dns_searches || q->n_dns_options)
		json_object_set_new(
			rt, "dns",
			json_pack("{s:o, s:o, s:o}", "servers",
				  strv_json(q->dns_servers, q->n_dns_servers), "searches",
				  strv_json(q->dns_searches, q->n_dns_searches), "options",
				  strv_json(q->dns_options, q->n_dns_options)));
	if (q->cgroup_parent && *q->cgroup_parent)
		json_object_set_new(rt, "cgroupPath", json_string(q->cgroup_parent));
	int64_t in = 0, out = 0;
	if ((q->ingress_bandwidth && *q->ingress_bandwidth &&
	     parse_rate(q->ingress_bandwidth, &in) < 0) ||
	    (q->egress_bandwidth && *q->egress_bandwidth &&
	     parse_rate(q->egress_bandwidth, &out) < 0)) {
		json_decref(rt);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "bandwidth \"%.40s\"/\"%.40s\" is not a quantity",
				       q->ingress_bandwidth, q->egress_bandwidth);
	}
	if (in || out) {
		/* The bandwidth plugin wants a burst too; as large as it takes. */
		json_t *bw = json_object();
		if (in) {
			json_object_set_new(bw, "ingressRate", json_integer(in));
			json_object_set_new(bw, "ingressBurst", json_integer(INT32_MAX));
		}
		if (out) {
			json_object_set_new(bw, "egressRate", json_integer(out));
			json_object_set_new(bw, "egressBurst", json_integer(INT32_MAX));
		}
		json_object_set_new(rt, "bandwidth", bw);
	}
	/* The kubelet's pod CIDR (UpdateRuntimeConfig), for host-local's ipRanges. */
	pthread_mutex_lock(&nd->lock);
	sqlite3_stmt *st = NULL;
	if (crisp_db_prepare(nd->db, "SELECT value FROM meta WHERE key = 'pod_cidr'", &st, NULL) ==
		    0 &&
	    sqlite3_step(st) == SQLITE_ROW) {
		_cleanup_free_ char *cidrs = crisp_db_column_strdup(st, 0);
		json_t *ranges = json_array();
		for (char *save = NULL, *c = strtok_r(cidrs, ",", &save); c;
		     c = strtok_r(NULL, ",", &save))
			json_array_append_new(ranges, json_pack("[{s:s}]", "subnet", c));
		if (json_array_size(ranges))
			json_object_set_new(rt, "ipRanges", ranges);
		else
			json_decref(ranges);
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&nd->lock);
	*ret = rt;
	return 0;
}

/* --- NetnsCreate --- */

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int netd_netns_create_handler(CrispRequest *req, void *userdata, CrispError **err)
{
	Netd *nd = netd_of(userdata);
	const Crisp__NetnsCreateRequest *q = (const void *)req->msg;
	int r = check_pod_id(q->pod_id, err);
	if (r < 0)
		return r;
	pod_claim(nd, q->pod_id);
	_cleanup_free_ char *state = NULL;
	r = pod_state(nd, q->pod_id, &state, err);
	if (r == 0 && state)
		r = crisp_error_set(err, CRISP_ERR_ALREADY_EXISTS, EEXIST,
				    "pod %s already has a network namespace", q->pod_id);
	if (r == 0) {
		_cleanup_free_ char *now = xasprintf("%lld", (long long)now_ns());
		r = exec_locked(
			nd, "INSERT INTO pods(pod_id, state, created_at) VALUES(?1, 'created', ?2)",
			err, q->pod_id, now);
	}
	if (r == 0) {
		r = netd_netns_create(nd->pins_dir, q->pod_id, err);
		if (r < 0)
			(void)exec_locked(nd, "DELETE FROM pods WHERE pod_id = ?1", NULL, q->pod_id,
					  NULL);
	}
	pod_release(nd, q->pod_id);
	if (r < 0)
		return r;
	_cleanup_free_ char *path = xasprintf("%s/%s", nd->pins_dir, q->pod_id);
	log_info("pod %s: network namespace %s", q->pod_id, path);
	Crisp__NetnsCreateReply a = CRISP__NETNS_CREATE_REPLY__INIT;
	a.path = path;
	return crisp_reply(req, CRISP_MSG_NETD_NETNS_CREATE_ANS, &a.base, NULL, 0);
}

/* --- Attach --- */

static char *ifname_for(size_t i)
{
	return i == 0 ? xstrdup("lo") : i == 1 ? xstrdup("eth0") : xasprintf("net%zu", i - 1);
}

/* DEL of attachments [0, n) in reverse, with what ADD left; errors are logged. */
static void undo(Netd *nd, const char *id, const json_t *const *lists, json_t *const *results,
		 size_t n, const char *cni_args, const json_t *runtime)
{
	for (size_t i = n; i-- > 0;) {
		_cleanup_free_ char *ifname = ifname_for(i);
		NetdCniPod pod = { id, ifname, cni_args, runtime };
		CrispError *e = NULL;
		if (netd_cni_del(nd, lists[i], &pod, results[i], &e) < 0) {
			log_warning("pod %s: undoing network %s: %s", id,
				    netd_network_name(lists[i]), e->message);
			crisp_error_free(e);
		}
	}
	(void)exec_locked(nd, "DELETE FROM attachments WHERE pod_id = ?1", NULL, id, NULL);
}

static int attach(Netd *nd, const Crisp__NetworkAttachRequest *q, char ***ret_ips,
		  char **ret_ifname, CrispError **err)
{
	_cleanup_free_ char *state = NULL;
	int r = pod_state(nd, q->pod_id, &state, err);
	if (r < 0)
		return r;
	if (!state)
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "netd made no network namespace for pod %s", q->pod_id);
	if (strcmp(state, "attached") == 0)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EEXIST,
				       "pod %s is attached to its networks already", q->pod_id);
	if (!netd_netns_exists(nd->pins_dir, q->pod_id))
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, ENOENT,
				       "pod %s has lost its network namespace", q->pod_id);
	json_t *runtime = NULL;
	if ((r = runtime_values(nd, q, &runtime, err)) < 0)
		return r;
	_cleanup_free_ char *cni_args =
		xasprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
			  "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
			  q->namespace_, q->name, q->pod_id, q->uid);

	NetdNetworks *nets = netd_current_networks(nd);
	size_t n = nets->n + 1;
	json_t **lists = xcalloc(n, sizeof(json_t *));
	json_t **results = xcalloc(n, sizeof(json_t *));
	lists[0] = netd_loopback_network();
	for (size_t i = 1; i < n; i++)
		lists[i] = json_incref(nets->lists[i - 1]);
	if (nets->n == 0)
		r = crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, ENOENT, "%s",
				    nets->problem);
	netd_networks_unref(nets);

	size_t done = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		_cleanup_free_ char *ifname = ifname_for(i);
		NetdCniPod pod = { q->pod_id, ifname, cni_args, runtime };
		r = insert_attachment(nd, q->pod_id, i, lists[i], ifname, cni_args, runtime, err);
		if (r == 0) {
			done = i + 1; /* a failed ADD gets its DEL too, as the spec asks */
			r = netd_cni_add(nd, lists[i], &pod, &results[i], err);
		}
		if (r == 0)
			r = set_result(nd, q->pod_id, i, results[i], err);
	}
	if (r == 0 && n > 1)
		r = netd_cni_result_ips(results[1], ret_ips, ret_ifname, err);
	if (r == 0)
		r = exec_locked(nd, "UPDATE pods SET state = 'attached' WHERE pod_id = ?1", err,
				q->pod_id, NULL);
	if (r < 0 && done)
		undo(nd, q->pod_id, (const json_t *const *)lists, results, done, cni_args, runtime);
	for (size_t i = 0; i < n; i++) {
		json_decref(lists[i]);
		json_decref(results[i]);
	}
	free(lists);
	free(results);
	json_decref(runtime);
	return r;
}

int netd_attach_handler(CrispRequest *req, void *userdata, CrispError **err)
{
	Netd *nd = netd_of(userdata);
	const Crisp__NetworkAttachRequest *q = (const void *)req->msg;
	int r = check_pod_id(q->pod_id, err);
	if (r == 0)
		r = check_meta("metadata.name", q->name, err);
	if (r == 0)
		r = check_meta("metadata.namespace", q->namespace_, err);
	if (r == 0)
		r = check_meta("metadata.uid", q->uid, err);
	if (r < 0)
		return r;
	_cleanup_strv_free_ char **ips = NULL;
	_cleanup_free_ char *ifname = NULL;
	pod_claim(nd, q->pod_id);
	r = attach(nd, q, &ips, &ifname, err);
	pod_release(nd, q->pod_id);
	if (r < 0)
		return crisp_error_wrap(err, "pod %s", q->pod_id);
	log_info("pod %s: attached, %s", q->pod_id, ips && ips[0] ? ips[0] : "no address");
	Crisp__NetworkAttachReply a = CRISP__NETWORK_ATTACH_REPLY__INIT;
	a.n_ips = strv_length(ips);
	a.ips = ips;
	a.interface = ifname ? ifname : "";
	return crisp_reply(req, CRISP_MSG_NETD_ATTACH_ANS, &a.base, NULL, 0);
}

/* --- Teardown --- */

static int teardown(Netd *nd, const char *id, bool keep_netns, CrispError **err)
{
	_cleanup_free_ char *state = NULL;
	int r = pod_state(nd, id, &state, err);
	if (r < 0 || !state)
		return r; /* a pod netd does not know is torn down already */
	Attachment *att = NULL;
	size_t n = 0;
	if ((r = load_attachments(nd, id, &att, &n, err)) < 0)
		return r;
	/* Every network gets its DEL; the first failure is reported and the rows stay for a retry. */
	int first = 0;
	for (size_t i = n; i-- > 0;) {
		NetdCniPod pod = { id, att[i].ifname, att[i].cni_args, att[i].runtime };
		CrispError *one = NULL;
		int k = att[i].config ? netd_cni_del(nd, att[i].config, &pod, att[i].result, &one)
				      : 0;
		if (k < 0 && first == 0) {
			first = k;
			crisp_error_move(err, &one);
		}
		crisp_error_free(one);
	}
	attachments_free(att, n);
	if (first < 0)
		return first;
	r = exec_locked(nd, "DELETE FROM attachments WHERE pod_id = ?1", err, id, NULL);
	if (r == 0 && keep_netns)
		return exec_locked(nd, "UPDATE pods SET state = 'created' WHERE pod_id = ?1", err,
				   id, NULL);
	if (r == 0)
		r = netd_netns_remove(nd->pins_dir, id, err);
	if (r == 0)
		r = exec_locked(nd, "DELETE FROM pods WHERE pod_id = ?1", err, id, NULL);
	return r;
}

int netd_teardown_handler(CrispRequest *req, void *userdata, CrispError **err)
{
	Netd *nd = netd_of(userdata);
	const Crisp__NetworkTeardownRequest *q = (const void *)req->msg;
	int r = check_pod_id(q->pod_id, err);
	if (r < 0)
		return r;
	pod_claim(nd, q->pod_id);
	r = teardown(nd, q->pod_id, q->keep_netns, err);
	pod_release(nd, q->pod_id);
	if (r < 0)
		return crisp_error_wrap(err, "tearing down the network of pod %s", q->pod_id);
	log_info("pod %s: network torn down%s", q->pod_id,
		 q->keep_netns ? " (namespace kept)" : "");
	Crisp__NetworkTeardownReply a = CRISP__NETWORK_TEARDOWN_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_NETD_TEARDOWN_ANS, &a.base, NULL, 0);
}

/* --- PodNetwork --- */

int netd_pod_network_handler(CrispRequest *req, void *userdata, CrispError **err)
{
	Netd *nd = netd_of(userdata);
	const Crisp__PodNetworkRequest *q = (const void *)req->msg;
	int r = check_pod_id(q->pod_id, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *state = NULL;
	if ((r = pod_state(nd, q->pod_id, &state, err)) < 0)
		return r;
	if (!state)
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "netd has no network for pod %s", q->pod_id);
	Attachment *att = NULL;
	size_t n = 0;
	if ((r = load_attachments(nd, q->pod_id, &att, &n, err)) < 0)
		return r;
	_cleanup_strv_free_ char **ips = NULL;
	_cleanup_free_ char *ifname = NULL;
	if (n > 1 && att[1].result)
		r = netd_cni_result_ips(att[1].result, &ips, &ifname, err);
	for (size_t i = 0; r == 0 && q->check && i < n; i++) {
		NetdCniPod pod = { q->pod_id, att[i].ifname, att[i].cni_args, att[i].runtime };
		if (att[i].config && att[i].result)
			r = netd_cni_check(nd, att[i].config, &pod, att[i].result, err);
	}
	attachments_free(att, n);
	if (r < 0)
		return r;

	bool exists = netd_netns_exists(nd->pins_dir, q->pod_id);
	_cleanup_free_ char *path = exists ? xasprintf("%s/%s", nd->pins_dir, q->pod_id) : NULL;
	NetdLinkStats *stats = NULL;
	size_t n_stats = 0;
	if (q->stats && exists &&
	    (r = netd_netns_link_stats(nd->pins_dir, q->pod_id, &stats, &n_stats, err)) < 0)
		return r;
	Crisp__InterfaceStats *is = xcalloc(n_stats + 1, sizeof(*is));
	Crisp__InterfaceStats **isp = xcalloc(n_stats + 1, sizeof(*isp));
	for (size_t i = 0; i < n_stats; i++) {
		crisp__interface_stats__init(&is[i]);
		is[i].name = stats[i].name;
		is[i].rx_bytes = stats[i].rx_bytes;
		is[i].rx_packets = stats[i].rx_packets;
		is[i].rx_errors = stats[i].rx_errors;
		is[i].tx_bytes = stats[i].tx_bytes;
		is[i].tx_packets = stats[i].tx_packets;
		is[i].tx_errors = stats[i].tx_errors;
		isp[i] = &is[i];
	}
	Crisp__PodNetworkReply a = CRISP__POD_NETWORK_REPLY__INIT;
	a.netns_path = path ? path : "";
	a.n_ips = strv_length(ips);
	a.ips = ips;
	a.interface = ifname ? ifname : "";
	a.n_interfaces = n_stats;
	a.interfaces = isp;
	r = crisp_reply(req, CRISP_MSG_NETD_POD_NETWORK_ANS, &a.base, NULL, 0);
	free(is);
	free(isp);
	free(stats);
	return r;
}

/* --- port-forward --- */

int netd_dial_handler(CrispRequest *req, void *userdata, CrispError **err)
{
	Netd *nd = netd_of(userdata);
	const Crisp__PortForwardDialRequest *q = (const void *)req->msg;
	int r = check_pod_id(q->pod_id, err);
	if (r < 0)
		return r;
	if (q->port < 1 || q->port > 65535)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "port %d is not 1 to 65535",
				       q->port);
	_cleanup_free_ char *state = NULL;
	if ((r = pod_state(nd, q->pod_id, &state, err)) < 0)
		return r;
	if (!state)
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "netd made no network namespace for pod %s", q->pod_id);
	_cleanup_close_ int fd = -1;
	if ((r = netd_netns_dial(nd->pins_dir, q->pod_id, q->port, &fd, err)) < 0)
		return crisp_error_wrap(err, "pod %s", q->pod_id);
	Crisp__PortForwardDialReply a = CRISP__PORT_FORWARD_DIAL_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_NETD_DIAL_ANS, &a.base, &fd, 1);
}
