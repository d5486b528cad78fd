/*
 * config.c - the crisp.conf keys, and what works on a whole CrispConfig:
 * defaults, validation, release, lookup and the JSON view.
 *
 * Every key is declared once in config_keys[] with its table, name, type,
 * field, default and bounds (the Postfix mail_params.h way), so adding a key
 * is one line here plus its field in config.h and its entry in
 * packaging/crisp.conf.  Defaults, parsing, validation, release and the JSON
 * view all walk this table.
 */
#include "config_internal.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/un.h>

static bool listen_ok(const char *v);
static bool sysctl_pattern_ok(const char *v);
static bool mirror_ok(const char *v);

static const char *const log_levels[] = { "debug", "info", "warning", "error", NULL };
static const char *const cgroup_drivers[] = { "cgroupfs", "systemd", NULL };
static const char *const default_cni_bin_dirs[] = { "/usr/lib/cni", "/opt/cni/bin", NULL };
static const char *const empty_strv[] = { NULL };

#define MAIN(f) .scope = SCOPE_MAIN, .offset = offsetof(CrispConfig, f)
#define RUNTIME(f) .scope = SCOPE_RUNTIME, .offset = offsetof(CrispRuntimeHandler, f)
#define HOST(f) .scope = SCOPE_REGISTRY_HOST, .offset = offsetof(CrispRegistryHost, f)

#define STRING(t, k, field, def, fl)                                                               \
	{                                                                                          \
		.table = t, .name = k, .type = CONFIG_STRING, field, .def_string = def,            \
		.flags = fl                                                                        \
	}
#define ENUM(t, k, field, def, values)                                                             \
	{                                                                                          \
		.table = t, .name = k, .type = CONFIG_STRING, field, .def_string = def,            \
		.allowed = values                                                                  \
	}
#define CHECKED(t, k, field, def, fn, what)                                                        \
	{                                                                                          \
		.table = t, .name = k, .type = CONFIG_STRING, field, .def_string = def,            \
		.check = fn, .expect = what                                                        \
	}
#define INT(t, k, field, def, lo, hi)                                                              \
	{                                                                                          \
		.table = t, .name = k, .type = CONFIG_INT, field, .def_int = def, .min = lo,       \
		.max = hi                                                                          \
	}
#define BOOL(t, k, field, def)                                                                     \
	{                                                                                          \
		.table = t, .name = k, .type = CONFIG_BOOL, field, .def_bool = def                 \
	}
#define STRV(t, k, field, def, fl, fn, what)                                                       \
	{                                                                                          \
		.table = t, .name = k, .type = CONFIG_STRV, field, .def_strv = def, .flags = fl,   \
		.check = fn, .expect = what                                                        \
	}

#define ABS KEY_ABSOLUTE
#define ABS_OR_EMPTY (KEY_ABSOLUTE | KEY_EMPTY_OK)

