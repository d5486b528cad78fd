/*
 * oci_pod.h - the OCI spec of a pod's infra process, and the node policy
 * a pod config must meet (sysctls).
 */
#ifndef CRISP_SANDBOXD_OCI_POD_H
#define CRISP_SANDBOXD_OCI_POD_H

#include "api.pb-c.h"
#include "sandboxd.h"

#include <jansson.h>

/* What the spec needs besides the CRI config; every path is sandboxd's own. */
typedef struct PodSpecInput {
	const char *pod_id;
	const char *hostname;
	const char *netns;	  /* the pin, or NULL for the host's network */
	const char *shm;	  /* the pod's /dev/shm tmpfs, or NULL with the host's IPC */
	const char *etc_dir;	  /* holds hostname, hosts, resolv.conf */
	const char *cgroups_path; /* in the driver's syntax */
	int oom_score_adj;
} PodSpecInput;

/* True when the pod asked for the host's namespace of that kind. */
bool sandboxd_pod_uses_host(const Runtime__V1__PodSandboxConfig *c, char kind);

/*
 * Checks the pod's sysctls: each name allowed by [runtime] allowed_sysctls
 * (or the built-in safe set), in a namespace the pod has of its own (net.*
 * needs its own network, kernel.shm*, kernel.msg*, kernel.sem and
 * fs.mqueue.* its own IPC), and made only of [a-z0-9_-] parts separated by
 * dots (or by slashes, when a part holds a dot), with no empty part; each
 * value printable, without newline, at most 256 bytes.
 */
int sandboxd_check_sysctls(const CrispConfig *cfg, const Runtime__V1__PodSandboxConfig *c,
			   CrispError **err);

json_t *sandboxd_pod_spec(Sandboxd *sd, const Runtime__V1__PodSandboxConfig *c,
			  const PodSpecInput *in);

#endif
