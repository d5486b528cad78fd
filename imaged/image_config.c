/*
 * image_config.c - parsing and validating an image config (see image_config.h).
 */
#include "image_config.h"

#include "parse_util.h"

#include <signal.h>
#include <stdio.h>
#include <strings.h>

/* Room for Env, Labels and history of a large image, without a tree of millions of values. */
#define CONFIG_MAX_VALUES 262144

static const ImagedJsonLimits config_limits = {
	.max_size = CRISP_IMAGE_CONFIG_MAX_SIZE,
	.max_depth = CRISP_JSON_MAX_DEPTH,
	.max_values = CONFIG_MAX_VALUES,
};

static char **strv_new(size_t n)
{
	return xcalloc(n + 1, sizeof(char *));
}

static int invalid(CrispError **err, const char *field, const char *value, const char *reason)
{
	_cleanup_free_ char *q = imaged_escape(value, IMAGED_QUOTE_MAX);
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s \"%s\" %s", field, q, reason);
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool identifier_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-' || *s == '+'))
			return false;
	return true;
}

static int get_identifier(json_t *obj, const char *key, bool required, char **ret, CrispError **err)
{
	const char *s;
	int r = imaged_json_get_string(obj, "", key, required, CRISP_PLATFORM_FIELD_MAX, &s, err);
	if (r < 0)
		return r;
	if (r > 0 && !identifier_valid(s))
		return invalid(err, key, s,
			       "is not a platform name (letters, digits, '.', '_', '+', '-')");
	*ret = r > 0 ? xstrdup(s) : NULL;
	return 0;
}

static bool digits(const char *s, size_t n, int lo, int hi)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	return v >= lo && v <= hi;
}

/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), RFC 3339 section 5.6. */
static bool rfc3339_valid(const char *s)
{
	size_t n = strlen(s);
	if (n < 20 || n > 64)
		return false;
	if (!digits(s, 4, 0, 9999) || s[4] != '-' || !digits(s + 5, 2, 1, 12) || s[7] != '-' ||
	    !digits(s + 8, 2, 1, 31) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2, 0, 23) || s[13] != ':' || !digits(s + 14, 2, 0, 59) ||
	    s[16] != ':' || !digits(s + 17, 2, 0, 60))
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		const char *start = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == start)
			return false;
	}
	if (*p == 'Z' || *p == 'z')
		return p[1] == '\0';
	if (*p == '+' || *p == '-')
		return strlen(p) == 6 && digits(p + 1, 2, 0, 23) && p[3] == ':' &&
		       digits(p + 4, 2, 0, 59);
	return false;
}

