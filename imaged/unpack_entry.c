/*
 * unpack_entry.c - one tar entry onto the disk, inside the snapshot (the
 * rules are in unpack.h).
 *
 * Every handler opens the entry's parent with unpack_open_parent()
 * (openat2 RESOLVE_IN_ROOT, creating missing directories inside), removes
 * what an earlier entry left under the same name without following it, and
 * creates the new entry with an *at() call on the last component that
 * cannot follow a symlink either.  Metadata goes on an fd where there is one
 * (files, directories), and with AT_SYMLINK_NOFOLLOW otherwise.
 */
#include "unpack_internal.h"

#include "parse_util.h"
#include "unpack_path.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define OVERLAY_OPAQUE_XATTR "user.overlay.opaque"

/* What every entry carries besides its name and type. */
typedef struct EntryMeta {
	uid_t uid;
	gid_t gid;
	mode_t perm;
	struct timespec times[2]; /* atime, mtime */
} EntryMeta;

/* ---- metadata ---- */

static int entry_meta(struct archive_entry *e, const char *name, EntryMeta *m, CrispError **err)
{
	int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
	/* (uid_t)-1 means "unchanged" to chown. */
	if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, ERANGE, name,
					 "owner %" PRId64 ":%" PRId64 " is out of range", uid, gid);
	m->uid = (uid_t)uid;
	m->gid = (gid_t)gid;
	m->perm = archive_entry_perm(e) & 07777;

	struct timespec mtime = { .tv_nsec = UTIME_OMIT };
	if (archive_entry_mtime_is_set(e)) {
		mtime.tv_sec = archive_entry_mtime(e);
		long ns = archive_entry_mtime_nsec(e);
		mtime.tv_nsec = ns >= 0 && ns < 1000000000 ? ns : 0;
	}
	struct timespec atime = mtime;
	if (archive_entry_atime_is_set(e)) {
		atime.tv_sec = archive_entry_atime(e);
		long ns = archive_entry_atime_nsec(e);
		atime.tv_nsec = ns >= 0 && ns < 1000000000 ? ns : 0;
	}
	m->times[0] = atime;
	m->times[1] = mtime;
	return 0;
}

/*
 * user.* and security.capability; user.overlay.* would steer the overlay
 * mount (userxattr), trusted.* needs CAP_SYS_ADMIN, the rest of security.*
 * belongs to LSMs that are not the image's to set.
 */
static bool xattr_wanted(const char *xname)
{
	if (streq_ptr(xname, "security.capability"))
		return true;
	return strncmp(xname, "user.", 5) == 0 && strncmp(xname, "user.overlay.", 13) != 0;
}

/* xattrs on an entry that cannot carry them (symlinks, nodes) are counted as skipped. */
static void skip_xattrs(Unpack *u, struct archive_entry *e)
{
	u->stats.xattrs_skipped += (uint64_t)archive_entry_xattr_reset(e);
}

static int set_xattrs(Unpack *u, struct archive_entry *e, int fd, const char *name,
		      CrispError **err)
{
	const char *xname;
	const void *value;
	size_t size;

	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
		if (!xname || !xattr_wanted(xname)) {
			u->stats.xattrs_skipped++;
			continue;
		}
		if (fsetxattr(fd, xname, value, size, 0) < 0) {
			if (errno == EOPNOTSUPP) {
				u->stats.xattrs_skipped++;
				continue;
			}
			int e_ = errno;
			_cleanup_free_ char *q = imaged_escape(xname, 64);
			return unpack_entry_fail_errno(err, e_, name, "setting xattr \"%s\"", q);
		}
	}
	return 0;
}

/*
 * Owner, then mode (chown clears setuid/setgid), then xattrs (chown clears
 * capabilities).  What already matches is left alone: a layer may list a
 * directory many times, and each needless change is a journal write.
 */
