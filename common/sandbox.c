/*
 * sandbox.c - uid switch, capabilities, no_new_privs, rlimits and seccomp.
 */
#include "sandbox.h"

#include "log.h"

#include <cap-ng.h>
#include <ctype.h>
#include <stdio.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <ucontext.h>

/*
 * What every crisp process needs: memory, threads, signals, time, the IPC
 * (recvmsg/sendmsg on inherited sockets, accept4 on a socket systemd passed),
 * poll loops, and read-side file calls on fds it already holds.  Opening
 * files and creating sockets are per profile.
 */
const char *const sandbox_base_syscalls[] = {
	"read",
	"write",
	"readv",
	"writev",
	"pread64",
	"pwrite64",
	"close",
	"lseek",
	"fstat",
	"newfstatat",
	"statx",
	"fcntl",
	"dup",
	"dup3",
	"pipe2",
	"poll",
	"ppoll",
	"epoll_create1",
	"epoll_ctl",
	"epoll_wait",
	"epoll_pwait",
	"eventfd2",
	"signalfd4",
	"timerfd_create",
	"timerfd_settime",
	"recvmsg",
	"sendmsg",
	"recvfrom",
	"sendto",
	"shutdown",
	"getsockopt",
	"setsockopt",
	"getsockname",
	"getpeername",
	"accept4",
	"mmap",
	"munmap",
	"mremap",
	"mprotect",
	"madvise",
	"brk",
	"futex",
	"set_robust_list",
	"get_robust_list",
	"rseq",
	"set_tid_address",
	"clone",
	"rt_sigaction",
	"rt_sigprocmask",
	"rt_sigreturn",
	"sigaltstack",
	"tgkill",
	"rt_sigtimedwait",
	"getpid",
	"gettid",
	"getppid",
	"getuid",
	"geteuid",
	"getgid",
	"getegid",
	"getresuid",
	"getresgid",
	"getgroups",
	"exit",
	"exit_group",
	"restart_syscall",
	"nanosleep",
	"clock_nanosleep",
	"clock_gettime",
	"clock_getres",
	"gettimeofday",
	"time",
	"getrandom",
	"sched_yield",
	"sched_getaffinity",
	"sched_getparam",
	"sched_getscheduler",
	"uname",
	"prlimit64",
	"getrlimit",
	"sysinfo",
	"membarrier",
	NULL,
};

/* Thread names (gRPC and the worker pools name their threads), and nothing else of prctl. */
static const CrispSyscallArgRule base_arg_rules[] = {
	{ "prctl", 0, 0xffffffffu, PR_SET_NAME },
	{ "prctl", 0, 0xffffffffu, PR_GET_NAME },
	{ NULL, 0, 0, 0 },
};

/* Process-wide state for the SIGSYS handler and the probes: set once, before the filter. */
static const CrispProfile *entered_profile;

/* Async-signal-safe line output: no stdio, no allocation. */
static size_t put_str(char *buf, size_t pos, size_t cap, const char *s)
{
	while (*s && pos < cap)
		buf[pos++] = *s++;
	return pos;
}

static size_t put_long(char *buf, size_t pos, size_t cap, long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;

	do
		tmp[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < sizeof(tmp));
	if (v < 0 && pos < cap)
		buf[pos++] = '-';
	while (n > 0 && pos < cap)
		buf[pos++] = tmp[--n];
	return pos;
}

static void safe_log_line(const char *a, long num, const char *b)
{
	char line[256];
	size_t n = 0, cap = sizeof(line) - 1;

	n = put_str(line, n, cap, entered_profile ? entered_profile->name : "crisp");
	n = put_str(line, n, cap, "[");
	n = put_long(line, n, cap, (long)getpid());
	n = put_str(line, n, cap, "]: ");
	n = put_str(line, n, cap, a);
	if (num != LONG_MIN)
		n = put_long(line, n, cap, num);
	n = put_str(line, n, cap, b);
	line[n++] = '\n';
	ssize_t _unused_ w = write(STDERR_FILENO, line, n);
}

static void sigsys_handler(int sig _unused_, siginfo_t *si, void *ctx)
{
	ucontext_t *uc = ctx;
	int saved = errno;

	safe_log_line("seccomp: refused syscall ", si->si_syscall,
		      " (not in this process's allowlist); it fails with EPERM");
#if defined(__x86_64__)
	uc->uc_mcontext.gregs[REG_RAX] = -EPERM;
#elif defined(__aarch64__)
	uc->uc_mcontext.regs[0] = (unsigned long long)-EPERM;
#else
#error "set the syscall return register for this architecture"
#endif
	errno = saved;
}

int sandbox_lookup_user(const char *name, CrispSandboxUser *ret, CrispError **err)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	int r = getpwnam_r(name, &pw, buf, sizeof(buf), &res);
	if (r != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, r, "looking up user \"%s\"",
					     name);
	if (!res)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, ENOENT,
				       "user \"%s\" does not exist (create it, e.g. with "
				       "systemd-sysusers or adduser --system --group %s)",
				       name, name);
	if (res->pw_uid == 0)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EPERM,
				       "user \"%s\" is root; the unprivileged user must not be",
				       name);
	ret->uid = res->pw_uid;
	ret->gid = res->pw_gid;
	return 0;
}

