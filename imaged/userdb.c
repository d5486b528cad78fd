/*
 * userdb.c - resolving a container's user against the image's /etc/passwd
 * and /etc/group (the rules are in userdb.h).
 *
 * The lookup walks the merged view itself instead of resolving a path in
 * each layer with openat2(RESOLVE_IN_ROOT): a symlink met in one layer
 * ("etc" -> "private/etc") may lead to directories that only a lower layer
 * holds, and which layer decides a name depends on whiteouts and opaque
 * directories that the kernel knows nothing about in a plain directory.
 * Each step is an *at() call on one component that is never "." or "..",
 * with AT_SYMLINK_NOFOLLOW or O_NOFOLLOW, relative to a directory reached
 * the same way from a layer's root; so nothing outside the layer
 * directories can be named, and symlinks are only ever read, never
 * followed by the kernel.
 */
#include "userdb.h"

#include "parse_util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define OVERLAY_OPAQUE_XATTR "user.overlay.opaque"
/* (uint32_t)-1 means "unchanged" to setresuid() and chown(): never a valid id. */
#define USERDB_ID_MAX UINT32_C(4294967294)

/* ---- the merged view of the layers ---- */

/* One layer's directory at the current point of a walk. */
typedef struct LayerDir {
	int fd;
	dev_t dev; /* the layer root's: an entry on another mount is refused */
	bool owned;
} LayerDir;

/* The layers' directories that make up one directory of the image, topmost first. */
typedef struct MergedDir {
	LayerDir *dirs;
	size_t n;
} MergedDir;

static void merged_dir_done(MergedDir *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->dirs[i].owned)
			safe_close(m->dirs[i].fd);
	free(m->dirs);
	*m = (MergedDir){ 0 };
}

/* A copy of root whose fds are borrowed. */
static MergedDir merged_dir_borrow(const MergedDir *root)
{
	MergedDir m = { .dirs = xcalloc(root->n ? root->n : 1, sizeof(LayerDir)), .n = root->n };
	for (size_t i = 0; i < root->n; i++)
		m.dirs[i] = (LayerDir){ .fd = root->dirs[i].fd, .dev = root->dirs[i].dev };
	return m;
}

static int merged_root(const int *layer_fds, size_t n_layers, MergedDir *ret, CrispError **err)
{
	_cleanup_(merged_dir_done) MergedDir m = {
		.dirs = xcalloc(n_layers ? n_layers : 1, sizeof(LayerDir)),
	};
	for (size_t i = 0; i < n_layers; i++) {
		struct stat st;
		if (fstat(layer_fds[i], &st) < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						     "image layer %zu", i);
		if (!S_ISDIR(st.st_mode))
			return crisp_error_set(err, CRISP_ERR_INTERNAL, ENOTDIR,
					       "image layer %zu is not a directory", i);
		m.dirs[m.n++] = (LayerDir){ .fd = layer_fds[i], .dev = st.st_dev };
	}
	*ret = m;
	m = (MergedDir){ 0 };
	return 0;
}

static int dir_is_opaque(int fd)
{
	char v[2];
	ssize_t n = fgetxattr(fd, OVERLAY_OPAQUE_XATTR, v, sizeof(v));
	if (n < 0)
		/* ERANGE: a longer value, which is not "y" either. */
		return errno == ENODATA || errno == ENOTSUP || errno == ERANGE ? 0 : -errno;
	return n == 1 && v[0] == 'y';
}

/*
 * Cleans an absolute or relative path lexically, as seen from the image's
 * root: "." and empty components go, ".." removes the component before it
 * and stays at the root.  Every component before a ".." was a directory
 * (the walk substitutes symlinks as it meets them), so this is what the
 * kernel would do under RESOLVE_IN_ROOT.  The result has no leading or
 * trailing '/', and is "" for the root.
 */
