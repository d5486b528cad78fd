/*
 * config_parse.c - reads crisp.conf and its drop-ins into a CrispConfig.
 *
 * inih (Debian's libinih) splits the lines into keys and value text.  Its
 * Debian build has fixed settings that do not fit TOML, so every line goes
 * through our own reader (ini_parse_stream) before inih sees it:
 *   - INI_MAX_LINE 200: inih silently splits longer lines; the reader
 *     refuses them.
 *   - INI_ALLOW_MULTILINE: an indented line continues the previous value;
 *     the reader strips leading blanks (TOML allows indentation), so inih
 *     never sees one, and a line that is no key, table or comment is refused.
 *   - Section names are cut at 49 bytes without notice and text after "]"
 *     is ignored: the reader parses [table] lines itself (quoted parts
 *     included) and tracks the current table; inih's section is not used.
 *   - ";" after a blank starts an inline comment, even inside a quoted
 *     string: the handler compares inih's value with the raw line and
 *     refuses a cut it did not expect.
 *   - "#" is not an inline comment to inih: config_value_parse ends the value
 *     at it.
 *   - No line numbers reach the handler (INI_HANDLER_LINENO 0): inih calls
 *     the reader for one line and then the handler for that line, so the
 *     reader's count is the handler's line.
 * The values themselves are decoded by config_values.c.
 */
#include "config_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#define CONFIG_MAX_FILE_SIZE (1024 * 1024)
#define CONFIG_MAX_TABLE_PARTS 8

typedef struct LoadContext {
	CrispConfig *config;
	char **files;		       /* every file read; origins point into it */
	ConfigOrigin *origins;	       /* indexed like config_keys */
	ConfigOrigin *runtime_origins; /* indexed like config->runtimes: the table that added it */
	size_t n_runtime_origins;
} LoadContext;

typedef enum TableKind {
	TABLE_NONE,   /* before the first [table] */
	TABLE_MAIN,   /* [crisp], [runtime], ... */
	TABLE_PARENT, /* [runtimes], [registry], [registry.hosts]: hold tables only */
	TABLE_RUNTIME,
	TABLE_REGISTRY_HOST,
} TableKind;

typedef struct Seen {
	char *id; /* "[cni]" for a table, "[cni] port" for a key */
	int line;
} Seen;

typedef struct ParseState {
	LoadContext *ctx;
	const char *file;
	const char *cursor, *end;
	int line;
	bool indented;
	char *raw; /* the current line, leading blanks and line end stripped */
	TableKind kind;
	char *table;	     /* display name, "[cni]" */
	const char *pattern; /* config_keys[].table to match */
	size_t index;	     /* into runtimes or registry_hosts */
	Seen *seen;
	size_t n_seen;
	CrispError *error;
} ParseState;

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static void load_context_sync(LoadContext *ctx)
{
	size_t n = ctx->config->n_runtimes;
	if (n <= ctx->n_runtime_origins)
		return;
	ctx->runtime_origins = xrealloc(ctx->runtime_origins, n * sizeof(*ctx->runtime_origins));
	for (size_t i = ctx->n_runtime_origins; i < n; i++)
		ctx->runtime_origins[i] = (ConfigOrigin){ 0 };
	ctx->n_runtime_origins = n;
}

static void load_context_init(LoadContext *ctx, CrispConfig *c)
{
	*ctx = (LoadContext){ .config = c };
	ctx->origins = xcalloc(config_n_keys, sizeof(*ctx->origins));
	load_context_sync(ctx);
}

static void load_context_done(LoadContext *ctx)
{
	strv_free(ctx->files);
	free(ctx->origins);
	free(ctx->runtime_origins);
	*ctx = (LoadContext){ 0 };
}

static void parse_state_done(ParseState *st)
{
	free(st->raw);
	free(st->table);
	for (size_t i = 0; i < st->n_seen; i++)
		free(st->seen[i].id);
	free(st->seen);
	crisp_error_free(st->error);
	*st = (ParseState){ 0 };
}

_printf_(2, 3) static void parse_error(ParseState *st, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	ConfigOrigin origin = { st->file, st->line };
	config_error(&st->error, &origin, "%s", msg);
	free(msg);
}

/* Records id as defined on this line; returns the line of an earlier definition, or 0. */
static int seen_once(ParseState *st, const char *id)
{
	for (size_t i = 0; i < st->n_seen; i++)
		if (strcmp(st->seen[i].id, id) == 0)
			return st->seen[i].line;
	st->seen = xrealloc(st->seen, (st->n_seen + 1) * sizeof(*st->seen));
	st->seen[st->n_seen++] = (Seen){ .id = xstrdup(id), .line = st->line };
	return 0;
}

