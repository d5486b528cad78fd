/*
 * test_unpack.c - imaged/unpack.c: layer unpacking, and its confinement.
 *
 * Runs as root (chown, mknod, security.capability).  Each test builds its
 * layer with libarchive's write API in memory (pax tar, then gzip or zstd
 * through the "raw" format, so the diff ID is the sha256 of exactly the tar
 * bytes), hands it over in a memfd, and unpacks into <tmp>/snap.  A victim
 * directory outside (<victim>/victim, known content) is what escapes aim at;
 * after every test it must be unchanged, and after every refusal <tmp>/snap
 * is removed with crisp_remove_tree_at() and <tmp> must then be empty.
 *
 * Every test runs twice: with openat2(RESOLVE_IN_ROOT), and with the
 * by-hand resolution unpack falls back to where openat2() is missing (as
 * under valgrind 3.19, which does not know the syscall).
 */
#include "test_helpers.h"

#include "digest.h"
#include "unpack.h"
#include "unpack_path.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <locale.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define MTIME 1700000000
#define VICTIM_CONTENT "original victim content\n"

/* ---- building layers ---- */

typedef struct Buf {
	unsigned char *data;
	size_t len, cap;
} Buf;

static la_ssize_t buf_write(struct archive *a, void *userdata, const void *p, size_t n)
{
	Buf *b = userdata;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->data = xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return (la_ssize_t)n;
}

typedef struct Tar {
	struct archive *a;
	Buf buf;
} Tar;

typedef enum Comp {
	COMP_NONE,
	COMP_GZIP,
	COMP_ZSTD,
	COMP_BZIP2, /* not accepted by unpack */
} Comp;

static void tar_init(Tar *t)
{
	*t = (Tar){ .a = archive_write_new() };
	assert_non_null(t->a);
	assert_int_equal(archive_write_set_format_pax(t->a), ARCHIVE_OK);
	assert_int_equal(archive_write_open(t->a, &t->buf, NULL, buf_write, NULL), ARCHIVE_OK);
}

static struct archive_entry *ent(const char *name, mode_t type, mode_t perm)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm);
	archive_entry_set_mtime(e, MTIME, 0);
	return e;
}

/* Writes e (and frees it) with data for regular files. */
static void tar_put(Tar *t, struct archive_entry *e, const void *data, size_t len)
{
	if (archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e))
		archive_entry_set_size(e, (la_int64_t)len);
	int r = archive_write_header(t->a, e);
	if (r != ARCHIVE_OK)
		fail_msg("writing header %s: %s", archive_entry_pathname(e),
			 archive_error_string(t->a));
	if (len > 0)
		assert_int_equal(archive_write_data(t->a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

static void tar_file(Tar *t, const char *name, const char *content)
{
	tar_put(t, ent(name, AE_IFREG, 0644), content, strlen(content));
}

static void tar_dir(Tar *t, const char *name)
{
	tar_put(t, ent(name, AE_IFDIR, 0755), NULL, 0);
}

static void tar_symlink(Tar *t, const char *name, const char *target)
{
	struct archive_entry *e = ent(name, AE_IFLNK, 0777);
	archive_entry_set_symlink(e, target);
	tar_put(t, e, NULL, 0);
}

static void tar_hardlink(Tar *t, const char *name, const char *target)
{
	struct archive_entry *e = ent(name, AE_IFREG, 0644);
	archive_entry_set_hardlink(e, target);
	tar_put(t, e, NULL, 0);
}

static int memfd_with(const void *data, size_t len)
{
	int fd = memfd_create("layer", MFD_CLOEXEC);
	assert_true(fd >= 0);
	const unsigned char *p = data;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, p + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

/* Ends the tar (t->buf then holds all of it); tests may append to it afterwards. */
static void tar_close(Tar *t)
{
	if (!t->a)
		return;
	assert_int_equal(archive_write_close(t->a), ARCHIVE_OK);
	archive_write_free(t->a);
	t->a = NULL;
}

/* Closes the tar; returns a memfd with it compressed as asked, and its diff ID. */
static int tar_finish(Tar *t, Comp comp, CrispDigest *ret_diff_id)
{
	tar_close(t);
	assert_int_equal(crisp_digest_compute(CRISP_DIGEST_SHA256, t->buf.data, t->buf.len,
					      ret_diff_id, NULL),
			 0);

	Buf out = { 0 };
	if (comp == COMP_NONE) {
		out = t->buf;
	} else {
		struct archive *a = archive_write_new();
		assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
		int r = comp == COMP_GZIP   ? archive_write_add_filter_gzip(a)
			: comp == COMP_ZSTD ? archive_write_add_filter_zstd(a)
					    : archive_write_add_filter_bzip2(a);
		assert_int_equal(r, ARCHIVE_OK);
		/* A blob as a registry serves it: no zero padding after the stream. */
		assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
		assert_int_equal(archive_write_open(a, &out, NULL, buf_write, NULL), ARCHIVE_OK);
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, "layer.tar");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_size(e, (la_int64_t)t->buf.len);
		assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
		assert_int_equal(archive_write_data(a, t->buf.data, t->buf.len),
				 (la_ssize_t)t->buf.len);
		archive_entry_free(e);
		assert_int_equal(archive_write_close(a), ARCHIVE_OK);
		archive_write_free(a);
		free(t->buf.data);
	}
	int fd = memfd_with(out.data, out.len);
	free(out.data);
	t->buf = (Buf){ 0 };
	return fd;
}

/* ---- the scene: <tmp>/snap, and a victim outside ---- */

typedef struct Scene {
	char *tmp;    /* holds snap and nothing else */
	char *victim; /* a directory outside, with one file "victim" */
	int tmp_fd;
	int snap_fd;
	struct stat passwd; /* /etc/passwd before the test */
	CrispUnpackStats stats;
} Scene;

static int scene_setup(void **state)
{
	Scene *s = xcalloc(1, sizeof(*s));
	s->tmp = th_mkdtemp();
	s->victim = th_mkdtemp();
	s->tmp_fd = open(s->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(s->tmp_fd >= 0);
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(s->snap_fd >= 0);
	_cleanup_free_ char *vf = xasprintf("%s/victim", s->victim);
	_cleanup_close_ int fd = open(vf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, VICTIM_CONTENT, strlen(VICTIM_CONTENT)),
			 (ssize_t)strlen(VICTIM_CONTENT));
	assert_int_equal(stat("/etc/passwd", &s->passwd), 0);
	*state = s;
	return 0;
}

/* Names in dirfd, sorted, joined with ","; "" when empty. */
static char *list_dir(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	DIR *d = fdopendir(fd);
	assert_non_null(d);
	char **names = NULL;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			strv_push(&names, de->d_name);
	closedir(d);
	size_t n = strv_length(names);
	for (size_t i = 1; i < n; i++) /* insertion sort: a handful of names */
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *x = names[j];
			names[j] = names[j - 1];
			names[j - 1] = x;
		}
	char *out = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char *next = xasprintf("%s%s%s", out, i ? "," : "", names[i]);
		free(out);
		out = next;
	}
	strv_free(names);
	return out;
}

