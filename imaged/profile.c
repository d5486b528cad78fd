/*
 * imaged/profile.c - what crisp-imaged may do once it serves requests.
 *
 * imaged parses untrusted data (registry answers, manifests, layer tarballs),
 * so it holds only what unpacking needs: writing files with any owner, mode
 * and extended attributes under its own store, and creating device nodes.
 * It keeps nothing that could start a container, mount or change namespaces.
 */
#include "imaged.h"

#include "profile_sets.h"

#include <linux/capability.h>
#include <sys/ioctl.h>

static const int imaged_caps[] = {
	CAP_CHOWN,	  /* layer entries keep their owners */
	CAP_DAC_OVERRIDE, /* write into directories a layer made read-only */
	CAP_FOWNER,	  /* set modes and times on files owned by others */
	CAP_FSETID,	  /* keep setuid/setgid bits from layers */
	CAP_MKNOD,	  /* device nodes in layers */
	CAP_SETFCAP,	  /* security.capability xattrs in layers */
};

static const char *const imaged_syscalls[] = {
	CRISP_SYSCALLS_FILES,
	CRISP_SYSCALLS_XATTR,
	CRISP_SYSCALLS_SOCKETS, /* registry client */
	"mknod",
	"mknodat",
	"socketpair", /* libcurl's threaded resolver wakes its caller through one */
	"syncfs",     /* a snapshot is marked ready only once it is on disk */
	NULL,
};

static const CrispSyscallArgRule imaged_arg_rules[] = {
	{ "ioctl", 1, 0xffffffffu, TCGETS },
	{ "ioctl", 1, 0xffffffffu, FIONREAD },
	{ NULL, 0, 0, 0 },
};

static const CrispProbe imaged_probes[] = {
	CRISP_PROBE_PTRACE,
	CRISP_PROBE_MOUNT,
	CRISP_PROBE_SETNS,
	_CRISP_PROBE_MAX,
};

const CrispProfile imaged_profile = {
	.name = "crisp-imaged",
	.unprivileged = false,
	.caps = imaged_caps,
	.n_caps = ELEMENTSOF(imaged_caps),
	.syscalls = imaged_syscalls,
	.arg_rules = imaged_arg_rules,
	.nofile = 65536,
	.probes = imaged_probes,
};