const ConfigKey config_keys[] = {
	ENUM("crisp", "log_level", MAIN(log_level), "info", log_levels),
	STRING("crisp", "root", MAIN(root), "/var/lib/crisp", ABS),
	STRING("crisp", "state", MAIN(state), "/run/crisp", ABS),
	CHECKED("crisp", "listen", MAIN(listen), "unix:///run/crisp/crisp.sock", listen_ok,
		"\"unix://\" followed by an absolute path of at most 107 bytes"),
	STRING("crisp", "libexec_dir", MAIN(libexec_dir), "", ABS_OR_EMPTY),
	STRING("crisp", "user", MAIN(user), "crisp", KEY_NONEMPTY),

	ENUM("runtime", "cgroup_driver", MAIN(cgroup_driver), "cgroupfs", cgroup_drivers),
	STRING("runtime", "default_runtime", MAIN(default_runtime), "runc", KEY_NONEMPTY),
	STRING("runtime", "sandbox_image", MAIN(sandbox_image), "", 0),
	BOOL("runtime", "allow_privileged", MAIN(allow_privileged), true),
	STRV("runtime", "allowed_sysctls", MAIN(allowed_sysctls), NULL, KEY_NULL_DEFAULT,
	     sysctl_pattern_ok, "an array of sysctl names or prefixes ending in \"*\""),
	INT("runtime", "stop_timeout_default", MAIN(stop_timeout_default), 10, 0, 3600),

	STRING("cni", "conf_dir", MAIN(cni_conf_dir), "/etc/cni/net.d", ABS),
	STRV("cni", "bin_dirs", MAIN(cni_bin_dirs), default_cni_bin_dirs, ABS | KEY_NONEMPTY, NULL,
	     NULL),
	INT("cni", "max_networks", MAIN(cni_max_networks), 1, 1, 16),
	INT("cni", "plugin_timeout", MAIN(cni_plugin_timeout), 60, 1, 600),

	INT("image", "pull_progress_timeout", MAIN(pull_progress_timeout), 300, 1, 86400),
	STRING("image", "registry_certs_dir", MAIN(registry_certs_dir), "/etc/crisp/certs.d", ABS),
	STRV("image", "insecure_registries", MAIN(insecure_registries), empty_strv, 0,
	     config_registry_host_ok, "an array of registry hosts (host or host:port)"),

	STRING("streaming", "address", MAIN(stream_address), "127.0.0.1", KEY_NONEMPTY),
	INT("streaming", "port", MAIN(stream_port), 0, 0, 65535),
	STRING("streaming", "tls_cert", MAIN(stream_tls_cert), "", ABS_OR_EMPTY),
	STRING("streaming", "tls_key", MAIN(stream_tls_key), "", ABS_OR_EMPTY),
	INT("streaming", "idle_timeout", MAIN(stream_idle_timeout), 14400, 1, 604800),
	INT("streaming", "max_sessions", MAIN(stream_max_sessions), 64, 1, 4096),

	/* [runtimes.<name>]: no default binary, so a new handler must name one. */
	STRING("runtimes.*", "binary", RUNTIME(binary), NULL, ABS),
	STRING("runtimes.*", "root", RUNTIME(root), NULL, ABS),

	STRV("registry.hosts.*", "mirrors", HOST(mirrors), empty_strv, 0, mirror_ok,
	     "an array of http:// or https:// URLs"),
	BOOL("registry.hosts.*", "insecure", HOST(insecure), false),
};
const size_t config_n_keys = ELEMENTSOF(config_keys);

/* Handlers present without any configuration; root is "<state>/<name>". */
static const struct {
	const char *name;
	const char *binary;
} default_runtimes[] = {
	{ "runc", "/usr/sbin/runc" },
	{ "crun", "/usr/bin/crun" },
};

static bool listen_ok(const char *v)
{
	if (strncmp(v, "unix://", 7) != 0)
		return false;
	const char *path = v + 7;
	size_t n = strlen(path);
	return path[0] == '/' && n >= 2 && n < sizeof(((struct sockaddr_un *)NULL)->sun_path);
}

static bool sysctl_pattern_ok(const char *v)
{
	size_t n = strlen(v);
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (ch == '*') {
			if (i != n - 1)
				return false;
		} else if (!config_bare_char(ch) && ch != '.' && ch != '/') {
			return false;
		}
	}
	return true;
}

static bool mirror_ok(const char *v)
{
	const char *rest;
	if (strncmp(v, "https://", 8) == 0)
		rest = v + 8;
	else if (strncmp(v, "http://", 7) == 0)
		rest = v + 7;
	else
		return false;
	if (!*rest || *rest == '/')
		return false;
	for (const char *p = rest; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

bool config_registry_host_ok(const char *host)
{
	size_t n = strlen(host);
	if (n == 0 || n > 255 || !(config_bare_char(host[0]) || host[0] == '['))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = host[i];
		if (!config_bare_char(ch) && ch != '.' && ch != ':' && ch != '[' && ch != ']')
			return false;
	}
	return true;
}

/* The name ends up in paths (<state>/<name>), hence no "/" and no leading dot. */
bool config_runtime_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 63 || !config_bare_char(name[0]) || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!config_bare_char(name[i]) && name[i] != '.')
			return false;
	return true;
}

static char **strv_copy(const char *const *v)
{
	char **copy = xcalloc(1, sizeof(char *));
	for (; v && *v; v++)
		strv_push(&copy, *v);
	return copy;
}

