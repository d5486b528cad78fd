/*
 * error.h - the crisp error convention.
 *
 * Functions return an int: zero or more on success, a negative errno on
 * failure.  Where a caller needs a reason a person can act on, the function
 * takes a `crisp_error **err` last argument, set only on failure, which the
 * caller wraps with context (crisp_error_wrap) and releases exactly once.
 * The code says what kind of failure it is; criapi maps it to a gRPC status.
 * docs/ERRORS.md describes the convention.
 */
#ifndef CRISP_ERROR_H
#define CRISP_ERROR_H

#include "macros.h"

typedef enum CrispErrorCode {
	CRISP_ERR_INTERNAL = 0,
	CRISP_ERR_INVALID = 1,		   /* the request is malformed or a value is wrong */
	CRISP_ERR_NOT_FOUND = 2,	   /* the named object does not exist */
	CRISP_ERR_FAILED_PRECONDITION = 3, /* the object is not in a state that allows this */
	CRISP_ERR_DEADLINE = 4,		   /* the caller's deadline passed */
	CRISP_ERR_UNAVAILABLE = 5,	   /* a backend is down or restarting */
	CRISP_ERR_UNIMPLEMENTED = 6,	   /* the backend does not implement this yet */
	CRISP_ERR_ALREADY_EXISTS = 7,	   /* a name or ID is taken */
	CRISP_ERR_RESOURCE_EXHAUSTED = 8,  /* a size or count limit was hit */
	CRISP_ERR_CANCELLED = 9,
	CRISP_ERR_PERMISSION_DENIED = 10, /* node policy refuses the request */
	_CRISP_ERR_MAX,
} CrispErrorCode;

typedef struct CrispError {
	CrispErrorCode code;
	int errnum;    /* the errno behind it, or 0 */
	char *message; /* never NULL */
} CrispError;

/*
 * Sets *err (when err is not NULL and *err is NULL) and returns a negative
 * errno: -errnum, or -EIO when errnum is 0, so callers can write
 * `return crisp_error_set(err, ...)`.  An existing error is kept.
 */
int crisp_error_set(CrispError **err, CrispErrorCode code, int errnum, const char *fmt, ...)
	_printf_(4, 5);
/* As crisp_error_set, appending ": strerror(errnum)" to the message. */
int crisp_error_set_errno(CrispError **err, CrispErrorCode code, int errnum, const char *fmt, ...)
	_printf_(4, 5);
/* Prefixes "<context>: " to an existing error.  Returns the error's negative errno. */
int crisp_error_wrap(CrispError **err, const char *fmt, ...) _printf_(2, 3);
/* Moves *from into *to (when *to is free), leaving *from NULL. */
void crisp_error_move(CrispError **to, CrispError **from);
CrispError *crisp_error_free(CrispError *err);
static inline void crisp_error_freep(CrispError **e)
{
	crisp_error_free(*e);
}
#define _cleanup_error_ _cleanup_(crisp_error_freep)

const char *crisp_error_code_name(CrispErrorCode code);

#endif
