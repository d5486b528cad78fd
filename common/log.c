/*
 * log.c - line logging to stderr or journald's stream.
 */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static char log_ident[32] = "crisp";
static int log_level = LOG_INFO;
static bool log_journal;

/* systemd sets JOURNAL_STREAM=<dev>:<ino> when stderr is connected to journald. */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_init(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s", ident);
	log_journal = stderr_is_journal();
}

void log_set_level(int priority)
{
	log_level = priority;
}

int log_get_level(void)
{
	return log_level;
}

int log_level_from_string(const char *s)
{
	static const struct {
		const char *name;
		int priority;
	} levels[] = {
		{ "debug", LOG_DEBUG },
		{ "info", LOG_INFO },
		{ "warning", LOG_WARNING },
		{ "error", LOG_ERR },
	};
	for (size_t i = 0; s && i < ELEMENTSOF(levels); i++)
		if (strcmp(s, levels[i].name) == 0)
			return levels[i].priority;
	return -EINVAL;
}

static const char *level_name(int priority)
{
	switch (priority) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
	case LOG_NOTICE:
		return "info";
	case LOG_WARNING:
		return "warning";
	default:
		return "error";
	}
}

static void log_vemit(int priority, const char *fmt, va_list ap)
{
	char line[8192];
	size_t n;
	int saved_errno = errno;

	if (priority > log_level)
		return;

	if (log_journal) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>%s: ", priority,
				     level_name(priority));
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = (size_t)snprintf(
			line, sizeof(line),
			"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			ts.tv_nsec / 1000000, log_ident, (int)getpid(), level_name(priority));
	}
	if (n < sizeof(line)) {
		int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (m > 0)
			n += (size_t)m;
	}
	/* Cut overlong lines, and never let a message break the one-line rule. */
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n')
			line[i] = ' ';
	line[n++] = '\n';

	ssize_t _unused_ w = write(STDERR_FILENO, line, n);
	errno = saved_errno;
}

void log_emit(int priority, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(priority, fmt, ap);
	va_end(ap);
}

int log_emit_errno(int priority, int r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(priority, fmt, ap);
	va_end(ap);
	return r;
}
