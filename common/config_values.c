/*
 * config_values.c - decodes the TOML values crisp.conf allows: basic and
 * literal strings, integers, booleans and single-line arrays of strings.
 *
 * inih only splits lines into tables, keys and value text; the text is
 * decoded here.  Anything else TOML has (floats, dates, inline tables,
 * multi-line strings and arrays) is refused with a reason, so that nothing
 * is ever half-understood.
 */
#include "config_internal.h"

#include <stdarg.h>
#include <stdio.h>

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

bool config_bare_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || digit(ch) || ch == '_' ||
	       ch == '-';
}

_printf_(3, 4) static int fail(char *problem, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(problem, size, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

bool config_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		unsigned c = *p;
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if ((size_t)(end - p) < len)
			return false;
		for (size_t i = 1; i < len; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		/* Overlong forms and surrogates would let two spellings mean one name. */
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += len;
	}
	return true;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* \uXXXX or \UXXXXXXXX, p at the 'u'.  Returns the digits used, or 0. */
static size_t unicode_escape(const char *p, uint32_t *ret)
{
	size_t digits = *p == 'u' ? 4 : 8;
	uint32_t cp = 0;

	for (size_t i = 1; i <= digits; i++) {
		char ch = p[i];
		uint32_t d;
		if (digit(ch))
			d = (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			d = (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			d = (uint32_t)(ch - 'A' + 10);
		else
			return 0;
		cp = cp * 16 + d; /* 8 hex digits fit in 32 bits */
	}
	*ret = cp;
	return digits;
}

int config_string_parse(const char **pp, char **ret, char *problem, size_t size, bool *at_end)
{
	const char *p = *pp;
	char quote = *p;

	*at_end = false;
	if (strncmp(p, quote == '"' ? "\"\"\"" : "'''", 3) == 0)
		return fail(problem, size, "multi-line strings are not supported");
	p++;

	/* Escapes only shrink: the longest, \UXXXXXXXX, is 10 bytes for at most 4. */
	_cleanup_free_ char *buf = xmalloc(strlen(p) + 1);
	size_t n = 0;

	for (;;) {
		unsigned char ch = (unsigned char)*p;

		if (ch == '\0') {
			*at_end = true;
			return fail(problem, size, "unterminated string");
		}
		if (ch == (unsigned char)quote) {
			p++;
			break;
		}
		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return fail(problem, size, "control character 0x%02x in a string", ch);
		if (ch != '\\' || quote == '\'') {
			buf[n++] = (char)ch;
			p++;
			continue;
		}

		p++;
		switch (*p) {
		case '"':
			buf[n++] = '"';
			break;
		case '\\':
			buf[n++] = '\\';
			break;
		case 'b':
			buf[n++] = '\b';
			break;
		case 'f':
			buf[n++] = '\f';
			break;
		case 'n':
			buf[n++] = '\n';
			break;
		case 'r':
			buf[n++] = '\r';
			break;
		case 't':
			buf[n++] = '\t';
			break;
		case 'u':
		case 'U': {
			uint32_t cp;
			size_t digits = unicode_escape(p, &cp);
			if (digits == 0)
				return fail(problem, size,
					    "invalid escape \"\\%c\" in a string: expected %s hex "
					    "digits",
					    *p, *p == 'u' ? "4" : "8");
			/* A NUL would silently end the C string. */
			if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
				return fail(problem, size,
					    "invalid escape \"\\%.*s\" in a string: not an allowed "
					    "character",
					    (int)digits + 1, p);
			n += utf8_encode(cp, buf + n);
			p += digits;
			break;
		}
		case '\0':
			*at_end = true;
			return fail(problem, size, "unterminated string");
		default:
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				return fail(problem, size, "invalid escape in a string");
			return fail(problem, size, "invalid escape \"\\%c\" in a string", *p);
		}
		p++;
	}

	buf[n] = '\0';
	*pp = p;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* TOML integers: [+-] then 0, or digits without leading zeros, "_" only between digits. */
static bool integer_parse(const char *s, size_t n, int64_t *ret, bool *overflow)
{
	size_t i = 0;
	bool negative = false, too_big = false;
	uint64_t v = 0;

	if (i < n && (s[i] == '+' || s[i] == '-')) {
		negative = s[i] == '-';
		i++;
	}
	if (i >= n || !digit(s[i]))
		return false;
	if (s[i] == '0' && i + 1 < n)
		return false;
	for (; i < n; i++) {
		if (s[i] == '_') {
			if (i == 0 || !digit(s[i - 1]) || i + 1 >= n || !digit(s[i + 1]))
				return false;
			continue;
		}
		if (!digit(s[i]))
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			too_big = true;
		else
			v = v * 10 + d;
	}

	if (too_big || v > (negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) {
		*overflow = true;
		*ret = 0;
	} else if (negative) {
		*ret = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
	} else {
		*ret = (int64_t)v;
	}
	return true;
}

static size_t bare_length(const char *p, bool in_array)
{
	size_t n = 0;
	while (p[n] && !blank(p[n]) && p[n] != '#' && !(in_array && (p[n] == ',' || p[n] == ']')))
		n++;
	return n;
}

static int array_parse(const char **pp, ConfigValue *v, char *problem, size_t size, bool *at_end)
{
	const char *p = *pp + 1;
	int r;

	v->type = VALUE_ARRAY;
	v->strings_only = true;
	v->strv = xcalloc(1, sizeof(char *)); /* [] is an empty array, not "unset" */

	for (;;) {
		while (blank(*p))
			p++;
		if (*p == ']')
			break;
		if (*p == '\0') {
			*at_end = true;
			return fail(problem, size,
				    "unterminated array (arrays must be on one line)");
		}
		if (*p == '#')
			return fail(problem, size,
				    "unterminated array (arrays must be on one line)");

		if (*p == '"' || *p == '\'') {
			_cleanup_free_ char *s = NULL;
			r = config_string_parse(&p, &s, problem, size, at_end);
			if (r < 0)
				return r;
			strv_push(&v->strv, s);
		} else if (*p == '[') {
			return fail(problem, size, "nested arrays are not supported");
		} else if (*p == '{') {
			return fail(problem, size, "inline tables are not supported");
		} else {
			size_t n = bare_length(p, true);
			if (n == 0)
				return fail(problem, size, "missing value in array");
			v->strings_only = false;
			p += n;
		}

		while (blank(*p))
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == ']')
			break;
		if (*p == '\0') {
			*at_end = true;
			return fail(problem, size,
				    "unterminated array (arrays must be on one line)");
		}
		return fail(problem, size, "expected \",\" or \"]\" in array, got \"%.20s\"", p);
	}

	*pp = p + 1;
	return 0;
}

int config_value_parse(const char *text, ConfigValue *ret, char *problem, size_t size, bool *at_end)
{
	_cleanup_(config_value_done) ConfigValue v = { 0 };
	const char *p = text;
	int r = 0;

	*at_end = false;
	if (*p == '\0' || *p == '#')
		return fail(problem, size, "missing value");

	if (*p == '"' || *p == '\'') {
		v.type = VALUE_STRING;
		r = config_string_parse(&p, &v.string, problem, size, at_end);
	} else if (*p == '[') {
		r = array_parse(&p, &v, problem, size, at_end);
	} else if (*p == '{') {
		return fail(problem, size, "inline tables are not supported");
	} else {
		size_t n = bare_length(p, false);
		if (n == 4 && strncmp(p, "true", 4) == 0) {
			v.type = VALUE_BOOL;
			v.boolean = true;
		} else if (n == 5 && strncmp(p, "false", 5) == 0) {
			v.type = VALUE_BOOL;
		} else if (integer_parse(p, n, &v.integer, &v.overflow)) {
			v.type = VALUE_INT;
		} else {
			v.type = VALUE_BARE;
		}
		p += n;
	}
	if (r < 0)
		return r;

	v.length = (size_t)(p - text);
	while (blank(*p))
		p++;
	if (*p == '#')
		v.comment = true;
	else if (*p)
		return fail(problem, size, "unexpected text after the value: \"%.40s\"", p);

	*ret = v;
	v = (ConfigValue){ 0 };
	return 0;
}

void config_value_done(ConfigValue *v)
{
	free(v->string);
	strv_free(v->strv);
	*v = (ConfigValue){ 0 };
}