/* Nothing outside the snapshot changed. */
static void assert_outside_unchanged(Scene *s)
{
	_cleanup_free_ char *names = list_dir(AT_FDCWD, s->victim);
	assert_string_equal(names, "victim");
	_cleanup_free_ char *vf = xasprintf("%s/victim", s->victim);
	_cleanup_close_ int fd = open(vf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	assert_true(fd >= 0);
	_cleanup_free_ char *content = th_read_all(fd);
	assert_string_equal(content, VICTIM_CONTENT);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_nlink, 1);

	struct stat pw;
	assert_int_equal(stat("/etc/passwd", &pw), 0);
	assert_int_equal(pw.st_ino, s->passwd.st_ino);
	assert_int_equal(pw.st_nlink, s->passwd.st_nlink);
	assert_int_equal(pw.st_size, s->passwd.st_size);
	assert_int_equal(pw.st_mtim.tv_sec, s->passwd.st_mtim.tv_sec);
	assert_int_equal(pw.st_mtim.tv_nsec, s->passwd.st_mtim.tv_nsec);
}

static int scene_teardown(void **state)
{
	Scene *s = *state;
	assert_outside_unchanged(s);
	safe_close(s->snap_fd);
	safe_close(s->tmp_fd);
	assert_int_equal(crisp_remove_tree_at(AT_FDCWD, s->tmp), 0);
	assert_int_equal(crisp_remove_tree_at(AT_FDCWD, s->victim), 0);
	free(s->tmp);
	free(s->victim);
	free(s);
	return 0;
}

static void unpack_ok(Scene *s, Tar *t, Comp comp, const CrispUnpackLimits *limits)
{
	CrispDigest diff_id;
	_cleanup_close_ int fd = tar_finish(t, comp, &diff_id);
	_cleanup_error_ CrispError *err = NULL;
	int r = crisp_unpack_layer(fd, diff_id.string, s->snap_fd, limits, &s->stats, &err);
	if (r < 0)
		fail_msg("unpack failed: %s", err ? err->message : "(no error)");
	assert_null(err);
}

/*
 * The layer is refused with code and a message containing sub; snap is then
 * removed and <tmp> is empty again.
 */
static void unpack_refused_raw(Scene *s, int fd, const char *diff_id,
			       const CrispUnpackLimits *limits, CrispErrorCode code,
			       const char *sub)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispUnpackStats stats = { .entries = 12345 };
	int r = crisp_unpack_layer(fd, diff_id, s->snap_fd, limits, &stats, &err);
	if (r >= 0)
		fail_msg("the layer was unpacked; expected a refusal with \"%s\"", sub);
	assert_error(err, code, sub);
	if (getenv("TEST_UNPACK_VERBOSE"))
		print_message("refused: %s\n", err->message);
	assert_int_equal(stats.entries, 12345); /* ret_stats written only on success */

	assert_int_equal(crisp_remove_tree_at(s->tmp_fd, "snap"), 0);
	struct stat st;
	assert_int_equal(fstatat(s->tmp_fd, "snap", &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
	_cleanup_free_ char *left = list_dir(s->tmp_fd, ".");
	assert_string_equal(left, "");
	assert_outside_unchanged(s);
}

static void unpack_refused(Scene *s, Tar *t, Comp comp, const CrispUnpackLimits *limits,
			   CrispErrorCode code, const char *sub)
{
	CrispDigest diff_id;
	_cleanup_close_ int fd = tar_finish(t, comp, &diff_id);
	unpack_refused_raw(s, fd, diff_id.string, limits, code, sub);
}

static void assert_file(int dirfd, const char *path, const char *content)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		fail_msg("opening %s: %m", path);
	_cleanup_free_ char *got = th_read_all(fd);
	assert_string_equal(got, content);
}

static void assert_absent(int dirfd, const char *path)
{
	struct stat st;
	assert_int_equal(fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW), -1);
	assert_int_equal(errno, ENOENT);
}

