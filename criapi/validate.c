/*
 * validate.c - validation at the door: every CRI request is checked here
 * before anything acts on it.
 *
 * Two layers.  This file walks any protobuf-c message by its descriptors and
 * checks what protobuf-c leaves unchecked or unbounded: enum fields hold a
 * value the enum knows (protobuf-c keeps unknown proto3 values as raw ints),
 * strings are valid UTF-8 (proto3 requires it, protobuf-c does not check),
 * maps have no empty or duplicate keys, and nesting, repeated counts, map
 * sizes and string lengths are bounded, with a few limits chosen by field
 * name (labels, annotations, sysctls, command lines).  validate_rules.c then
 * applies the rules of each request: required fields, ID and name syntax,
 * paths, ports, CIDRs.  docs/VALIDATION.md lists every rule and limit.
 *
 * Errors name the field by its proto path, e.g.
 * `config.labels["a b"]: key must be printable ASCII without spaces`.
 */
#include "criapi.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

/* The per-request rules (validate_rules.c). */
int criapi_validate_rules(const ProtobufCMessage *req, CrispError **err);

/* Nesting: CRI requests are at most 8 levels deep; unknown fields are not parsed. */
#define MAX_DEPTH 32
/* Any string or bytes field without a limit of its own. */
#define MAX_STRING (64u * 1024u)
/* One command-line argument or environment entry: the kernel's MAX_ARG_STRLEN less the NUL. */
#define MAX_ARG_STRING (128u * 1024u - 1u)
/* Elements of a repeated field without a limit of its own. */
#define MAX_REPEATED 16384u
/* Entries of any map. */
#define MAX_MAP_ENTRIES 1024u
/* A map key without a limit of its own. */
#define MAX_MAP_KEY 1024u
/* Label and annotation keys: a 253-byte DNS prefix, '/', a 63-byte name. */
#define MAX_LABEL_KEY 317u
#define MAX_LABEL_VALUE 4096u
#define MAX_ANNOTATION_VALUE (256u * 1024u)
/* Keys plus values of one annotations map: twice the Kubernetes API's 256 KiB. */
#define MAX_ANNOTATIONS_TOTAL (512u * 1024u)
#define MAX_SYSCTL_KEY 253u
#define MAX_SYSCTL_VALUE 4096u
/* unified keys are cgroup file names (NAME_MAX). */
#define MAX_UNIFIED_KEY 255u
#define MAX_UNIFIED_VALUE 4096u
/* The kernel's limits: 340 ID map extents, NGROUPS_MAX groups. */
#define MAX_ID_MAPPINGS 340u
#define MAX_GROUPS 65536u

/* Limits chosen by field name; message NULL matches any message. */
typedef struct FieldLimit {
	const char *message; /* full proto name, "runtime.v1.ContainerConfig" */
	const char *field;
	size_t max_len;	  /* strings and bytes (each element of a repeated one) */
	size_t max_count; /* repeated fields */
} FieldLimit;

static const FieldLimit field_limits[] = {
	{ "runtime.v1.ContainerConfig", "command", MAX_ARG_STRING, 0 },
	{ "runtime.v1.ContainerConfig", "args", MAX_ARG_STRING, 0 },
	{ "runtime.v1.ExecSyncRequest", "cmd", MAX_ARG_STRING, 0 },
	{ "runtime.v1.ExecRequest", "cmd", MAX_ARG_STRING, 0 },
	{ "runtime.v1.KeyValue", "key", MAX_ARG_STRING, 0 },
	{ "runtime.v1.KeyValue", "value", MAX_ARG_STRING, 0 },
	{ "runtime.v1.Mount", "uidMappings", 0, MAX_ID_MAPPINGS },
	{ "runtime.v1.Mount", "gidMappings", 0, MAX_ID_MAPPINGS },
	{ "runtime.v1.UserNamespace", "uids", 0, MAX_ID_MAPPINGS },
	{ "runtime.v1.UserNamespace", "gids", 0, MAX_ID_MAPPINGS },
	{ NULL, "supplemental_groups", 0, MAX_GROUPS },
	{ "runtime.v1.DNSConfig", "servers", 0, 16 },
	{ "runtime.v1.DNSConfig", "searches", 0, 32 },
	{ "runtime.v1.DNSConfig", "options", 0, 32 },
};

