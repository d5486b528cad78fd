/*
 * sandbox.h - entering a process's privilege profile.
 *
 * sandbox_enter() is the one place where a crisp process gives up power, in
 * this order: switch uid/gid and drop supplementary groups (unprivileged
 * profiles), set rlimits, reduce the capability sets (effective, permitted,
 * inheritable, bounding; ambient cleared) to the profile's list, set
 * no_new_privs, and load a libseccomp allowlist.  The filter checks the
 * architecture (a foreign one kills the process) and traps every syscall not
 * on the list: a SIGSYS handler logs the syscall number and makes the call
 * fail with EPERM.  clone3 fails with ENOSYS so libc falls back to clone.
 *
 * Everything the profile needs from the file system (the user database, the
 * config) must be read before the call.  Each process keeps its profile next
 * to its main.c; docs/SECURITY.md states them all.
 */
#ifndef CRISP_SANDBOX_H
#define CRISP_SANDBOX_H

#include "error.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A syscall allowed only when argument arg_index, masked, equals value. */
typedef struct CrispSyscallArgRule {
	const char *syscall;
	unsigned arg_index;
	uint64_t mask;
	uint64_t value;
} CrispSyscallArgRule;

/* A syscall the test hook tries and expects the filter to refuse. */
typedef enum CrispProbe {
	CRISP_PROBE_PTRACE,	 /* ptrace(PTRACE_PEEKDATA) on ourselves: ESRCH if it got through */
	CRISP_PROBE_SOCKET_INET, /* socket(AF_INET, SOCK_STREAM): succeeds if it got through */
	CRISP_PROBE_MOUNT,	 /* mount() of nothing: EFAULT/EINVAL if it got through */
	CRISP_PROBE_SETNS,	 /* setns(-1): EBADF if it got through */
	CRISP_PROBE_OPEN_WRITE,	 /* openat(O_WRONLY) of /dev/null: succeeds if it got through */
	_CRISP_PROBE_MAX,
} CrispProbe;

typedef struct CrispProfile {
	const char *name;  /* process name, e.g. "crisp-imaged" */
	bool unprivileged; /* switch to the configured unprivileged user */
	const int *caps;   /* capabilities kept (CAP_*), n_caps entries */
	size_t n_caps;
	const char *const *syscalls; /* allowed on top of the base set; NULL-terminated */
	const CrispSyscallArgRule
		*arg_rules; /* syscalls allowed with conditions; NULL-terminated by syscall */
	bool restrict_open_readonly; /* openat only without write/create flags */
	uint64_t nofile;	     /* RLIMIT_NOFILE */
	const CrispProbe *probes;    /* test hook; ends with _CRISP_PROBE_MAX */
} CrispProfile;

typedef struct CrispSandboxUser {
	uid_t uid;
	gid_t gid;
} CrispSandboxUser;

/* Looks the user up (before entering: the filter forbids nothing, but the files may move). */
int sandbox_lookup_user(const char *name, CrispSandboxUser *ret, CrispError **err);

/*
 * Enters the profile.  user is required for unprivileged profiles.  With
 * ENABLE_SANDBOX off (sanitizer builds) the seccomp filter is skipped and
 * everything else still happens.  Returns 0 or a negative errno with err set.
 */
int sandbox_enter(const CrispProfile *p, const CrispSandboxUser *user, CrispError **err);

/* The base allowlist every profile starts from, NULL-terminated (for docs and tests). */
extern const char *const sandbox_base_syscalls[];

/* Counts the syscalls a profile allows (base + its own + conditional), for docs. */
size_t sandbox_count_syscalls(const CrispProfile *p);

/* Prints the profile as one JSON object (name, unprivileged, capabilities, syscall count). */
void sandbox_print_profile(const CrispProfile *p);

/*
 * Test hook (CRISP_TEST_HOOKS builds; a no-op otherwise): tries each of the
 * entered profile's probes and logs "seccomp probe <name>: refused (EPERM)"
 * or "... allowed (...)".  Async-signal-safe.
 */
void sandbox_run_probes(void);

#endif