static const struct {
	const char *name;
	int number;
} signal_names[] = {
	{ "HUP", SIGHUP },	 { "INT", SIGINT },	  { "QUIT", SIGQUIT },
	{ "ILL", SIGILL },	 { "TRAP", SIGTRAP },	  { "ABRT", SIGABRT },
	{ "IOT", SIGIOT },	 { "BUS", SIGBUS },	  { "FPE", SIGFPE },
	{ "KILL", SIGKILL },	 { "USR1", SIGUSR1 },	  { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 },	 { "PIPE", SIGPIPE },	  { "ALRM", SIGALRM },
	{ "TERM", SIGTERM },	 { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },
	{ "CLD", SIGCHLD },	 { "CONT", SIGCONT },	  { "STOP", SIGSTOP },
	{ "TSTP", SIGTSTP },	 { "TTIN", SIGTTIN },	  { "TTOU", SIGTTOU },
	{ "URG", SIGURG },	 { "XCPU", SIGXCPU },	  { "XFSZ", SIGXFSZ },
	{ "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },	  { "WINCH", SIGWINCH },
	{ "IO", SIGIO },	 { "POLL", SIGPOLL },	  { "PWR", SIGPWR },
	{ "SYS", SIGSYS },
};

/* "+N" / "-N" after RTMIN / RTMAX, N small. */
static bool rt_offset(const char *s, char sign, int *ret)
{
	if (!*s) {
		*ret = 0;
		return true;
	}
	if (s[0] != sign || !s[1] || strlen(s) > 3)
		return false;
	int v = 0;
	for (s++; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
	}
	*ret = v;
	return true;
}

int crisp_signal_parse(const char *s, int *ret)
{
	int n = -1;

	if (!s || !*s || strlen(s) > 16)
		return -EINVAL;
	if (s[0] >= '0' && s[0] <= '9') {
		if (strlen(s) > 3 || !digits(s, strlen(s), 1, SIGRTMAX))
			return -EINVAL;
		n = atoi(s);
	} else {
		if (strncasecmp(s, "SIG", 3) == 0)
			s += 3;
		int off;
		if (strncasecmp(s, "RTMIN", 5) == 0 && rt_offset(s + 5, '+', &off))
			n = SIGRTMIN + off;
		else if (strncasecmp(s, "RTMAX", 5) == 0 && rt_offset(s + 5, '-', &off))
			n = SIGRTMAX - off;
		else
			for (size_t i = 0; i < ELEMENTSOF(signal_names); i++)
				if (strcasecmp(s, signal_names[i].name) == 0)
					n = signal_names[i].number;
	}
	if (n < 1 || n > SIGRTMAX || (n > SIGSYS && n < SIGRTMIN))
		return -EINVAL;
	*ret = n;
	return 0;
}

/* A string array; a lone string is one element.  NULL (absent) stays NULL. */
static int parse_args(json_t *cfg, const char *key, char ***ret, CrispError **err)
{
	json_t *v = json_object_get(cfg, key);
	_cleanup_free_ char *where = xasprintf("config.%s", key);

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		char **out = strv_new(1);
		out[0] = xstrdup(json_string_value(v));
		*ret = out;
		return 0;
	}
	if (!json_is_array(v))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s must be an array of strings, not %s", where,
				       imaged_json_type_name(v));
	size_t n = json_array_size(v);
	if (n > CRISP_IMAGE_CONFIG_MAX_ITEMS)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "%s has %zu entries, more than the limit of %d", where, n,
				       CRISP_IMAGE_CONFIG_MAX_ITEMS);
	_cleanup_strv_free_ char **out = strv_new(n);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		if (!json_is_string(e))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "%s[%zu] must be a string, not %s", where, i,
					       imaged_json_type_name(e));
		out[i] = xstrdup(json_string_value(e));
	}
	*ret = TAKE_PTR(out);
	return 0;
}

static int parse_env(json_t *cfg, char ***ret, CrispError **err)
{
	json_t *arr;
	int r = imaged_json_get_array(cfg, "config", "Env", false, CRISP_IMAGE_CONFIG_MAX_ITEMS,
				      &arr, err);
	*ret = NULL;
	if (r <= 0)
		return r;

	size_t n = json_array_size(arr);
	_cleanup_strv_free_ char **out = strv_new(n);
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(arr, i);
		if (!json_is_string(e))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "config.Env[%zu] must be a string, not %s", i,
					       imaged_json_type_name(e));
		const char *s = json_string_value(e);
		const char *eq = strchr(s, '=');
		if (!eq)
			return invalid(err, "config.Env entry", s,
				       "has no '=': an image's environment is a list of "
				       "KEY=VALUE");
		if (eq == s)
			return invalid(err, "config.Env entry", s, "has an empty variable name");
		out[i] = xstrdup(s);
	}
	*ret = TAKE_PTR(out);
	return 0;
}

/* "80", "80/tcp", "8000-8010/udp" -> "80/tcp", ... */
static char *exposed_port_normalize(const char *key)
{
	const char *slash = strchr(key, '/');
	size_t plen = slash ? (size_t)(slash - key) : strlen(key);
	const char *proto = slash ? slash + 1 : "tcp";
	const char *dash = memchr(key, '-', plen);
	size_t first = dash ? (size_t)(dash - key) : plen;

	if (first == 0 || first > 5 || !digits(key, first, 1, 65535))
		return NULL;
	if (dash) {
		size_t second = plen - first - 1;
		if (second == 0 || second > 5 || !digits(dash + 1, second, 1, 65535) ||
		    atoi(dash + 1) < atoi(key))
			return NULL;
	}
	const char *protos[] = { "tcp", "udp", "sctp" };
	for (size_t i = 0; i < ELEMENTSOF(protos); i++)
		if (strcasecmp(proto, protos[i]) == 0)
			return xasprintf("%.*s/%s", (int)plen, key, protos[i]);
	return NULL;
}