static int path_clean(const char *path, char **ret)
{
	size_t len = strlen(path);
	_cleanup_free_ char *out = xmalloc(len + 1);
	size_t o = 0;
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (!(n == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p = end;
	}
	if (o >= PATH_MAX)
		return -ENAMETOOLONG;
	out[o] = '\0';
	*ret = TAKE_PTR(out);
	return 0;
}

/* "/etc/passwd", or "/etc/passwd (at /x)" once symlinks led elsewhere; malloc'd. */
static char *describe(const char *what, const char *path)
{
	if (streq_ptr(what + 1, path))
		return xstrdup(what);
	_cleanup_free_ char *q = imaged_escape(path, IMAGED_QUOTE_MAX);
	return xasprintf("%s (at /%s)", what, q);
}

static const char *type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	default:
		return "not a regular file";
	}
}

static int refuse_type(CrispError **err, const char *what, const char *path, mode_t mode)
{
	_cleanup_free_ char *d = describe(what, path);
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
			       "the image's %s is %s, not a regular file", d, type_name(mode));
}

static int read_failed(CrispError **err, int errnum, const char *what, const char *path)
{
	_cleanup_free_ char *d = describe(what, path);
	return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errnum, "reading the image's %s", d);
}

static int too_big(CrispError **err, const char *what, const char *path)
{
	_cleanup_free_ char *d = describe(what, path);
	return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, EFBIG,
			       "the image's %s is larger than %d bytes", d, USERDB_FILE_MAX);
}

/* Reads the regular file name in dirfd, at most USERDB_FILE_MAX bytes, NUL-terminated. */
static int read_file(int dirfd, const char *name, const char *what, const char *path,
		     char **ret_data, size_t *ret_len, CrispError **err)
{
	/* O_NONBLOCK: should a FIFO replace the file after the check, opening it must not hang. */
	_cleanup_close_ int fd =
		openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return read_failed(err, errno, what, path);
	if (!S_ISREG(st.st_mode))
		return refuse_type(err, what, path, st.st_mode);
	if (st.st_size > USERDB_FILE_MAX)
		return too_big(err, what, path);

	/* The size is a hint: the loop bounds what it reads whatever the file does meanwhile. */
	size_t cap = (size_t)st.st_size + 1, len = 0;
	_cleanup_free_ char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			cap = cap * 2 > USERDB_FILE_MAX + 1 ? USERDB_FILE_MAX + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return read_failed(err, errno, what, path);
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > USERDB_FILE_MAX)
			return too_big(err, what, path);
	}
	buf[len] = '\0';
	*ret_data = TAKE_PTR(buf);
	*ret_len = len;
	return 1;
}

enum {
	WALK_ABSENT = 0,
	WALK_FILE = 1,
	WALK_SYMLINK = 2,
};

/*
 * The cleaned path that the symlink `name` in dirfd leads to, followed by
 * rest ("" or "/..."); a relative target starts from the link's directory,
 * the first prefix_len bytes of path.
 */
static int substitute(const char *path, size_t prefix_len, int dirfd, const char *name,
		      const char *rest, char **ret)
{
	char target[PATH_MAX];
	ssize_t n = readlinkat(dirfd, name, target, sizeof(target));
	if (n < 0)
		return -errno;
	if ((size_t)n >= sizeof(target))
		return -ENAMETOOLONG;
	target[n] = '\0';
	/* The kernel resolves an empty target to nothing. */
	if (n == 0)
		return -ENOENT;

	_cleanup_free_ char *joined =
		target[0] == '/' ? xasprintf("%s%s", target, rest)
				 : xasprintf("%.*s/%s%s", (int)prefix_len, path, target, rest);
	return path_clean(joined, ret);
}

/*
 * One pass over the cleaned path from the image's root.  Returns WALK_FILE
 * with the contents, WALK_ABSENT, or WALK_SYMLINK with the path the first
 * symlink met leads to in *ret_next.
 */