static struct stat lstat_at(int dirfd, const char *path)
{
	struct stat st;
	if (fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fail_msg("lstat %s: %m", path);
	return st;
}

/* ---- name cleaning ---- */

static void test_clean_name(void **state)
{
	static const struct {
		const char *in, *out; /* out NULL: refused */
	} cases[] = {
		{ "a/b", "a/b" },
		{ "./a/b/", "a/b" },
		{ "/etc/passwd", "etc/passwd" },
		{ "//a//./b/.", "a/b" },
		{ "./", "" },
		{ "/", "" },
		{ ".", "" },
		{ "..", NULL },
		{ "../../etc/passwd", NULL },
		{ "a/../b", NULL },
		{ "a/..", NULL },
		{ "", NULL },
		{ "...", "..." },
		{ "..a/b..", "..a/b.." },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *out = NULL;
		const char *reason = NULL;
		int r = unpack_clean_name(cases[i].in, 4096, &out, &reason);
		if (cases[i].out) {
			if (r < 0)
				fail_msg("\"%s\" refused: %s", cases[i].in, reason);
			assert_string_equal(out, cases[i].out);
		} else {
			assert_int_equal(r, -EINVAL);
			assert_null(out);
			assert_non_null(reason);
		}
	}

	char long_comp[300];
	memset(long_comp, 'c', sizeof(long_comp) - 1);
	long_comp[sizeof(long_comp) - 1] = '\0';
	_cleanup_free_ char *out = NULL;
	const char *reason = NULL;
	assert_int_equal(unpack_clean_name(long_comp, 4096, &out, &reason), -EINVAL);
	assert_int_equal(unpack_clean_name("abcdef", 5, &out, &reason), -ENAMETOOLONG);
	assert_int_equal(unpack_clean_name("abcde", 5, &out, &reason), 0);
	assert_string_equal(out, "abcde");
}

static void assert_same_dir(int fd, int dirfd, const char *path)
{
	struct stat a, b;
	if (fd < 0)
		fail_msg("resolving to %s: %s", path, strerror(-fd));
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(fstatat(dirfd, path, &b, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_dev, b.st_dev);
	close(fd);
}

/* Lookups stay in the root whatever the symlinks say. */
static void test_openat_in_root(void **state)
{
	Scene *s = *state;
	int root = s->snap_fd;
	assert_int_equal(mkdirat(root, "a", 0755), 0);
	assert_int_equal(mkdirat(root, "a/b", 0755), 0);
	assert_int_equal(symlinkat("../../../../../..", root, "a/up"), 0);
	assert_int_equal(symlinkat("/a/b", root, "a/abs"), 0);
	assert_int_equal(symlinkat(s->victim, root, "a/victim"), 0);
	assert_int_equal(symlinkat("loop2", root, "loop1"), 0);
	assert_int_equal(symlinkat("loop1", root, "loop2"), 0);
	assert_int_equal(symlinkat("/f", root, "a/tofile"), 0);
	_cleanup_close_ int f = openat(root, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(f >= 0);

	assert_same_dir(unpack_openat_in_root(root, "", O_PATH | O_DIRECTORY), root, "");
	assert_same_dir(unpack_openat_in_root(root, "a/up", O_PATH | O_DIRECTORY), root, "");
	assert_same_dir(unpack_openat_in_root(root, "a/up/a/b", O_PATH | O_DIRECTORY), root, "a/b");
	assert_same_dir(unpack_openat_in_root(root, "/a/b/../../..", O_PATH | O_DIRECTORY), root,
			"");
	assert_same_dir(unpack_openat_in_root(root, "a/abs", O_PATH | O_DIRECTORY), root, "a/b");
	assert_same_dir(unpack_openat_in_root(root, "a/abs", O_RDONLY | O_DIRECTORY), root, "a/b");
	assert_int_equal(unpack_openat_in_root(root, "a/victim", O_PATH | O_DIRECTORY), -ENOENT);
	assert_int_equal(unpack_openat_in_root(root, "loop1", O_PATH | O_DIRECTORY), -ELOOP);
	assert_int_equal(unpack_openat_in_root(root, "a/tofile", O_PATH | O_DIRECTORY), -ENOTDIR);
	assert_int_equal(unpack_openat_in_root(root, "f/x", O_PATH | O_DIRECTORY), -ENOTDIR);
	int r = unpack_openat_in_root(root, "a/abs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	assert_true(r == -ELOOP || r == -ENOTDIR);

	/* Missing parents are made inside, never through a symlink that leads nowhere. */
	const char *base = NULL;
	int pfd = unpack_open_parent(root, "a/up/new/dirs/leaf", true, &base);
	assert_true(pfd >= 0);
	assert_string_equal(base, "leaf");
	assert_same_dir(pfd, root, "new/dirs");
	assert_int_equal(lstat_at(root, "new").st_mode & 07777, 0755);
	assert_int_equal(unpack_open_parent(root, "a/victim/x/leaf", true, &base), -ENOENT);
	assert_int_equal(unpack_open_parent(root, "none/leaf", false, &base), -ENOENT);
	assert_absent(root, "none");
}

/* ---- what a layer keeps ---- */

/* A v2 file capability: cap_net_bind_service, permitted and effective. */
static const unsigned char capability[20] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x04 };

static void build_everything(Tar *t)
{
	/*
	 * Written as Go and Docker write names: UTF-8 in pax headers.  The
	 * writer converts from the thread's locale, which libarchive looks up
	 * once per archive; unpack runs in the "C" locale of the test.
	 */
	locale_t utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	assert_non_null(utf8);
	locale_t prev = uselocale(utf8);
	tar_init(t);
	tar_dir(t, "./");
	tar_dir(t, "etc/");
	tar_file(t, "etc/hostname", "image\n");

	struct archive_entry *e = ent("./bin/", AE_IFDIR, 0750);
	archive_entry_set_uid(e, 1000);
	archive_entry_set_gid(e, 1000);
	archive_entry_set_mtime(e, MTIME - 100, 0);
	tar_put(t, e, NULL, 0);

	e = ent("bin/suid", AE_IFREG, 04755);
	archive_entry_set_uid(e, 1000);
	archive_entry_set_gid(e, 1000);
	archive_entry_set_mtime(e, MTIME - 5, 123456789);
	archive_entry_xattr_add_entry(e, "user.test", "hello", 5);
	tar_put(t, e, "#!/bin/sh\n", 10);

	e = ent("bin/ping", AE_IFREG, 0755);
	archive_entry_xattr_add_entry(e, "security.capability", capability, sizeof(capability));
	tar_put(t, e, "ping", 4);

	e = ent("bin/sgid", AE_IFREG, 02711);
	archive_entry_set_gid(e, 1000);
	tar_put(t, e, "x", 1);

	tar_dir(t, "tmp");
	tar_put(t, ent("tmp", AE_IFDIR, 01777), NULL, 0); /* again: kept, mode applied */

	tar_symlink(t, "bin/sh", "/bin/busybox");
	tar_symlink(t, "etc/rel", "../etc/hostname");
	tar_hardlink(t, "etc/hostname.link", "etc/hostname");
	tar_hardlink(t, "bin/sh.link", "bin/sh"); /* a hard link to a symlink */

	tar_dir(t, "dev");
	e = ent("dev/null", AE_IFCHR, 0666);
	archive_entry_set_rdevmajor(e, 1);
	archive_entry_set_rdevminor(e, 3);
	tar_put(t, e, NULL, 0);
	e = ent("dev/loop7", AE_IFBLK, 0660);
	archive_entry_set_rdevmajor(e, 7);
	archive_entry_set_rdevminor(e, 7);
	archive_entry_set_gid(e, 6);
	tar_put(t, e, NULL, 0);
	tar_put(t, ent("run.fifo", AE_IFIFO, 0620), NULL, 0);

	/* Parents that the layer does not list are created. */
	tar_file(t, "usr/share/doc/README", "readme\n");
	/* trusted.* needs CAP_SYS_ADMIN, user.overlay.* would steer overlayfs: skipped. */
	e = ent("skipped-xattrs", AE_IFREG, 0600);
	archive_entry_xattr_add_entry(e, "trusted.foo", "x", 1);
	archive_entry_xattr_add_entry(e, "user.overlay.redirect", "/etc", 4);
	tar_put(t, e, "", 0);
	/* A UTF-8 name, kept byte for byte whatever the locale. */
	tar_file(t, "caf\xc3\xa9", "utf8\n");
	uselocale(prev);
	freelocale(utf8);
}

static void check_everything(Scene *s)
{
	int root = s->snap_fd;
	assert_file(root, "etc/hostname", "image\n");
	assert_file(root, "usr/share/doc/README", "readme\n");
	assert_file(root, "caf\xc3\xa9", "utf8\n");

	struct stat st = lstat_at(root, "bin");
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	/* Set at the end, after its contents were created. */
	assert_int_equal(st.st_mtim.tv_sec, MTIME - 100);

	st = lstat_at(root, "bin/suid");
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 04755);
	assert_int_equal(st.st_uid, 1000);
	assert_int_equal(st.st_gid, 1000);
	assert_int_equal(st.st_mtim.tv_sec, MTIME - 5);
	assert_int_equal(st.st_mtim.tv_nsec, 123456789);
	char buf[64];
	_cleanup_free_ char *suid = xasprintf("%s/snap/bin/suid", s->tmp);
	assert_int_equal(lgetxattr(suid, "user.test", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);

	_cleanup_free_ char *ping = xasprintf("%s/snap/bin/ping", s->tmp);
	assert_int_equal(lgetxattr(ping, "security.capability", buf, sizeof(buf)),
			 (ssize_t)sizeof(capability));
	assert_memory_equal(buf, capability, sizeof(capability));

	st = lstat_at(root, "bin/sgid");
	assert_int_equal(st.st_mode & 07777, 02711);
	assert_int_equal(st.st_gid, 1000);

	st = lstat_at(root, "tmp");
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 01777);

	char target[64] = { 0 };
	assert_int_equal(readlinkat(root, "bin/sh", target, sizeof(target) - 1), 12);
	assert_string_equal(target, "/bin/busybox");
	st = lstat_at(root, "bin/sh");
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(st.st_mtim.tv_sec, MTIME);
	assert_int_equal(st.st_nlink, 2); /* bin/sh.link */
	struct stat st2 = lstat_at(root, "bin/sh.link");
	assert_int_equal(st.st_ino, st2.st_ino);

	st = lstat_at(root, "etc/hostname");
	st2 = lstat_at(root, "etc/hostname.link");
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	assert_int_equal(st.st_mtim.tv_sec, MTIME);

	st = lstat_at(root, "dev/null");
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(major(st.st_rdev), 1);
	assert_int_equal(minor(st.st_rdev), 3);
	assert_int_equal(st.st_mode & 07777, 0666);
	st = lstat_at(root, "dev/loop7");
	assert_true(S_ISBLK(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(7, 7));
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, 6);
	st = lstat_at(root, "run.fifo");
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0620);

	st = lstat_at(root, "usr/share");
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(st.st_uid, 0);

	_cleanup_free_ char *skipped = xasprintf("%s/snap/skipped-xattrs", s->tmp);
	assert_int_equal(llistxattr(skipped, buf, sizeof(buf)), 0);

	/* The root entry "./" is the snapshotter's: skipped, like containerd. */
	assert_int_equal(s->stats.entries_skipped, 1);
	/* libarchive's pax writer stores each xattr twice (SCHILY and LIBARCHIVE keys). */
	assert_true(s->stats.xattrs_skipped >= 2);
	assert_int_equal(s->stats.files, 7);
	assert_int_equal(s->stats.dirs, 5);
	assert_int_equal(s->stats.symlinks, 2);
	assert_int_equal(s->stats.hardlinks, 2);
	assert_int_equal(s->stats.devices, 2);
	assert_int_equal(s->stats.fifos, 1);
	assert_int_equal(s->stats.entries, 20);
	assert_int_equal(s->stats.content_size, 6 + 10 + 4 + 1 + 7 + 0 + 5);
	assert_true(s->stats.tar_size > 0 && s->stats.tar_size % 512 == 0);
}

static void test_everything_none(void **state)
{
	Scene *s = *state;
	Tar t;
	build_everything(&t);
	unpack_ok(s, &t, COMP_NONE, NULL);
	check_everything(s);
}

static void test_everything_gzip(void **state)
{
	Scene *s = *state;
	Tar t;
	build_everything(&t);
	unpack_ok(s, &t, COMP_GZIP, NULL);
	check_everything(s);
}

static void test_everything_zstd(void **state)
{
	Scene *s = *state;
	Tar t;
	build_everything(&t);
	unpack_ok(s, &t, COMP_ZSTD, NULL);
	check_everything(s);
}

static void test_whiteouts(void **state)
{
	Scene *s = *state;
	Tar t;
	tar_init(&t);
	tar_dir(&t, "etc/");
	tar_file(&t, "etc/.wh.motd", "");
	tar_dir(&t, "var/cache/");
	tar_file(&t, "var/cache/.wh..wh..opq", "");
	tar_file(&t, "var/cache/new", "new\n");
	tar_file(&t, "kept", "kept\n");
	tar_file(&t, ".wh.kept", "");	  /* hides lower layers only: the file stays */
	tar_file(&t, ".wh..wh.plnk", ""); /* AUFS metadata */
	tar_file(&t, "opt/.wh.gone", ""); /* parent made on the way */
	unpack_ok(s, &t, COMP_GZIP, NULL);

	struct stat st = lstat_at(s->snap_fd, "etc/motd");
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));
	assert_absent(s->snap_fd, "etc/.wh.motd");
	st = lstat_at(s->snap_fd, "opt/gone");
	assert_true(S_ISCHR(st.st_mode));
	assert_int_equal(st.st_rdev, makedev(0, 0));

	char v[8] = { 0 };
	_cleanup_free_ char *cache = xasprintf("%s/snap/var/cache", s->tmp);
	assert_int_equal(lgetxattr(cache, "user.overlay.opaque", v, sizeof(v)), 1);
	assert_string_equal(v, "y");
	assert_absent(s->snap_fd, "var/cache/.wh..wh..opq");
	assert_file(s->snap_fd, "var/cache/new", "new\n");
	_cleanup_free_ char *var = xasprintf("%s/snap/var", s->tmp);
	assert_int_equal(lgetxattr(var, "user.overlay.opaque", v, sizeof(v)), -1);

	assert_file(s->snap_fd, "kept", "kept\n");
	assert_absent(s->snap_fd, ".wh..wh.plnk");
	assert_absent(s->snap_fd, ".wh.plnk");

	assert_int_equal(s->stats.whiteouts, 2);
	assert_int_equal(s->stats.opaques, 1);
	assert_int_equal(s->stats.entries_skipped, 2);
}