static int set_fd_meta(Unpack *u, struct archive_entry *e, int fd, const EntryMeta *m,
		       const char *name, CrispError **err)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return unpack_entry_fail_errno(err, errno, name, "checking the new entry");
	if ((st.st_uid != m->uid || st.st_gid != m->gid) && fchown(fd, m->uid, m->gid) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the owner %u:%u", m->uid,
					       m->gid);
	if ((st.st_mode & 07777) != m->perm && fchmod(fd, m->perm) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the mode %04o", m->perm);
	return set_xattrs(u, e, fd, name, err);
}

static int defer_dir_times(Unpack *u, const char *clean, const EntryMeta *m, const char *name,
			   CrispError **err)
{
	uint64_t cost = strlen(clean) + 1 + sizeof(DirTimes);
	if (cost > UNPACK_DIR_TIMES_MAX_BYTES - u->dir_bytes)
		return unpack_entry_fail(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG, name,
					 "the layer's directory names exceed %" PRIu64
					 " bytes in total",
					 UNPACK_DIR_TIMES_MAX_BYTES);
	u->dir_bytes += cost;
	if ((u->n_dirs & (u->n_dirs - 1)) == 0) /* 0, 1, 2, 4, ...: grow */
		u->dirs = xrealloc(u->dirs, (u->n_dirs ? u->n_dirs * 2 : 1) * sizeof(*u->dirs));
	u->dirs[u->n_dirs++] = (DirTimes){
		.path = xstrdup(clean),
		.times = { m->times[0], m->times[1] },
	};
	return 0;
}

/* Last first, so setting a directory's times cannot be undone by a child's. */
int unpack_apply_dir_times(Unpack *u, CrispError **err)
{
	for (size_t i = u->n_dirs; i-- > 0;) {
		const DirTimes *d = &u->dirs[i];
		_cleanup_close_ int fd = unpack_openat_in_root(u->root, d->path,
							       O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
		/* Replaced or removed by a later entry: nothing to do. */
		if (fd == -ENOENT || fd == -ENOTDIR || fd == -ELOOP)
			continue;
		if (fd < 0)
			return unpack_entry_fail_errno(err, -fd, d->path, "opening the directory");
		if (futimens(fd, d->times) < 0)
			return unpack_entry_fail_errno(err, errno, d->path, "setting the times");
	}
	return 0;
}

/* ---- entries ---- */

/* Opens the entry's parent (creating missing directories), with a message naming the entry. */
static int open_parent(Unpack *u, const char *clean, const char *name, const char **ret_base,
		       CrispError **err)
{
	int fd = unpack_open_parent(u->root, clean, true, ret_base);
	if (fd == -ENOENT)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, ENOENT, name,
					 "its directory leads nowhere inside the layer (a dangling "
					 "symlink on the way)");
	if (fd == -ENOTDIR)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, ENOTDIR, name,
					 "a component of its directory is not a directory");
	if (fd < 0)
		return unpack_entry_fail_errno(err, -fd, name, "opening its directory");
	return fd;
}

/*
 * Makes room for an entry named base: removes whatever an earlier entry
 * left there (a directory with everything below it), never following it,
 * except that an existing directory is kept when keep_dir.  Returns 1 when
 * a directory was kept.
 */
