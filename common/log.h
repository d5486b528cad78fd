/*
 * log.h - logging for every crisp process.
 *
 * One line per message, tagged with the process name and pid.  Lines go to
 * stderr; under systemd (JOURNAL_STREAM names our stderr) each line carries a
 * "<N>" syslog priority prefix so journald files it at the right level.  A line
 * is written with a single write(2), so lines from threads never interleave.
 * Library code returns errors and does not log; the handler or main logs once.
 */
#ifndef CRISP_LOG_H
#define CRISP_LOG_H

#include "macros.h"

#include <syslog.h>

void log_init(const char *ident);
void log_set_level(int priority);
int log_get_level(void);
/* "debug", "info", "warning", "error" -> syslog priority, or -EINVAL. */
int log_level_from_string(const char *s);

void log_emit(int priority, const char *fmt, ...) _printf_(2, 3);
/* Logs and returns r (a negative errno), for "return log_error_errno(r, ...)". */
int log_emit_errno(int priority, int r, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_emit(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_emit(LOG_INFO, __VA_ARGS__)
#define log_warning(...) log_emit(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_emit(LOG_ERR, __VA_ARGS__)
#define log_error_errno(r, ...) log_emit_errno(LOG_ERR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_emit_errno(LOG_WARNING, (r), __VA_ARGS__)

#endif