static int walk(const MergedDir *root, const char *what, const char *path, char **ret_data,
		size_t *ret_len, char **ret_next, CrispError **err)
{
	if (!*path)
		return refuse_type(err, what, path, S_IFDIR);

	_cleanup_(merged_dir_done) MergedDir cur = merged_dir_borrow(root);
	for (const char *p = path;;) {
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		bool last = !*end;
		/* No such name can exist in a directory. */
		if (n > NAME_MAX)
			return WALK_ABSENT;
		char name[NAME_MAX + 1];
		memcpy(name, p, n);
		name[n] = '\0';

		_cleanup_(merged_dir_done) MergedDir next = {
			.dirs = xcalloc(cur.n ? cur.n : 1, sizeof(LayerDir)),
		};
		bool found = false;
		for (size_t i = 0; i < cur.n; i++) {
			const LayerDir *d = &cur.dirs[i];
			struct stat st;
			if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno == ENOENT)
					continue;
				return read_failed(err, errno, what, path);
			}
			if (st.st_dev != d->dev)
				return read_failed(err, EXDEV, what, path);
			/* A whiteout hides the name in every layer below. */
			if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0))
				break;

			if (!found) {
				/* The topmost entry decides what the name is. */
				found = true;
				if (S_ISLNK(st.st_mode)) {
					int r = substitute(path, (size_t)(p - path), d->fd, name,
							   end, ret_next);
					if (r == -ENOENT)
						return WALK_ABSENT;
					if (r == -ENAMETOOLONG)
						return crisp_error_set(
							err, CRISP_ERR_INVALID, ENAMETOOLONG,
							"the image's %s: a symlink leads to a "
							"path longer than %d bytes",
							what, PATH_MAX);
					if (r < 0)
						return read_failed(err, -r, what, path);
					return WALK_SYMLINK;
				}
				if (last && S_ISREG(st.st_mode))
					return read_file(d->fd, name, what, path, ret_data, ret_len,
							 err);
				if (last)
					return refuse_type(err, what, path, st.st_mode);
				/* A file where a directory should be: ENOTDIR in the container. */
				if (!S_ISDIR(st.st_mode))
					return WALK_ABSENT;
			} else if (!S_ISDIR(st.st_mode)) {
				/* A directory above hides a non-directory below. */
				break;
			}

			int fd = openat(d->fd, name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return read_failed(err, errno, what, path);
			next.dirs[next.n++] = (LayerDir){ .fd = fd, .dev = d->dev, .owned = true };
			int opaque = dir_is_opaque(fd);
			if (opaque < 0)
				return read_failed(err, -opaque, what, path);
			if (opaque)
				break;
		}
		if (!found)
			return WALK_ABSENT;

		merged_dir_done(&cur);
		cur = next;
		next = (MergedDir){ 0 };
		p = end + 1;
	}
}

/*
 * Reads the file at the absolute path `what` as the container would see
 * it.  Returns 1 with its contents (NUL-terminated; a NUL inside is the
 * parser's business), 0 when it does not exist, or a negative errno.
 */
static int image_read_file(const MergedDir *root, const char *what, char **ret_data,
			   size_t *ret_len, CrispError **err)
{
	/* what is one of ours, absolute and clean: "/etc/passwd". */
	_cleanup_free_ char *path = xstrdup(what + 1);
	_cleanup_free_ char *chain = xstrdup(what);
	for (unsigned hops = 0;; hops++) {
		_cleanup_free_ char *next = NULL;
		int r = walk(root, what, path, ret_data, ret_len, &next, err);
		if (r != WALK_SYMLINK)
			return r;

		_cleanup_free_ char *q = imaged_escape(next, IMAGED_QUOTE_MAX);
		char *longer = xasprintf("%s -> /%s", chain, q);
		free(chain);
		chain = longer;
		if (hops + 1 > USERDB_SYMLINK_MAX)
			return crisp_error_set(err, CRISP_ERR_INVALID, ELOOP,
					       "the image's %s: more than %d symlinks: %s", what,
					       USERDB_SYMLINK_MAX, chain);
		free(path);
		path = TAKE_PTR(next);
	}
}

/* ---- parsing ---- */

typedef struct UserDbFile {
	bool loaded;
	bool present;
	char *data;
	size_t len;
} UserDbFile;

static void userdb_file_done(UserDbFile *f)
{
	free(f->data);
	*f = (UserDbFile){ 0 };
}

static int userdb_file_load(UserDbFile *f, const MergedDir *root, const char *what,
			    CrispError **err)
{
	if (f->loaded)
		return 0;
	int r = image_read_file(root, what, &f->data, &f->len, err);
	if (r < 0)
		return r;
	f->loaded = true;
	f->present = r > 0;
	return 0;
}