static bool main_table(const char *name, const char **ret_pattern)
{
	for (size_t i = 0; i < config_n_keys; i++)
		if (config_keys[i].scope == SCOPE_MAIN && strcmp(config_keys[i].table, name) == 0) {
			*ret_pattern = config_keys[i].table;
			return true;
		}
	return false;
}

static void select_runtime(ParseState *st, const char *name)
{
	CrispConfig *c = st->ctx->config;
	const CrispRuntimeHandler *h = crisp_config_find_runtime(c, name);

	if (h) {
		st->index = (size_t)(h - c->runtimes);
	} else {
		st->index = config_add_runtime(c, name);
		load_context_sync(st->ctx);
		st->ctx->runtime_origins[st->index] = (ConfigOrigin){ st->file, st->line };
	}
	st->kind = TABLE_RUNTIME;
	st->pattern = "runtimes.*";
}

static void select_registry_host(ParseState *st, const char *host)
{
	CrispConfig *c = st->ctx->config;
	const CrispRegistryHost *h = crisp_config_find_registry_host(c, host);

	st->index = h ? (size_t)(h - c->registry_hosts) : config_add_registry_host(c, host);
	st->kind = TABLE_REGISTRY_HOST;
	st->pattern = "registry.hosts.*";
}

static int select_table(ParseState *st, char **parts)
{
	size_t n = strv_length(parts);
	bool runtimes = strcmp(parts[0], "runtimes") == 0;
	bool hosts = n >= 2 && strcmp(parts[0], "registry") == 0 && strcmp(parts[1], "hosts") == 0;
	const char *pattern = NULL;

	free(st->table);
	st->table = config_table_name(parts);
	st->kind = TABLE_NONE;
	st->pattern = NULL;

	int first = seen_once(st, st->table);
	if (first > 0) {
		parse_error(st, "table %s is defined twice (first on line %d)", st->table, first);
		return -EINVAL;
	}

	if (n == 1 && main_table(parts[0], &pattern)) {
		st->kind = TABLE_MAIN;
		st->pattern = pattern;
	} else if ((n == 1 && (runtimes || strcmp(parts[0], "registry") == 0)) ||
		   (n == 2 && hosts)) {
		st->kind = TABLE_PARENT;
	} else if (n == 2 && runtimes) {
		if (!config_runtime_name_ok(parts[1])) {
			parse_error(st,
				    "table %s: a runtime handler name has 1 to 63 letters, digits, "
				    "\"_\", \"-\" "
				    "or \".\", and starts with a letter or digit",
				    st->table);
			return -EINVAL;
		}
		select_runtime(st, parts[1]);
	} else if (n == 3 && hosts) {
		if (!config_registry_host_ok(parts[2])) {
			parse_error(st, "table %s: expected a registry host (host or host:port)",
				    st->table);
			return -EINVAL;
		}
		select_registry_host(st, parts[2]);
	} else if (n > 3 && hosts) {
		_cleanup_strv_free_ char **quoted = NULL;
		_cleanup_free_ char *host = xstrdup(parts[2]);
		for (size_t i = 3; i < n; i++) {
			char *longer = xasprintf("%s.%s", host, parts[i]);
			free(host);
			host = longer;
		}
		strv_push(&quoted, "registry");
		strv_push(&quoted, "hosts");
		strv_push(&quoted, host);
		_cleanup_free_ char *hint = config_table_name(quoted);
		parse_error(st, "unknown table %s (quote a host name that has dots: %s)", st->table,
			    hint);
		return -EINVAL;
	} else {
		parse_error(st, "unknown table %s", st->table);
		return -EINVAL;
	}
	return 0;
}