static int set_rlimits(const CrispProfile *p, CrispError **err)
{
	struct rlimit core = { 0, 0 }, nofile;

	/* No core dumps: they would carry registry credentials and container data. */
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "setrlimit(CORE)");
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "getrlimit(NOFILE)");
	/* Raising the hard limit needs CAP_SYS_RESOURCE, which hosts may withhold
	 * even from root: stay within the hard limit we were given. */
	rlim_t want = p->nofile < nofile.rlim_max ? p->nofile : nofile.rlim_max;
	nofile.rlim_cur = nofile.rlim_max = want;
	if (p->nofile && setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "setrlimit(NOFILE, %llu)",
					     (unsigned long long)p->nofile);
	return 0;
}

static int drop_capabilities(const CrispProfile *p, const CrispSandboxUser *user, CrispError **err)
{
	capng_clear(CAPNG_SELECT_ALL);
	for (size_t i = 0; i < p->n_caps; i++)
		if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
				 (unsigned)p->caps[i]) < 0)
			return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
					       "capability %d is unknown to libcap-ng", p->caps[i]);

	if (p->unprivileged) {
		/* Drops supplementary groups, switches ids and applies the empty sets. */
		int r = capng_change_id((int)user->uid, (int)user->gid,
					CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING |
						CAPNG_CLEAR_AMBIENT);
		if (r < 0)
			return crisp_error_set(err, CRISP_ERR_INTERNAL, EPERM,
					       "switching to uid %u gid %u failed (libcap-ng %d)",
					       user->uid, user->gid, r);
		uid_t ru, eu, su;
		if (getresuid(&ru, &eu, &su) < 0 || ru != user->uid || eu != user->uid ||
		    su != user->uid)
			return crisp_error_set(err, CRISP_ERR_INTERNAL, EPERM,
					       "uid switch did not take effect");
	} else {
		if (setgroups(0, NULL) < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						     "dropping supplementary groups");
		if (capng_apply(CAPNG_SELECT_ALL) < 0)
			return crisp_error_set(err, CRISP_ERR_INTERNAL, EPERM,
					       "applying the capability sets failed");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "clearing ambient capabilities");
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, const char *name, uint32_t action, unsigned n_args,
		    const struct scmp_arg_cmp *args, CrispError **err)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a syscall on this architecture */
	int r = seccomp_rule_add_array(ctx, action, nr, n_args, args);
	if (r < 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, -r, "seccomp rule for %s: %s", name,
				       strerror(-r));
	return 0;
}

static int load_seccomp(const CrispProfile *p, CrispError **err)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };
	int r;

	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "sigaction(SIGSYS)");

	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, ENOMEM, "seccomp_init");

	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1);
	/* criapi may already run gRPC threads: put every thread under the filter. */
	if (r == 0)
		r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (r < 0) {
		seccomp_release(ctx);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, -r, "seccomp attributes: %s",
				       strerror(-r));
	}

	for (const char *const *s = sandbox_base_syscalls; *s && r == 0; s++)
		r = add_rule(ctx, *s, SCMP_ACT_ALLOW, 0, NULL, err);
	for (const char *const *s = p->syscalls; s && *s && r == 0; s++)
		r = add_rule(ctx, *s, SCMP_ACT_ALLOW, 0, NULL, err);
	const CrispSyscallArgRule *rule_sets[] = { base_arg_rules, p->arg_rules };
	for (size_t i = 0; i < ELEMENTSOF(rule_sets); i++)
		for (const CrispSyscallArgRule *a = rule_sets[i]; a && a->syscall && r == 0; a++) {
			struct scmp_arg_cmp cmp =
				SCMP_CMP(a->arg_index, SCMP_CMP_MASKED_EQ, a->mask, a->value);
			r = add_rule(ctx, a->syscall, SCMP_ACT_ALLOW, 1, &cmp, err);
		}
	if (r == 0 && p->restrict_open_readonly) {
		struct scmp_arg_cmp ro =
			SCMP_CMP(2, SCMP_CMP_MASKED_EQ, O_WRONLY | O_RDWR | O_CREAT | O_TRUNC, 0);
		r = add_rule(ctx, "openat", SCMP_ACT_ALLOW, 1, &ro, err);
	}
	/* Let libc see clone3 as missing, so it uses clone, whose flags are visible. */
	if (r == 0)
		r = add_rule(ctx, "clone3", SCMP_ACT_ERRNO(ENOSYS), 0, NULL, err);

	if (r == 0) {
		r = seccomp_load(ctx);
		if (r < 0)
			r = crisp_error_set(err, CRISP_ERR_INTERNAL, -r,
					    "loading seccomp filter: %s", strerror(-r));
	}
	seccomp_release(ctx);
	return r;
}

