/*
 * error.c - error objects carried back to the CRI caller.
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

static int error_errno(int errnum)
{
	return errnum > 0 ? -errnum : -EIO;
}

static int error_vset(CrispError **err, CrispErrorCode code, int errnum, int with_strerror,
		      const char *fmt, va_list ap)
{
	if (!err || *err)
		return error_errno(errnum);

	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	if (with_strerror && errnum > 0) {
		char *full = xasprintf("%s: %s", msg, strerror(errnum));
		free(msg);
		msg = full;
	}

	CrispError *e = xcalloc(1, sizeof(*e));
	e->code = code >= 0 && code < _CRISP_ERR_MAX ? code : CRISP_ERR_INTERNAL;
	e->errnum = errnum;
	e->message = msg;
	*err = e;
	return error_errno(errnum);
}

int crisp_error_set(CrispError **err, CrispErrorCode code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, code, errnum, 0, fmt, ap);
	va_end(ap);
	return r;
}

int crisp_error_set_errno(CrispError **err, CrispErrorCode code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = error_vset(err, code, errnum, 1, fmt, ap);
	va_end(ap);
	return r;
}

int crisp_error_wrap(CrispError **err, const char *fmt, ...)
{
	if (!err || !*err)
		return -EIO;

	va_list ap;
	char *ctx;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		abort();
	va_end(ap);

	char *msg = xasprintf("%s: %s", ctx, (*err)->message);
	free(ctx);
	free((*err)->message);
	(*err)->message = msg;
	return error_errno((*err)->errnum);
}

void crisp_error_move(CrispError **to, CrispError **from)
{
	if (to && !*to) {
		*to = *from;
		*from = NULL;
	} else {
		*from = crisp_error_free(*from);
	}
}

CrispError *crisp_error_free(CrispError *err)
{
	if (err) {
		free(err->message);
		free(err);
	}
	return NULL;
}

const char *crisp_error_code_name(CrispErrorCode code)
{
	static const char *const names[_CRISP_ERR_MAX] = {
		[CRISP_ERR_INTERNAL] = "internal",
		[CRISP_ERR_INVALID] = "invalid argument",
		[CRISP_ERR_NOT_FOUND] = "not found",
		[CRISP_ERR_FAILED_PRECONDITION] = "failed precondition",
		[CRISP_ERR_DEADLINE] = "deadline exceeded",
		[CRISP_ERR_UNAVAILABLE] = "unavailable",
		[CRISP_ERR_UNIMPLEMENTED] = "not implemented",
		[CRISP_ERR_ALREADY_EXISTS] = "already exists",
		[CRISP_ERR_RESOURCE_EXHAUSTED] = "resource exhausted",
		[CRISP_ERR_CANCELLED] = "cancelled",
		[CRISP_ERR_PERMISSION_DENIED] = "permission denied",
	};
	if (code < 0 || code >= _CRISP_ERR_MAX)
		return "unknown";
	return names[code];
}