static void set_default(void *base, const ConfigKey *k)
{
	void *f = config_field(base, k);

	switch (k->type) {
	case CONFIG_STRING:
		*(char **)f = k->def_string ? xstrdup(k->def_string) : NULL;
		break;
	case CONFIG_INT:
		*(int64_t *)f = k->def_int;
		break;
	case CONFIG_BOOL:
		*(bool *)f = k->def_bool;
		break;
	case CONFIG_STRV:
		*(char ***)f = k->def_strv ? strv_copy(k->def_strv) : NULL;
		break;
	}
}

static void free_fields(void *base, ConfigScope scope)
{
	for (size_t i = 0; i < config_n_keys; i++) {
		const ConfigKey *k = &config_keys[i];
		if (k->scope != scope)
			continue;
		if (k->type == CONFIG_STRING)
			free(*(char **)config_field(base, k));
		else if (k->type == CONFIG_STRV)
			strv_free(*(char ***)config_field(base, k));
	}
}

static void set_defaults(void *base, ConfigScope scope)
{
	for (size_t i = 0; i < config_n_keys; i++)
		if (config_keys[i].scope == scope)
			set_default(base, &config_keys[i]);
}

size_t config_add_runtime(CrispConfig *c, const char *name)
{
	c->runtimes = xrealloc(c->runtimes, (c->n_runtimes + 1) * sizeof(*c->runtimes));
	CrispRuntimeHandler *h = &c->runtimes[c->n_runtimes];
	*h = (CrispRuntimeHandler){ .name = xstrdup(name), .root_is_default = true };
	set_defaults(h, SCOPE_RUNTIME);
	return c->n_runtimes++;
}

size_t config_add_registry_host(CrispConfig *c, const char *host)
{
	c->registry_hosts =
		xrealloc(c->registry_hosts, (c->n_registry_hosts + 1) * sizeof(*c->registry_hosts));
	CrispRegistryHost *h = &c->registry_hosts[c->n_registry_hosts];
	*h = (CrispRegistryHost){ .host = xstrdup(host) };
	set_defaults(h, SCOPE_REGISTRY_HOST);
	return c->n_registry_hosts++;
}

void crisp_config_init_defaults(CrispConfig *c)
{
	*c = (CrispConfig){ 0 };
	set_defaults(c, SCOPE_MAIN);
	for (size_t i = 0; i < ELEMENTSOF(default_runtimes); i++) {
		size_t index =
			config_add_runtime(c, default_runtimes[i].name); /* moves c->runtimes */
		CrispRuntimeHandler *h = &c->runtimes[index];
		h->binary = xstrdup(default_runtimes[i].binary);
	}
	config_default_roots(c);
}

void config_default_roots(CrispConfig *c)
{
	for (size_t i = 0; c->state && i < c->n_runtimes; i++) {
		CrispRuntimeHandler *h = &c->runtimes[i];
		if (!h->root_is_default)
			continue;
		free(h->root);
		h->root = xasprintf("%s/%s", c->state, h->name);
	}
}

void crisp_config_set_state(CrispConfig *c, const char *state)
{
	crisp_config_set_string(&c->state, state);
	config_default_roots(c);
}

void crisp_config_done(CrispConfig *c)
{
	free_fields(c, SCOPE_MAIN);
	for (size_t i = 0; i < c->n_runtimes; i++) {
		free(c->runtimes[i].name);
		free_fields(&c->runtimes[i], SCOPE_RUNTIME);
	}
	free(c->runtimes);
	for (size_t i = 0; i < c->n_registry_hosts; i++) {
		free(c->registry_hosts[i].host);
		free_fields(&c->registry_hosts[i], SCOPE_REGISTRY_HOST);
	}
	free(c->registry_hosts);
	*c = (CrispConfig){ 0 };
}

void crisp_config_set_string(char **field, const char *value)
{
	free(*field);
	*field = value ? xstrdup(value) : NULL;
}

const CrispRuntimeHandler *crisp_config_find_runtime(const CrispConfig *c, const char *name)
{
	for (size_t i = 0; name && i < c->n_runtimes; i++)
		if (streq_ptr(c->runtimes[i].name, name))
			return &c->runtimes[i];
	return NULL;
}

