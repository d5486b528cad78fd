/*
 * validate_rules.c - the rules of each CRI request, applied after the generic
 * walk of validate.c: required fields, IDs, names, paths, ports, resources,
 * CIDRs.  One table entry per request message of the two CRI services; a
 * request without an entry is refused (fail closed).  docs/VALIDATION.md
 * lists the rules.
 */
#include "criapi.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

int criapi_validate_rules(const ProtobufCMessage *req, CrispError **err);

/* Limits (docs/VALIDATION.md). */
#define MAX_ID 64	      /* crisp issues 64 lowercase hex characters; prefixes are accepted */
#define MAX_NAME 253	      /* pod and container name, namespace (a DNS subdomain) */
#define MAX_UID 128	      /* pod UID (a UUID is 36) */
#define MAX_PATH 4095	      /* PATH_MAX less the NUL */
#define MAX_HOSTNAME 64	      /* HOST_NAME_MAX */
#define MAX_IMAGE_REF 4096    /* image names, digests, IDs */
#define MAX_HANDLER 253	      /* runtime handler names */
#define MAX_CAPABILITY 64     /* "CAP_NET_BIND_SERVICE" */
#define MAX_USERNAME 256      /* run_as_username */
#define MAX_DNS_SEARCH 253    /* a domain name */
#define MAX_DNS_OPTION 256    /* "ndots:5" */
#define MAX_SECONDS INT32_MAX /* timeouts: 68 years, and no overflow in ns */
#define MAX_ARG_TOTAL (128 * 1024 - 1) /* "KEY=value": MAX_ARG_STRLEN less the NUL */

typedef struct Ctx {
	CrispError **err;
	char path[512];
	size_t len;
} Ctx;

/* --- paths and messages --- */

static size_t enter(Ctx *c, const char *field)
{
	size_t old = c->len;
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "%s%s", c->len ? "." : "",
			 field);
	if (n > 0)
		c->len = (size_t)n < sizeof(c->path) - c->len ? c->len + (size_t)n
							      : sizeof(c->path) - 1;
	return old;
}

static size_t enter_index(Ctx *c, const char *field, size_t i)
{
	size_t old = enter(c, field);
	int n = snprintf(c->path + c->len, sizeof(c->path) - c->len, "[%zu]", i);
	if (n > 0)
		c->len = (size_t)n < sizeof(c->path) - c->len ? c->len + (size_t)n
							      : sizeof(c->path) - 1;
	return old;
}

static void leave(Ctx *c, size_t old)
{
	c->len = old;
	c->path[old] = '\0';
}

/* Runs expr with field appended to the path. */
#define IN(c, field, expr)                                                                         \
	({                                                                                         \
		size_t _in_old = enter((c), (field));                                              \
		int _in_r = (expr);                                                                \
		leave((c), _in_old);                                                               \
		_in_r;                                                                             \
	})
#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int _try_r = (expr);                                                               \
		if (_try_r < 0)                                                                    \
			return _try_r;                                                             \
	} while (0)

/* Sets "<path>[.field]: <message>" and returns -EINVAL. */
static int fail(Ctx *c, const char *field, const char *fmt, ...) _printf_(3, 4);
static int fail(Ctx *c, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->len && !field)
		field = "request";
	return crisp_error_set(c->err, CRISP_ERR_INVALID, EINVAL, "%s%s%s: %s", c->path,
			       field && c->len ? "." : "", field ? field : "", msg);
}

/* A value quoted for a message: escaped, cut after 64 bytes. */
typedef struct Quoted {
	char s[300];
} Quoted;

static Quoted quote(const char *s)
{
	Quoted q;
	size_t o = 0, i;

	q.s[o++] = '"';
	for (i = 0; s[i] && i < 64; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(q.s + o, sizeof(q.s) - o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(q.s + o, sizeof(q.s) - o, "\\x%02x", ch);
		else
			q.s[o++] = (char)ch;
	}
	snprintf(q.s + o, sizeof(q.s) - o, "%s\"", s[i] ? "..." : "");
	return q;
}

/* --- value checks --- */

static bool empty(const char *s)
{
	return !s || !*s;
}

static bool is_ctl(unsigned char ch)
{
	return ch < 0x20 || ch == 0x7f;
}

static bool has_ctl(const char *s)
{
	for (; *s; s++)
		if (is_ctl((unsigned char)*s))
			return true;
	return false;
}

static bool only_chars(const char *s, const char *extra)
{
	for (; *s; s++) {
		char ch = *s;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || (extra && strchr(extra, ch))))
			return false;
	}
	return true;
}

static int require(Ctx *c, const char *field, const char *s)
{
	return empty(s) ? fail(c, field, "must not be empty") : 0;
}

/* A container or pod sandbox ID: 1 to 64 lowercase hex characters; empty only when optional. */
static int check_id(Ctx *c, const char *field, const char *s, const char *kind, bool required)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0)
		return required ? fail(c, field, "must not be empty") : 0;
	bool ok = len <= MAX_ID;
	for (size_t i = 0; ok && i < len; i++)
		ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
	if (!ok)
		return fail(c, field, "%s is not a %s ID (1 to %d lowercase hex characters)",
			    quote(s).s, kind, MAX_ID);
	return 0;
}

/* Names that may become parts of host paths: pod and container names, namespace, UID. */
static int check_name(Ctx *c, const char *field, const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0)
		return fail(c, field, "must not be empty");
	if (len > max)
		return fail(c, field, "is %zu bytes, more than %zu", len, max);
	if (strchr(s, '/'))
		return fail(c, field, "%s must not contain '/'", quote(s).s);
	if (has_ctl(s))
		return fail(c, field, "%s must not contain control characters", quote(s).s);
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return fail(c, field, "must not be \".\" or \"..\"");
	return 0;
}

