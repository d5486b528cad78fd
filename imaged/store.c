/*
 * store.c - the content store (see store.h).
 */
#include "store.h"

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
