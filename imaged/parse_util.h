/*
 * parse_util.h - shared pieces of imaged's parsers of untrusted data.
 *
 * Registry answers, manifests and image configs are Class 2 input
 * (ARCHITECTURE.md §2).  Two things every parser needs: a way to put a piece
 * of that input into an error message without letting it carry terminal
 * escapes or megabytes into a log line, and a JSON loader that bounds the
 * document's size and shape before jansson builds a tree from it.
 */
#ifndef CRISP_IMAGED_PARSE_UTIL_H
#define CRISP_IMAGED_PARSE_UTIL_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* How much of an untrusted string an error message shows. */
#define IMAGED_QUOTE_MAX 80

/*
 * Escapes untrusted text for a message: printable ASCII stays, '"' and '\'
 * are backslashed, anything else becomes \xNN; after max input bytes the
 * rest is replaced by "...".  Returns a malloc'd string (without quotes).
 */
char *imaged_escape(const char *s, size_t max);
char *imaged_escape_len(const void *s, size_t len, size_t max);

/* The shape a JSON document may have, checked before it is parsed. */
typedef struct ImagedJsonLimits {
	size_t max_size;    /* bytes */
	unsigned max_depth; /* nesting of arrays and objects */
	size_t max_values;  /* an upper bound on the values in the document */
} ImagedJsonLimits;

/*
 * Parses data as one JSON object, refusing duplicate keys, invalid UTF-8,
 * NUL characters in strings, and documents outside limits.  `what` names
 * the document in messages ("manifest", "image config").
 */
int imaged_json_load(const void *data, size_t size, const ImagedJsonLimits *limits,
		     const char *what, json_t **ret, CrispError **err);

/* "object", "array", "string", "integer", "real", "boolean", "null". */
const char *imaged_json_type_name(const json_t *j);

/*
 * Typed field getters.  A missing key and JSON null both count as absent:
 * a required field that is absent is an error, an optional one leaves *ret
 * at NULL (or untouched for integers) and returns 0; 1 is returned when the
 * field is present.  `where` is the path of obj in the document for
 * messages ("layers[2]"), or "" at the top.  Strings come back borrowed
 * from the JSON tree.
 */
int imaged_json_get_string(json_t *obj, const char *where, const char *key, bool required,
			   size_t max_len, const char **ret, CrispError **err);
int imaged_json_get_size(json_t *obj, const char *where, const char *key, bool required,
			 int64_t max, int64_t *ret, CrispError **err);
int imaged_json_get_object(json_t *obj, const char *where, const char *key, bool required,
			   json_t **ret, CrispError **err);
int imaged_json_get_array(json_t *obj, const char *where, const char *key, bool required,
			  size_t max_items, json_t **ret, CrispError **err);

/*
 * Checks that a path from an image is absolute, at most PATH_MAX bytes, free
 * of control characters and of ".." components, and returns it cleaned: "."
 * components, repeated and trailing slashes removed.  "/" itself is refused
 * unless allow_root.  On failure *reason says why (a static string).
 */
int imaged_clean_absolute_path(const char *path, bool allow_root, char **ret, const char **reason);

#endif