static bool has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")); p++)
		if ((p == s || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

typedef enum PathFlags {
	PATH_REQUIRED = 1 << 0,
	PATH_ABSOLUTE = 1 << 1,
	PATH_RELATIVE = 1 << 2,
	PATH_NO_DOTDOT = 1 << 3,
} PathFlags;

static int check_path(Ctx *c, const char *field, const char *s, unsigned flags)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0)
		return (flags & PATH_REQUIRED) ? fail(c, field, "must not be empty") : 0;
	if (len > MAX_PATH)
		return fail(c, field, "is %zu bytes, more than %d", len, MAX_PATH);
	if (has_ctl(s))
		return fail(c, field, "%s must not contain control characters", quote(s).s);
	if ((flags & PATH_ABSOLUTE) && s[0] != '/')
		return fail(c, field, "%s is not an absolute path", quote(s).s);
	if ((flags & PATH_RELATIVE) && s[0] == '/')
		return fail(c, field, "%s must be a relative path", quote(s).s);
	if ((flags & PATH_NO_DOTDOT) && has_dotdot(s))
		return fail(c, field, "%s must not contain \"..\" components", quote(s).s);
	return 0;
}

static int check_ip(Ctx *c, const char *field, const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return 0;
	return fail(c, field, "%s is not an IPv4 or IPv6 address", quote(s).s);
}

/* One CIDR, parsed strictly; returns its family (AF_INET, AF_INET6) or a negative errno. */
static int check_cidr(Ctx *c, const char *field, const char *s, size_t len)
{
	char addr[INET6_ADDRSTRLEN + 8];
	unsigned char buf[sizeof(struct in6_addr)];
	_cleanup_free_ char *copy = xstrndup(s, len);
	const char *slash = memchr(s, '/', len);
	int family;

	if (!slash || (size_t)(slash - s) >= sizeof(addr))
		return fail(c, field, "%s is not a CIDR (address/prefix length)", quote(copy).s);
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	if (inet_pton(AF_INET, addr, buf) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		family = AF_INET6;
	else
		return fail(c, field, "%s: %s is not an IPv4 or IPv6 address", quote(copy).s,
			    quote(addr).s);

	const char *p = slash + 1, *end = s + len;
	unsigned prefix = 0, max = family == AF_INET ? 32 : 128;
	bool ok = p < end && end - p <= 3 && !(*p == '0' && end - p > 1);
	for (; ok && p < end; p++) {
		ok = *p >= '0' && *p <= '9';
		prefix = prefix * 10 + (unsigned)(*p - '0');
	}
	if (!ok || prefix > max)
		return fail(c, field, "%s: the prefix length must be a number from 0 to %u",
			    quote(copy).s, max);
	return family;
}

/* "0-3,5,7-8" */
static int check_cpuset(Ctx *c, const char *field, const char *s)
{
	const char *p = s;

	if (empty(s))
		return 0;
	for (;;) {
		unsigned long lo, hi;
		char *end;
		if (*p < '0' || *p > '9')
			goto bad;
		lo = strtoul(p, &end, 10);
		hi = lo;
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				goto bad;
			hi = strtoul(p, &end, 10);
			p = end;
		}
		if (lo > hi || hi > 65535)
			goto bad;
		if (*p == '\0')
			return 0;
		if (*p++ != ',')
			goto bad;
	}
bad:
	return fail(c, field, "%s is not a cpuset list such as \"0-3,6\"", quote(s).s);
}

static int check_int64_range(Ctx *c, const char *field, int64_t v, int64_t lo, int64_t hi,
			     const char *note)
{
	if (v < lo || v > hi)
		return fail(c, field, "%" PRId64 " is outside %" PRId64 "..%" PRId64 "%s", v, lo,
			    hi, note ? note : "");
	return 0;
}

/* A Linux UID or GID: 0 .. 2^32-2 ((uid_t)-1 means "no change" to the kernel). */
static int check_linux_id(Ctx *c, const char *field, int64_t v)
{
	return check_int64_range(c, field, v, 0, UINT32_MAX - 1, " (a Linux user or group ID)");
}

/* --- shared message checks --- */

static int check_image_spec(Ctx *c, const Runtime__V1__ImageSpec *s, bool required)
{
	const struct {
		const char *field;
		const char *value;
	} refs[] = {
		{ "image", s ? s->image : NULL },
		{ "user_specified_image", s ? s->user_specified_image : NULL },
		{ "image_ref", s ? s->image_ref : NULL },
	};

	if (!s)
		return required ? fail(c, NULL, "must be set") : 0;
	if (required)
		TRY(require(c, "image", s->image));
	for (size_t i = 0; i < ELEMENTSOF(refs); i++) {
		const char *v = refs[i].value;
		if (empty(v))
			continue;
		if (strlen(v) > MAX_IMAGE_REF)
			return fail(c, refs[i].field, "is %zu bytes, more than %d", strlen(v),
				    MAX_IMAGE_REF);
		for (const char *p = v; *p; p++)
			if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
				return fail(c, refs[i].field,
					    "%s must be printable ASCII without spaces",
					    quote(v).s);
	}
	if (!empty(s->runtime_handler) &&
	    (strlen(s->runtime_handler) > MAX_HANDLER || !only_chars(s->runtime_handler, "._-")))
		return fail(c, "runtime_handler",
			    "%s is not a runtime handler name (up to %d letters, digits, '.', "
			    "'-', '_')",
			    quote(s->runtime_handler).s, MAX_HANDLER);
	return 0;
}

