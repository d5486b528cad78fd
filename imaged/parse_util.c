/*
 * parse_util.c - escaping, bounded JSON loading and typed field getters for
 * imaged's parsers.
 *
 * jansson already refuses invalid UTF-8, "\u0000" (without JSON_ALLOW_NUL),
 * integers that do not fit in json_int_t and nesting past 2048 levels.  The
 * pre-scan adds what it does not bound: a tree built from a few megabytes of
 * "[1,1,1,..." costs tens of bytes per input byte, so the number of values
 * and the depth are capped before any allocation, in one pass over the text.
 */
#include "parse_util.h"

#include <limits.h>
#include <stdio.h>

char *imaged_escape_len(const void *s, size_t len, size_t max)
{
	const unsigned char *p = s;
	size_t n = len < max ? len : max;
	/* Worst case four bytes per input byte, plus "..." and the NUL. */
	char *out = xmalloc(n * 4 + 4);
	char *o = out;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			*o++ = (char)c;
		} else {
			static const char hex[] = "0123456789abcdef";
			*o++ = '\\';
			*o++ = 'x';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	if (len > max) {
		memcpy(o, "...", 3);
		o += 3;
	}
	*o = '\0';
	return out;
}

char *imaged_escape(const char *s, size_t max)
{
	if (!s)
		return xstrdup("(null)");
	return imaged_escape_len(s, strnlen(s, max + 1), max);
}

/* Depth and an upper bound of the number of values, without building anything. */
static int json_prescan(const unsigned char *p, size_t size, const ImagedJsonLimits *limits,
			const char *what, CrispError **err)
{
	bool in_string = false, escaped = false;
	unsigned depth = 0;
	size_t values = 1;

	for (size_t i = 0; i < size; i++) {
		unsigned char c = p[i];
		if (in_string) {
			if (escaped)
				escaped = false;
			else if (c == '\\')
				escaped = true;
			else if (c == '"')
				in_string = false;
			continue;
		}
		switch (c) {
		case '"':
			in_string = true;
			break;
		case '[':
		case '{':
			if (++depth > limits->max_depth)
				return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						       "%s nests arrays and objects deeper than %u "
						       "levels",
						       what, limits->max_depth);
			values++;
			break;
		case ']':
		case '}':
			/* Unbalanced input is jansson's to report. */
			if (depth > 0)
				depth--;
			break;
		case ',':
		case ':':
			values++;
			break;
		default:
			break;
		}
		if (values > limits->max_values)
			return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
					       "%s has more than %zu values", what,
					       limits->max_values);
	}
	return 0;
}

int imaged_json_load(const void *data, size_t size, const ImagedJsonLimits *limits,
		     const char *what, json_t **ret, CrispError **err)
{
	if (size > limits->max_size)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "%s is %zu bytes, more than the limit of %zu", what, size,
				       limits->max_size);
	if (!data && size > 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL, "%s: no data", what);

	int r = json_prescan(data ? data : (const void *)"", size, limits, what, err);
	if (r < 0)
		return r;

	json_error_t jerr;
	json_t *j = json_loadb(data ? data : "", size, JSON_REJECT_DUPLICATES, &jerr);
	if (!j) {
		_cleanup_free_ char *text = imaged_escape(jerr.text, sizeof(jerr.text));
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s is not valid JSON: %s (line %d, column %d)", what, text,
				       jerr.line, jerr.column);
	}
	if (!json_is_object(j)) {
		const char *type = imaged_json_type_name(j);
		json_decref(j);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s must be a JSON object, not a JSON %s", what, type);
	}
	*ret = j;
	return 0;
}

const char *imaged_json_type_name(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "integer";
	case JSON_REAL:
		return "real number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "boolean";
	case JSON_NULL:
		return "null";
	}
	return "unknown value";
}

/* The field, or NULL when it is missing or null; errors when a required one is. */
static int get_field(json_t *obj, const char *where, const char *key, bool required, json_t **ret,
		     CrispError **err)
{
	json_t *v = json_object_get(obj, key);
	*ret = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s%s%s is missing",
					       where, *where ? "." : "", key);
		return 0;
	}
	*ret = v;
	return 1;
}

static int wrong_type(const char *where, const char *key, const char *want, const json_t *v,
		      CrispError **err)
{
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s%s%s must be %s, not %s", where,
			       *where ? "." : "", key, want, imaged_json_type_name(v));
}

int imaged_json_get_string(json_t *obj, const char *where, const char *key, bool required,
			   size_t max_len, const char **ret, CrispError **err)
{
	json_t *v = NULL;
	int r = get_field(obj, where, key, required, &v, err);
	if (r <= 0) {
		if (r == 0)
			*ret = NULL;
		return r;
	}
	if (!json_is_string(v))
		return wrong_type(where, key, "a string", v, err);
	if (json_string_length(v) > max_len)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s%s%s is longer than %zu bytes", where, *where ? "." : "",
				       key, max_len);
	*ret = json_string_value(v);
	return 1;
}

int imaged_json_get_size(json_t *obj, const char *where, const char *key, bool required,
			 int64_t max, int64_t *ret, CrispError **err)
{
	json_t *v = NULL;
	int r = get_field(obj, where, key, required, &v, err);
	if (r <= 0)
		return r;
	if (!json_is_integer(v))
		return wrong_type(where, key, "an integer", v, err);
	json_int_t n = json_integer_value(v);
	if (n < 0)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s%s%s is negative (%lld)",
				       where, *where ? "." : "", key, (long long)n);
	if (n > max)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "%s%s%s is %lld, more than the limit of %lld", where,
				       *where ? "." : "", key, (long long)n, (long long)max);
	*ret = (int64_t)n;
	return 1;
}

int imaged_json_get_object(json_t *obj, const char *where, const char *key, bool required,
			   json_t **ret, CrispError **err)
{
	json_t *v = NULL;
	int r = get_field(obj, where, key, required, &v, err);
	if (r <= 0) {
		if (r == 0)
			*ret = NULL;
		return r;
	}
	if (!json_is_object(v))
		return wrong_type(where, key, "an object", v, err);
	*ret = v;
	return 1;
}

int imaged_json_get_array(json_t *obj, const char *where, const char *key, bool required,
			  size_t max_items, json_t **ret, CrispError **err)
{
	json_t *v = NULL;
	int r = get_field(obj, where, key, required, &v, err);
	if (r <= 0) {
		if (r == 0)
			*ret = NULL;
		return r;
	}
	if (!json_is_array(v))
		return wrong_type(where, key, "an array", v, err);
	if (json_array_size(v) > max_items)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "%s%s%s has %zu entries, more than the limit of %zu", where,
				       *where ? "." : "", key, json_array_size(v), max_items);
	*ret = v;
	return 1;
}

int imaged_clean_absolute_path(const char *path, bool allow_root, char **ret, const char **reason)
{
	size_t len = strlen(path);

	if (path[0] != '/') {
		*reason = "is not an absolute path";
		return -EINVAL;
	}
	if (len >= PATH_MAX) {
		*reason = "is longer than PATH_MAX";
		return -EINVAL;
	}
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*reason = "contains a control character";
			return -EINVAL;
		}

	_cleanup_free_ char *out = xmalloc(len + 1);
	size_t o = 0;
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*reason = "has a \"..\" component";
			return -EINVAL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = end;
	}
	if (o == 0) {
		if (!allow_root) {
			*reason = "is the root directory";
			return -EINVAL;
		}
		out[o++] = '/';
	}
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}