/* Later entries replace earlier ones of the same name, never through them. */
static void test_replace(void **state)
{
	Scene *s = *state;
	_cleanup_free_ char *victim_file = xasprintf("%s/victim", s->victim);
	Tar t;
	tar_init(&t);
	tar_file(&t, "f2d", "file\n");
	tar_dir(&t, "f2d");
	tar_file(&t, "f2d/inner", "inner\n");
	tar_dir(&t, "d2f/sub");
	tar_file(&t, "d2f/sub/x", "x\n");
	tar_file(&t, "d2f", "now a file\n");
	tar_symlink(&t, "s2f", victim_file);
	tar_file(&t, "s2f", "replaced the symlink\n");
	tar_symlink(&t, "s2d", s->victim);
	tar_dir(&t, "s2d");
	tar_file(&t, "dup", "first\n");
	tar_file(&t, "dup", "second\n");
	tar_put(&t, ent("keepdir", AE_IFDIR, 0700), NULL, 0);
	tar_file(&t, "keepdir/a", "a\n");
	tar_put(&t, ent("keepdir", AE_IFDIR, 0711), NULL, 0);
	unpack_ok(s, &t, COMP_NONE, NULL);

	assert_file(s->snap_fd, "f2d/inner", "inner\n");
	assert_file(s->snap_fd, "d2f", "now a file\n");
	assert_file(s->snap_fd, "s2f", "replaced the symlink\n");
	assert_true(S_ISDIR(lstat_at(s->snap_fd, "s2d").st_mode));
	assert_file(s->snap_fd, "dup", "second\n");
	assert_file(s->snap_fd, "keepdir/a", "a\n");
	assert_int_equal(lstat_at(s->snap_fd, "keepdir").st_mode & 07777, 0711);
}