static int check_id_mappings(Ctx *c, const char *field, Runtime__V1__IDMapping *const *m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t o = enter_index(c, field, i);
		int r = 0;
		if (m[i]->length == 0)
			r = fail(c, "length", "must be at least 1");
		else if ((uint64_t)m[i]->host_id + m[i]->length > (uint64_t)UINT32_MAX + 1)
			r = fail(c, NULL, "host_id + length is past 2^32");
		else if ((uint64_t)m[i]->container_id + m[i]->length > (uint64_t)UINT32_MAX + 1)
			r = fail(c, NULL, "container_id + length is past 2^32");
		leave(c, o);
		TRY(r);
	}
	return 0;
}

static const char *ns_mode_name(Runtime__V1__NamespaceMode m)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&runtime__v1__namespace_mode__descriptor, m);
	return v ? v->name : "?";
}

static int check_ns_pod_or_node(Ctx *c, const char *field, Runtime__V1__NamespaceMode m)
{
	if (m != RUNTIME__V1__NAMESPACE_MODE__POD && m != RUNTIME__V1__NAMESPACE_MODE__NODE)
		return fail(c, field, "%s is not valid here: only POD or NODE", ns_mode_name(m));
	return 0;
}

static int check_namespace_options(Ctx *c, const Runtime__V1__NamespaceOption *n, bool container)
{
	if (!n)
		return 0;
	TRY(check_ns_pod_or_node(c, "network", n->network));
	TRY(check_ns_pod_or_node(c, "ipc", n->ipc));
	if (n->pid == RUNTIME__V1__NAMESPACE_MODE__TARGET) {
		if (!container)
			return fail(c, "pid", "TARGET is only valid for a container");
		if (empty(n->target_id))
			return fail(c, "target_id", "must not be empty when pid is TARGET");
	} else if (!empty(n->target_id)) {
		return fail(c, "target_id", "is only valid when pid is TARGET");
	}
	TRY(check_id(c, "target_id", n->target_id, "container", false));

	const Runtime__V1__UserNamespace *u = n->userns_options;
	if (!u)
		return 0;
	size_t o = enter(c, "userns_options");
	int r = check_ns_pod_or_node(c, "mode", u->mode);
	if (r >= 0 && u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE && (u->n_uids || u->n_gids))
		r = fail(c, u->n_uids ? "uids" : "gids", "must be empty when mode is NODE");
	if (r >= 0)
		r = check_id_mappings(c, "uids", u->uids, u->n_uids);
	if (r >= 0)
		r = check_id_mappings(c, "gids", u->gids, u->n_gids);
	leave(c, o);
	return r;
}

static int check_security_profile(Ctx *c, const Runtime__V1__SecurityProfile *p, bool seccomp)
{
	if (!p)
		return 0;
	if (p->profile_type != RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost) {
		if (!empty(p->localhost_ref))
			return fail(c, "localhost_ref",
				    "is only valid when profile_type is Localhost");
		return 0;
	}
	if (seccomp)
		return check_path(c, "localhost_ref", p->localhost_ref,
				  PATH_REQUIRED | PATH_ABSOLUTE);
	TRY(require(c, "localhost_ref", p->localhost_ref));
	if (strlen(p->localhost_ref) > MAX_PATH || has_ctl(p->localhost_ref))
		return fail(c, "localhost_ref", "%s is not an AppArmor profile name",
			    quote(p->localhost_ref).s);
	return 0;
}

static int check_groups(Ctx *c, const char *field, const int64_t *g, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t o = enter_index(c, field, i);
		int r = check_linux_id(c, NULL, g[i]);
		leave(c, o);
		TRY(r);
	}
	return 0;
}

static int check_linux_resources(Ctx *c, const Runtime__V1__LinuxContainerResources *r)
{
	if (!r)
		return 0;
	if (r->cpu_period != 0)
		TRY(check_int64_range(c, "cpu_period", r->cpu_period, 1000, 1000000,
				      " microseconds (0: unset)"));
	if (r->cpu_quota < -1 || (r->cpu_quota > 0 && r->cpu_quota < 1000))
		return fail(c, "cpu_quota",
			    "%" PRId64 " is not valid: -1 (unlimited), 0 (unset) or at least 1000 "
			    "microseconds",
			    r->cpu_quota);
	if (r->cpu_shares != 0)
		TRY(check_int64_range(c, "cpu_shares", r->cpu_shares, 2, 262144, " (0: unset)"));
	TRY(check_int64_range(c, "memory_limit_in_bytes", r->memory_limit_in_bytes, 0, INT64_MAX,
			      " (0: unset)"));
	TRY(check_int64_range(c, "memory_swap_limit_in_bytes", r->memory_swap_limit_in_bytes, -1,
			      INT64_MAX, " (-1: unlimited, 0: unset)"));
	TRY(check_int64_range(c, "oom_score_adj", r->oom_score_adj, -1000, 1000, NULL));
	TRY(check_cpuset(c, "cpuset_cpus", r->cpuset_cpus));
	TRY(check_cpuset(c, "cpuset_mems", r->cpuset_mems));
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		const char *ps = r->hugepage_limits[i]->page_size;
		size_t d = strspn(ps, "0123456789");
		const char *unit = ps + d;
		bool ok = d > 0 && d <= 10 && ps[0] != '0' &&
			  (strcmp(unit, "B") == 0 || strcmp(unit, "KB") == 0 ||
			   strcmp(unit, "MB") == 0 || strcmp(unit, "GB") == 0 ||
			   strcmp(unit, "TB") == 0 || strcmp(unit, "PB") == 0);
		if (!ok) {
			size_t o = enter_index(c, "hugepage_limits", i);
			int e = fail(c, "page_size",
				     "%s is not a page size such as \"2MB\" or \"1GB\"",
				     quote(ps).s);
			leave(c, o);
			return e;
		}
	}
	return 0;
}