/* An object whose keys are the values (ExposedPorts, Volumes). */
static int parse_key_set(json_t *cfg, const char *key, char ***ret, CrispError **err)
{
	json_t *obj;
	_cleanup_free_ char *where = xasprintf("config.%s", key);
	int r = imaged_json_get_object(cfg, "config", key, false, &obj, err);
	*ret = NULL;
	if (r <= 0)
		return r;

	size_t n = json_object_size(obj), i = 0;
	if (n > CRISP_IMAGE_CONFIG_MAX_KEYS)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "%s has %zu entries, more than the limit of %d", where, n,
				       CRISP_IMAGE_CONFIG_MAX_KEYS);
	if (n == 0)
		return 0;
	_cleanup_strv_free_ char **out = strv_new(n);
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		char *clean = NULL;
		if (strcmp(key, "Volumes") == 0) {
			const char *reason = NULL;
			if (imaged_clean_absolute_path(k, false, &clean, &reason) < 0)
				return invalid(err, "config.Volumes entry", k, reason);
		} else {
			clean = exposed_port_normalize(k);
			if (!clean)
				return invalid(err, "config.ExposedPorts entry", k,
					       "is not PORT[-PORT][/tcp|udp|sctp] with ports "
					       "1-65535");
		}
		/* "/data" and "/data/" are one volume. */
		bool dup = false;
		for (size_t j = 0; j < i && !dup; j++)
			dup = strcmp(out[j], clean) == 0;
		if (dup)
			free(clean);
		else
			out[i++] = clean;
	}
	*ret = TAKE_PTR(out);
	return 0;
}

static int parse_labels(json_t *cfg, char ***ret, CrispError **err)
{
	json_t *obj;
	int r = imaged_json_get_object(cfg, "config", "Labels", false, &obj, err);
	*ret = NULL;
	if (r <= 0)
		return r;

	size_t n = json_object_size(obj), i = 0;
	if (n > CRISP_IMAGE_CONFIG_MAX_ITEMS)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "config.Labels has %zu entries, more than the limit of %d",
				       n, CRISP_IMAGE_CONFIG_MAX_ITEMS);
	if (n == 0)
		return 0;
	_cleanup_strv_free_ char **out = strv_new(2 * n);
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		if (!json_is_string(v)) {
			_cleanup_free_ char *q = imaged_escape(k, IMAGED_QUOTE_MAX);
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "config.Labels \"%s\" must be a string, not %s", q,
					       imaged_json_type_name(v));
		}
		out[i++] = xstrdup(k);
		out[i++] = xstrdup(json_string_value(v));
	}
	*ret = TAKE_PTR(out);
	return 0;
}

static int parse_container_config(json_t *cfg, CrispImageConfig *c, CrispError **err)
{
	const char *s;
	int r;

	r = imaged_json_get_string(cfg, "config", "User", false, CRISP_IMAGE_CONFIG_USER_MAX, &s,
				   err);
	if (r < 0)
		return r;
	if (s && has_control(s))
		return invalid(err, "config.User", s, "contains a control character");
	c->user = s && *s ? xstrdup(s) : NULL;

	r = imaged_json_get_string(cfg, "config", "WorkingDir", false, SIZE_MAX, &s, err);
	if (r < 0)
		return r;
	if (s && *s) {
		const char *reason = NULL;
		if (imaged_clean_absolute_path(s, true, &c->working_dir, &reason) < 0)
			return invalid(err, "config.WorkingDir", s, reason);
	}

	r = imaged_json_get_string(cfg, "config", "StopSignal", false, 64, &s, err);
	if (r < 0)
		return r;
	if (s && *s && crisp_signal_parse(s, &c->stop_signal) < 0)
		return invalid(err, "config.StopSignal", s,
			       "is not a signal name (SIGTERM, SIGRTMIN+3) or number (1-64)");

	if ((r = parse_env(cfg, &c->env, err)) < 0 ||
	    (r = parse_args(cfg, "Entrypoint", &c->entrypoint, err)) < 0 ||
	    (r = parse_args(cfg, "Cmd", &c->cmd, err)) < 0 ||
	    (r = parse_key_set(cfg, "ExposedPorts", &c->exposed_ports, err)) < 0 ||
	    (r = parse_key_set(cfg, "Volumes", &c->volumes, err)) < 0 ||
	    (r = parse_labels(cfg, &c->labels, err)) < 0)
		return r;
	return 0;
}