typedef enum MapKind {
	MAP_GENERIC,
	MAP_LABELS, /* labels, label_selector */
	MAP_ANNOTATIONS,
	MAP_SYSCTLS,
	MAP_UNIFIED,
} MapKind;

typedef struct Walker {
	CrispError **err;
	char path[2048];
	size_t len;
	unsigned depth;
} Walker;

/* --- paths and messages --- */

static void path_append(Walker *w, const char *fmt, ...) _printf_(2, 3);
static void path_append(Walker *w, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(w->path + w->len, sizeof(w->path) - w->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		w->len += (size_t)n < sizeof(w->path) - w->len ? (size_t)n
							       : sizeof(w->path) - w->len - 1;
}

static size_t path_push_field(Walker *w, const char *name)
{
	size_t old = w->len;
	path_append(w, "%s%s", w->len ? "." : "", name);
	return old;
}

static void path_pop(Walker *w, size_t old)
{
	w->len = old;
	w->path[old] = '\0';
}

/*
 * Writes s into buf as a quoted C-like string: printable ASCII as is, '"'
 * and '\' escaped, other bytes as \xNN, cut after 64 input bytes.
 */
static const char *quote(const char *s, char *buf, size_t size)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; s[i] && i < 64 && o + 8 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (s[i])
		o += (size_t)snprintf(buf + o, size - o, "...");
	snprintf(buf + o, size - o, "\"");
	return buf;
}

static size_t path_push_key(Walker *w, const char *key)
{
	char q[300];
	size_t old = w->len;
	path_append(w, "[%s]", quote(key, q, sizeof(q)));
	return old;
}

static int fail(Walker *w, const char *fmt, ...) _printf_(2, 3);
static int fail(Walker *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return crisp_error_set(w->err, CRISP_ERR_INVALID, EINVAL, "%s: %s",
			       w->len ? w->path : "request", msg);
}

/* --- checks on values --- */

/*
 * Returns the offset of the first byte that is not part of valid UTF-8 (no
 * overlong forms, no surrogates, nothing above U+10FFFF), or -1.
 */
static ssize_t utf8_invalid_at(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned char lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			else if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			else if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return (ssize_t)i;
		}
		if (len - i - 1 < n)
			return (ssize_t)i;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return (ssize_t)i;
		for (size_t k = 2; k <= n; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return (ssize_t)i;
		i += n + 1;
	}
	return -1;
}

/* UTF-8 and length; what names the string in the message ("key", "value" or NULL). */
static int check_string(Walker *w, const char *what, const char *s, size_t max)
{
	size_t len = strlen(s);
	ssize_t bad = utf8_invalid_at((const unsigned char *)s, len);

	if (bad >= 0)
		return fail(w, "%s%sis not valid UTF-8 (byte 0x%02x at offset %zd)",
			    what ? what : "", what ? " " : "", (unsigned char)s[bad], bad);
	if (len > max)
		return fail(w, "%s%sis %zu bytes, more than %zu", what ? what : "", what ? " " : "",
			    len, max);
	return 0;
}

static const FieldLimit *find_limit(const ProtobufCMessageDescriptor *md,
				    const ProtobufCFieldDescriptor *f)
{
	for (size_t i = 0; i < ELEMENTSOF(field_limits); i++)
		if ((!field_limits[i].message || strcmp(field_limits[i].message, md->name) == 0) &&
		    strcmp(field_limits[i].field, f->name) == 0)
			return &field_limits[i];
	return NULL;
}

static MapKind map_kind(const char *name)
{
	if (strcmp(name, "labels") == 0 || strcmp(name, "label_selector") == 0)
		return MAP_LABELS;
	if (strcmp(name, "annotations") == 0)
		return MAP_ANNOTATIONS;
	if (strcmp(name, "sysctls") == 0)
		return MAP_SYSCTLS;
	if (strcmp(name, "unified") == 0)
		return MAP_UNIFIED;
	return MAP_GENERIC;
}