/* ---- hostile layers ---- */

static void test_dotdot(void **state)
{
	Scene *s = *state;
	const char *names[] = { "../../etc/passwd", "sub/../../x", "..", "a/.." };
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		if (i > 0) {
			assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
			safe_close(s->snap_fd);
			s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		Tar t;
		tar_init(&t);
		tar_file(&t, "ok.txt", "harmless first\n");
		tar_file(&t, names[i], "escaped\n");
		_cleanup_free_ char *want = xasprintf(
			"layer entry \"%s\": \"..\" is not allowed in image layers", names[i]);
		unpack_refused(s, &t, COMP_GZIP, NULL, CRISP_ERR_INVALID, want);
	}
	/* A hard link's target and a directory are checked the same way. */
	const char *kinds[] = { "hardlink", "dir" };
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
		assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
		safe_close(s->snap_fd);
		s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		Tar t;
		tar_init(&t);
		if (i == 0)
			tar_hardlink(&t, "hl", "../../../../../../../../etc/passwd");
		else
			tar_dir(&t, "../../../../../../../../tmp/crisp-unpack-dotdot-dir");
		unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_INVALID,
			       "\"..\" is not allowed in image layers");
	}
	assert_int_equal(access("/tmp/crisp-unpack-dotdot-dir", F_OK), -1);
}

/* Absolute names are names inside the snapshot. */
static void test_absolute(void **state)
{
	Scene *s = *state;
	_cleanup_free_ char *abs_file = xasprintf("%s/absolute", s->victim);
	_cleanup_free_ char *abs_dir = xasprintf("%s/absdir/", s->victim);
	_cleanup_free_ char *abs_link = xasprintf("%s/abslink", s->victim);
	Tar t;
	tar_init(&t);
	tar_file(&t, abs_file, "inside\n");
	tar_dir(&t, abs_dir);
	tar_symlink(&t, abs_link, "/etc/passwd");
	tar_file(&t, "//etc//passwd", "root:x:0:0::/:/bin/sh\n");
	unpack_ok(s, &t, COMP_NONE, NULL);

	assert_file(s->snap_fd, abs_file + 1, "inside\n");
	assert_true(S_ISDIR(lstat_at(s->snap_fd, abs_dir + 1).st_mode));
	assert_true(S_ISLNK(lstat_at(s->snap_fd, abs_link + 1).st_mode));
	assert_file(s->snap_fd, "etc/passwd", "root:x:0:0::/:/bin/sh\n");
}

/*
 * A symlink to a directory outside, then entries through it.  Resolved in
 * the root: when the layer has no such directory the entry is refused; when
 * it has, the entry lands there, inside.
 */
static void test_symlink_escape(void **state)
{
	Scene *s = *state;
	_cleanup_free_ char *pwned = NULL;

	const char *kinds[] = { "abs", "rel", "mkdir", "chain" };
	for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
		if (i > 0) {
			assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
			safe_close(s->snap_fd);
			s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		_cleanup_free_ char *rel = xasprintf("../../../../../../../../..%s", s->victim);
		Tar t;
		tar_init(&t);
		switch (i) {
		case 0:
			tar_symlink(&t, "esc", s->victim);
			tar_file(&t, "esc/pwned", "escaped\n");
			break;
		case 1:
			tar_symlink(&t, "esc", rel);
			tar_file(&t, "esc/pwned", "escaped\n");
			break;
		case 2:
			tar_symlink(&t, "esc", s->victim);
			tar_dir(&t, "esc/newdir");
			break;
		case 3:
			tar_symlink(&t, "chain1", "chain2");
			tar_symlink(&t, "chain2", s->victim);
			tar_file(&t, "chain1/pwned", "escaped\n");
			break;
		}
		unpack_refused(s, &t, COMP_ZSTD, NULL, CRISP_ERR_INVALID,
			       "leads nowhere inside the layer");
	}

	/* The same with the directory present in the layer: written inside. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_free_ char *inside = xasprintf("%s/", s->victim + 1);
	_cleanup_free_ char *rel = xasprintf("../../../../../../../../..%s", s->victim);
	Tar t;
	tar_init(&t);
	tar_dir(&t, inside);
	tar_symlink(&t, "esc", s->victim);
	tar_file(&t, "esc/pwned", "inside\n");
	tar_symlink(&t, "esc-rel", rel);
	tar_file(&t, "esc-rel/pwned-rel", "inside too\n");
	tar_symlink(&t, "nested/deeper", "../esc");
	tar_file(&t, "nested/deeper/pwned-nested", "inside three\n");
	tar_file(&t, "esc/victim", "not the victim\n");
	/* A hard link through a symlink resolves inside too. */
	tar_hardlink(&t, "stolen", "esc/victim");
	unpack_ok(s, &t, COMP_GZIP, NULL);
	pwned = xasprintf("%s/pwned", s->victim + 1);
	assert_file(s->snap_fd, pwned, "inside\n");
	free(pwned);
	pwned = xasprintf("%s/pwned-rel", s->victim + 1);
	assert_file(s->snap_fd, pwned, "inside too\n");
	free(pwned);
	pwned = xasprintf("%s/pwned-nested", s->victim + 1);
	assert_file(s->snap_fd, pwned, "inside three\n");
	assert_file(s->snap_fd, "stolen", "not the victim\n");
}