static int check_dns(Ctx *c, const Runtime__V1__DNSConfig *d)
{
	/* These become resolv.conf lines: no whitespace, no control characters. */
	const struct {
		const char *field;
		char **v;
		size_t n;
		size_t max;
	} lists[] = {
		{ "servers", d->servers, d->n_servers, INET6_ADDRSTRLEN },
		{ "searches", d->searches, d->n_searches, MAX_DNS_SEARCH },
		{ "options", d->options, d->n_options, MAX_DNS_OPTION },
	};

	for (size_t l = 0; l < ELEMENTSOF(lists); l++)
		for (size_t i = 0; i < lists[l].n; i++) {
			const char *s = lists[l].v[i];
			size_t o = enter_index(c, lists[l].field, i);
			int r = 0;
			if (empty(s))
				r = fail(c, NULL, "must not be empty");
			else if (strlen(s) > lists[l].max)
				r = fail(c, NULL, "is %zu bytes, more than %zu", strlen(s),
					 lists[l].max);
			else if (strpbrk(s, " \t") || has_ctl(s))
				r = fail(c, NULL,
					 "%s must not contain spaces or control characters",
					 quote(s).s);
			else if (l == 0)
				r = check_ip(c, NULL, s);
			leave(c, o);
			TRY(r);
		}
	return 0;
}

static int check_pod_sandbox_config(Ctx *c, const Runtime__V1__PodSandboxConfig *p)
{
	if (!p)
		return fail(c, NULL, "must be set");
	const Runtime__V1__PodSandboxMetadata *m = p->metadata;
	if (!m)
		return fail(c, "metadata", "must be set");
	size_t o = enter(c, "metadata");
	int r = check_name(c, "name", m->name, MAX_NAME);
	if (r >= 0)
		r = check_name(c, "namespace", m->namespace_, MAX_NAME);
	if (r >= 0)
		r = check_name(c, "uid", m->uid, MAX_UID);
	leave(c, o);
	TRY(r);

	if (!empty(p->hostname) &&
	    (strlen(p->hostname) > MAX_HOSTNAME || !only_chars(p->hostname, ".-_")))
		return fail(c, "hostname",
			    "%s is not a host name (up to %d letters, digits, '.', '-', '_')",
			    quote(p->hostname).s, MAX_HOSTNAME);
	TRY(check_path(c, "log_directory", p->log_directory, PATH_ABSOLUTE | PATH_NO_DOTDOT));
	if (p->dns_config)
		TRY(IN(c, "dns_config", check_dns(c, p->dns_config)));
	for (size_t i = 0; i < p->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *pm = p->port_mappings[i];
		o = enter_index(c, "port_mappings", i);
		r = check_int64_range(c, "container_port", pm->container_port, 1, 65535, NULL);
		if (r >= 0)
			r = check_int64_range(c, "host_port", pm->host_port, 0, 65535,
					      " (0: not published)");
		if (r >= 0 && !empty(pm->host_ip))
			r = check_ip(c, "host_ip", pm->host_ip);
		leave(c, o);
		TRY(r);
	}

	const Runtime__V1__LinuxPodSandboxConfig *l = p->linux;
	if (!l)
		return 0;
	o = enter(c, "linux");
	r = check_path(c, "cgroup_parent", l->cgroup_parent, PATH_NO_DOTDOT);
	const Runtime__V1__LinuxSandboxSecurityContext *s = l->security_context;
	if (r >= 0 && s) {
		size_t os = enter(c, "security_context");
		r = IN(c, "namespace_options",
		       check_namespace_options(c, s->namespace_options, false));
		if (r >= 0 && s->run_as_user)
			r = IN(c, "run_as_user", check_linux_id(c, "value", s->run_as_user->value));
		if (r >= 0 && s->run_as_group && !s->run_as_user)
			r = fail(c, "run_as_group", "is only valid together with run_as_user");
		if (r >= 0 && s->run_as_group)
			r = IN(c, "run_as_group",
			       check_linux_id(c, "value", s->run_as_group->value));
		if (r >= 0)
			r = check_groups(c, "supplemental_groups", s->supplemental_groups,
					 s->n_supplemental_groups);
		if (r >= 0)
			r = IN(c, "seccomp", check_security_profile(c, s->seccomp, true));
		if (r >= 0)
			r = IN(c, "apparmor", check_security_profile(c, s->apparmor, false));
		leave(c, os);
	}
	if (r >= 0)
		r = IN(c, "overhead", check_linux_resources(c, l->overhead));
	if (r >= 0)
		r = IN(c, "resources", check_linux_resources(c, l->resources));
	leave(c, o);
	return r;
}

