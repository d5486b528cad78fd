/*
 * config_internal.h - shared by config.c (the key table and what works on a
 * whole CrispConfig), config_parse.c (files, inih, tables, assignment) and
 * config_values.c (decoding TOML values).  Not for use outside config*.c.
 */
#ifndef CRISP_CONFIG_INTERNAL_H
#define CRISP_CONFIG_INTERNAL_H

#include "config.h"

typedef enum ConfigType {
	CONFIG_STRING,
	CONFIG_INT,
	CONFIG_BOOL,
	CONFIG_STRV,
} ConfigType;

/* Which struct a key's offset is into. */
typedef enum ConfigScope {
	SCOPE_MAIN,	     /* CrispConfig */
	SCOPE_RUNTIME,	     /* CrispRuntimeHandler, tables [runtimes.<name>] */
	SCOPE_REGISTRY_HOST, /* CrispRegistryHost, tables [registry.hosts."<host>"] */
} ConfigScope;

enum {
	KEY_ABSOLUTE = 1 << 0,	   /* string, or each element: an absolute path */
	KEY_EMPTY_OK = 1 << 1,	   /* with KEY_ABSOLUTE: "" is allowed too */
	KEY_NONEMPTY = 1 << 2,	   /* string: not ""; array: at least one element */
	KEY_NULL_DEFAULT = 1 << 3, /* array: NULL is a meaningful value (JSON null) */
};

/* Where a value came from, for messages; file NULL when not from a file. */
typedef struct ConfigOrigin {
	const char *file;
	int line;
} ConfigOrigin;

typedef bool (*ConfigCheck)(const char *value);

typedef struct ConfigKey {
	const char
		*table; /* "crisp", ...; "runtimes.*" and "registry.hosts.*" for the scoped ones */
	const char *name;
	ConfigType type;
	ConfigScope scope;
	size_t offset;
	const char *def_string;
	const char *const *def_strv;
	int64_t def_int;
	bool def_bool;
	int64_t min, max;	    /* CONFIG_INT */
	const char *const *allowed; /* CONFIG_STRING: one of these */
	unsigned flags;
	ConfigCheck check;  /* string, or each array element */
	const char *expect; /* what check wants, for messages: "an array of ..." */
} ConfigKey;

extern const ConfigKey config_keys[];
extern const size_t config_n_keys;

static inline void *config_field(void *base, const ConfigKey *k)
{
	return (char *)base + k->offset;
}

/* Checks a string, or one array element, against k's bounds. */
bool config_check_string(const ConfigKey *k, const char *value);
/* "an integer between 1 and 16", "true or false", ... for k as a whole. */
void config_describe(const ConfigKey *k, char *buf, size_t size);

/*
 * Checks the value at field (laid out like k's field: char **, int64_t *,
 * bool *, char ***).  On failure sets err to "<origin>: key "k" in <table>:
 * expected ..., got <got>", got being the value as written (NULL: format
 * the value).
 */
int config_check_field(const ConfigKey *k, const void *field, const char *table,
		       const ConfigOrigin *origin, const char *got, CrispError **err);
/* "<file>:<line>: <message>" as CRISP_ERR_INVALID; origin may be NULL. */
int config_error(CrispError **err, const ConfigOrigin *origin, const char *fmt, ...) _printf_(3, 4);
int config_error_expected(CrispError **err, const ConfigOrigin *origin, const ConfigKey *k,
			  const char *table, const char *got, const char *suffix);

/* s as a TOML basic string, quotes included. */
char *config_quote(const char *s);
/* "[a.b."c.d"]" from {"a", "b", "c.d", NULL}: parts that are not bare keys are quoted. */
char *config_table_name(char *const *parts);

/* Appends a handler or host with no values set; returns its index. */
size_t config_add_runtime(CrispConfig *c, const char *name);
size_t config_add_registry_host(CrispConfig *c, const char *host);
/* Sets root to "<state>/<name>" where root_is_default. */
void config_default_roots(CrispConfig *c);
bool config_runtime_name_ok(const char *name);
bool config_registry_host_ok(const char *host);

/*
 * Validation with optional origins: main_origins is indexed like config_keys,
 * runtime_origins like c->runtimes; either may be NULL.
 */
int config_validate(const CrispConfig *c, const ConfigOrigin *main_origins,
		    const ConfigOrigin *runtime_origins, CrispError **err);

/* --- config_values.c: TOML values --- */

typedef enum ValueType {
	VALUE_STRING,
	VALUE_INT,
	VALUE_BOOL,
	VALUE_ARRAY, /* of strings only; see strings_only */
	VALUE_BARE,  /* a bare word that is no TOML value we know: x, 1.5, 0x10 */
} ValueType;

typedef struct ConfigValue {
	ValueType type;
	char *string;
	int64_t integer;
	bool overflow; /* VALUE_INT out of int64 range */
	bool boolean;
	char **strv;	   /* VALUE_ARRAY: the string elements */
	bool strings_only; /* VALUE_ARRAY: false if some element was not a string */
	size_t length;	   /* of the value's text, comment and trailing blanks excluded */
	bool comment;	   /* a "#" comment followed */
} ConfigValue;

/*
 * Decodes text (one line's value, leading blanks skipped) into *ret.  On
 * failure returns -EINVAL with a reason in problem, and *at_end tells
 * whether the text ended too early (an unterminated string or array).
 */
int config_value_parse(const char *text, ConfigValue *ret, char *problem, size_t size,
		       bool *at_end);
void config_value_done(ConfigValue *v);

/*
 * Reads a quoted string ('"' or '\'' at *p) into a malloc'd *ret, moving *p
 * past it.  Used for quoted table names as well.
 */
int config_string_parse(const char **p, char **ret, char *problem, size_t size, bool *at_end);

bool config_utf8_valid(const char *s, size_t n);
/* A bare TOML key character: A-Z a-z 0-9 _ - */
bool config_bare_char(char ch);

#endif
