/*
 * status.c - network readiness and the pod CIDR.
 *
 * Pod networking is ready when netd has at least one usable network config
 * loaded (cni_config.h: the reasons a file is skipped are in the message
 * when none is left), and every loaded network of CNI 1.1 answers STATUS
 * without error.
 */
#include "netd.h"

#include "cni_exec.h"
#include "ipc_types.h"

#include <arpa/inet.h>

int netd_network_status(CrispRequest *req, void *userdata, CrispError **err _unused_)
{
	Netd *nd = netd_of(userdata);
	Crisp__NetworkStatusReply a = CRISP__NETWORK_STATUS_REPLY__INIT;
	_cleanup_strv_free_ char **names = NULL;
	_cleanup_free_ char *message = NULL;

	NetdNetworks *nets = netd_current_networks(nd);
	for (size_t i = 0; i < nets->n; i++)
		strv_push(&names, netd_network_name(nets->lists[i]));
	if (nets->n == 0)
		message = xstrdup(nets->problem);
	/* A network of CNI 1.1 may say it is not ready (STATUS). */
	for (size_t i = 0; !message && i < nets->n; i++) {
		CrispError *e = NULL;
		if (netd_cni_status(nd, nets->lists[i], &e) < 0) {
			message = xstrdup(e->message);
			crisp_error_free(e);
		}
	}
	netd_networks_unref(nets);

	a.ready = message == NULL;
	if (!a.ready) {
		a.reason = (char *)"NetworkPluginNotReady";
		a.message = message;
	}
	a.n_networks = strv_length(names);
	a.networks = names;
	return crisp_reply(req, CRISP_MSG_NETD_STATUS_ANS, &a.base, NULL, 0);
}

static bool valid_cidr(const char *s)
{
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char buf[sizeof(struct in6_addr)];
	const char *slash = strchr(s, '/');
	char *end;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return false;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	errno = 0;
	long prefix = strtol(slash + 1, &end, 10);
	if (errno || *end || end == slash + 1)
		return false;
	if (inet_pton(AF_INET, addr, buf) == 1)
		return prefix >= 0 && prefix <= 32;
	if (inet_pton(AF_INET6, addr, buf) == 1)
		return prefix >= 0 && prefix <= 128;
	return false;
}

int netd_set_pod_cidr(CrispRequest *req, void *userdata, CrispError **err)
{
	Netd *nd = netd_of(userdata);
	const Crisp__PodCidrRequest *m = (const Crisp__PodCidrRequest *)req->msg;
	_cleanup_free_ char *joined = xstrdup("");

	if (m->n_cidrs > 2)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "at most two pod CIDRs (one per address family), got %zu",
				       m->n_cidrs);
	for (size_t i = 0; i < m->n_cidrs; i++) {
		if (!valid_cidr(m->cidrs[i]))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "pod CIDR \"%s\" is not an IP prefix", m->cidrs[i]);
		char *next = xasprintf("%s%s%s", joined, i ? "," : "", m->cidrs[i]);
		free(joined);
		joined = next;
	}

	/* Kept for the CNI layer, which hands it to IPAM as the pod range. */
	int r = crisp_db_meta_set(nd->db, "pod_cidr", joined, err);
	if (r < 0)
		return crisp_error_wrap(err, "storing the pod CIDR");

	Crisp__PodCidrReply a = CRISP__POD_CIDR_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_NETD_POD_CIDR_ANS, &a.base, NULL, 0);
}