static int check_mount(Ctx *c, const Runtime__V1__Mount *m)
{
	bool image = m->image && !empty(m->image->image);

	TRY(check_path(c, "container_path", m->container_path, PATH_REQUIRED | PATH_ABSOLUTE));
	if (image) {
		if (!empty(m->host_path))
			return fail(c, "host_path", "must be empty when image is set");
		TRY(IN(c, "image", check_image_spec(c, m->image, true)));
		TRY(check_path(c, "image_sub_path", m->image_sub_path,
			       PATH_RELATIVE | PATH_NO_DOTDOT));
	} else {
		TRY(check_path(c, "host_path", m->host_path, PATH_REQUIRED | PATH_ABSOLUTE));
		if (!empty(m->image_sub_path))
			return fail(c, "image_sub_path", "is only valid when image is set");
	}
	if (m->recursive_read_only && !m->readonly)
		return fail(c, "recursive_read_only", "requires readonly");
	if (m->recursive_read_only &&
	    m->propagation != RUNTIME__V1__MOUNT_PROPAGATION__PROPAGATION_PRIVATE)
		return fail(c, "recursive_read_only", "requires propagation PROPAGATION_PRIVATE");
	TRY(check_id_mappings(c, "uidMappings", m->uidmappings, m->n_uidmappings));
	return check_id_mappings(c, "gidMappings", m->gidmappings, m->n_gidmappings);
}

static int check_device(Ctx *c, const Runtime__V1__Device *d)
{
	TRY(check_path(c, "host_path", d->host_path, PATH_REQUIRED | PATH_ABSOLUTE));
	TRY(check_path(c, "container_path", d->container_path, PATH_ABSOLUTE));
	const char *p = d->permissions;
	bool ok = strlen(p) <= 3 && strspn(p, "rwm") == strlen(p);
	for (size_t i = 0; ok && p[i]; i++)
		ok = !strchr(p + i + 1, p[i]);
	if (!ok)
		return fail(c, "permissions", "%s is not a combination of r, w and m", quote(p).s);
	return 0;
}

/* "vendor.com/class=name" */
static int check_cdi_name(Ctx *c, const char *s)
{
	const char *slash = strchr(s, '/'), *eq = slash ? strchr(slash, '=') : NULL;
	bool ok = slash && eq && slash > s && eq > slash + 1 && eq[1] != '\0';

	if (ok) {
		_cleanup_free_ char *vendor = xstrndup(s, (size_t)(slash - s));
		_cleanup_free_ char *class = xstrndup(slash + 1, (size_t)(eq - slash - 1));
		ok = only_chars(vendor, ".-_") && only_chars(class, "-_") &&
		     only_chars(eq + 1, "-_.:");
	}
	if (!ok || strlen(s) > MAX_NAME)
		return fail(c, "name", "%s is not a CDI device name (vendor/class=name)",
			    quote(s).s);
	return 0;
}

static int check_container_security(Ctx *c, const Runtime__V1__LinuxContainerSecurityContext *s)
{
	const Runtime__V1__Capability *cap = s->capabilities;
	if (cap) {
		const struct {
			const char *field;
			char **v;
			size_t n;
		} lists[] = {
			{ "add_capabilities", cap->add_capabilities, cap->n_add_capabilities },
			{ "drop_capabilities", cap->drop_capabilities, cap->n_drop_capabilities },
			{ "add_ambient_capabilities", cap->add_ambient_capabilities,
			  cap->n_add_ambient_capabilities },
		};
		for (size_t l = 0; l < ELEMENTSOF(lists); l++)
			for (size_t i = 0; i < lists[l].n; i++) {
				const char *v = lists[l].v[i];
				if (!empty(v) && strlen(v) <= MAX_CAPABILITY && only_chars(v, "_"))
					continue;
				size_t o = enter(c, "capabilities");
				size_t oi = enter_index(c, lists[l].field, i);
				int r = fail(c, NULL,
					     "%s is not a capability name (letters, digits, '_')",
					     quote(v).s);
				leave(c, oi);
				leave(c, o);
				return r;
			}
	}
	TRY(IN(c, "namespace_options", check_namespace_options(c, s->namespace_options, true)));
	if (s->run_as_user && !empty(s->run_as_username))
		return fail(c, "run_as_username", "must be empty when run_as_user is set");
	if (s->run_as_user)
		TRY(IN(c, "run_as_user", check_linux_id(c, "value", s->run_as_user->value)));
	if (s->run_as_group && !s->run_as_user && empty(s->run_as_username))
		return fail(c, "run_as_group", "needs run_as_user or run_as_username");
	if (s->run_as_group)
		TRY(IN(c, "run_as_group", check_linux_id(c, "value", s->run_as_group->value)));
	if (!empty(s->run_as_username) &&
	    (strlen(s->run_as_username) > MAX_USERNAME || has_ctl(s->run_as_username)))
		return fail(c, "run_as_username", "%s is not a user name",
			    quote(s->run_as_username).s);
	TRY(check_groups(c, "supplemental_groups", s->supplemental_groups,
			 s->n_supplemental_groups));
	for (size_t i = 0; i < s->n_masked_paths; i++) {
		size_t o = enter_index(c, "masked_paths", i);
		int r = check_path(c, NULL, s->masked_paths[i], PATH_REQUIRED | PATH_ABSOLUTE);
		leave(c, o);
		TRY(r);
	}
	for (size_t i = 0; i < s->n_readonly_paths; i++) {
		size_t o = enter_index(c, "readonly_paths", i);
		int r = check_path(c, NULL, s->readonly_paths[i], PATH_REQUIRED | PATH_ABSOLUTE);
		leave(c, o);
		TRY(r);
	}
	TRY(IN(c, "seccomp", check_security_profile(c, s->seccomp, true)));
	return IN(c, "apparmor", check_security_profile(c, s->apparmor, false));
}