static int parse_rootfs(json_t *root, CrispImageConfig *c, CrispError **err)
{
	json_t *rootfs, *ids;
	const char *type;
	int r;

	r = imaged_json_get_object(root, "", "rootfs", true, &rootfs, err);
	if (r < 0)
		return r;
	r = imaged_json_get_string(rootfs, "rootfs", "type", true, 64, &type, err);
	if (r < 0)
		return r;
	if (strcmp(type, "layers") != 0)
		return invalid(err, "rootfs.type", type, "is not supported (\"layers\" is)");
	r = imaged_json_get_array(rootfs, "rootfs", "diff_ids", true, CRISP_MANIFEST_MAX_LAYERS,
				  &ids, err);
	if (r < 0)
		return r;

	size_t n = json_array_size(ids);
	c->diff_ids = xcalloc(n ? n : 1, sizeof(CrispDigest));
	c->n_diff_ids = n;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(ids, i);
		if (!json_is_string(e))
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "rootfs.diff_ids[%zu] must be a string, not %s", i,
					       imaged_json_type_name(e));
		r = crisp_digest_parse(json_string_value(e), &c->diff_ids[i], err);
		if (r < 0)
			return crisp_error_wrap(err, "rootfs.diff_ids[%zu]", i);
	}
	return 0;
}

static int config_body(json_t *root, CrispImageConfig *c, CrispError **err)
{
	const char *created;
	json_t *cfg;
	int r;

	if ((r = get_identifier(root, "architecture", true, &c->architecture, err)) < 0 ||
	    (r = get_identifier(root, "os", true, &c->os, err)) < 0 ||
	    (r = get_identifier(root, "variant", false, &c->variant, err)) < 0)
		return r;

	r = imaged_json_get_string(root, "", "created", false, 64, &created, err);
	if (r < 0)
		return r;
	if (created) {
		if (!rfc3339_valid(created))
			return invalid(err, "created", created, "is not an RFC 3339 date-time");
		c->created = xstrdup(created);
	}

	r = parse_rootfs(root, c, err);
	if (r < 0)
		return r;

	r = imaged_json_get_object(root, "", "config", false, &cfg, err);
	if (r < 0)
		return r;
	if (cfg)
		return parse_container_config(cfg, c, err);
	return 0;
}

int crisp_image_config_parse(const void *data, size_t size, CrispImageConfig *ret, CrispError **err)
{
	json_t *root = NULL;
	int r = imaged_json_load(data, size, &config_limits, "image config", &root, err);
	if (r < 0)
		return r;

	CrispImageConfig c = { 0 };
	r = config_body(root, &c, err);
	json_decref(root);
	if (r < 0) {
		crisp_image_config_done(&c);
		return crisp_error_wrap(err, "image config");
	}
	*ret = c;
	return 0;
}

void crisp_image_config_done(CrispImageConfig *c)
{
	if (!c)
		return;
	free(c->architecture);
	free(c->os);
	free(c->variant);
	free(c->created);
	free(c->diff_ids);
	free(c->user);
	strv_free(c->env);
	strv_free(c->entrypoint);
	strv_free(c->cmd);
	free(c->working_dir);
	strv_free(c->exposed_ports);
	strv_free(c->volumes);
	strv_free(c->labels);
	*c = (CrispImageConfig){ 0 };
}

const char *crisp_image_config_label(const CrispImageConfig *c, const char *key)
{
	for (char **l = c->labels; l && l[0] && l[1]; l += 2)
		if (strcmp(l[0], key) == 0)
			return l[1];
	return NULL;
}

int crisp_image_config_check_layers(const CrispImageConfig *c, const CrispManifest *m,
				    CrispError **err)
{
	if (c->n_diff_ids != m->n_layers)
		return crisp_error_set(
			err, CRISP_ERR_INVALID, EINVAL,
			"the image config lists %zu layers (rootfs.diff_ids) but the "
			"manifest has %zu",
			c->n_diff_ids, m->n_layers);
	return 0;
}