static int make_room(int pfd, const char *base, bool keep_dir, const char *name, CrispError **err)
{
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return unpack_entry_fail_errno(err, errno, name, "looking up the existing entry");
	}
	if (keep_dir && S_ISDIR(st.st_mode))
		return 1;
	int r = crisp_remove_tree_at(pfd, base);
	if (r < 0)
		return unpack_entry_fail_errno(err, -r, name, "replacing the existing entry");
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Writes the entry's data at the offsets libarchive gives, so holes of sparse files stay holes. */
static int write_data(Unpack *u, int fd, int64_t size, const char *name, CrispError **err)
{
	uint64_t end = 0;
	for (;;) {
		const void *buf;
		size_t len;
		la_int64_t off;
		int ar = archive_read_data_block(u->inner, &buf, &len, &off);
		if (ar == ARCHIVE_EOF)
			break;
		if (ar < ARCHIVE_WARN)
			return unpack_stream_fail(u, u->inner, name, err);
		if (off < 0 || off > size || len > (uint64_t)(size - off))
			return unpack_entry_fail(
				err, CRISP_ERR_INVALID, EBADMSG, name,
				"data beyond the entry's size of %" PRId64 " bytes", size);
		int r = pwrite_all(fd, buf, len, off);
		if (r < 0)
			return unpack_entry_fail_errno(err, -r, name, "writing the file");
		if ((uint64_t)off + len > end)
			end = (uint64_t)off + len;
	}
	if (end < (uint64_t)size && ftruncate(fd, size) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the file's size");
	return 0;
}

static int unpack_file(Unpack *u, struct archive_entry *e, const char *name, const char *clean,
		       const EntryMeta *m, CrispError **err)
{
	int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
	if (size < 0)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EBADMSG, name, "negative size");
	if ((uint64_t)size > u->limits.max_size - u->stats.content_size)
		return unpack_entry_fail(err, CRISP_ERR_RESOURCE_EXHAUSTED, EFBIG, name,
					 "file contents exceed the layer limit of %" PRIu64
					 " bytes",
					 u->limits.max_size);
	u->stats.content_size += (uint64_t)size;

	const char *base;
	_cleanup_close_ int pfd = open_parent(u, clean, name, &base, err);
	if (pfd < 0)
		return pfd;
	int r = make_room(pfd, base, false, name, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd =
		openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return unpack_entry_fail_errno(err, errno, name, "creating the file");
	r = write_data(u, fd, size, name, err);
	if (r < 0)
		return r;
	r = set_fd_meta(u, e, fd, m, name, err);
	if (r < 0)
		return r;
	if (futimens(fd, m->times) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the times");
	u->stats.files++;
	return 0;
}

static int unpack_dir(Unpack *u, struct archive_entry *e, const char *name, const char *clean,
		      const EntryMeta *m, CrispError **err)
{
	const char *base;
	_cleanup_close_ int pfd = open_parent(u, clean, name, &base, err);
	if (pfd < 0)
		return pfd;
	int r = make_room(pfd, base, true, name, err);
	if (r < 0)
		return r;
	if (r == 0 && mkdirat(pfd, base, 0700) < 0)
		return unpack_entry_fail_errno(err, errno, name, "creating the directory");
	_cleanup_close_ int fd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return unpack_entry_fail_errno(err, errno, name, "opening the directory");
	r = set_fd_meta(u, e, fd, m, name, err);
	if (r < 0)
		return r;
	r = defer_dir_times(u, clean, m, name, err);
	if (r < 0)
		return r;
	u->stats.dirs++;
	return 0;
}

static int unpack_symlink(Unpack *u, struct archive_entry *e, const char *name, const char *clean,
			  const EntryMeta *m, CrispError **err)
{
	const char *target = archive_entry_symlink(e);
	if (!target)
		target = archive_entry_symlink_utf8(e);
	if (!target || !*target)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EINVAL, name,
					 "a symlink without a target");
	if (strnlen(target, u->limits.max_path + 1) > u->limits.max_path)
		return unpack_entry_fail(err, CRISP_ERR_RESOURCE_EXHAUSTED, ENAMETOOLONG, name,
					 "the symlink's target is longer than %zu bytes",
					 u->limits.max_path);

	const char *base;
	_cleanup_close_ int pfd = open_parent(u, clean, name, &base, err);
	if (pfd < 0)
		return pfd;
	int r = make_room(pfd, base, false, name, err);
	if (r < 0)
		return r;
	/* The target is stored as written and never followed here. */
	if (symlinkat(target, pfd, base) < 0)
		return unpack_entry_fail_errno(err, errno, name, "creating the symlink");
	if (fchownat(pfd, base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the owner %u:%u", m->uid,
					       m->gid);
	if (utimensat(pfd, base, m->times, AT_SYMLINK_NOFOLLOW) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the times");
	skip_xattrs(u, e);
	u->stats.symlinks++;
	return 0;
}

static int unpack_hardlink(Unpack *u, const char *name, const char *clean, const char *target,
			   CrispError **err)
{
	_cleanup_free_ char *tq = imaged_escape(target, UNPACK_QUOTE_MAX);
	_cleanup_free_ char *tclean = NULL;
	const char *reason;
	int r = unpack_clean_name(target, u->limits.max_path, &tclean, &reason);
	if (r < 0)
		return unpack_entry_fail(
			err, r == -ENAMETOOLONG ? CRISP_ERR_RESOURCE_EXHAUSTED : CRISP_ERR_INVALID,
			-r, name, "hard link target \"%s\": %s", tq, reason);
	if (!*tclean)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EINVAL, name,
					 "a hard link to the layer's root");

	/* The target must already be in this layer: resolve it, never create. */
	const char *tbase;
	_cleanup_close_ int tpfd = unpack_open_parent(u->root, tclean, false, &tbase);
	struct stat tst;
	if (tpfd < 0 || fstatat(tpfd, tbase, &tst, AT_SYMLINK_NOFOLLOW) < 0)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, ENOENT, name,
					 "hard link target \"%s\" is not in this layer", tq);
	if (S_ISDIR(tst.st_mode))
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EPERM, name,
					 "hard link target \"%s\" is a directory", tq);

	const char *base;
	_cleanup_close_ int pfd = open_parent(u, clean, name, &base, err);
	if (pfd < 0)
		return pfd;
	struct stat st;
	if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == tst.st_dev &&
	    st.st_ino == tst.st_ino) {
		u->stats.hardlinks++; /* already that file */
		return 0;
	}
	r = make_room(pfd, base, false, name, err);
	if (r < 0)
		return r;
	/* Flags 0: a target that is a symlink is linked itself, not followed. */
	if (linkat(tpfd, tbase, pfd, base, 0) < 0)
		return unpack_entry_fail_errno(err, errno, name, "linking to \"%s\"", tq);
	u->stats.hardlinks++;
	return 0;
}