static int check_map_key(Walker *w, MapKind kind, const char *key)
{
	size_t len = strlen(key);
	int r;

	if (len == 0)
		return fail(w, "key must not be empty");
	switch (kind) {
	case MAP_LABELS:
	case MAP_ANNOTATIONS:
		if (len > MAX_LABEL_KEY)
			return fail(w, "key is %zu bytes, more than %u", len, MAX_LABEL_KEY);
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)key[i];
			if (ch <= 0x20 || ch >= 0x7f)
				return fail(w,
					    "key must be printable ASCII without spaces "
					    "(byte 0x%02x at offset %zu)",
					    ch, i);
		}
		return 0;
	case MAP_SYSCTLS:
		if (len > MAX_SYSCTL_KEY)
			return fail(w, "key is %zu bytes, more than %u", len, MAX_SYSCTL_KEY);
		for (size_t i = 0; i < len; i++) {
			char ch = key[i];
			bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
				  (ch >= '0' && ch <= '9') || ch == '.' || ch == '/' || ch == '-' ||
				  ch == '_';
			if (!ok)
				return fail(w, "key is not a sysctl name (letters, digits, '.', "
					       "'/', '-', '_')");
		}
		if (key[0] == '.' || key[0] == '/' || strstr(key, ".."))
			return fail(w, "key is not a sysctl name (it starts with '.' or '/', or "
				       "contains \"..\")");
		return 0;
	case MAP_UNIFIED:
		if (len > MAX_UNIFIED_KEY)
			return fail(w, "key is %zu bytes, more than %u", len, MAX_UNIFIED_KEY);
		if (strchr(key, '/') || strcmp(key, ".") == 0 || strcmp(key, "..") == 0)
			return fail(w, "key must be a cgroup file name, without '/'");
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)key[i];
			if (ch <= 0x20 || ch >= 0x7f)
				return fail(w, "key must be printable ASCII without spaces");
		}
		return 0;
	case MAP_GENERIC:
		break;
	}
	if ((r = check_string(w, "key", key, MAX_MAP_KEY)) < 0)
		return r;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return fail(w, "key must not contain control characters");
	return 0;
}

static int check_map_value(Walker *w, MapKind kind, const char *value)
{
	size_t max = MAX_STRING;
	int r;

	switch (kind) {
	case MAP_LABELS:
		max = MAX_LABEL_VALUE;
		break;
	case MAP_ANNOTATIONS:
		max = MAX_ANNOTATION_VALUE;
		break;
	case MAP_SYSCTLS:
		max = MAX_SYSCTL_VALUE;
		break;
	case MAP_UNIFIED:
		max = MAX_UNIFIED_VALUE;
		break;
	case MAP_GENERIC:
		break;
	}
	if ((r = check_string(w, "value", value, max)) < 0)
		return r;
	if (kind == MAP_SYSCTLS || kind == MAP_UNIFIED)
		for (const char *p = value; *p; p++)
			if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
				return fail(w, "value must not contain control characters");
	return 0;
}

/* --- the walk --- */

static int walk_message(Walker *w, const ProtobufCMessage *m);

static size_t repeated_elt_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	abort();
}

/* One value of a field (an element, for a repeated one) at the current path. */
static int walk_value(Walker *w, const ProtobufCFieldDescriptor *f, const void *member,
		      size_t max_len)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		int v = *(const int *)member;
		if (!protobuf_c_enum_descriptor_get_value(ed, v))
			return fail(w, "%d is not a known %s value", v, ed->short_name);
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)member;
		return s ? check_string(w, NULL, s, max_len) : 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = member;
		if (b->len > max_len)
			return fail(w, "is %zu bytes, more than %zu", b->len, max_len);
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)member;
		return sub ? walk_message(w, sub) : 0;
	}
	default:
		return 0;
	}
}

static bool is_map_entry(const ProtobufCFieldDescriptor *f)
{
	if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED)
		return false;
	const ProtobufCMessageDescriptor *md = f->descriptor;
	size_t n = strlen(md->short_name);
	return md->n_fields == 2 && n > 5 && strcmp(md->short_name + n - 5, "Entry") == 0 &&
	       strcmp(md->fields[0].name, "key") == 0 && md->fields[0].id == 1 &&
	       md->fields[0].type == PROTOBUF_C_TYPE_STRING &&
	       md->fields[0].label != PROTOBUF_C_LABEL_REPEATED &&
	       strcmp(md->fields[1].name, "value") == 0 && md->fields[1].id == 2 &&
	       md->fields[1].label != PROTOBUF_C_LABEL_REPEATED;
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *entry_key(const ProtobufCMessage *e)
{
	const ProtobufCFieldDescriptor *kf = &e->descriptor->fields[0];
	const char *k = *(char *const *)((const char *)e + kf->offset);
	return k ? k : "";
}