const CrispRegistryHost *crisp_config_find_registry_host(const CrispConfig *c, const char *host)
{
	for (size_t i = 0; host && i < c->n_registry_hosts; i++)
		if (streq_ptr(c->registry_hosts[i].host, host))
			return &c->registry_hosts[i];
	return NULL;
}

/* --- messages --- */

char *config_quote(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(n * 6 + 3), *o = out;

	*o++ = '"';
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			*o++ = '\\';
			*o++ = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += sprintf(o, "\\u%04x", ch);
		} else {
			*o++ = (char)ch;
		}
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

char *config_table_name(char *const *parts)
{
	char *name = xstrdup("[");
	for (size_t i = 0; parts[i]; i++) {
		bool bare = parts[i][0] != '\0';
		for (const char *p = parts[i]; *p; p++)
			bare = bare && config_bare_char(*p);
		_cleanup_free_ char *part = bare ? xstrdup(parts[i]) : config_quote(parts[i]);
		char *next = xasprintf("%s%s%s", name, i > 0 ? "." : "", part);
		free(name);
		name = next;
	}
	char *done = xasprintf("%s]", name);
	free(name);
	return done;
}

static void describe_strings(const char *const *values, char *buf, size_t size)
{
	size_t used = (size_t)snprintf(buf, size, "one of");
	for (size_t i = 0; values[i] && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s \"%s\"", i > 0 ? "," : "",
					 values[i]);
}

void config_describe(const ConfigKey *k, char *buf, size_t size)
{
	if (k->expect) {
		snprintf(buf, size, "%s", k->expect);
		return;
	}
	switch (k->type) {
	case CONFIG_INT:
		snprintf(buf, size, "an integer between %" PRId64 " and %" PRId64, k->min, k->max);
		break;
	case CONFIG_BOOL:
		snprintf(buf, size, "true or false");
		break;
	case CONFIG_STRING:
		if (k->allowed)
			describe_strings(k->allowed, buf, size);
		else if (k->flags & KEY_ABSOLUTE)
			snprintf(buf, size, "an absolute path%s",
				 k->flags & KEY_EMPTY_OK ? " or \"\"" : "");
		else if (k->flags & KEY_NONEMPTY)
			snprintf(buf, size, "a non-empty string");
		else
			snprintf(buf, size, "a string");
		break;
	case CONFIG_STRV:
		snprintf(buf, size, "%s%s",
			 k->flags & KEY_NONEMPTY ? "a non-empty array of " : "an array of ",
			 k->flags & KEY_ABSOLUTE ? "absolute paths" : "strings");
		break;
	}
}

int config_error(CrispError **err, const ConfigOrigin *origin, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);

	int r;
	if (origin && origin->file && origin->line > 0)
		r = crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s:%d: %s", origin->file,
				    origin->line, msg);
	else if (origin && origin->file)
		r = crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s: %s", origin->file, msg);
	else
		r = crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s", msg);
	free(msg);
	return r;
}

int config_error_expected(CrispError **err, const ConfigOrigin *origin, const ConfigKey *k,
			  const char *table, const char *got, const char *suffix)
{
	char expect[256];
	int n = (int)strlen(got);

	config_describe(k, expect, sizeof(expect));
	/* Keep the message readable when someone pastes a whole certificate in. */
	bool cut = n > 80;
	return config_error(err, origin, "key \"%s\" in %s: expected %s, got %.*s%s%s", k->name,
			    table, expect, cut ? 77 : n, got, cut ? "..." : "",
			    suffix ? suffix : "");
}

bool config_check_string(const ConfigKey *k, const char *value)
{
	if (k->allowed) {
		for (const char *const *a = k->allowed; *a; a++)
			if (strcmp(*a, value) == 0)
				return true;
		return false;
	}
	if (k->flags & KEY_ABSOLUTE) {
		if (value[0] == '\0')
			return k->flags & KEY_EMPTY_OK;
		if (value[0] != '/')
			return false;
	}
	if ((k->flags & KEY_NONEMPTY) && value[0] == '\0')
		return false;
	return !k->check || k->check(value);
}