static int unpack_node(Unpack *u, struct archive_entry *e, const char *name, const char *clean,
		       mode_t type, const EntryMeta *m, CrispError **err)
{
	dev_t dev = type == S_IFIFO
			    ? 0
			    : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
	const char *base;
	_cleanup_close_ int pfd = open_parent(u, clean, name, &base, err);
	if (pfd < 0)
		return pfd;
	int r = make_room(pfd, base, false, name, err);
	if (r < 0)
		return r;
	if (mknodat(pfd, base, type | 0600, dev) < 0)
		return unpack_entry_fail_errno(err, errno, name, "creating the %s",
					       type == S_IFIFO ? "FIFO" : "device node");
	if (fchownat(pfd, base, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the owner %u:%u", m->uid,
					       m->gid);
	/*
	 * fchmodat() cannot refuse to follow a final symlink before Linux 6.6
	 * (fchmodat2), and opening a device node could run its driver.  The
	 * name is the node mknodat() just made: O_EXCL-like, in a directory
	 * nothing else writes while imaged unpacks into it.
	 */
	if (fchmodat(pfd, base, m->perm, 0) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the mode %04o", m->perm);
	if (utimensat(pfd, base, m->times, AT_SYMLINK_NOFOLLOW) < 0)
		return unpack_entry_fail_errno(err, errno, name, "setting the times");
	skip_xattrs(u, e);
	if (type == S_IFIFO)
		u->stats.fifos++;
	else
		u->stats.devices++;
	return 0;
}

/* ".wh..wh..opq" and ".wh.<name>" (see unpack.h). */
static int unpack_whiteout(Unpack *u, const char *name, const char *clean, const char *base,
			   CrispError **err)
{
	const char *hidden = base + strlen(WHITEOUT_PREFIX);

	if (streq_ptr(base, WHITEOUT_OPAQUE)) {
		const char *b;
		_cleanup_close_ int pfd = open_parent(u, clean, name, &b, err);
		if (pfd < 0)
			return pfd;
		_cleanup_close_ int dfd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return unpack_entry_fail_errno(err, errno, name,
						       "opening the opaque directory");
		if (fsetxattr(dfd, OVERLAY_OPAQUE_XATTR, "y", 1, 0) < 0)
			return unpack_entry_fail_errno(err, errno, name,
						       "marking the directory opaque (xattr %s)",
						       OVERLAY_OPAQUE_XATTR);
		u->stats.opaques++;
		return 0;
	}
	if (strncmp(hidden, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0) {
		u->stats.entries_skipped++; /* AUFS metadata such as .wh..wh.plnk */
		return 0;
	}
	if (!*hidden || streq_ptr(hidden, ".") || streq_ptr(hidden, ".."))
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EINVAL, name,
					 "a whiteout must name an entry of its directory");

	const char *b;
	_cleanup_close_ int pfd = open_parent(u, clean, name, &b, err);
	if (pfd < 0)
		return pfd;
	struct stat st;
	if (fstatat(pfd, hidden, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		/* In this layer already: a whiteout hides only lower layers' entries. */
		u->stats.entries_skipped++;
		return 0;
	}
	if (errno != ENOENT)
		return unpack_entry_fail_errno(err, errno, name, "looking up the whited-out entry");
	if (mknodat(pfd, hidden, S_IFCHR | 0, makedev(0, 0)) < 0)
		return unpack_entry_fail_errno(err, errno, name, "creating the overlay whiteout");
	u->stats.whiteouts++;
	return 0;
}

int unpack_one_entry(Unpack *u, struct archive_entry *e, CrispError **err)
{
	const char *name = archive_entry_pathname(e);
	if (!name)
		name = archive_entry_pathname_utf8(e);
	if (!name)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "layer entry #%" PRIu64 " has no name", u->stats.entries);
	if (u->stats.entries > u->limits.max_entries)
		return unpack_entry_fail(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG, name,
					 "the layer has more than %" PRIu64 " entries",
					 u->limits.max_entries);

	_cleanup_free_ char *clean = NULL;
	const char *reason;
	int r = unpack_clean_name(name, u->limits.max_path, &clean, &reason);
	if (r == -ENAMETOOLONG)
		return unpack_entry_fail(err, CRISP_ERR_RESOURCE_EXHAUSTED, ENAMETOOLONG, name,
					 "the name is longer than %zu bytes", u->limits.max_path);
	if (r < 0)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, -r, name, "%s", reason);

	const char *base = unpack_last_component(clean);
	if (strncmp(base, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)) == 0)
		return unpack_whiteout(u, name, clean, base, err);

	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);
	if (!hardlink)
		hardlink = archive_entry_hardlink_utf8(e);
	if (!*clean) {
		/* The snapshot's root belongs to the snapshotter, as in containerd. */
		if (type == AE_IFDIR && !hardlink) {
			u->stats.entries_skipped++;
			return 0;
		}
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EINVAL, name,
					 "only a directory may name the layer's root");
	}
	if (hardlink)
		return unpack_hardlink(u, name, clean, hardlink, err);

	EntryMeta m;
	r = entry_meta(e, name, &m, err);
	if (r < 0)
		return r;
	switch (type) {
	case AE_IFREG:
		return unpack_file(u, e, name, clean, &m, err);
	case AE_IFDIR:
		return unpack_dir(u, e, name, clean, &m, err);
	case AE_IFLNK:
		return unpack_symlink(u, e, name, clean, &m, err);
	case AE_IFCHR:
		return unpack_node(u, e, name, clean, S_IFCHR, &m, err);
	case AE_IFBLK:
		return unpack_node(u, e, name, clean, S_IFBLK, &m, err);
	case AE_IFIFO:
		return unpack_node(u, e, name, clean, S_IFIFO, &m, err);
	default:
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EINVAL, name,
					 "entries of type %06o are not supported", (unsigned)type);
	}
}