typedef struct Field {
	const char *s;
	size_t len;
} Field;

static bool field_eq(Field f, Field g)
{
	return f.len == g.len && memcmp(f.s, g.s, f.len) == 0;
}

static Field field_of(const char *s)
{
	return (Field){ .s = s, .len = strlen(s) };
}

/* The next line worth parsing: not blank, not a comment, without a NUL byte. */
static bool next_line(const char **pos, const char *end, Field *ret)
{
	while (*pos < end) {
		const char *line = *pos;
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *stop = nl ? nl : end;
		*pos = nl ? nl + 1 : end;
		size_t len = (size_t)(stop - line);
		if (len == 0 || line[0] == '#' || memchr(line, '\0', len))
			continue;
		*ret = (Field){ .s = line, .len = len };
		return true;
	}
	return false;
}

/* Splits at ':' into at most max fields, the last one taking the rest; returns how many. */
static size_t split_fields(Field line, Field *f, size_t max)
{
	size_t n = 0;
	const char *p = line.s, *end = line.s + line.len;
	while (n + 1 < max) {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		if (!colon)
			break;
		f[n++] = (Field){ .s = p, .len = (size_t)(colon - p) };
		p = colon + 1;
	}
	f[n++] = (Field){ .s = p, .len = (size_t)(end - p) };
	return n;
}

/* Plain decimal 0..USERDB_ID_MAX: no sign, no spaces. */
static bool parse_id(Field f, uint32_t *ret)
{
	if (f.len == 0 || f.len > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < f.len; i++) {
		if (f.s[i] < '0' || f.s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(f.s[i] - '0');
	}
	if (v > USERDB_ID_MAX)
		return false;
	*ret = (uint32_t)v;
	return true;
}

/* An empty name, or a NIS compat entry ("+name", "-name", "+"), is skipped. */
static bool name_usable(Field f)
{
	return f.len > 0 && f.s[0] != '+' && f.s[0] != '-';
}

typedef struct PasswdEntry {
	Field name; /* points into the file's data */
	uint32_t uid, gid;
} PasswdEntry;

static bool passwd_parse(Field line, PasswdEntry *ret)
{
	Field f[5];
	if (split_fields(line, f, ELEMENTSOF(f)) < 4 || !name_usable(f[0]))
		return false;
	PasswdEntry e = { .name = f[0] };
	if (!parse_id(f[2], &e.uid) || !parse_id(f[3], &e.gid))
		return false;
	*ret = e;
	return true;
}

/* The first entry with this name (when name.s) or else this uid. */
static bool passwd_find(const UserDbFile *f, Field name, uint32_t uid, PasswdEntry *ret)
{
	if (!f->present)
		return false;
	const char *pos = f->data;
	Field line;
	PasswdEntry e;
	while (next_line(&pos, f->data + f->len, &line))
		if (passwd_parse(line, &e) && (name.s ? field_eq(e.name, name) : e.uid == uid)) {
			*ret = e;
			return true;
		}
	return false;
}

typedef struct GroupEntry {
	Field name;
	uint32_t gid;
	Field members; /* comma-separated; empty when the field is absent */
} GroupEntry;

static bool group_parse(Field line, GroupEntry *ret)
{
	Field f[4];
	size_t n = split_fields(line, f, ELEMENTSOF(f));
	if (n < 3 || !name_usable(f[0]))
		return false;
	GroupEntry e = { .name = f[0], .members = n > 3 ? f[3] : (Field){ .s = "" } };
	if (!parse_id(f[2], &e.gid))
		return false;
	*ret = e;
	return true;
}

static bool group_find(const UserDbFile *f, Field name, uint32_t *ret_gid)
{
	if (!f->present)
		return false;
	const char *pos = f->data;
	Field line;
	GroupEntry e;
	while (next_line(&pos, f->data + f->len, &line))
		if (group_parse(line, &e) && field_eq(e.name, name)) {
			*ret_gid = e.gid;
			return true;
		}
	return false;
}

static bool has_member(Field members, Field user)
{
	const char *p = members.s, *end = members.s + members.len;
	for (;;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		Field m = { .s = p, .len = (size_t)((comma ? comma : end) - p) };
		if (field_eq(m, user))
			return true;
		if (!comma)
			return false;
		p = comma + 1;
	}
}

static int cmp_gid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The gids of the groups listing user as a member, sorted and unique, without primary. */
static int group_memberships(const UserDbFile *f, Field user, uint32_t primary, uint32_t **ret,
			     size_t *ret_n, CrispError **err)
{
	_cleanup_free_ uint32_t *gids = NULL;
	size_t n = 0, cap = 0;
	const char *pos = f->data;
	Field line;
	GroupEntry e;
	/* Bounded by the number of lines, so by USERDB_FILE_MAX. */
	while (f->present && next_line(&pos, f->data + f->len, &line)) {
		if (!group_parse(line, &e) || e.gid == primary || !has_member(e.members, user))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			gids = xrealloc(gids, cap * sizeof(*gids));
		}
		gids[n++] = e.gid;
	}

	size_t u = 0;
	if (n > 0) {
		qsort(gids, n, sizeof(*gids), cmp_gid);
		for (size_t i = 0; i < n; i++)
			if (u == 0 || gids[u - 1] != gids[i])
				gids[u++] = gids[i];
	}
	if (u > USERDB_GROUPS_MAX) {
		_cleanup_free_ char *q = imaged_escape_len(user.s, user.len, IMAGED_QUOTE_MAX);
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, E2BIG,
				       "user \"%s\" is in %zu groups of the image's /etc/group, "
				       "more than %d",
				       q, u, USERDB_GROUPS_MAX);
	}
	*ret = u > 0 ? TAKE_PTR(gids) : NULL;
	*ret_n = u;
	return 0;
}