static int check_container_config(Ctx *c, const Runtime__V1__ContainerConfig *cc)
{
	if (!cc)
		return fail(c, NULL, "must be set");
	if (!cc->metadata)
		return fail(c, "metadata", "must be set");
	TRY(IN(c, "metadata", check_name(c, "name", cc->metadata->name, MAX_NAME)));
	if (!cc->image)
		return fail(c, "image", "must be set");
	TRY(IN(c, "image", check_image_spec(c, cc->image, true)));
	TRY(check_path(c, "working_dir", cc->working_dir, PATH_ABSOLUTE));
	for (size_t i = 0; i < cc->n_envs; i++) {
		const Runtime__V1__KeyValue *kv = cc->envs[i];
		size_t o = enter_index(c, "envs", i);
		int r = 0;
		if (empty(kv->key))
			r = fail(c, "key", "must not be empty");
		else if (strchr(kv->key, '=') || has_ctl(kv->key))
			r = fail(c, "key", "%s must not contain '=' or control characters",
				 quote(kv->key).s);
		else if (strlen(kv->key) + 1 + strlen(kv->value) > MAX_ARG_TOTAL)
			r = fail(c, NULL, "key=value is more than %d bytes", MAX_ARG_TOTAL);
		leave(c, o);
		TRY(r);
	}
	for (size_t i = 0; i < cc->n_mounts; i++) {
		size_t o = enter_index(c, "mounts", i);
		int r = check_mount(c, cc->mounts[i]);
		leave(c, o);
		TRY(r);
	}
	for (size_t i = 0; i < cc->n_devices; i++) {
		size_t o = enter_index(c, "devices", i);
		int r = check_device(c, cc->devices[i]);
		leave(c, o);
		TRY(r);
	}
	TRY(check_path(c, "log_path", cc->log_path, PATH_RELATIVE | PATH_NO_DOTDOT));
	if (cc->linux) {
		size_t o = enter(c, "linux");
		int r = IN(c, "resources", check_linux_resources(c, cc->linux->resources));
		if (r >= 0 && cc->linux->security_context)
			r = IN(c, "security_context",
			       check_container_security(c, cc->linux->security_context));
		leave(c, o);
		TRY(r);
	}
	for (size_t i = 0; i < cc->n_cdi_devices; i++) {
		size_t o = enter_index(c, "CDI_devices", i);
		int r = check_cdi_name(c, cc->cdi_devices[i]->name);
		leave(c, o);
		TRY(r);
	}
	return 0;
}

static int check_seconds(Ctx *c, const char *field, int64_t v, const char *note)
{
	return check_int64_range(c, field, v, 0, MAX_SECONDS, note);
}

static int check_streams(Ctx *c, bool in, bool out, bool err, bool tty)
{
	if (!in && !out && !err)
		return fail(c, "stdin, stdout, stderr", "at least one must be true");
	if (tty && err)
		return fail(c, "stderr",
			    "must be false when tty is true (a TTY merges stderr "
			    "into stdout)");
	return 0;
}

/* --- one rule per request --- */

typedef int (*RuleFn)(Ctx *c, const ProtobufCMessage *m);

static int rule_run_pod_sandbox(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__RunPodSandboxRequest *r = (const void *)m;
	TRY(IN(c, "config", check_pod_sandbox_config(c, r->config)));
	if (!empty(r->runtime_handler) &&
	    (strlen(r->runtime_handler) > MAX_HANDLER || !only_chars(r->runtime_handler, "._-")))
		return fail(c, "runtime_handler",
			    "%s is not a runtime handler name (up to %d letters, digits, '.', "
			    "'-', '_')",
			    quote(r->runtime_handler).s, MAX_HANDLER);
	return 0;
}

/* Requests whose first rule is one required pod sandbox ID named pod_sandbox_id. */
static int rule_pod_sandbox_id(Ctx *c, const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "pod_sandbox_id");
	if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		abort(); /* a table entry that does not fit its message */
	const char *id = *(char *const *)((const char *)m + f->offset);
	return check_id(c, "pod_sandbox_id", id, "pod sandbox", true);
}

/* The same for container_id. */
static int rule_container_id(Ctx *c, const ProtobufCMessage *m)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "container_id");
	if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED)
		abort();
	const char *id = *(char *const *)((const char *)m + f->offset);
	return check_id(c, "container_id", id, "container", true);
}

static int rule_pod_sandbox_filter(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__ListPodSandboxRequest *r = (const void *)m;
	if (r->filter)
		return IN(c, "filter", check_id(c, "id", r->filter->id, "pod sandbox", false));
	return 0;
}

static int rule_stream_pod_sandbox_filter(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__StreamPodSandboxesRequest *r = (const void *)m;
	if (r->filter)
		return IN(c, "filter", check_id(c, "id", r->filter->id, "pod sandbox", false));
	return 0;
}

static int check_container_filter(Ctx *c, const Runtime__V1__ContainerFilter *f)
{
	if (!f)
		return 0;
	size_t o = enter(c, "filter");
	int r = check_id(c, "id", f->id, "container", false);
	if (r >= 0)
		r = check_id(c, "pod_sandbox_id", f->pod_sandbox_id, "pod sandbox", false);
	leave(c, o);
	return r;
}

static int rule_list_containers(Ctx *c, const ProtobufCMessage *m)
{
	return check_container_filter(c, ((const Runtime__V1__ListContainersRequest *)m)->filter);
}

static int rule_stream_containers(Ctx *c, const ProtobufCMessage *m)
{
	return check_container_filter(c, ((const Runtime__V1__StreamContainersRequest *)m)->filter);
}