static int walk_map(Walker *w, const ProtobufCFieldDescriptor *f, ProtobufCMessage *const *entries,
		    size_t n)
{
	MapKind kind = map_kind(f->name);
	size_t total = 0;
	int r;

	if (n > MAX_MAP_ENTRIES)
		return fail(w, "more than %u entries", MAX_MAP_ENTRIES);

	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessage *e = entries[i];
		const ProtobufCFieldDescriptor *vf = &e->descriptor->fields[1];
		const void *vmember = (const char *)e + vf->offset;
		const char *key = entry_key(e);

		size_t o = path_push_key(w, key);
		r = check_map_key(w, kind, key);
		if (r >= 0 && vf->type == PROTOBUF_C_TYPE_STRING) {
			const char *value = *(char *const *)vmember;
			r = check_map_value(w, kind, value ? value : "");
			total += strlen(key) + (value ? strlen(value) : 0);
		} else if (r >= 0) {
			r = walk_value(w, vf, vmember, MAX_STRING);
		}
		path_pop(w, o);
		if (r < 0)
			return r;
	}
	if (kind == MAP_ANNOTATIONS && total > MAX_ANNOTATIONS_TOTAL)
		return fail(w, "keys and values total %zu bytes, more than %u", total,
			    MAX_ANNOTATIONS_TOTAL);

	/* Duplicate keys: proto3 says the last one wins; refuse the ambiguity instead. */
	if (n > 1) {
		_cleanup_free_ const char **keys = xmalloc(n * sizeof(*keys));
		for (size_t i = 0; i < n; i++)
			keys[i] = entry_key(entries[i]);
		qsort(keys, n, sizeof(*keys), cmp_str_ptr);
		for (size_t i = 1; i < n; i++)
			if (strcmp(keys[i - 1], keys[i]) == 0) {
				size_t o = path_push_key(w, keys[i]);
				r = fail(w, "key appears more than once");
				path_pop(w, o);
				return r;
			}
	}
	return 0;
}

static int walk_field(Walker *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const char *base = (const char *)m;
	const FieldLimit *lim = find_limit(m->descriptor, f);
	size_t max_len = lim && lim->max_len ? lim->max_len : MAX_STRING;
	int r = 0;

	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		size_t n = *(const size_t *)(base + f->quantifier_offset);
		const char *arr = *(char *const *)(base + f->offset);
		size_t max_count = lim && lim->max_count ? lim->max_count : MAX_REPEATED;

		if (n == 0)
			return 0;
		size_t o = path_push_field(w, f->name);
		if (is_map_entry(f)) {
			r = walk_map(w, f, (ProtobufCMessage *const *)arr, n);
		} else if (n > max_count) {
			r = fail(w, "more than %zu entries", max_count);
		} else if (f->type == PROTOBUF_C_TYPE_ENUM || f->type == PROTOBUF_C_TYPE_STRING ||
			   f->type == PROTOBUF_C_TYPE_BYTES || f->type == PROTOBUF_C_TYPE_MESSAGE) {
			size_t sz = repeated_elt_size(f->type);
			for (size_t i = 0; i < n && r >= 0; i++) {
				size_t oi = w->len;
				path_append(w, "[%zu]", i);
				r = walk_value(w, f, arr + i * sz, max_len);
				path_pop(w, oi);
			}
		}
		path_pop(w, o);
		return r;
	}

	/* A member of a oneof holds a value only when the case names it. */
	if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
	    *(const uint32_t *)(base + f->quantifier_offset) != f->id)
		return 0;

	size_t o = path_push_field(w, f->name);
	r = walk_value(w, f, base + f->offset, max_len);
	path_pop(w, o);
	return r;
}

static int walk_message(Walker *w, const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *md = m->descriptor;
	int r;

	if (!md || md->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		abort(); /* not a message protobuf-c built */
	if (++w->depth > MAX_DEPTH) {
		w->depth--;
		return fail(w, "nested more than %d levels deep", MAX_DEPTH);
	}
	for (unsigned i = 0; i < md->n_fields; i++)
		if ((r = walk_field(w, m, &md->fields[i])) < 0) {
			w->depth--;
			return r;
		}
	w->depth--;
	return 0;
}

int criapi_validate_request(const ProtobufCMessage *req, CrispError **err)
{
	Walker w = { .err = err };
	int r;

	if (!req)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "no request message");
	if ((r = walk_message(&w, req)) < 0)
		return r;
	return criapi_validate_rules(req, err);
}