static int parse_table_line(ParseState *st, const char *line)
{
	_cleanup_strv_free_ char **parts = NULL;
	const char *p = line + 1;
	char problem[160];

	if (*p == '[') {
		parse_error(st, "arrays of tables ([[...]]) are not supported");
		return -EINVAL;
	}
	for (;;) {
		while (blank(*p))
			p++;
		if (*p == '"' || *p == '\'') {
			_cleanup_free_ char *part = NULL;
			bool at_end;
			if (config_string_parse(&p, &part, problem, sizeof(problem), &at_end) < 0) {
				parse_error(st, "invalid table name: %s", problem);
				return -EINVAL;
			}
			strv_push(&parts, part);
		} else {
			size_t n = 0;
			while (config_bare_char(p[n]))
				n++;
			if (n == 0 && *p == '\0') {
				parse_error(st, "invalid table name: missing \"]\"");
				return -EINVAL;
			}
			if (n == 0) {
				parse_error(st, "invalid table name: expected a name at \"%.20s\"",
					    p);
				return -EINVAL;
			}
			_cleanup_free_ char *part = xstrndup(p, n);
			strv_push(&parts, part);
			p += n;
		}
		if (strv_length(parts) > CONFIG_MAX_TABLE_PARTS) {
			parse_error(st, "invalid table name: more than %d parts",
				    CONFIG_MAX_TABLE_PARTS);
			return -EINVAL;
		}
		while (blank(*p))
			p++;
		if (*p != '.')
			break;
		p++;
	}
	if (*p != ']') {
		parse_error(st, "invalid table name: expected \".\" or \"]\" at \"%.20s\"", p);
		return -EINVAL;
	}
	p++;
	while (blank(*p))
		p++;
	if (*p && *p != '#') {
		parse_error(st, "unexpected text after the table name: \"%.40s\"", p);
		return -EINVAL;
	}
	return select_table(st, parts);
}

typedef enum LineKind {
	LINE_NOTHING, /* blank, comment or [table]: inih needs to see nothing */
	LINE_KEY,
} LineKind;

static int classify_line(ParseState *st, const char *s)
{
	if (*s == '\0' || *s == '#')
		return LINE_NOTHING;
	if (*s == '[')
		return parse_table_line(st, s) < 0 ? -EINVAL : LINE_NOTHING;
	if (*s == ';') {
		parse_error(st, "\";\" does not start a comment in TOML; use \"#\"");
		return -EINVAL;
	}
	if (*s == '"' || *s == '\'') {
		parse_error(st, "quoted keys are not supported");
		return -EINVAL;
	}

	size_t n = 0;
	while (config_bare_char(s[n]))
		n++;
	const char *p = s + n;
	while (blank(*p))
		p++;
	if (n > 0 && *p == '=')
		return LINE_KEY;
	if (n > 0 && *p == '.') {
		parse_error(st, "dotted keys are not supported: put the key under its [table]");
		return -EINVAL;
	}
	if (st->indented)
		parse_error(st, "malformed line: expected \"key = value\" (a value cannot continue "
				"on an indented "
				"line; arrays must be on one line)");
	else
		parse_error(
			st,
			"malformed line: expected \"key = value\", \"[table]\" or \"# comment\"");
	return -EINVAL;
}

/* The ini_reader: hands inih one checked line at a time; see the top of the file. */
static char *reader(char *str, int num, void *stream)
{
	ParseState *st = stream;

	if (st->error || st->cursor >= st->end)
		return NULL;

	const char *line = st->cursor;
	const char *nl = memchr(line, '\n', (size_t)(st->end - line));
	size_t len = nl ? (size_t)(nl - line) : (size_t)(st->end - line);
	st->cursor = nl ? nl + 1 : st->end;
	st->line++;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (st->line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
		line += 3;
		len -= 3;
	}
	/* inih reads num - 1 bytes at most, the newline included, and splits longer lines. */
	if (num < 3 || len > (size_t)num - 2) {
		parse_error(st, "line is longer than %d bytes", num - 2);
		return NULL;
	}
	if (!config_utf8_valid(line, len)) {
		parse_error(st, "not valid UTF-8");
		return NULL;
	}

	size_t skip = 0;
	while (skip < len && blank(line[skip]))
		skip++;
	st->indented = skip > 0;
	free(st->raw);
	st->raw = xstrndup(line + skip, len - skip);

	int kind = classify_line(st, st->raw);
	if (kind < 0)
		return NULL;
	if (kind == LINE_NOTHING) {
		memcpy(str, "\n", 2);
		return str;
	}
	size_t n = strlen(st->raw);
	memcpy(str, st->raw, n);
	memcpy(str + n, "\n", 2);
	return str;
}

static void *table_base(ParseState *st)
{
	CrispConfig *c = st->ctx->config;
	switch (st->kind) {
	case TABLE_MAIN:
		return c;
	case TABLE_RUNTIME:
		return &c->runtimes[st->index];
	case TABLE_REGISTRY_HOST:
		return &c->registry_hosts[st->index];
	default:
		abort();
	}
}