static int check_container_stats_filter(Ctx *c, const Runtime__V1__ContainerStatsFilter *f)
{
	if (!f)
		return 0;
	size_t o = enter(c, "filter");
	int r = check_id(c, "id", f->id, "container", false);
	if (r >= 0)
		r = check_id(c, "pod_sandbox_id", f->pod_sandbox_id, "pod sandbox", false);
	leave(c, o);
	return r;
}

static int rule_list_container_stats(Ctx *c, const ProtobufCMessage *m)
{
	return check_container_stats_filter(
		c, ((const Runtime__V1__ListContainerStatsRequest *)m)->filter);
}

static int rule_stream_container_stats(Ctx *c, const ProtobufCMessage *m)
{
	return check_container_stats_filter(
		c, ((const Runtime__V1__StreamContainerStatsRequest *)m)->filter);
}

static int rule_list_pod_sandbox_stats(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__ListPodSandboxStatsRequest *r = (const void *)m;
	if (r->filter)
		return IN(c, "filter", check_id(c, "id", r->filter->id, "pod sandbox", false));
	return 0;
}

static int rule_stream_pod_sandbox_stats(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__StreamPodSandboxStatsRequest *r = (const void *)m;
	if (r->filter)
		return IN(c, "filter", check_id(c, "id", r->filter->id, "pod sandbox", false));
	return 0;
}

static int rule_create_container(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__CreateContainerRequest *r = (const void *)m;
	TRY(check_id(c, "pod_sandbox_id", r->pod_sandbox_id, "pod sandbox", true));
	TRY(IN(c, "config", check_container_config(c, r->config)));
	return IN(c, "sandbox_config", check_pod_sandbox_config(c, r->sandbox_config));
}

static int rule_stop_container(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__StopContainerRequest *r = (const void *)m;
	TRY(check_id(c, "container_id", r->container_id, "container", true));
	return check_seconds(c, "timeout", r->timeout, " seconds");
}

static int rule_update_container_resources(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__UpdateContainerResourcesRequest *r = (const void *)m;
	TRY(check_id(c, "container_id", r->container_id, "container", true));
	return IN(c, "linux", check_linux_resources(c, r->linux));
}

static int check_cmd(Ctx *c, char *const *cmd, size_t n)
{
	if (n == 0)
		return fail(c, "cmd", "must not be empty");
	if (empty(cmd[0]))
		return fail(c, "cmd[0]", "must not be empty");
	return 0;
}

static int rule_exec_sync(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__ExecSyncRequest *r = (const void *)m;
	TRY(check_id(c, "container_id", r->container_id, "container", true));
	TRY(check_cmd(c, r->cmd, r->n_cmd));
	return check_seconds(c, "timeout", r->timeout, " seconds (0: no timeout)");
}

static int rule_exec(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__ExecRequest *r = (const void *)m;
	TRY(check_id(c, "container_id", r->container_id, "container", true));
	TRY(check_cmd(c, r->cmd, r->n_cmd));
	return check_streams(c, r->stdin, r->stdout, r->stderr, r->tty);
}

static int rule_attach(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__AttachRequest *r = (const void *)m;
	TRY(check_id(c, "container_id", r->container_id, "container", true));
	return check_streams(c, r->stdin, r->stdout, r->stderr, r->tty);
}

static int rule_port_forward(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__PortForwardRequest *r = (const void *)m;
	TRY(check_id(c, "pod_sandbox_id", r->pod_sandbox_id, "pod sandbox", true));
	for (size_t i = 0; i < r->n_port; i++) {
		size_t o = enter_index(c, "port", i);
		int e = check_int64_range(c, NULL, r->port[i], 1, 65535, NULL);
		leave(c, o);
		TRY(e);
	}
	return 0;
}

