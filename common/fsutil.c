/*
 * fsutil.c - file system helpers every daemon uses.
 */
#include "fsutil.h"

#include "macros.h"

#include <dirent.h>
#include <ftw.h>
#include <search.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Removes what is in dirfd except non-empty directories, rescanning until a
 * pass removes nothing (readdir may skip names while entries are deleted).
 * *ret_sub gets the name of a non-empty subdirectory to descend into, or
 * NULL when dirfd is empty.
 */
static int remove_shallow(int dirfd, char **ret_sub)
{
	for (;;) {
		int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		DIR *d = fdopendir(fd);
		if (!d) {
			int r = -errno;
			close(fd);
			return r;
		}

		bool removed = false;
		int r = 0;
		for (;;) {
			errno = 0;
			struct dirent *de = readdir(d);
			if (!de) {
				r = -errno;
				break;
			}
			if (streq_ptr(de->d_name, ".") || streq_ptr(de->d_name, ".."))
				continue;
			bool is_dir = de->d_type == DT_DIR;
			if (de->d_type == DT_UNKNOWN) {
				struct stat st;
				if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
					if (errno == ENOENT)
						continue;
					r = -errno;
					break;
				}
				is_dir = S_ISDIR(st.st_mode);
			}
			if (unlinkat(dirfd, de->d_name, is_dir ? AT_REMOVEDIR : 0) == 0 ||
			    errno == ENOENT) {
				removed = true;
				continue;
			}
			if (is_dir && (errno == ENOTEMPTY || errno == EEXIST)) {
				*ret_sub = xstrdup(de->d_name);
				closedir(d);
				return 0;
			}
			r = -errno;
			break;
		}
		closedir(d);
		if (r < 0)
			return r;
		if (!removed) {
			*ret_sub = NULL;
			return 0;
		}
	}
}

int crisp_remove_tree_at(int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) == 0)
		return 0;

	/*
	 * Depth first with one directory fd open at a time: a layer may nest
	 * deeper than the fd limit.  Going back up uses "..", checked against
	 * the directory we came from, since every step down was O_NOFOLLOW.
	 */
	_cleanup_close_ int cur =
		openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (cur < 0)
		return errno == ENOENT ? 0 : -errno;

	char **stack = NULL;
	size_t depth = 0;
	int r = 0;
	for (;;) {
		char *sub = NULL;
		r = remove_shallow(cur, &sub);
		if (r < 0)
			break;
		if (sub) {
			int child =
				openat(cur, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (child < 0) {
				r = -errno;
				free(sub);
				break;
			}
			safe_close(cur);
			cur = child;
			stack = xrealloc(stack, (depth + 1) * sizeof(*stack));
			stack[depth++] = sub;
			continue;
		}
		if (depth == 0)
			break;

		struct stat self, seen;
		if (fstat(cur, &self) < 0) {
			r = -errno;
			break;
		}
		int parent = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (parent < 0) {
			r = -errno;
			break;
		}
		safe_close(cur);
		cur = parent;
		_cleanup_free_ char *child_name = stack[--depth];
		if (fstatat(cur, child_name, &seen, AT_SYMLINK_NOFOLLOW) < 0 ||
		    seen.st_dev != self.st_dev || seen.st_ino != self.st_ino) {
			r = -ESTALE; /* moved under us */
			break;
		}
		if (unlinkat(cur, child_name, AT_REMOVEDIR) < 0 && errno != ENOENT) {
			r = -errno;
			break;
		}
	}
	while (depth > 0)
		free(stack[--depth]);
	free(stack);
	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* ---- crisp_disk_usage ---- */

/* nftw has no user pointer; handlers run one at a time per thread. */
static _Thread_local struct {
	uint64_t bytes, inodes;
	void *seen; /* tsearch tree of inode numbers with more than one link */
} walk;

static int compare_ino(const void *a, const void *b)
{
	ino_t x = *(const ino_t *)a, y = *(const ino_t *)b;
	return x < y ? -1 : x > y;
}

static int count_entry(const char *path _unused_, const struct stat *st, int flag _unused_,
		       struct FTW *ftw _unused_)
{
	if (st->st_nlink > 1 && !S_ISDIR(st->st_mode)) {
		ino_t *key = xmalloc(sizeof(*key));
		*key = st->st_ino;
		ino_t **found = tsearch(key, &walk.seen, compare_ino);
		if (!found)
			return -1;
		if (*found != key) {
			free(key);
			return 0; /* another link to an inode already counted */
		}
	}
	walk.bytes += (uint64_t)st->st_blocks * 512;
	walk.inodes++;
	return 0;
}

int crisp_disk_usage(const char *dir, uint64_t *ret_bytes, uint64_t *ret_inodes)
{
	walk.bytes = walk.inodes = 0;
	walk.seen = NULL;
	int r = nftw(dir, count_entry, 32, FTW_PHYS | FTW_MOUNT);
	int e = errno;
	tdestroy(walk.seen, free);
	walk.seen = NULL;
	if (r != 0)
		return -e;
	*ret_bytes = walk.bytes;
	*ret_inodes = walk.inodes;
	return 0;
}
