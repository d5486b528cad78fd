/*
 * netd/profile.c - what crisp-netd may do once it serves requests.
 *
 * CNI plugins run from the spawn helper, outside this profile.  The daemon
 * creates and pins network namespaces (unshare, bind mount, setns), talks
 * netlink, and dials ports inside pods' namespaces for port-forward.
 */
#include "netd.h"

#include "profile_sets.h"

#include <linux/capability.h>
#include <sys/ioctl.h>

static const int netd_caps[] = {
	CAP_NET_ADMIN,	      /* interfaces and addresses in pod namespaces */
	CAP_NET_RAW,	      /* netlink and raw sockets for interface state */
	CAP_SYS_ADMIN,	      /* unshare/setns of network namespaces, pin mounts */
	CAP_NET_BIND_SERVICE, /* dialing from low ports is not needed, binding for hostPort checks is */
};

static const char *const netd_syscalls[] = {
	CRISP_SYSCALLS_FILES,
	CRISP_SYSCALLS_SOCKETS,
	"mount",
	"umount2",
	"unshare",
	"setns",
	"wait4",
	"waitid",
	"inotify_init1", /* the CNI conf dir is watched */
	"inotify_add_watch",
	"inotify_rm_watch",
	"memfd_create", /* CNI plugins' stdin and stdout */
	NULL,
};

static const CrispSyscallArgRule netd_arg_rules[] = {
	{ "ioctl", 1, 0xffffffffu, TCGETS },
	{ "ioctl", 1, 0xffffffffu, FIONREAD },
	{ NULL, 0, 0, 0 },
};

static const CrispProbe netd_probes[] = {
	CRISP_PROBE_PTRACE,
	_CRISP_PROBE_MAX,
};

const CrispProfile netd_profile = {
	.name = "crisp-netd",
	.unprivileged = false,
	.caps = netd_caps,
	.n_caps = ELEMENTSOF(netd_caps),
	.syscalls = netd_syscalls,
	.arg_rules = netd_arg_rules,
	.nofile = 65536,
	.probes = netd_probes,
};