int config_check_field(const ConfigKey *k, const void *field, const char *table,
		       const ConfigOrigin *origin, const char *got, CrispError **err)
{
	switch (k->type) {
	case CONFIG_STRING: {
		const char *v = *(char *const *)field;
		if (config_check_string(k, v ? v : ""))
			return 0;
		_cleanup_free_ char *quoted = config_quote(v ? v : "");
		return config_error_expected(err, origin, k, table, got ? got : quoted, NULL);
	}
	case CONFIG_INT: {
		int64_t v = *(const int64_t *)field;
		if (v >= k->min && v <= k->max)
			return 0;
		_cleanup_free_ char *text = xasprintf("%" PRId64, v);
		return config_error_expected(err, origin, k, table, got ? got : text, NULL);
	}
	case CONFIG_BOOL:
		return 0;
	case CONFIG_STRV: {
		char *const *v = *(char **const *)field;
		if (!v && (k->flags & KEY_NULL_DEFAULT))
			return 0;
		if ((k->flags & KEY_NONEMPTY) && strv_length(v) == 0)
			return config_error_expected(err, origin, k, table, got ? got : "[]", NULL);
		for (size_t i = 0; v && v[i]; i++) {
			if (config_check_string(k, v[i]))
				continue;
			/* Name the element: in a long array the whole value does not show which one. */
			_cleanup_free_ char *quoted = config_quote(v[i]);
			_cleanup_free_ char *which = xasprintf(" (element %zu)", i + 1);
			return config_error_expected(err, origin, k, table, quoted, which);
		}
		return 0;
	}
	}
	abort();
}

static void table_of(const ConfigKey *k, const char *name, char *buf, size_t size)
{
	_cleanup_free_ char *display = NULL;
	if (k->scope == SCOPE_MAIN) {
		snprintf(buf, size, "[%s]", k->table);
		return;
	}
	char *parts[4] = { NULL };
	if (k->scope == SCOPE_RUNTIME) {
		parts[0] = (char *)"runtimes";
		parts[1] = (char *)name;
	} else {
		parts[0] = (char *)"registry";
		parts[1] = (char *)"hosts";
		parts[2] = (char *)name;
	}
	display = config_table_name(parts);
	snprintf(buf, size, "%s", display);
}

static int check_scope(const void *base, ConfigScope scope, const char *name,
		       const ConfigOrigin *origins, const ConfigOrigin *table_origin,
		       CrispError **err)
{
	for (size_t i = 0; i < config_n_keys; i++) {
		const ConfigKey *k = &config_keys[i];
		char table[300];
		if (k->scope != scope)
			continue;
		table_of(k, name, table, sizeof(table));
		const ConfigOrigin *origin = origins ? &origins[i] : table_origin;
		if (k->type == CONFIG_STRING && !*(char *const *)config_field((void *)base, k) &&
		    !k->def_string && scope != SCOPE_MAIN)
			return config_error(err, origin, "table %s: key \"%s\" is required", table,
					    k->name);
		int r = config_check_field(k, config_field((void *)base, k), table, origin, NULL,
					   err);
		if (r < 0)
			return r;
	}
	return 0;
}

static const ConfigOrigin *origin_of(const ConfigOrigin *origins, size_t field_offset)
{
	if (!origins)
		return NULL;
	for (size_t i = 0; i < config_n_keys; i++)
		if (config_keys[i].scope == SCOPE_MAIN && config_keys[i].offset == field_offset)
			return &origins[i];
	return NULL;
}

