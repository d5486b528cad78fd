/*
 * streamd/profile.c - what crisp-streamd may do once it serves requests.
 *
 * streamd faces streaming clients (untrusted frames) and holds no privilege:
 * an unprivileged user, no capabilities, no file writes.  It serves TCP on
 * the configured address and only relays fds that other daemons hand it.
 */
#include "streamd.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

static const char *const streamd_syscalls[] = {
	"bind",
	"listen",
	"socketpair", /* libmicrohttpd: its inter-thread channel, and TLS upgrades */
	NULL,
};

static const CrispSyscallArgRule streamd_arg_rules[] = {
	{ "socket", 0, 0xffffffffu, AF_INET },
	{ "socket", 0, 0xffffffffu, AF_INET6 },
	{ "ioctl", 1, 0xffffffffu, TCGETS },
	{ "ioctl", 1, 0xffffffffu, FIONREAD },
	{ "ioctl", 1, 0xffffffffu, TIOCSWINSZ }, /* resize of a pty master it was handed */
	{ NULL, 0, 0, 0 },
};

static const CrispProbe streamd_probes[] = {
	CRISP_PROBE_PTRACE,	CRISP_PROBE_MOUNT, CRISP_PROBE_SETNS,
	CRISP_PROBE_OPEN_WRITE, _CRISP_PROBE_MAX,
};

const CrispProfile streamd_profile = {
	.name = "crisp-streamd",
	.unprivileged = true,
	.caps = NULL,
	.n_caps = 0,
	.syscalls = streamd_syscalls,
	.arg_rules = streamd_arg_rules,
	.restrict_open_readonly = true,
	.nofile = 65536,
	.probes = streamd_probes,
};