int sandbox_enter(const CrispProfile *p, const CrispSandboxUser *user, CrispError **err)
{
	int r;

	if (p->unprivileged && !user)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
				       "%s: unprivileged profile without a user", p->name);
	entered_profile = p;

	r = set_rlimits(p, err);
	if (r == 0)
		r = drop_capabilities(p, user, err);
	if (r == 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "PR_SET_NO_NEW_PRIVS");
	if (r == 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "PR_SET_DUMPABLE");
#ifdef CRISP_ENABLE_SANDBOX
	if (r == 0)
		r = load_seccomp(p, err);
#else
	(void)load_seccomp;
#endif
	if (r < 0)
		return crisp_error_wrap(err, "%s: entering the sandbox", p->name);
	return 0;
}

static bool listed(const char *const *names, const char *name)
{
	for (; names && *names; names++)
		if (strcmp(*names, name) == 0)
			return true;
	return false;
}

static bool in_rules(const CrispSyscallArgRule *rules, const CrispSyscallArgRule *upto,
		     const char *name)
{
	for (; rules && rules->syscall && rules != upto; rules++)
		if (strcmp(rules->syscall, name) == 0)
			return true;
	return false;
}

size_t sandbox_count_syscalls(const CrispProfile *p)
{
	size_t n = 0;

	/* Distinct syscalls that can get through at all, conditionally or not. */
	for (const char *const *s = sandbox_base_syscalls; *s; s++)
		n++;
	for (const char *const *s = p->syscalls; s && *s; s++)
		n += !listed(sandbox_base_syscalls, *s);
	for (const CrispSyscallArgRule *a = base_arg_rules; a->syscall; a++)
		n += !in_rules(base_arg_rules, a, a->syscall);
	for (const CrispSyscallArgRule *a = p->arg_rules; a && a->syscall; a++)
		n += !in_rules(p->arg_rules, a, a->syscall) &&
		     !in_rules(base_arg_rules, NULL, a->syscall) &&
		     !listed(p->syscalls, a->syscall);
	if (p->restrict_open_readonly && !listed(p->syscalls, "openat"))
		n++;
	return n;
}

void sandbox_print_profile(const CrispProfile *p)
{
	printf("{\"name\": \"%s\", \"unprivileged\": %s, \"capabilities\": [", p->name,
	       p->unprivileged ? "true" : "false");
	for (size_t i = 0; i < p->n_caps; i++) {
		_cleanup_free_ char *name =
			capng_capability_to_name((unsigned)p->caps[i])
				? xasprintf("CAP_%s",
					    capng_capability_to_name((unsigned)p->caps[i]))
				: xasprintf("%d", p->caps[i]);
		for (char *c = name; *c; c++)
			*c = (char)toupper((unsigned char)*c);
		printf("%s\"%s\"", i ? ", " : "", name);
	}
	printf("], \"syscalls\": %zu}\n", sandbox_count_syscalls(p));
}

#ifdef CRISP_TEST_HOOKS
static const char *const probe_names[_CRISP_PROBE_MAX] = {
	[CRISP_PROBE_PTRACE] = "ptrace",
	[CRISP_PROBE_SOCKET_INET] = "socket(AF_INET)",
	[CRISP_PROBE_MOUNT] = "mount",
	[CRISP_PROBE_SETNS] = "setns",
	[CRISP_PROBE_OPEN_WRITE] = "openat(O_WRONLY)",
};

static long run_probe(CrispProbe probe)
{
	long r = -1;

	/* Raw syscalls: libc wrappers might pick a different syscall than the one named. */
	switch (probe) {
	case CRISP_PROBE_PTRACE:
		r = syscall(SYS_ptrace, PTRACE_PEEKDATA, getpid(), NULL, NULL);
		break;
	case CRISP_PROBE_SOCKET_INET:
		r = syscall(SYS_socket, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (r >= 0)
			close((int)r);
		break;
	case CRISP_PROBE_MOUNT:
		r = syscall(SYS_mount, NULL, NULL, NULL, 0, NULL);
		break;
	case CRISP_PROBE_SETNS:
		r = syscall(SYS_setns, -1, 0);
		break;
	case CRISP_PROBE_OPEN_WRITE:
		r = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
		if (r >= 0)
			close((int)r);
		break;
	default:
		break;
	}
	return r < 0 ? -errno : r;
}

void sandbox_run_probes(void)
{
	int saved = errno;
	const CrispProbe *probes = entered_profile ? entered_profile->probes : NULL;

	for (; probes && *probes != _CRISP_PROBE_MAX; probes++) {
		long r = run_probe(*probes);
		char what[96];
		size_t n = put_str(what, 0, sizeof(what) - 1, "seccomp probe ");
		n = put_str(what, n, sizeof(what) - 1, probe_names[*probes]);
		if (r == -EPERM) {
			n = put_str(what, n, sizeof(what) - 1, ": refused (EPERM)");
			what[n] = '\0';
			safe_log_line(what, LONG_MIN, "");
		} else {
			n = put_str(what, n, sizeof(what) - 1, ": NOT refused, result ");
			what[n] = '\0';
			safe_log_line(what, r, "");
		}
	}
	errno = saved;
}
#else
void sandbox_run_probes(void)
{
}
#endif