/* A symlink to a file outside, then a regular file, hard link or node of that name. */
static void test_symlink_write_through(void **state)
{
	Scene *s = *state;
	_cleanup_free_ char *victim_file = xasprintf("%s/victim", s->victim);
	Tar t;
	tar_init(&t);
	tar_symlink(&t, "victim", victim_file);
	tar_file(&t, "victim", "OVERWRITTEN through a symlink\n");
	tar_symlink(&t, "victim2", victim_file);
	tar_put(&t, ent("victim2", AE_IFIFO, 0600), NULL, 0);
	tar_file(&t, "plain", "plain\n");
	tar_symlink(&t, "victim3", victim_file);
	tar_hardlink(&t, "victim3", "plain");
	/* A hard link to the symlink links the symlink, not the victim. */
	tar_symlink(&t, "vlink", victim_file);
	tar_hardlink(&t, "vlink.hard", "vlink");
	unpack_ok(s, &t, COMP_NONE, NULL);
	assert_file(s->snap_fd, "victim", "OVERWRITTEN through a symlink\n");
	assert_true(S_ISFIFO(lstat_at(s->snap_fd, "victim2").st_mode));
	assert_file(s->snap_fd, "victim3", "plain\n");
	assert_true(S_ISLNK(lstat_at(s->snap_fd, "vlink.hard").st_mode));
}

static void test_hardlink_escape(void **state)
{
	Scene *s = *state;
	_cleanup_free_ char *victim_file = xasprintf("%s/victim", s->victim);
	const char *targets[] = { "/etc/passwd", victim_file, "does/not/exist", "self",
				  "abs-etc/passwd" };
	for (size_t i = 0; i < ELEMENTSOF(targets); i++) {
		if (i > 0) {
			assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
			safe_close(s->snap_fd);
			s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		Tar t;
		tar_init(&t);
		tar_symlink(&t, "abs-etc", "/etc");
		tar_hardlink(&t, "self", targets[i]);
		tar_file(&t, "self", "OVERWRITTEN through a hard link\n");
		_cleanup_free_ char *want = xasprintf(
			"layer entry \"self\": hard link target \"%s\" is not in this layer",
			targets[i]);
		unpack_refused(s, &t, COMP_GZIP, NULL, CRISP_ERR_INVALID, want);
	}

	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	Tar t;
	tar_init(&t);
	tar_dir(&t, "d");
	tar_hardlink(&t, "hl", "d");
	unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_INVALID,
		       "layer entry \"hl\": hard link target \"d\" is a directory");
}

static void test_whiteout_escape(void **state)
{
	Scene *s = *state;
	const char *names[] = { ".wh..", ".wh...", "sub/.wh.", "../.wh.victim" };
	const char *want[] = { "a whiteout must name an entry of its directory",
			       "a whiteout must name an entry of its directory",
			       "a whiteout must name an entry of its directory",
			       "\"..\" is not allowed" };
	for (size_t i = 0; i < ELEMENTSOF(names); i++) {
		if (i > 0) {
			assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
			safe_close(s->snap_fd);
			s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		Tar t;
		tar_init(&t);
		tar_dir(&t, "sub");
		tar_file(&t, names[i], "");
		unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_INVALID, want[i]);
	}
}

/*
 * 100,100 headers, the count of the hostile fixture's many-entries
 * (tests/fixtures/hostile_layers.py: 100 directories of 1,000 empty files),
 * against the default limit of 100,000.  Each directory gets 10 files and
 * then is listed again 990 times: every header counts, whatever it makes,
 * and the test does not spend a minute creating 99,000 more inodes on a
 * slow disk.
 */
