/*
 * store.c - the content store (see store.h).
 */
#include "store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

struct CrispStore {
	char *root;
	int root_fd;
	int sha256_fd;
	int sha512_fd;
};

static int open_dir_at(int dirfd, const char *name, const char *shown, CrispError **err)
{
	if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", shown);
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "opening %s", shown);
	return fd;
}

int crisp_store_open(const char *root, CrispStore **ret, CrispError **err)
{
	CrispStore *s = xcalloc(1, sizeof(*s));
	s->root = xstrdup(root);
	s->root_fd = s->sha256_fd = s->sha512_fd = -1;
	_cleanup_close_ int blobs = -1;
	int r = s->root_fd = open_dir_at(AT_FDCWD, root, root, err);
	if (r >= 0) {
		_cleanup_free_ char *shown = xasprintf("%s/blobs", root);
		r = blobs = open_dir_at(s->root_fd, "blobs", shown, err);
	}
	if (r >= 0) {
		_cleanup_free_ char *shown = xasprintf("%s/blobs/sha256", root);
		r = s->sha256_fd = open_dir_at(blobs, "sha256", shown, err);
	}
	if (r >= 0) {
		_cleanup_free_ char *shown = xasprintf("%s/blobs/sha512", root);
		r = s->sha512_fd = open_dir_at(blobs, "sha512", shown, err);
	}
	if (r < 0) {
		crisp_store_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

CrispStore *crisp_store_free(CrispStore *s)
{
	if (!s)
		return NULL;
	safe_close(s->root_fd);
	safe_close(s->sha256_fd);
	safe_close(s->sha512_fd);
	free(s->root);
	free(s);
	return NULL;
}

/* The directory fd for d's algorithm and d's file name there, or -EINVAL. */
static int blob_location(CrispStore *s, const CrispDigest *d, const char **ret_name)
{
	_cleanup_free_ char *component = NULL;
	if (crisp_digest_path_component(d, &component) < 0) /* validates d again */
		return -EINVAL;
	*ret_name = crisp_digest_hex(d);
	switch (d->algorithm) {
	case CRISP_DIGEST_SHA256:
		return s->sha256_fd;
	case CRISP_DIGEST_SHA512:
		return s->sha512_fd;
	default:
		return -EINVAL;
	}
}

bool crisp_store_has_blob(CrispStore *s, const CrispDigest *d)
{
	const char *name;
	int dirfd = blob_location(s, d, &name);
	struct stat st;
	return dirfd >= 0 && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	       S_ISREG(st.st_mode);
}

int crisp_store_open_blob(CrispStore *s, const CrispDigest *d, CrispError **err)
{
	const char *name;
	int dirfd = blob_location(s, d, &name);
	if (dirfd < 0)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "not a valid digest");
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return crisp_error_set_errno(
			err, errno == ENOENT ? CRISP_ERR_NOT_FOUND : CRISP_ERR_INTERNAL, errno,
			"blob %s", d->string);
	return fd;
}

int crisp_store_remove_blob(CrispStore *s, const CrispDigest *d, CrispError **err)
{
	const char *name;
	int dirfd = blob_location(s, d, &name);
	if (dirfd < 0)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "not a valid digest");
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "removing blob %s",
					     d->string);
	return 0;
}

int crisp_store_fetch_blob(CrispStore *s, CrispRegistryClient *c, const CrispReference *ref,
			   const CrispDescriptor *d, CrispError **err)
{
	const char *name;
	int dirfd = blob_location(s, &d->digest, &name);
	if (dirfd < 0)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "not a valid digest");
	return crisp_registry_fetch_blob(c, ref, d, dirfd, name, err);
}

static int compare_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int collect_dir(int dirfd, const char *algorithm, char *const *keep, size_t n_keep,
		       size_t *removed, CrispError **err)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		safe_close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "listing blobs/%s",
					     algorithm);
	}
	rewinddir(d);
	struct dirent *e;
	int r = 0;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* Anything that is not a kept digest goes: a temporary, or content nobody uses. */
		_cleanup_free_ char *digest = xasprintf("%s:%s", algorithm, e->d_name);
		const char *key = digest;
		if (bsearch(&key, keep, n_keep, sizeof(char *), compare_str))
			continue;
		if (unlinkat(dirfd, e->d_name, 0) < 0 && errno != ENOENT) {
			r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						  "removing blobs/%s/%s", algorithm, e->d_name);
			break;
		}
		(*removed)++;
	}
	closedir(d);
	return r;
}

int crisp_store_collect(CrispStore *s, char *const *keep, size_t *ret_removed, CrispError **err)
{
	size_t n_keep = strv_length(keep), removed = 0;
	int r = collect_dir(s->sha256_fd, "sha256", keep, n_keep, &removed, err);
	if (r == 0)
		r = collect_dir(s->sha512_fd, "sha512", keep, n_keep, &removed, err);
	*ret_removed = removed;
	return r;
}