static const ConfigKey *find_key(const char *pattern, const char *name)
{
	for (size_t i = 0; pattern && i < config_n_keys; i++)
		if (strcmp(config_keys[i].table, pattern) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static bool type_matches(const ConfigKey *k, const ConfigValue *v)
{
	switch (k->type) {
	case CONFIG_STRING:
		return v->type == VALUE_STRING;
	case CONFIG_INT:
		return v->type == VALUE_INT && !v->overflow;
	case CONFIG_BOOL:
		return v->type == VALUE_BOOL;
	case CONFIG_STRV:
		return v->type == VALUE_ARRAY && v->strings_only;
	}
	return false;
}

/* Moves the decoded value into the field, releasing the old one. */
static void store(const ConfigKey *k, void *field, ConfigValue *v)
{
	switch (k->type) {
	case CONFIG_STRING:
		free(*(char **)field);
		*(char **)field = TAKE_PTR(v->string);
		break;
	case CONFIG_INT:
		*(int64_t *)field = v->integer;
		break;
	case CONFIG_BOOL:
		*(bool *)field = v->boolean;
		break;
	case CONFIG_STRV:
		strv_free(*(char ***)field);
		*(char ***)field = TAKE_PTR(v->strv);
		break;
	}
}

static void assign(ParseState *st, const char *name, const char *value)
{
	if (st->kind == TABLE_NONE) {
		parse_error(st, "key \"%s\" is outside any table: put it under its [table]", name);
		return;
	}
	const ConfigKey *k = find_key(st->pattern, name);
	if (!k) {
		parse_error(st, "unknown key \"%s\" in %s", name, st->table);
		return;
	}
	_cleanup_free_ char *id = xasprintf("%s %s", st->table, name);
	int first = seen_once(st, id);
	if (first > 0) {
		parse_error(st, "key \"%s\" in %s is set twice (first on line %d)", name, st->table,
			    first);
		return;
	}

	/* What the line says after "=", to see whether inih cut it at " ;". */
	const char *raw = strchr(st->raw, '=') + 1;
	while (blank(*raw))
		raw++;
	size_t raw_len = strlen(raw);
	while (raw_len > 0 && strchr(" \t\r\n\v\f", raw[raw_len - 1]))
		raw_len--;
	bool cut = strlen(value) < raw_len;

	_cleanup_(config_value_done) ConfigValue v = { 0 };
	char problem[160];
	bool at_end;
	int r = config_value_parse(value, &v, problem, sizeof(problem), &at_end);
	if (cut && !(r == 0 && v.comment)) {
		if (r < 0 && at_end) {
			parse_error(st,
				    "key \"%s\" in %s: \";\" after a blank inside a string or "
				    "array is not "
				    "supported (the INI parser reads it as a comment)",
				    name, st->table);
			return;
		}
		if (r == 0 || value[0] == '\0') {
			parse_error(st,
				    "key \"%s\" in %s: \";\" does not start a comment in TOML; use "
				    "\"#\"",
				    name, st->table);
			return;
		}
	}
	if (r < 0) {
		parse_error(st, "key \"%s\" in %s: %s", name, st->table, problem);
		return;
	}

	ConfigOrigin origin = { st->file, st->line };
	_cleanup_free_ char *got = xstrndup(value, v.length);
	if (!type_matches(k, &v)) {
		config_error_expected(&st->error, &origin, k, st->table, got, NULL);
		return;
	}
	const void *decoded = k->type == CONFIG_STRING ? (const void *)&v.string
			      : k->type == CONFIG_INT  ? (const void *)&v.integer
			      : k->type == CONFIG_BOOL ? (const void *)&v.boolean
						       : (const void *)&v.strv;
	if (config_check_field(k, decoded, st->table, &origin, got, &st->error) < 0)
		return;

	store(k, config_field(table_base(st), k), &v);
	if (st->kind == TABLE_MAIN)
		st->ctx->origins[k - config_keys] = origin;
	else if (st->kind == TABLE_RUNTIME && k->offset == offsetof(CrispRuntimeHandler, root))
		st->ctx->config->runtimes[st->index].root_is_default = false;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	ParseState *st = user;

	(void)section; /* cut at 49 bytes by inih; the reader keeps the table instead */
	if (st->error)
		return 0;
	assign(st, name, value);
	return st->error ? 0 : 1;
}

static int parse_text(LoadContext *ctx, const char *name, const char *text, size_t len,
		      CrispError **err)
{
	const char *nul = memchr(text, '\0', len);
	if (nul) {
		int line = 1;
		for (const char *p = text; p < nul; p++)
			line += *p == '\n';
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s:%d: contains a NUL byte",
				       name, line);
	}

	strv_push(&ctx->files, name);
	_cleanup_(parse_state_done) ParseState st = {
		.ctx = ctx,
		.file = ctx->files[strv_length(ctx->files) - 1],
		.cursor = text,
		.end = text + len,
	};

	int r = ini_parse_stream(reader, &st, handler, &st);
	if (st.error) {
		crisp_error_move(err, &st.error);
		return -EINVAL;
	}
	if (r == -2)
		abort(); /* inih's own allocation failed */
	if (r != 0)
		/* The reader lets through only lines inih accepts; this is a safety net. */
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s:%d: malformed line",
				       name, r);
	return 0;
}