static void test_entry_limit(void **state)
{
	Scene *s = *state;
	Tar t;
	tar_init(&t);
	for (int d = 0; d < 100; d++) {
		char dir[32], name[64];
		snprintf(dir, sizeof(dir), "many/d%03d/", d);
		tar_dir(&t, dir);
		for (int i = 0; i < 10; i++) {
			snprintf(name, sizeof(name), "%sf%06d", dir, i);
			tar_put(&t, ent(name, AE_IFREG, 0644), NULL, 0);
		}
		for (int i = 0; i < 990; i++)
			tar_dir(&t, dir);
	}
	unpack_refused(s, &t, COMP_GZIP, NULL, CRISP_ERR_RESOURCE_EXHAUSTED,
		       "layer entry \"many/d099/\": the layer has more than 100000 entries");

	/* 100,000 is still fine. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	tar_init(&t);
	tar_dir(&t, "many/");
	tar_file(&t, "many/f", "f\n");
	for (int i = 2; i < CRISP_UNPACK_MAX_ENTRIES_DEFAULT; i++)
		tar_dir(&t, "many/");
	unpack_ok(s, &t, COMP_ZSTD, NULL);
	assert_int_equal(s->stats.entries, CRISP_UNPACK_MAX_ENTRIES_DEFAULT);
}

static void test_size_limit(void **state)
{
	Scene *s = *state;
	const CrispUnpackLimits limits = { .max_size = 512 * 1024 };
	_cleanup_free_ char *big = xmalloc(1024 * 1024 + 1);
	memset(big, 'z', 1024 * 1024);
	big[1024 * 1024] = '\0';

	/* Content counted against the limit before it is written. */
	Tar t;
	tar_init(&t);
	tar_file(&t, "small", "small\n");
	tar_file(&t, "big", big);
	unpack_refused(s, &t, COMP_ZSTD, &limits, CRISP_ERR_RESOURCE_EXHAUSTED,
		       "layer entry \"big\": file contents exceed the layer limit of 524288 bytes");

	/* A compression bomb: megabytes of zeros after the tar's end. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	tar_init(&t);
	tar_file(&t, "small", "small\n");
	tar_close(&t);
	size_t bomb = 32u << 20;
	t.buf.data = xrealloc(t.buf.data, t.buf.len + bomb);
	memset(t.buf.data + t.buf.len, 0, bomb);
	t.buf.len += bomb;
	unpack_refused(s, &t, COMP_GZIP, &limits, CRISP_ERR_RESOURCE_EXHAUSTED,
		       "the layer's uncompressed size exceeds the limit of 524288 bytes");
}

static void test_long_path(void **state)
{
	Scene *s = *state;
	char comp[201];
	memset(comp, 'L', 200);
	comp[200] = '\0';
	_cleanup_free_ char *deep = xstrdup(comp);
	for (int i = 1; i < 25; i++) {
		char *next = xasprintf("%s/%s", deep, comp);
		free(deep);
		deep = next;
	}
	char name300[301];
	memset(name300, 'N', 300);
	name300[300] = '\0';
	char target5000[5001];
	memset(target5000, 'S', 5000);
	target5000[5000] = '\0';

	for (int i = 0; i < 3; i++) {
		if (i > 0) {
			assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
			safe_close(s->snap_fd);
			s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		}
		Tar t;
		tar_init(&t);
		tar_file(&t, "ok", "ok\n");
		if (i == 0) {
			tar_file(&t, deep, "beyond PATH_MAX\n");
			unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_RESOURCE_EXHAUSTED,
				       "the name is longer than 4096 bytes");
		} else if (i == 1) {
			tar_file(&t, name300, "beyond NAME_MAX\n");
			unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_INVALID,
				       "a name component is longer than 255 bytes");
		} else {
			tar_symlink(&t, "long-symlink", target5000);
			unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_RESOURCE_EXHAUSTED,
				       "layer entry \"long-symlink\": the symlink's target is "
				       "longer than 4096 bytes");
		}
	}
}

static void test_diff_id_mismatch(void **state)
{
	Scene *s = *state;
	Tar t;
	tar_init(&t);
	tar_file(&t, "a", "a\n");
	CrispDigest diff_id;
	_cleanup_close_ int fd = tar_finish(&t, COMP_GZIP, &diff_id);
	const char *wrong =
		"sha256:0000000000000000000000000000000000000000000000000000000000000000";
	unpack_refused_raw(s, fd, wrong, NULL, CRISP_ERR_INVALID, "checking the layer's diff ID");

	/* Not a digest at all. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	unpack_refused_raw(s, fd, "sha256:../../etc", NULL, CRISP_ERR_INVALID, "layer diff ID");
}

/* Trailing data after the tar's end is part of the diff ID: hashing a tar reader's view would miss it. */
static void test_diff_id_covers_trailing_data(void **state)
{
	Scene *s = *state;
	Tar t;
	tar_init(&t);
	tar_file(&t, "a", "a\n");
	tar_close(&t);
	const char trailer[] = "trailing bytes after the end of the archive";
	t.buf.data = xrealloc(t.buf.data, t.buf.len + sizeof(trailer));
	memcpy(t.buf.data + t.buf.len, trailer, sizeof(trailer));
	t.buf.len += sizeof(trailer);
	CrispDigest diff_id;
	assert_int_equal(
		crisp_digest_compute(CRISP_DIGEST_SHA256, t.buf.data, t.buf.len, &diff_id, NULL),
		0);
	_cleanup_close_ int fd = memfd_with(t.buf.data, t.buf.len);
	size_t len = t.buf.len;
	free(t.buf.data);
	_cleanup_error_ CrispError *err = NULL;
	int r = crisp_unpack_layer(fd, diff_id.string, s->snap_fd, NULL, &s->stats, &err);
	if (r < 0)
		fail_msg("%s", err->message);
	assert_int_equal(s->stats.tar_size, len);
	assert_file(s->snap_fd, "a", "a\n");
}

static void test_malformed(void **state)
{
	Scene *s = *state;
	/* Not a tar. */
	static const char junk[] = "this is not a tar archive, not even a little bit";
	CrispDigest d;
	assert_int_equal(crisp_digest_compute(CRISP_DIGEST_SHA256, junk, sizeof(junk), &d, NULL),
			 0);
	_cleanup_close_ int fd = memfd_with(junk, sizeof(junk));
	unpack_refused_raw(s, fd, d.string, NULL, CRISP_ERR_INVALID,
			   "the layer is not a valid tar");

	/* bzip2 is not a layer compression crisp accepts. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	Tar t;
	tar_init(&t);
	tar_file(&t, "a", "a\n");
	unpack_refused(s, &t, COMP_BZIP2, NULL, CRISP_ERR_INVALID, "the layer is not a valid tar");

	/* A truncated gzip stream. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	tar_init(&t);
	_cleanup_free_ char *big = xmalloc(200000);
	for (size_t i = 0; i < 199999; i++)
		big[i] = (char)('a' + (i * 7919) % 26);
	big[199999] = '\0';
	tar_file(&t, "big", big);
	_cleanup_close_ int gz = tar_finish(&t, COMP_GZIP, &d);
	struct stat st;
	assert_int_equal(fstat(gz, &st), 0);
	assert_int_equal(ftruncate(gz, st.st_size / 2), 0);
	unpack_refused_raw(s, gz, d.string, NULL, CRISP_ERR_INVALID, "layer");
}

static void test_dest_not_empty(void **state)
{
	Scene *s = *state;
	_cleanup_close_ int f = openat(s->snap_fd, "stale", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(f >= 0);
	Tar t;
	tar_init(&t);
	tar_file(&t, "a", "a\n");
	unpack_refused(s, &t, COMP_NONE, NULL, CRISP_ERR_FAILED_PRECONDITION, "not empty");
}

/* Directory times are set after their contents, last entry first. */
static void test_dir_times(void **state)
{
	Scene *s = *state;
	Tar t;
	tar_init(&t);
	struct archive_entry *e = ent("a", AE_IFDIR, 0755);
	archive_entry_set_mtime(e, 1000000000, 5);
	archive_entry_set_atime(e, 1000000001, 0);
	tar_put(&t, e, NULL, 0);
	e = ent("a/b", AE_IFDIR, 0755);
	archive_entry_set_mtime(e, 1100000000, 0);
	tar_put(&t, e, NULL, 0);
	tar_file(&t, "a/b/c", "c\n");
	tar_file(&t, "a/d", "d\n");
	unpack_ok(s, &t, COMP_NONE, NULL);
	struct stat st = lstat_at(s->snap_fd, "a");
	assert_int_equal(st.st_mtim.tv_sec, 1000000000);
	assert_int_equal(st.st_mtim.tv_nsec, 5);
	assert_int_equal(st.st_atim.tv_sec, 1000000001);
	st = lstat_at(s->snap_fd, "a/b");
	assert_int_equal(st.st_mtim.tv_sec, 1100000000);
}

/* A ustar header, by hand: libarchive's writers do not write sparse files. */
static void raw_header(Buf *b, const char *name, char type, size_t size)
{
	unsigned char h[512] = { 0 };
	snprintf((char *)h, 100, "%s", name);
	snprintf((char *)h + 100, 8, "%07o", 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011zo", size);
	snprintf((char *)h + 136, 12, "%011o", MTIME);
	h[156] = (unsigned char)type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	unsigned sum = 0;
	for (size_t i = 0; i < sizeof(h); i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	buf_write(NULL, b, h, sizeof(h));
}

static void raw_data(Buf *b, const void *data, size_t len)
{
	static const unsigned char zeros[512];
	buf_write(NULL, b, data, len);
	if (len % 512)
		buf_write(NULL, b, zeros, 512 - len % 512);
}

/* A pax record "<len> key=value\n"; len counts itself. */
static void pax_record(Buf *b, const char *key, const char *value)
{
	size_t body = strlen(key) + strlen(value) + 3, n = body + 1;
	while (snprintf(NULL, 0, "%zu", n) + body != n)
		n++;
	char rec[256];
	snprintf(rec, sizeof(rec), "%zu %s=%s\n", n, key, value);
	buf_write(NULL, b, rec, strlen(rec));
}

/*
 * A GNU pax 1.0 sparse file of `size` bytes with 4 KiB of 'x' at 0 and of
 * 'y' at size/2, and holes elsewhere: the stream holds 8 KiB of data.
 */
static void raw_sparse_tar(Buf *tar, size_t size)
{
	Buf pax = { 0 };
	char real[32];
	snprintf(real, sizeof(real), "%zu", size);
	pax_record(&pax, "GNU.sparse.major", "1");
	pax_record(&pax, "GNU.sparse.minor", "0");
	pax_record(&pax, "GNU.sparse.name", "sparse");
	pax_record(&pax, "GNU.sparse.realsize", real);
	raw_header(tar, "PaxHeaders/sparse", 'x', pax.len);
	raw_data(tar, pax.data, pax.len);
	free(pax.data);

	char map[512] = { 0 };
	snprintf(map, sizeof(map), "2\n0\n4096\n%zu\n4096\n", size / 2);
	_cleanup_free_ unsigned char *chunk = xmalloc(4096);
	raw_header(tar, "GNUSparseFile.0/sparse", '0', 512 + 2 * 4096);
	raw_data(tar, map, 512);
	memset(chunk, 'x', 4096);
	raw_data(tar, chunk, 4096);
	memset(chunk, 'y', 4096);
	raw_data(tar, chunk, 4096);
	static const unsigned char end[1024];
	buf_write(NULL, tar, end, sizeof(end));
}

/* Holes of a sparse file stay holes; its logical size counts against the size limit. */
static void test_sparse(void **state)
{
	Scene *s = *state;
	size_t size = 8u << 20;
	Tar t = { 0 };
	raw_sparse_tar(&t.buf, size);
	unpack_ok(s, &t, COMP_NONE, NULL);

	struct stat st = lstat_at(s->snap_fd, "sparse");
	assert_int_equal(st.st_size, size);
	assert_true(st.st_blocks * 512 < 1024 * 1024);
	assert_int_equal(s->stats.content_size, size);
	_cleanup_close_ int fd = openat(s->snap_fd, "sparse", O_RDONLY | O_CLOEXEC);
	_cleanup_free_ unsigned char *got = xmalloc(size);
	_cleanup_free_ unsigned char *want = xcalloc(1, size);
	memset(want, 'x', 4096);
	memset(want + size / 2, 'y', 4096);
	assert_int_equal(pread(fd, got, size, 0), (ssize_t)size);
	assert_memory_equal(got, want, size);

	/* 8 MiB of holes in a 12 KiB stream still hit a 1 MiB limit. */
	assert_int_equal(crisp_remove_tree_at(s->tmp_fd, "snap"), 0);
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
	safe_close(s->snap_fd);
	s->snap_fd = openat(s->tmp_fd, "snap", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	t = (Tar){ 0 };
	raw_sparse_tar(&t.buf, size);
	const CrispUnpackLimits limits = { .max_size = 1024 * 1024 };
	unpack_refused(s, &t, COMP_GZIP, &limits, CRISP_ERR_RESOURCE_EXHAUSTED,
		       "layer entry \"sparse\": file contents exceed the layer limit");
}

/* ---- crisp_remove_tree_at ---- */

static void test_remove_tree(void **state)
{
	Scene *s = *state;
	/* Deeper than the fd limit of a test process, with symlinks pointing out. */
	int depth = 1100;
	_cleanup_close_ int cur = dup(s->snap_fd);
	for (int i = 0; i < depth; i++) {
		assert_int_equal(mkdirat(cur, "d", 0755), 0);
		if (i % 10 == 0) {
			assert_int_equal(symlinkat(s->victim, cur, "out"), 0);
			_cleanup_close_ int f =
				openat(cur, "f", O_WRONLY | O_CREAT | O_CLOEXEC, 0000);
			assert_true(f >= 0);
		}
		if (i % 100 == 0)
			assert_int_equal(mkdirat(cur, "ro", 0), 0); /* unreadable, empty */
		int next = openat(cur, "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(next >= 0);
		safe_close(cur);
		cur = next;
	}
	assert_int_equal(mknodat(cur, "null", S_IFCHR | 0666, makedev(1, 3)), 0);
	assert_int_equal(mknodat(cur, "fifo", S_IFIFO | 0600, 0), 0);
	cur = safe_close(cur);
	size_t fds = th_count_fds();
	assert_int_equal(crisp_remove_tree_at(s->tmp_fd, "snap"), 0);
	assert_int_equal(th_count_fds(), fds);
	assert_absent(s->tmp_fd, "snap");
	/* Missing: fine.  A symlink: removed, not followed. */
	assert_int_equal(crisp_remove_tree_at(s->tmp_fd, "snap"), 0);
	assert_int_equal(symlinkat(s->victim, s->tmp_fd, "link"), 0);
	assert_int_equal(crisp_remove_tree_at(s->tmp_fd, "link"), 0);
	assert_absent(s->tmp_fd, "link");
	/* For the teardown. */
	assert_int_equal(mkdirat(s->tmp_fd, "snap", 0755), 0);
}

static int force_walk_setup(void **state)
{
	unpack_force_walk = true;
	return 0;
}

static int force_walk_teardown(void **state)
{
	unpack_force_walk = false;
	return 0;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_unpack: needs root (chown, mknod); skipped\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_name),
		cmocka_unit_test_setup_teardown(test_openat_in_root, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_everything_none, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_everything_gzip, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_everything_zstd, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_whiteouts, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_replace, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_dir_times, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_sparse, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_dotdot, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_absolute, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_escape, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_write_through, scene_setup,
						scene_teardown),
		cmocka_unit_test_setup_teardown(test_hardlink_escape, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_whiteout_escape, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_entry_limit, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_long_path, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_diff_id_mismatch, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_diff_id_covers_trailing_data, scene_setup,
						scene_teardown),
		cmocka_unit_test_setup_teardown(test_malformed, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_dest_not_empty, scene_setup, scene_teardown),
		cmocka_unit_test_setup_teardown(test_remove_tree, scene_setup, scene_teardown),
	};
	int failed = cmocka_run_group_tests_name("unpack (openat2)", tests, NULL, NULL);
	/*
	 * Everything again with the resolution done by hand, as without
	 * openat2(); where it is missing (valgrind) the first run did that.
	 */
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
	if (fd >= 0) {
		close((int)fd);
		failed += cmocka_run_group_tests_name("unpack (by-hand resolution)", tests,
						      force_walk_setup, force_walk_teardown);
	}
	return failed;
}