int config_validate(const CrispConfig *c, const ConfigOrigin *main_origins,
		    const ConfigOrigin *runtime_origins, CrispError **err)
{
	int r = check_scope(c, SCOPE_MAIN, NULL, main_origins, NULL, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < c->n_runtimes; i++) {
		r = check_scope(&c->runtimes[i], SCOPE_RUNTIME, c->runtimes[i].name, NULL,
				runtime_origins ? &runtime_origins[i] : NULL, err);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < c->n_registry_hosts; i++) {
		r = check_scope(&c->registry_hosts[i], SCOPE_REGISTRY_HOST,
				c->registry_hosts[i].host, NULL, NULL, err);
		if (r < 0)
			return r;
	}

	if (!crisp_config_find_runtime(c, c->default_runtime)) {
		_cleanup_free_ char *known = xstrdup("");
		for (size_t i = 0; i < c->n_runtimes; i++) {
			char *next =
				xasprintf("%s%s%s", known, i > 0 ? ", " : "", c->runtimes[i].name);
			free(known);
			known = next;
		}
		return config_error(
			err, origin_of(main_origins, offsetof(CrispConfig, default_runtime)),
			"key \"default_runtime\" in [runtime]: no runtime handler is named \"%s\" "
			"(handlers: %s)",
			c->default_runtime, known);
	}

	bool cert = c->stream_tls_cert && c->stream_tls_cert[0];
	bool key = c->stream_tls_key && c->stream_tls_key[0];
	if (cert != key) {
		const char *set = cert ? "tls_cert" : "tls_key",
			   *unset = cert ? "tls_key" : "tls_cert";
		size_t offset = cert ? offsetof(CrispConfig, stream_tls_cert)
				     : offsetof(CrispConfig, stream_tls_key);
		return config_error(
			err, origin_of(main_origins, offset),
			"key \"%s\" in [streaming] is set but \"%s\" is not: set both or neither",
			set, unset);
	}
	return 0;
}

int crisp_config_validate(const CrispConfig *c, CrispError **err)
{
	return config_validate(c, NULL, NULL, err);
}

/* --- JSON --- */

static json_t *json_str(const char *s)
{
	if (!s)
		return json_null();
	json_t *j = json_string(s);
	if (j)
		return j;
	/* Only a command-line value can be invalid UTF-8 (files are checked):
	 * keep it visible rather than break the document. */
	_cleanup_free_ char *ascii = xstrdup(s);
	for (char *p = ascii; *p; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(ascii);
	if (!j)
		abort();
	return j;
}

static void json_set(json_t *obj, const char *key, json_t *value)
{
	if (!value || json_object_set_new(obj, key, value) < 0)
		abort();
}

static json_t *json_child(json_t *obj, const char *key)
{
	json_t *child = json_object_get(obj, key);
	if (!child) {
		child = json_object();
		json_set(obj, key, child);
	}
	return child;
}

static json_t *json_field(const void *base, const ConfigKey *k)
{
	const void *f = config_field((void *)base, k);

	switch (k->type) {
	case CONFIG_STRING:
		return json_str(*(char *const *)f);
	case CONFIG_INT:
		return json_integer(*(const int64_t *)f);
	case CONFIG_BOOL:
		return json_boolean(*(const bool *)f);
	case CONFIG_STRV: {
		char *const *v = *(char **const *)f;
		if (!v)
			return json_null();
		json_t *a = json_array();
		for (; a && *v; v++)
			if (json_array_append_new(a, json_str(*v)) < 0)
				abort();
		return a;
	}
	}
	abort();
}

static void json_scope(json_t *obj, const void *base, ConfigScope scope)
{
	for (size_t i = 0; i < config_n_keys; i++) {
		const ConfigKey *k = &config_keys[i];
		if (k->scope != scope)
			continue;
		json_t *table = scope == SCOPE_MAIN ? json_child(obj, k->table) : obj;
		json_set(table, k->name, json_field(base, k));
	}
}

char *crisp_config_to_json(const CrispConfig *c)
{
	json_t *root = json_object();
	if (!root)
		abort();

	json_scope(root, c, SCOPE_MAIN);
	json_t *runtimes = json_child(root, "runtimes");
	for (size_t i = 0; i < c->n_runtimes; i++)
		json_scope(json_child(runtimes, c->runtimes[i].name), &c->runtimes[i],
			   SCOPE_RUNTIME);
	json_t *hosts = json_child(json_child(root, "registry"), "hosts");
	for (size_t i = 0; i < c->n_registry_hosts; i++)
		json_scope(json_child(hosts, c->registry_hosts[i].host), &c->registry_hosts[i],
			   SCOPE_REGISTRY_HOST);

	char *s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!s)
		abort();
	return s;
}
