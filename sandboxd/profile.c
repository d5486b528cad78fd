/*
 * sandboxd/profile.c - what crisp-sandboxd may do once it serves requests.
 *
 * runc and conmon do not run under this profile: the spawn helper, forked
 * before the sandbox, starts them.  The daemon itself prepares bundles and
 * root file systems (mounts, owners), signals container processes and reads
 * their cgroups.
 */
#include "sandboxd.h"

#include "profile_sets.h"

#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static const int sandboxd_caps[] = {
	CAP_CHOWN,		    /* bundle and log files for containers' users */
	CAP_DAC_OVERRIDE,	    /* container state owned by other users */
	CAP_FOWNER,		    /* modes on files it does not own */
	CAP_FSETID,	  CAP_KILL, /* stop signals to containers of any user */
	CAP_SYS_ADMIN,		    /* rootfs overlay mounts, /dev/shm per pod */
};

static const char *const sandboxd_syscalls[] = {
	CRISP_SYSCALLS_FILES,
	"mount",
	"umount2",
	"kill",
	"pidfd_open",
	"pidfd_send_signal",
	"wait4",
	"waitid",
	"connect",	 /* conmon's attach sockets */
	"inotify_init1", /* conmon's exit files are watched */
	"inotify_add_watch",
	"socketpair", /* an exec session's status channel */
	NULL,
};

static const CrispSyscallArgRule sandboxd_arg_rules[] = {
	{ "socket", 0, 0xffffffffu, AF_UNIX },
	{ "ioctl", 1, 0xffffffffu, TCGETS },
	{ "ioctl", 1, 0xffffffffu, FIONREAD },
	{ "ioctl", 1, 0xffffffffu, TIOCSPTLCK },  /* a pty for an interactive exec */
	{ "ioctl", 1, 0xffffffffu, TIOCGPTPEER }, /* its slave, without a path */
	{ NULL, 0, 0, 0 },
};

static const CrispProbe sandboxd_probes[] = {
	CRISP_PROBE_PTRACE,
	CRISP_PROBE_SETNS,
	CRISP_PROBE_SOCKET_INET,
	_CRISP_PROBE_MAX,
};

const CrispProfile sandboxd_profile = {
	.name = "crisp-sandboxd",
	.unprivileged = false,
	.caps = sandboxd_caps,
	.n_caps = ELEMENTSOF(sandboxd_caps),
	.syscalls = sandboxd_syscalls,
	.arg_rules = sandboxd_arg_rules,
	.nofile = 1048576,
	.probes = sandboxd_probes,
};
