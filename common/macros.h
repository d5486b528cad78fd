/*
 * macros.h - ownership and allocation helpers shared by every crisp process.
 *
 * Every local resource gets a cleanup attribute; ownership moves with
 * TAKE_PTR()/TAKE_FD().  Allocation failure is not an error crisp handles:
 * the x*() wrappers abort, and the supervisor restarts the process.
 */
#ifndef CRISP_MACROS_H
#define CRISP_MACROS_H

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _noreturn_ __attribute__((noreturn))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Take ownership of a pointer or fd out of a cleanup-managed variable. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _tp_ = (p);                                                          \
		(p) = NULL;                                                                        \
		_tp_;                                                                              \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _tf_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_tf_;                                                                              \
	})

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes an fd, keeping errno; accepts -1.  Returns -1 for "fd = safe_close(fd)". */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}
static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* NULL-terminated string arrays (argv, env). */
void strv_free(char **v);
static inline void strv_freep(char ***v)
{
	strv_free(*v);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
size_t strv_length(char *const *v);
/* Appends a copy of s; *v may be NULL. */
void strv_push(char ***v, const char *s);

/*
 * True when s is exactly n lowercase hex digits: the form of every ID the
 * daemons draw (pods, containers, snapshot keys, tokens).  An ID of this
 * form can safely become a path component.
 */
static inline int crisp_is_lower_hex(const char *s, size_t n)
{
	size_t i = 0;
	for (; s && s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s && i == n;
}

static inline int streq_ptr(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

#endif