static int read_file(const char *path, bool missing_ok, char **ret, size_t *ret_len,
		     CrispError **err)
{
	/* O_NONBLOCK: a FIFO planted at the path must not hang the daemon before the type check. */
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOENT && missing_ok) {
			*ret = NULL;
			return 0;
		}
		return crisp_error_set_errno(
			err, errno == ENOENT ? CRISP_ERR_NOT_FOUND : CRISP_ERR_INTERNAL, errno,
			"%s: cannot open configuration file", path);
	}

	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "%s: cannot stat",
					     path);
	if (!S_ISREG(sb.st_mode))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s: not a regular file",
				       path);
	if (sb.st_size > CONFIG_MAX_FILE_SIZE)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s: larger than %d bytes",
				       path, CONFIG_MAX_FILE_SIZE);

	size_t cap = (size_t)sb.st_size + 1, n = 0;
	_cleanup_free_ char *buf = xmalloc(cap + 1);
	for (;;) {
		if (n == cap) {
			/* The file grew since fstat. */
			if (cap > CONFIG_MAX_FILE_SIZE)
				return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						       "%s: larger than %d bytes", path,
						       CONFIG_MAX_FILE_SIZE);
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						     "%s: cannot read", path);
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = n;
	return 0;
}

static int load_file(LoadContext *ctx, const char *path, bool missing_ok, CrispError **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	int r = read_file(path, missing_ok, &text, &len, err);
	if (r < 0 || !text)
		return r;
	return parse_text(ctx, path, text, len, err);
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* The "*.conf" files of dir, sorted; none when dir does not exist. */
static int list_dropins(const char *dir, char ***ret, CrispError **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			*ret = NULL;
			return 0;
		}
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "%s: cannot open drop-in directory", dir);
	}
	_cleanup_(closedirp) DIR *d = fdopendir(fd);
	if (!d) {
		int saved = errno;
		safe_close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, saved,
					     "%s: cannot open drop-in directory", dir);
	}

	_cleanup_strv_free_ char **names = xcalloc(1, sizeof(char *));
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
							     "%s: cannot read", dir);
			break;
		}
		size_t n = strlen(de->d_name);
		/* Hidden files are editor and package-manager leftovers. */
		if (de->d_name[0] == '.' || n <= 5 || strcmp(de->d_name + n - 5, ".conf") != 0)
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, de->d_name);
		strv_push(&names, path);
	}
	qsort(names, strv_length(names), sizeof(char *), compare_strings);
	*ret = TAKE_PTR(names);
	return 0;
}

/* After the last file: derived values, then everything is checked together. */
static int finish(LoadContext *ctx, CrispError **err)
{
	load_context_sync(ctx);
	config_default_roots(ctx->config);
	return config_validate(ctx->config, ctx->origins, ctx->runtime_origins, err);
}

int crisp_config_load(CrispConfig *c, const char *path, bool path_is_default, CrispError **err)
{
	_cleanup_(load_context_done) LoadContext ctx = { 0 };
	load_context_init(&ctx, c);

	int r = load_file(&ctx, path, path_is_default, err);
	if (r >= 0) {
		_cleanup_free_ char *dir = xasprintf("%s.d", path);
		_cleanup_strv_free_ char **dropins = NULL;
		r = list_dropins(dir, &dropins, err);
		for (char **i = dropins; r >= 0 && i && *i; i++)
			r = load_file(&ctx, *i, false, err);
	}
	if (r >= 0)
		r = finish(&ctx, err);
	if (r < 0)
		crisp_config_done(c);
	return r;
}

int crisp_config_load_string(CrispConfig *c, const char *name, const char *text, CrispError **err)
{
	_cleanup_(load_context_done) LoadContext ctx = { 0 };
	load_context_init(&ctx, c);

	int r = parse_text(&ctx, name, text, strlen(text), err);
	if (r >= 0)
		r = finish(&ctx, err);
	if (r < 0)
		crisp_config_done(c);
	return r;
}
