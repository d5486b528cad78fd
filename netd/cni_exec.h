/*
 * cni_exec.h - running CNI plugins for a pod, through netd's spawn helper.
 *
 * A network (a conflist) is added by running its plugins in order, each
 * given the previous one's result as prevResult, and deleted by running them
 * in reverse with the cached result.  Each plugin gets its config on stdin:
 * the plugin's own object plus the list's name and cniVersion, and a
 * runtimeConfig holding only the capabilities the plugin declares
 * ("capabilities": {"portMappings": true}) for which the pod has values.
 * Its stdout (at most 1 MiB) is its result or its error, whose message
 * becomes ours.  A plugin that runs longer than [cni] plugin_timeout is
 * killed.
 */
#ifndef CRISP_NETD_CNI_EXEC_H
#define CRISP_NETD_CNI_EXEC_H

#include "netd.h"

#include <jansson.h>

#define NETD_CNI_OUTPUT_MAX (1024 * 1024)

/* What a plugin run needs besides the config: the pod and its runtime values. */
typedef struct NetdCniPod {
	const char *pod_id;
	const char *ifname;
	const char *cni_args;  /* "IgnoreUnknown=1;K8S_POD_NAMESPACE=...;..." */
	const json_t *runtime; /* capability name -> value */
} NetdCniPod;

/* ADD of one network; *ret_result is the last plugin's result. */
int netd_cni_add(Netd *nd, const json_t *list, const NetdCniPod *pod, json_t **ret_result,
		 CrispError **err);
/* DEL of one network; prev_result (may be NULL) is what ADD returned. */
int netd_cni_del(Netd *nd, const json_t *list, const NetdCniPod *pod, const json_t *prev_result,
		 CrispError **err);
/*
 * CHECK of one network, with what ADD returned: skipped (0) for networks
 * older than CNI 0.4.0 and for ones that set "disableCheck".
 */
int netd_cni_check(Netd *nd, const json_t *list, const NetdCniPod *pod, const json_t *prev_result,
		   CrispError **err);
/* STATUS of one network (CNI 1.1); networks of older versions are ready. */
int netd_cni_status(Netd *nd, const json_t *list, CrispError **err);

/* The IPs (without prefix length) a result gives the pod, and the interface. */
int netd_cni_result_ips(const json_t *result, char ***ret_ips, char **ret_ifname, CrispError **err);

#endif
