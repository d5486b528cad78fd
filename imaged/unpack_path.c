/*
 * unpack_path.c - names from layers, confined directory lookups, and
 * recursive removal without following symlinks.
 *
 * The lexical cleaning refuses ".." outright instead of resolving it: a
 * layer has no business climbing, and a name that cannot climb cannot be
 * mis-resolved.  Lookups then go through openat2(RESOLVE_IN_ROOT), so a
 * symlink met on the way (absolute or relative, planted by an earlier entry)
 * is resolved as if the snapshot were "/", the way the container will see
 * it, and never leads outside.
 */
#include "unpack_path.h"
#include "unpack.h"

#include "macros.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int unpack_clean_name(const char *name, size_t max_path, char **ret, const char **ret_reason)
{
	if (!name || !*name) {
		*ret_reason = "the name is empty";
		return -EINVAL;
	}
	size_t len = strnlen(name, max_path + 1);
	if (len > max_path) {
		*ret_reason = "the name is longer than the path limit";
		return -ENAMETOOLONG;
	}

	_cleanup_free_ char *out = xmalloc(len + 1);
	size_t o = 0;
	for (const char *p = name; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 1 && p[0] == '.') {
			p = end;
			continue;
		}
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			*ret_reason = "\"..\" is not allowed in image layers";
			return -EINVAL;
		}
		if (n > UNPACK_COMPONENT_MAX) {
			*ret_reason = "a name component is longer than 255 bytes";
			return -EINVAL;
		}
		if (o > 0)
			out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p = end;
	}
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

const char *unpack_last_component(const char *clean)
{
	const char *slash = strrchr(clean, '/');
	return slash ? slash + 1 : clean;
}

bool unpack_force_walk = false;
static bool openat2_missing = false;

static bool same_inode(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * RESOLVE_IN_ROOT by hand, for when openat2() is missing (valgrind 3.19
 * does not know it).  One component at a time with O_PATH | O_NOFOLLOW; a
 * symlink's target replaces it in the rest of the path, from the root when
 * absolute; ".." at the root stays there, and elsewhere is safe to take
 * because every directory was entered without following a symlink, so its
 * parent is inside the root.  Crossing into another mount is refused.
 * Correct as long as nothing renames directories inside the root
 * concurrently, which holds for a snapshot being unpacked.
 */
static int walk_in_root(int rootfd, const char *path, int flags)
{
	_cleanup_close_ int root = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat root_st, st;
	if (root < 0 || fstat(root, &root_st) < 0)
		return -errno;
	_cleanup_close_ int cur = fcntl(root, F_DUPFD_CLOEXEC, 3);
	if (cur < 0)
		return -errno;
	_cleanup_free_ char *rest = xstrdup(path);
	unsigned links = 0;

	for (const char *p = rest;;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n > UNPACK_COMPONENT_MAX)
			return -ENAMETOOLONG;
		char comp[UNPACK_COMPONENT_MAX + 1];
		memcpy(comp, p, n);
		comp[n] = '\0';
		bool last = end[strspn(end, "/")] == '\0';
		p = end;

		if (streq_ptr(comp, "."))
			continue;
		if (fstat(cur, &st) < 0)
			return -errno;
		if (streq_ptr(comp, "..")) {
			if (same_inode(&st, &root_st))
				continue;
			int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (up < 0)
				return -errno;
			safe_close(cur);
			cur = up;
			continue;
		}
		if (!S_ISDIR(st.st_mode))
			return -ENOTDIR;
		_cleanup_close_ int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 || fstat(next, &st) < 0)
			return -errno;
		if (st.st_dev != root_st.st_dev)
			return -EXDEV;
		if (!S_ISLNK(st.st_mode)) {
			safe_close(cur);
			cur = TAKE_FD(next);
			continue;
		}
		if ((last && (flags & O_NOFOLLOW)) || ++links > 40)
			return -ELOOP;
		char target[PATH_MAX];
		ssize_t len = readlinkat(next, "", target, sizeof(target) - 1);
		if (len < 0)
			return -errno;
		target[len] = '\0';
		char *expanded = xasprintf("%s%s", target, p);
		free(rest);
		rest = expanded;
		p = rest;
		if (target[0] == '/') {
			int r = fcntl(root, F_DUPFD_CLOEXEC, 3);
			if (r < 0)
				return -errno;
			safe_close(cur);
			cur = r;
		}
	}

	if (fstat(cur, &st) < 0)
		return -errno;
	if ((flags & O_DIRECTORY) && !S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (flags & O_PATH)
		return TAKE_FD(cur);
	/* Reopening through "." needs a directory; that is all unpack opens this way. */
	if (!S_ISDIR(st.st_mode))
		return -EINVAL;
	int fd = openat(cur, ".", (flags & ~O_NOFOLLOW) | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

int unpack_openat_in_root(int rootfd, const char *path, int flags)
{
	if (unpack_force_walk || __atomic_load_n(&openat2_missing, __ATOMIC_RELAXED))
		return walk_in_root(rootfd, path, flags);

	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	/* EAGAIN: a rename raced the lookup; nothing renames inside a snapshot being unpacked. */
	for (int i = 0; i < 16; i++) {
		long fd = syscall(SYS_openat2, rootfd, *path ? path : ".", &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno == ENOSYS) {
			__atomic_store_n(&openat2_missing, true, __ATOMIC_RELAXED);
			return walk_in_root(rootfd, path, flags);
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
	}
	return -EAGAIN;
}

/*
 * Creates the missing directories of dir (a cleaned name, modified in place
 * and restored) one component at a time.  Each step resolves the whole
 * prefix from the root again, so a symlink on the way is followed inside the
 * root exactly as the lookup of the entry itself would follow it; the new
 * directory is made relative to the fd of the resolved prefix before it.
 */
static int create_dirs(int rootfd, char *dir)
{
	_cleanup_close_ int cur = unpack_openat_in_root(rootfd, "", O_PATH | O_DIRECTORY);
	if (cur < 0)
		return cur;

	for (char *p = dir;;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		int fd = unpack_openat_in_root(rootfd, dir, O_PATH | O_DIRECTORY);
		if (fd == -ENOENT) {
			/* EEXIST: the name is there but leads nowhere, a dangling symlink. */
			if (mkdirat(cur, p, 0700) < 0) {
				fd = errno == EEXIST ? -ENOENT : -errno;
			} else {
				_cleanup_close_ int d = openat(
					cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (d < 0 || fchmod(d, 0755) < 0)
					fd = -errno;
				else
					fd = unpack_openat_in_root(rootfd, dir,
								   O_PATH | O_DIRECTORY);
			}
		}
		if (slash)
			*slash = '/';
		if (fd < 0)
			return fd;
		safe_close(cur);
		cur = fd;
		if (!slash)
			return TAKE_FD(cur);
		p = slash + 1;
	}
}

int unpack_open_parent(int rootfd, const char *clean, bool create_missing, const char **ret_base)
{
	const char *base = unpack_last_component(clean);
	size_t dir_len = base > clean ? (size_t)(base - clean - 1) : 0;
	_cleanup_free_ char *dir = xstrndup(clean, dir_len);

	int fd = unpack_openat_in_root(rootfd, dir, O_PATH | O_DIRECTORY);
	if (fd == -ENOENT && create_missing)
		fd = create_dirs(rootfd, dir);
	if (fd >= 0)
		*ret_base = base;
	return fd;
}