/* ---- the request ---- */

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

static int check_cri_id(const char *field, int64_t v, uint32_t *ret, CrispError **err)
{
	if (v < 0 || (uint64_t)v > USERDB_ID_MAX)
		return crisp_error_set(err, CRISP_ERR_INVALID, ERANGE,
				       "%s %" PRId64 " is out of range (0..%" PRIu32 ")", field, v,
				       USERDB_ID_MAX);
	*ret = (uint32_t)v;
	return 0;
}

static int invalid_user(CrispError **err, const char *field, const char *value, const char *reason)
{
	_cleanup_free_ char *q = imaged_escape(value, IMAGED_QUOTE_MAX);
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "%s \"%s\" %s", field, q, reason);
}

static int check_name(const char *field, const char *s, CrispError **err)
{
	if (strnlen(s, USERDB_USER_MAX + 1) > USERDB_USER_MAX)
		return invalid_user(err, field, s, "is longer than 256 bytes");
	if (has_control(s))
		return invalid_user(err, field, s, "contains a control character");
	return 0;
}

/* A user or group part that is all digits is an id, and must be in range. */
static int numeric_part(const char *field, const char *value, Field part, bool *ret_numeric,
			uint32_t *ret_id, CrispError **err)
{
	bool digits = part.len > 0;
	for (size_t i = 0; i < part.len && digits; i++)
		digits = part.s[i] >= '0' && part.s[i] <= '9';
	*ret_numeric = digits;
	if (digits && !parse_id(part, ret_id))
		return invalid_user(err, field, value, "has an id out of range (0..4294967294)");
	return 0;
}

static int not_found(CrispError **err, const char *kind, Field name, const UserDbFile *f,
		     const char *file)
{
	_cleanup_free_ char *q = imaged_escape_len(name.s, name.len, IMAGED_QUOTE_MAX);
	if (!f->present)
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "%s \"%s\" not found: the image has no %s", kind, q, file);
	return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
			       "%s \"%s\" not found in the image's %s", kind, q, file);
}