static int rule_update_runtime_config(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__UpdateRuntimeConfigRequest *r = (const void *)m;
	if (!r->runtime_config || !r->runtime_config->network_config)
		return 0;
	const char *s = r->runtime_config->network_config->pod_cidr;
	if (empty(s))
		return 0;

	size_t o = enter(c, "runtime_config");
	size_t on = enter(c, "network_config");
	int families = 0, n = 0, e = 0;
	for (const char *p = s;; n++) {
		size_t len = strcspn(p, ",");
		if (n == 2) {
			e = fail(c, "pod_cidr", "more than 2 CIDRs (one IPv4, one IPv6)");
			break;
		}
		if (len == 0) {
			e = fail(c, "pod_cidr", "%s has an empty entry", quote(s).s);
			break;
		}
		e = check_cidr(c, "pod_cidr", p, len);
		if (e < 0)
			break;
		if (families & (1 << e)) {
			e = fail(c, "pod_cidr", "%s has two CIDRs of the same family", quote(s).s);
			break;
		}
		families |= 1 << e;
		e = 0;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	leave(c, on);
	leave(c, o);
	return e;
}

static int rule_checkpoint_container(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__CheckpointContainerRequest *r = (const void *)m;
	TRY(check_id(c, "container_id", r->container_id, "container", true));
	TRY(check_path(c, "location", r->location, PATH_REQUIRED | PATH_ABSOLUTE | PATH_NO_DOTDOT));
	return check_seconds(c, "timeout", r->timeout, " seconds (0: the runtime's default)");
}

static int rule_update_pod_sandbox_resources(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__UpdatePodSandboxResourcesRequest *r = (const void *)m;
	TRY(check_id(c, "pod_sandbox_id", r->pod_sandbox_id, "pod sandbox", true));
	TRY(IN(c, "overhead", check_linux_resources(c, r->overhead)));
	return IN(c, "resources", check_linux_resources(c, r->resources));
}

static int rule_list_images(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__ListImagesRequest *r = (const void *)m;
	if (!r->filter || !r->filter->image)
		return 0;
	size_t o = enter(c, "filter");
	int e = IN(c, "image", check_image_spec(c, r->filter->image, false));
	leave(c, o);
	return e;
}

static int rule_stream_images(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__StreamImagesRequest *r = (const void *)m;
	if (!r->filter || !r->filter->image)
		return 0;
	size_t o = enter(c, "filter");
	int e = IN(c, "image", check_image_spec(c, r->filter->image, false));
	leave(c, o);
	return e;
}

static int rule_image_status(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__ImageStatusRequest *r = (const void *)m;
	return IN(c, "image", check_image_spec(c, r->image, true));
}

static int rule_pull_image(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__PullImageRequest *r = (const void *)m;
	TRY(IN(c, "image", check_image_spec(c, r->image, true)));
	if (r->sandbox_config)
		return IN(c, "sandbox_config", check_pod_sandbox_config(c, r->sandbox_config));
	return 0;
}

static int rule_remove_image(Ctx *c, const ProtobufCMessage *m)
{
	const Runtime__V1__RemoveImageRequest *r = (const void *)m;
	return IN(c, "image", check_image_spec(c, r->image, true));
}

typedef struct Rule {
	const ProtobufCMessageDescriptor *desc;
	RuleFn fn; /* NULL: the request has no field to check beyond the generic walk */
} Rule;

static const Rule rules[] = {
	/* RuntimeService */
	{ &runtime__v1__version_request__descriptor, NULL },
	{ &runtime__v1__run_pod_sandbox_request__descriptor, rule_run_pod_sandbox },
	{ &runtime__v1__stop_pod_sandbox_request__descriptor, rule_pod_sandbox_id },
	{ &runtime__v1__remove_pod_sandbox_request__descriptor, rule_pod_sandbox_id },
	{ &runtime__v1__pod_sandbox_status_request__descriptor, rule_pod_sandbox_id },
	{ &runtime__v1__list_pod_sandbox_request__descriptor, rule_pod_sandbox_filter },
	{ &runtime__v1__stream_pod_sandboxes_request__descriptor, rule_stream_pod_sandbox_filter },
	{ &runtime__v1__create_container_request__descriptor, rule_create_container },
	{ &runtime__v1__start_container_request__descriptor, rule_container_id },
	{ &runtime__v1__stop_container_request__descriptor, rule_stop_container },
	{ &runtime__v1__remove_container_request__descriptor, rule_container_id },
	{ &runtime__v1__list_containers_request__descriptor, rule_list_containers },
	{ &runtime__v1__stream_containers_request__descriptor, rule_stream_containers },
	{ &runtime__v1__container_status_request__descriptor, rule_container_id },
	{ &runtime__v1__update_container_resources_request__descriptor,
	  rule_update_container_resources },
	{ &runtime__v1__reopen_container_log_request__descriptor, rule_container_id },
	{ &runtime__v1__exec_sync_request__descriptor, rule_exec_sync },
	{ &runtime__v1__exec_request__descriptor, rule_exec },
	{ &runtime__v1__attach_request__descriptor, rule_attach },
	{ &runtime__v1__port_forward_request__descriptor, rule_port_forward },
	{ &runtime__v1__container_stats_request__descriptor, rule_container_id },
	{ &runtime__v1__list_container_stats_request__descriptor, rule_list_container_stats },
	{ &runtime__v1__stream_container_stats_request__descriptor, rule_stream_container_stats },
	{ &runtime__v1__pod_sandbox_stats_request__descriptor, rule_pod_sandbox_id },
	{ &runtime__v1__list_pod_sandbox_stats_request__descriptor, rule_list_pod_sandbox_stats },
	{ &runtime__v1__stream_pod_sandbox_stats_request__descriptor,
	  rule_stream_pod_sandbox_stats },
	{ &runtime__v1__update_runtime_config_request__descriptor, rule_update_runtime_config },
	{ &runtime__v1__status_request__descriptor, NULL },
	{ &runtime__v1__checkpoint_container_request__descriptor, rule_checkpoint_container },
	{ &runtime__v1__get_events_request__descriptor, NULL },
	{ &runtime__v1__list_metric_descriptors_request__descriptor, NULL },
	{ &runtime__v1__list_pod_sandbox_metrics_request__descriptor, NULL },
	{ &runtime__v1__stream_pod_sandbox_metrics_request__descriptor, NULL },
	{ &runtime__v1__runtime_config_request__descriptor, NULL },
	{ &runtime__v1__update_pod_sandbox_resources_request__descriptor,
	  rule_update_pod_sandbox_resources },
	/* ImageService */
	{ &runtime__v1__list_images_request__descriptor, rule_list_images },
	{ &runtime__v1__stream_images_request__descriptor, rule_stream_images },
	{ &runtime__v1__image_status_request__descriptor, rule_image_status },
	{ &runtime__v1__pull_image_request__descriptor, rule_pull_image },
	{ &runtime__v1__remove_image_request__descriptor, rule_remove_image },
	{ &runtime__v1__image_fs_info_request__descriptor, NULL },
};

int criapi_validate_rules(const ProtobufCMessage *req, CrispError **err)
{
	Ctx c = { .err = err };

	for (size_t i = 0; i < ELEMENTSOF(rules); i++)
		if (rules[i].desc == req->descriptor)
			return rules[i].fn ? rules[i].fn(&c, req) : 0;
	/* Every CRI method has an entry: a message without one was never meant to arrive here. */
	return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL, "%s: no validation rules",
			       req->descriptor->name);
}
