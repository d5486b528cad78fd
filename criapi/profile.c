/*
 * criapi/profile.c - what crisp-criapi may do once it serves requests.
 *
 * criapi holds the CRI socket (created before this profile is entered) and
 * channels to the backends.  It runs as the unprivileged user with no
 * capabilities, opens files read-only if at all, and creates only unix
 * sockets (to dial the backends when systemd runs them).
 */
#include "criapi.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

static const char *const criapi_syscalls[] = {
	"connect", /* the backends' sockets under systemd */
	NULL,
};

static const CrispSyscallArgRule criapi_arg_rules[] = {
	{ "socket", 0, 0xffffffffu, AF_UNIX }, /* only to dial the backends under systemd */
	{ "ioctl", 1, 0xffffffffu, TCGETS },
	{ "ioctl", 1, 0xffffffffu, FIONREAD },
	{ NULL, 0, 0, 0 },
};

static const CrispProbe criapi_probes[] = {
	CRISP_PROBE_PTRACE,	CRISP_PROBE_SOCKET_INET, CRISP_PROBE_MOUNT,
	CRISP_PROBE_OPEN_WRITE, _CRISP_PROBE_MAX,
};

const CrispProfile criapi_profile = {
	.name = "crisp-criapi",
	.unprivileged = true,
	.caps = NULL,
	.n_caps = 0,
	.syscalls = criapi_syscalls,
	.arg_rules = criapi_arg_rules,
	.restrict_open_readonly = true,
	.nofile = 65536,
	.probes = criapi_probes,
};