int crisp_userdb_resolve(const int *layer_fds, size_t n_layers, const CrispUserSpec *spec,
			 CrispResolvedUser *ret, CrispError **err)
{
	const char *username =
		spec->run_as_username && *spec->run_as_username ? spec->run_as_username : NULL;
	const char *image_user = spec->image_user ? spec->image_user : "";
	uint32_t uid = 0, gid = 0, run_as_group = 0;
	int r;

	/* Everything the request and the image config say is checked before any file is read. */
	if (spec->has_run_as_group) {
		if (!username && !spec->has_run_as_user)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "run_as_group needs run_as_user or run_as_username");
		r = check_cri_id("run_as_group", spec->run_as_group, &run_as_group, err);
		if (r < 0)
			return r;
	}
	Field user_part = { 0 }, group_part = { 0 };
	bool user_numeric = false, group_numeric = false;
	uint32_t group_id = 0;
	if (username) {
		r = check_name("run_as_username", username, err);
		if (r < 0)
			return r;
		user_part = field_of(username);
	} else if (spec->has_run_as_user) {
		r = check_cri_id("run_as_user", spec->run_as_user, &uid, err);
		if (r < 0)
			return r;
	} else if (*image_user) {
		r = check_name("the image's User", image_user, err);
		if (r < 0)
			return r;
		const char *colon = strchr(image_user, ':');
		if (colon && strchr(colon + 1, ':'))
			return invalid_user(err, "the image's User", image_user,
					    "has more than one ':'");
		user_part =
			(Field){ .s = image_user,
				 .len = colon ? (size_t)(colon - image_user) : strlen(image_user) };
		/* "user:" is "user", as runc reads it. */
		if (colon)
			group_part = field_of(colon + 1);
		if (user_part.len == 0)
			return invalid_user(err, "the image's User", image_user,
					    "has an empty user part");
		r = numeric_part("the image's User", image_user, user_part, &user_numeric, &uid,
				 err);
		if (r < 0)
			return r;
		r = numeric_part("the image's User", image_user, group_part, &group_numeric,
				 &group_id, err);
		if (r < 0)
			return r;
	}

	_cleanup_(merged_dir_done) MergedDir root = { 0 };
	r = merged_root(layer_fds, n_layers, &root, err);
	if (r < 0)
		return r;
	_cleanup_(userdb_file_done) UserDbFile passwd = { 0 };
	_cleanup_(userdb_file_done) UserDbFile group = { 0 };
	/* Needed whatever the spec: the passwd name is what /etc/group lists. */
	r = userdb_file_load(&passwd, &root, "/etc/passwd", err);
	if (r < 0)
		return r;

	PasswdEntry pw;
	bool has_pw;
	if (user_part.s && !user_numeric) {
		has_pw = passwd_find(&passwd, user_part, 0, &pw);
		if (!has_pw)
			return not_found(err, "user", user_part, &passwd, "/etc/passwd");
		uid = pw.uid;
		gid = pw.gid;
	} else {
		/* A uid, given or 0 by default, need not be in /etc/passwd. */
		has_pw = passwd_find(&passwd, (Field){ 0 }, uid, &pw);
		/* The image's User "" runs as root:root, whatever root's entry says. */
		gid = has_pw && (user_part.s || spec->has_run_as_user) ? pw.gid : 0;
	}

	if (group_part.len > 0) {
		if (group_numeric) {
			gid = group_id;
		} else {
			r = userdb_file_load(&group, &root, "/etc/group", err);
			if (r < 0)
				return r;
			if (!group_find(&group, group_part, &gid))
				return not_found(err, "group", group_part, &group, "/etc/group");
		}
	}
	if (spec->has_run_as_group)
		gid = run_as_group;

	_cleanup_free_ uint32_t *gids = NULL;
	size_t n_gids = 0;
	if (has_pw) {
		r = userdb_file_load(&group, &root, "/etc/group", err);
		if (r < 0)
			return r;
		r = group_memberships(&group, pw.name, gid, &gids, &n_gids, err);
		if (r < 0)
			return r;
	}

	*ret = (CrispResolvedUser){
		.uid = uid,
		.gid = gid,
		.additional_gids = TAKE_PTR(gids),
		.n_additional_gids = n_gids,
	};
	return 0;
}

void crisp_resolved_user_done(CrispResolvedUser *u)
{
	if (!u)
		return;
	free(u->additional_gids);
	*u = (CrispResolvedUser){ 0 };
}
