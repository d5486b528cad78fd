/*
 * test_userdb.c - imaged/userdb.c: the container's user from the image's
 * /etc/passwd and /etc/group, read through the merged view of its layers.
 *
 * Runs as root (mknod of whiteouts).  Each test builds its layers as
 * directories <tmp>/l0 (topmost), <tmp>/l1, ... and hands their fds to
 * crisp_userdb_resolve().  The user names in the fixtures exist only
 * there, so a result naming them proves the file was found inside the
 * stack; decoy files outside the layers (<tmp>/host-passwd and the like,
 * where the host's view of an escaping symlink would land) name users the
 * lookups must never find.  The teardown checks that no fd leaked.
 */
#include "test_helpers.h"

#include "userdb.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define MAX_LAYERS 4

#define PASSWD                                                                                     \
	"root:x:0:0:root:/root:/bin/sh\n"                                                          \
	"alice-fx:x:1000:1000:Alice:/home/alice:/bin/sh\n"                                         \
	"bob-fx:x:1001:1002::/home/bob:/bin/false\n"
#define GROUP                                                                                      \
	"root:x:0:\n"                                                                              \
	"wheel-fx:x:10:root\n"                                                                     \
	"staff-fx:x:50:alice-fx\n"                                                                 \
	"alice-fx:x:1000:\n"                                                                       \
	"bobs-fx:x:1002:\n"                                                                        \
	"devs-fx:x:2000:bob-fx,alice-fx\n"
/* A user the host cannot have: finding it proves the file came from the stack. */
#define FIXTURE_PASSWD "fixture-only-user:x:4711:4712::/:/bin/sh\n"
#define DECOY_PASSWD "decoy-user:x:6666:6666::/:/bin/sh\n"

typedef struct Fx {
	char *tmp;
	int fds[MAX_LAYERS];
	size_t n;
	size_t fds_before;
} Fx;

static int fx_setup(void **state)
{
	Fx *fx = xcalloc(1, sizeof(*fx));
	fx->fds_before = th_count_fds();
	fx->tmp = th_mkdtemp();
	for (size_t i = 0; i < MAX_LAYERS; i++)
		fx->fds[i] = -1;
	*state = fx;
	return 0;
}

static int fx_teardown(void **state)
{
	Fx *fx = *state;
	for (size_t i = 0; i < fx->n; i++)
		safe_close(fx->fds[i]);
	th_rm_rf(fx->tmp);
	free(fx->tmp);
	size_t before = fx->fds_before;
	free(fx);
	assert_int_equal(th_count_fds(), before);
	return 0;
}

/* Makes n empty layers, l0 topmost. */
static void fx_layers(Fx *fx, size_t n)
{
	assert_true(n <= MAX_LAYERS && fx->n == 0);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = xasprintf("%s/l%zu", fx->tmp, i);
		assert_int_equal(mkdir(p, 0755), 0);
		fx->fds[i] = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		assert_true(fx->fds[i] >= 0);
	}
	fx->n = n;
}

/* <tmp>/l<layer>/<rel>, or <tmp>/<rel> for layer -1; creates the parent directories. */
static char *fx_path(Fx *fx, int layer, const char *rel)
{
	char *p = layer < 0 ? xasprintf("%s/%s", fx->tmp, rel)
			    : xasprintf("%s/l%d/%s", fx->tmp, layer, rel);
	size_t base = strlen(fx->tmp) + 1;
	for (char *s = strchr(p + base, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			fail_msg("mkdir %s: %s", p, strerror(errno));
		*s = '/';
	}
	return p;
}

static void put_data(Fx *fx, int layer, const char *rel, const void *data, size_t len)
{
	_cleanup_free_ char *p = fx_path(fx, layer, rel);
	_cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, (const char *)data + off, len - off);
		assert_true(n > 0);
		off += (size_t)n;
	}
}

static void put_file(Fx *fx, int layer, const char *rel, const char *content)
{
	put_data(fx, layer, rel, content, strlen(content));
}

static void put_dir(Fx *fx, int layer, const char *rel)
{
	_cleanup_free_ char *p = fx_path(fx, layer, rel);
	assert_int_equal(mkdir(p, 0755), 0);
}

static void put_symlink(Fx *fx, int layer, const char *rel, const char *target)
{
	_cleanup_free_ char *p = fx_path(fx, layer, rel);
	assert_int_equal(symlink(target, p), 0);
}

/* overlayfs's whiteout, as unpack makes it from ".wh.<name>". */
static void put_whiteout(Fx *fx, int layer, const char *rel)
{
	_cleanup_free_ char *p = fx_path(fx, layer, rel);
	assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(0, 0)), 0);
}

/* Marks a directory opaque; false when the file system refuses user xattrs. */
static bool set_opaque(Fx *fx, int layer, const char *rel)
{
	_cleanup_free_ char *p = fx_path(fx, layer, rel);
	if (setxattr(p, "user.overlay.opaque", "y", 1, 0) == 0)
		return true;
	if (errno == ENOTSUP || errno == EPERM)
		return false;
	fail_msg("setxattr %s: %s", p, strerror(errno));
	return false;
}

static int resolve(Fx *fx, const CrispUserSpec *spec, CrispResolvedUser *ret, CrispError **err)
{
	return crisp_userdb_resolve(fx->fds, fx->n, spec, ret, err);
}

/* Resolves and checks the result; gids is a list of n_gids additional gids. */
static void expect_user(Fx *fx, const CrispUserSpec *spec, uint32_t uid, uint32_t gid,
			const uint32_t *gids, size_t n_gids)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispResolvedUser u;
	int r = resolve(fx, spec, &u, &err);
	if (r < 0)
		fail_msg("user \"%s\": %s", spec->image_user ? spec->image_user : "(null)",
			 err ? err->message : "(no error)");
	assert_int_equal(r, 0);
	assert_null(err);
	assert_int_equal(u.uid, uid);
	assert_int_equal(u.gid, gid);
	assert_int_equal(u.n_additional_gids, n_gids);
	for (size_t i = 0; i < n_gids; i++)
		assert_int_equal(u.additional_gids[i], gids[i]);
	if (n_gids == 0)
		assert_null(u.additional_gids);
	crisp_resolved_user_done(&u);
	assert_null(u.additional_gids);
	assert_int_equal(u.n_additional_gids, 0);
}

static void expect_image_user(Fx *fx, const char *user, uint32_t uid, uint32_t gid,
			      const uint32_t *gids, size_t n_gids)
{
	CrispUserSpec spec = { .image_user = user };
	expect_user(fx, &spec, uid, gid, gids, n_gids);
}

/* Resolving fails with this code and a message containing sub; *ret is left alone. */
static void expect_error(Fx *fx, const CrispUserSpec *spec, CrispErrorCode code, const char *sub)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispResolvedUser u = { .uid = 12345, .gid = 54321 };
	int r = resolve(fx, spec, &u, &err);
	assert_true(r < 0);
	assert_error(err, code, sub);
	assert_int_equal(u.uid, 12345);
	assert_int_equal(u.gid, 54321);
	assert_null(u.additional_gids);
}

static void expect_image_user_error(Fx *fx, const char *user, CrispErrorCode code, const char *sub)
{
	CrispUserSpec spec = { .image_user = user };
	expect_error(fx, &spec, code, sub);
}

#define GIDS(...)                                                                                  \
	((const uint32_t[]){ __VA_ARGS__ }), ELEMENTSOF(((const uint32_t[]){ __VA_ARGS__ }))

/* ---- the User forms ---- */

static void test_image_user_forms(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd", PASSWD);
	put_file(fx, 0, "etc/group", GROUP);

	/* "" is root:root, with root's groups. */
	expect_image_user(fx, NULL, 0, 0, GIDS(10));
	expect_image_user(fx, "", 0, 0, GIDS(10));
	expect_image_user(fx, "root", 0, 0, GIDS(10));
	expect_image_user(fx, "0", 0, 0, GIDS(10));

	/* Names: uid and gid from /etc/passwd, groups from /etc/group. */
	expect_image_user(fx, "alice-fx", 1000, 1000, GIDS(50, 2000));
	expect_image_user(fx, "bob-fx", 1001, 1002, GIDS(2000));
	/* "user:" is "user", as runc reads it. */
	expect_image_user(fx, "alice-fx:", 1000, 1000, GIDS(50, 2000));

	/* A uid alone takes the gid of its entry, or 0 without one. */
	expect_image_user(fx, "1001", 1001, 1002, GIDS(2000));
	expect_image_user(fx, "4242", 4242, 0, NULL, 0);
	expect_image_user(fx, "4294967294", 4294967294u, 0, NULL, 0);

	/* A group, by name or number; the primary gid leaves the additional ones. */
	expect_image_user(fx, "alice-fx:staff-fx", 1000, 50, GIDS(2000));
	expect_image_user(fx, "alice-fx:devs-fx", 1000, 2000, GIDS(50));
	expect_image_user(fx, "alice-fx:777", 1000, 777, GIDS(50, 2000));
	expect_image_user(fx, "1000:2000", 1000, 2000, GIDS(50));
	expect_image_user(fx, "4242:staff-fx", 4242, 50, NULL, 0);
	expect_image_user(fx, "4242:0", 4242, 0, NULL, 0);
	expect_image_user(fx, "bob-fx:0", 1001, 0, GIDS(2000));
}

/* "" runs as root:root whatever root's entry says; "0" and "root" take its gid. */
static void test_empty_user(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd", "root:x:0:7::/root:/bin/sh\n");
	put_file(fx, 0, "etc/group", "seven:x:7:\nwheel:x:10:root\nzero:x:0:root\n");

	expect_image_user(fx, "", 0, 0, GIDS(10));
	expect_image_user(fx, "0", 0, 7, GIDS(0, 10));
	expect_image_user(fx, "root", 0, 7, GIDS(0, 10));
	CrispUserSpec spec = { .has_run_as_user = true, .run_as_user = 0 };
	expect_user(fx, &spec, 0, 7, GIDS(0, 10));
}

static void test_image_user_invalid(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd", PASSWD);
	put_file(fx, 0, "etc/group", GROUP);

	expect_image_user_error(fx, "a:b:c", CRISP_ERR_INVALID, "\"a:b:c\" has more than one ':'");
	expect_image_user_error(fx, ":staff-fx", CRISP_ERR_INVALID,
				"\":staff-fx\" has an empty user part");
	expect_image_user_error(fx, ":", CRISP_ERR_INVALID, "empty user part");
	expect_image_user_error(fx, "alice\tfx", CRISP_ERR_INVALID,
				"\"alice\\x09fx\" contains a control character");
	expect_image_user_error(fx, "alice-fx\n", CRISP_ERR_INVALID, "control character");
	expect_image_user_error(fx, "4294967295", CRISP_ERR_INVALID, "out of range");
	expect_image_user_error(fx, "99999999999999999999", CRISP_ERR_INVALID, "out of range");
	expect_image_user_error(fx, "alice-fx:4294967295", CRISP_ERR_INVALID, "out of range");

	char long_user[USERDB_USER_MAX + 2];
	memset(long_user, 'a', sizeof(long_user) - 1);
	long_user[sizeof(long_user) - 1] = '\0';
	expect_image_user_error(fx, long_user, CRISP_ERR_INVALID, "longer than 256 bytes");
	long_user[USERDB_USER_MAX] = '\0';
	expect_image_user_error(fx, long_user, CRISP_ERR_NOT_FOUND, "not found");
}

static void test_not_found(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	put_file(fx, 1, "etc/passwd", PASSWD);
	put_file(fx, 1, "etc/group", GROUP);

	expect_image_user_error(fx, "carol-fx", CRISP_ERR_NOT_FOUND,
				"user \"carol-fx\" not found in the image's /etc/passwd");
	expect_image_user_error(fx, "alice-fx:nogroup-fx", CRISP_ERR_NOT_FOUND,
				"group \"nogroup-fx\" not found in the image's /etc/group");
	expect_image_user_error(fx, "1000:nogroup-fx", CRISP_ERR_NOT_FOUND, "\"nogroup-fx\"");
	/* Names from the image are escaped in messages. */
	expect_image_user_error(fx, "x\x7f\"y", CRISP_ERR_INVALID, "\"x\\x7f\\\"y\"");
	/* Prefixes and NIS-style names are not names. */
	expect_image_user_error(fx, "alice", CRISP_ERR_NOT_FOUND, "\"alice\" not found");
	expect_image_user_error(fx, "+alice-fx", CRISP_ERR_NOT_FOUND, "not found");

	CrispUserSpec spec = { .run_as_username = "carol-fx" };
	expect_error(fx, &spec, CRISP_ERR_NOT_FOUND,
		     "user \"carol-fx\" not found in the image's /etc/passwd");
}

static void test_no_files(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	put_file(fx, 0, "etc/hostname", "box\n");

	/* Numbers need no /etc/passwd. */
	expect_image_user(fx, "", 0, 0, NULL, 0);
	expect_image_user(fx, "1234", 1234, 0, NULL, 0);
	expect_image_user(fx, "1234:5678", 1234, 5678, NULL, 0);
	CrispUserSpec spec = { .has_run_as_user = true, .run_as_user = 99 };
	expect_user(fx, &spec, 99, 0, NULL, 0);

	/* Names do. */
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND,
				"user \"alice-fx\" not found: the image has no /etc/passwd");
	expect_image_user_error(fx, "1234:staff-fx", CRISP_ERR_NOT_FOUND,
				"group \"staff-fx\" not found: the image has no /etc/group");
	spec = (CrispUserSpec){ .run_as_username = "alice-fx" };
	expect_error(fx, &spec, CRISP_ERR_NOT_FOUND, "the image has no /etc/passwd");

	/* A passwd without a group file: the user resolves, with no additional gids. */
	put_file(fx, 1, "etc/passwd", PASSWD);
	expect_image_user(fx, "alice-fx", 1000, 1000, NULL, 0);
}

static void test_no_layers(void **state)
{
	(void)state;
	_cleanup_error_ CrispError *err = NULL;
	CrispResolvedUser u;
	CrispUserSpec spec = { .image_user = "55:66" };
	assert_int_equal(crisp_userdb_resolve(NULL, 0, &spec, &u, &err), 0);
	assert_int_equal(u.uid, 55);
	assert_int_equal(u.gid, 66);
	crisp_resolved_user_done(&u);
	crisp_resolved_user_done(NULL);

	spec = (CrispUserSpec){ .image_user = "nobody" };
	assert_true(crisp_userdb_resolve(NULL, 0, &spec, &u, &err) < 0);
	assert_error(err, CRISP_ERR_NOT_FOUND, "the image has no /etc/passwd");
}

/* ---- the CRI fields ---- */

static void test_cri_precedence(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd", PASSWD);
	put_file(fx, 0, "etc/group", GROUP);

	/* run_as_username beats run_as_user, which beats the image's User. */
	CrispUserSpec spec = {
		.image_user = "alice-fx",
		.has_run_as_user = true,
		.run_as_user = 5,
		.run_as_username = "bob-fx",
	};
	expect_user(fx, &spec, 1001, 1002, GIDS(2000));

	spec = (CrispUserSpec){ .image_user = "bob-fx:staff-fx",
				.has_run_as_user = true,
				.run_as_user = 1000 };
	expect_user(fx, &spec, 1000, 1000, GIDS(50, 2000));
	spec.run_as_user = 4242;
	expect_user(fx, &spec, 4242, 0, NULL, 0);
	spec.run_as_user = 0;
	expect_user(fx, &spec, 0, 0, GIDS(10));
	/* An empty run_as_username is unset. */
	spec.run_as_username = "";
	expect_user(fx, &spec, 0, 0, GIDS(10));

	/* run_as_group replaces the gid, and leaves the additional gids. */
	spec = (CrispUserSpec){ .has_run_as_user = true,
				.run_as_user = 1000,
				.has_run_as_group = true,
				.run_as_group = 77 };
	expect_user(fx, &spec, 1000, 77, GIDS(50, 2000));
	spec.run_as_group = 50;
	expect_user(fx, &spec, 1000, 50, GIDS(2000));
	spec = (CrispUserSpec){ .run_as_username = "bob-fx",
				.has_run_as_group = true,
				.run_as_group = 2000 };
	expect_user(fx, &spec, 1001, 2000, NULL, 0);
	/* Numeric everything still reads /etc/passwd for the groups. */
	spec = (CrispUserSpec){ .image_user = "bob-fx",
				.has_run_as_user = true,
				.run_as_user = 1001,
				.has_run_as_group = true,
				.run_as_group = 3 };
	expect_user(fx, &spec, 1001, 3, GIDS(2000));
}

static void test_cri_invalid(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd", PASSWD);

	CrispUserSpec spec = { .has_run_as_group = true, .run_as_group = 5 };
	expect_error(fx, &spec, CRISP_ERR_INVALID,
		     "run_as_group needs run_as_user or run_as_username");
	spec.image_user = "alice-fx";
	expect_error(fx, &spec, CRISP_ERR_INVALID,
		     "run_as_group needs run_as_user or run_as_username");
	spec.run_as_username = "";
	expect_error(fx, &spec, CRISP_ERR_INVALID, "run_as_group needs");

	spec = (CrispUserSpec){ .has_run_as_user = true, .run_as_user = -1 };
	expect_error(fx, &spec, CRISP_ERR_INVALID, "run_as_user -1 is out of range");
	spec.run_as_user = 4294967295;
	expect_error(fx, &spec, CRISP_ERR_INVALID, "run_as_user 4294967295 is out of range");
	spec.run_as_user = INT64_MAX;
	expect_error(fx, &spec, CRISP_ERR_INVALID, "out of range");
	spec.run_as_user = 4294967294;
	expect_user(fx, &spec, 4294967294u, 0, NULL, 0);

	spec = (CrispUserSpec){ .has_run_as_user = true,
				.run_as_user = 1,
				.has_run_as_group = true,
				.run_as_group = 4294967295 };
	expect_error(fx, &spec, CRISP_ERR_INVALID, "run_as_group 4294967295 is out of range");
	spec.run_as_group = INT64_MIN;
	expect_error(fx, &spec, CRISP_ERR_INVALID, "run_as_group");

	spec = (CrispUserSpec){ .run_as_username = "bad\x1b[31m" };
	expect_error(fx, &spec, CRISP_ERR_INVALID,
		     "run_as_username \"bad\\x1b[31m\" contains a control character");
}

/* ---- parsing ---- */

static void test_malformed_lines(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	static const char passwd[] = "# carol-fx:x:1:1\n"
				     "\n"
				     "carol-fx\n"
				     "carol-fx:x\n"
				     "carol-fx:x:2\n"
				     "carol-fx:x:-3:5\n"
				     "carol-fx:x:+4:5\n"
				     "carol-fx:x: 5:5\n"
				     "carol-fx:x:6 :5\n"
				     "carol-fx:x:7:\n"
				     "carol-fx:x:8:0x9\n"
				     "carol-fx:x:4294967295:5\n"
				     "carol-fx:x:10:4294967295\n"
				     "carol-fx:x:11111111111:5\n"
				     "carol-fx:x::5\n"
				     "+carol-fx:x:12:12\n"
				     "+:x:13:13\n"
				     "-carol-fx:x:14:14\n"
				     ":x:15:15\n"
				     "carol-fx\0:x:16:16\n"
				     "carol-fx:x:16:16\0\n"
				     "carol-fx:x:4242:4343:Carol:/home/carol:/bin/sh\n"
				     "carol-fx:x:17:17\n"
				     "dan-fx:x:18:18"; /* no final newline */
	put_data(fx, 0, "etc/passwd", passwd, sizeof(passwd) - 1);
	static const char group[] = "g-fx:x:-5:carol-fx\n"
				    "g-fx:x\n"
				    "+g-fx:x:6:carol-fx\n"
				    "g-fx:x:7a:carol-fx\n"
				    "#g-fx:x:8:carol-fx\n"
				    "g-fx:x:9:carol-fx\0\n"
				    "g-fx:x:100:carol-fx\n"
				    "h-fx:x:200\n"
				    "i-fx:x:300:dan-fx";
	put_data(fx, 0, "etc/group", group, sizeof(group) - 1);

	/* The first good line wins; four fields are enough. */
	expect_image_user(fx, "carol-fx", 4242, 4343, GIDS(100));
	expect_image_user(fx, "4242", 4242, 4343, GIDS(100));
	expect_image_user(fx, "dan-fx", 18, 18, GIDS(300));
	expect_image_user(fx, "dan-fx:h-fx", 18, 200, GIDS(300));
	expect_image_user(fx, "dan-fx:g-fx", 18, 100, GIDS(300));
	/* uids of skipped lines belong to nobody. */
	expect_image_user(fx, "16", 16, 0, NULL, 0);
	expect_image_user(fx, "12", 12, 0, NULL, 0);
	expect_image_user_error(fx, "+carol-fx", CRISP_ERR_NOT_FOUND, "not found");
}

static void test_additional_gids(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd",
		 "dave-fx:x:3000:500\n"
		 "dav-fx:x:3001:3001\n");
	put_file(fx, 0, "etc/group",
		 "z-fx:x:300:dave-fx\n"
		 "a-fx:x:100:eve-fx,dave-fx\n"
		 "b-fx:x:200:dave-fx,eve-fx\n"
		 "dup-fx:x:100:dave-fx\n"
		 "prim-fx:x:500:dave-fx\n"
		 "again-fx:x:300:x,dave-fx,y\n"
		 "near-fx:x:400:dav-fx,xdave-fx,dave-fx2, dave-fx,dave-f\n"
		 "empty-fx:x:401:,,\n"
		 "big-fx:x:4294967294:dave-fx\n"
		 "zero-fx:x:0:dave-fx\n");

	/* Sorted, unique, primary left out, exact member names only. */
	expect_image_user(fx, "dave-fx", 3000, 500, GIDS(0, 100, 200, 300, 4294967294u));
	expect_image_user(fx, "dave-fx:100", 3000, 100, GIDS(0, 200, 300, 500, 4294967294u));
	expect_image_user(fx, "dav-fx", 3001, 3001, GIDS(400));
	/* A uid without an entry has no name to be a member by. */
	expect_image_user(fx, "3002:prim-fx", 3002, 500, NULL, 0);
}

static void test_groups_limit(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 1);
	put_file(fx, 0, "etc/passwd", "u:x:1:1\n");
	/* 65537 distinct groups; the primary gid 1 is one of them. */
	size_t cap = 16 * (USERDB_GROUPS_MAX + 2), len = 0;
	_cleanup_free_ char *group = xmalloc(cap);
	for (uint32_t gid = 1; gid <= USERDB_GROUPS_MAX + 1; gid++)
		len += (size_t)snprintf(group + len, cap - len, "g:x:%u:u\n", gid);
	assert_true(len < USERDB_FILE_MAX);
	put_data(fx, 0, "etc/group", group, len);

	/* Without the primary, exactly the limit. */
	_cleanup_error_ CrispError *err = NULL;
	CrispResolvedUser u;
	CrispUserSpec spec = { .image_user = "u" };
	assert_int_equal(resolve(fx, &spec, &u, &err), 0);
	assert_int_equal(u.gid, 1);
	assert_int_equal(u.n_additional_gids, USERDB_GROUPS_MAX);
	assert_int_equal(u.additional_gids[0], 2);
	assert_int_equal(u.additional_gids[USERDB_GROUPS_MAX - 1], USERDB_GROUPS_MAX + 1);
	crisp_resolved_user_done(&u);

	/* One more, with another primary gid. */
	expect_image_user_error(fx, "u:0", CRISP_ERR_RESOURCE_EXHAUSTED,
				"user \"u\" is in 65537 groups");
}

static void test_file_size(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	/* Exactly the limit: read, up to its last line. */
	size_t len = USERDB_FILE_MAX;
	_cleanup_free_ char *big = xmalloc(2 * len);
	memset(big, '#', 2 * len);
	static const char last[] = "\nerin-fx:x:7:8\n";
	memcpy(big + len - strlen(last), last, strlen(last));
	put_data(fx, 1, "etc/passwd", big, len);
	expect_image_user(fx, "erin-fx", 7, 8, NULL, 0);

	/* 2 MiB in the upper layer: refused, naming the file, even for a uid. */
	put_data(fx, 0, "etc/passwd", big, 2 * len);
	expect_image_user_error(fx, "erin-fx", CRISP_ERR_RESOURCE_EXHAUSTED,
				"the image's /etc/passwd is larger than 1048576 bytes");
	expect_image_user_error(fx, "7", CRISP_ERR_RESOURCE_EXHAUSTED, "/etc/passwd");
	_cleanup_free_ char *p = fx_path(fx, 0, "etc/passwd");
	assert_int_equal(truncate(p, (off_t)len + 1), 0);
	expect_image_user_error(fx, "7", CRISP_ERR_RESOURCE_EXHAUSTED, "larger than");

	/* The group file too. */
	assert_int_equal(unlink(p), 0);
	put_data(fx, 0, "etc/group", big, 2 * len);
	expect_image_user_error(fx, "erin-fx", CRISP_ERR_RESOURCE_EXHAUSTED,
				"the image's /etc/group is larger than");
}

/* ---- the layers ---- */

static void test_lower_layer(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 3);
	put_file(fx, 0, "etc/hostname", "box\n");
	put_file(fx, 1, "etc/passwd", PASSWD);
	put_file(fx, 2, "etc/group", GROUP);
	put_file(fx, 2, "etc/passwd", FIXTURE_PASSWD);

	/* The upper passwd wins; the group file comes from the bottom. */
	expect_image_user(fx, "alice-fx", 1000, 1000, GIDS(50, 2000));
	expect_image_user_error(fx, "fixture-only-user", CRISP_ERR_NOT_FOUND, "not found");
}

static void test_whiteout(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 3);
	put_file(fx, 2, "etc/passwd", PASSWD);
	put_file(fx, 2, "etc/group", GROUP);
	put_whiteout(fx, 0, "etc/passwd");

	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND,
				"user \"alice-fx\" not found: the image has no /etc/passwd");
	expect_image_user(fx, "1000", 1000, 0, NULL, 0);

	/* Without the whiteout, the lower file shows through l1's etc. */
	put_file(fx, 1, "etc/hostname", "box\n");
	_cleanup_free_ char *top = fx_path(fx, 0, "etc/passwd");
	assert_int_equal(unlink(top), 0);
	expect_image_user(fx, "alice-fx", 1000, 1000, GIDS(50, 2000));

	/* "etc" itself whited out in the middle: nothing below it counts. */
	_cleanup_free_ char *mid = xasprintf("%s/l1/etc", fx->tmp);
	th_rm_rf(mid);
	put_whiteout(fx, 1, "etc");
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "has no /etc/passwd");
	expect_image_user_error(fx, "1000:staff-fx", CRISP_ERR_NOT_FOUND, "has no /etc/group");
	/* The top layer's own etc/passwd stays visible over a whiteout below. */
	put_file(fx, 0, "etc/passwd", FIXTURE_PASSWD);
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
}

static void test_opaque(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 3);
	put_file(fx, 2, "etc/passwd", PASSWD);
	put_file(fx, 1, "etc/group", GROUP);
	put_file(fx, 0, "etc/hostname", "box\n");

	/* Not opaque yet: the directories merge. */
	expect_image_user(fx, "alice-fx", 1000, 1000, GIDS(50, 2000));

	if (!set_opaque(fx, 1, "etc")) {
		print_message("the file system refuses user xattrs; skipped\n");
		skip();
	}
	/* l1's etc hides l2's: no passwd, but l1's own group is still there. */
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "has no /etc/passwd");
	expect_image_user(fx, "1000:staff-fx", 1000, 50, NULL, 0);

	/* Opaque at the top hides both. */
	assert_true(set_opaque(fx, 0, "etc"));
	expect_image_user_error(fx, "1000:staff-fx", CRISP_ERR_NOT_FOUND, "has no /etc/group");

	/* Any value but "y" is not opaque. */
	_cleanup_free_ char *p0 = fx_path(fx, 0, "etc");
	_cleanup_free_ char *p1 = fx_path(fx, 1, "etc");
	assert_int_equal(setxattr(p0, "user.overlay.opaque", "n", 1, 0), 0);
	assert_int_equal(setxattr(p1, "user.overlay.opaque", "yes", 3, 0), 0);
	expect_image_user(fx, "alice-fx", 1000, 1000, GIDS(50, 2000));
}

static void test_shadowing(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	put_file(fx, 1, "etc/passwd", PASSWD);

	/* A file named "etc" on top hides the lower directory (ENOTDIR in the container). */
	put_file(fx, 0, "etc", "not a directory\n");
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "has no /etc/passwd");

	/* A directory hides a lower non-directory of the same name. */
	_cleanup_free_ char *etc0 = fx_path(fx, 0, "etc");
	assert_int_equal(unlink(etc0), 0);
	put_file(fx, 0, "etc/passwd", FIXTURE_PASSWD);
	_cleanup_free_ char *l1 = xasprintf("%s/l1/etc", fx->tmp);
	th_rm_rf(l1);
	put_file(fx, 1, "etc", "a file\n");
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
}

static void test_shadowing_stops_merge(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 3);
	put_file(fx, 0, "etc/hostname", "box\n");
	put_file(fx, 2, "etc/passwd", PASSWD);
	expect_image_user(fx, "alice-fx", 1000, 1000, NULL, 0);

	/* A non-directory under l0's etc ends the merge: l2's etc is not reached. */
	put_file(fx, 1, "etc", "a file\n");
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "has no /etc/passwd");
	_cleanup_free_ char *p = fx_path(fx, 1, "etc");
	assert_int_equal(unlink(p), 0);
	put_whiteout(fx, 1, "etc");
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "has no /etc/passwd");
}

static void test_not_regular(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	put_file(fx, 1, "etc/passwd", PASSWD);

	put_dir(fx, 0, "etc/passwd");
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_INVALID,
				"the image's /etc/passwd is a directory, not a regular file");
	/* Refused for a uid too: the image is broken, not missing the file. */
	expect_image_user_error(fx, "1000", CRISP_ERR_INVALID, "a directory");

	/* A FIFO is refused without opening it (which would block). */
	_cleanup_free_ char *p = fx_path(fx, 0, "etc/passwd");
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	expect_image_user_error(fx, "1000", CRISP_ERR_INVALID, "is a FIFO");

	assert_int_equal(unlink(p), 0);
	assert_int_equal(mknod(p, S_IFCHR | 0600, makedev(1, 3)), 0);
	expect_image_user_error(fx, "1000", CRISP_ERR_INVALID, "is a character device");

	/* A symlink to the root is a directory too. */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../..", p), 0);
	expect_image_user_error(fx, "1000", CRISP_ERR_INVALID,
				"the image's /etc/passwd (at /) is a directory");
}

/* ---- symlinks ---- */

static void test_symlink_absolute(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	/* The host's view of l0/etc/../../../../host-passwd is /host-passwd; the stack's is this. */
	put_symlink(fx, 0, "etc/passwd", "/etc/../../../../host-passwd");
	put_file(fx, 1, "host-passwd", FIXTURE_PASSWD);
	put_file(fx, 1, "etc/passwd", PASSWD);
	put_file(fx, -1, "host-passwd", DECOY_PASSWD);

	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "not found");
	expect_image_user_error(fx, "decoy-user", CRISP_ERR_NOT_FOUND, "not found");
	expect_image_user_error(fx, "root", CRISP_ERR_NOT_FOUND, "not found");
}

static void test_symlink_relative(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 3);
	/* From the host, l0/etc/../../host-passwd is <tmp>/host-passwd, the decoy. */
	put_symlink(fx, 0, "etc/passwd", "../../host-passwd");
	put_file(fx, -1, "host-passwd", DECOY_PASSWD);
	put_file(fx, 2, "host-passwd", FIXTURE_PASSWD);

	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
	expect_image_user_error(fx, "decoy-user", CRISP_ERR_NOT_FOUND, "not found");

	/* Chains across layers, relative to each link's own directory. */
	_cleanup_free_ char *p = fx_path(fx, 0, "etc/passwd");
	assert_int_equal(unlink(p), 0);
	put_symlink(fx, 0, "etc/passwd", "../usr/lib/passwd");
	put_symlink(fx, 1, "usr/lib/passwd", "./db/./../db//passwd");
	put_symlink(fx, 2, "usr/lib/db/passwd", "/host-passwd");
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);

	/* A dangling symlink is a missing file, and hides the lower layers' file. */
	put_file(fx, 1, "etc/passwd", PASSWD);
	put_symlink(fx, 0, "etc/group", "/nowhere");
	put_file(fx, 1, "etc/group", GROUP);
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
	expect_image_user_error(fx, "1:staff-fx", CRISP_ERR_NOT_FOUND,
				"group \"staff-fx\" not found: the image has no /etc/group");
}

static void test_symlink_directory(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 3);
	/* "etc" -> a directory only a lower layer holds. */
	put_symlink(fx, 0, "etc", "private/etc");
	put_file(fx, 1, "private/etc/passwd", FIXTURE_PASSWD);
	put_file(fx, 2, "etc/passwd", PASSWD);
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
	expect_image_user_error(fx, "alice-fx", CRISP_ERR_NOT_FOUND, "not found");
}

static void test_symlink_escape(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	/* For the host this is /etc (which has root); for the container, a loop. */
	put_symlink(fx, 0, "etc", "../../../etc");
	expect_image_user_error(fx, "root", CRISP_ERR_INVALID,
				"more than 8 symlinks: /etc/passwd -> /etc/passwd -> ");
	CrispUserSpec spec = { .run_as_username = "root" };
	expect_error(fx, &spec, CRISP_ERR_INVALID, "symlinks");

	_cleanup_free_ char *p = fx_path(fx, 0, "etc");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("/etc", p), 0);
	expect_image_user_error(fx, "root", CRISP_ERR_INVALID, "more than 8 symlinks");

	/* "../outside" from the host is <tmp>/outside; inside the stack, /outside. */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("../outside", p), 0);
	put_file(fx, -1, "outside/passwd", DECOY_PASSWD);
	expect_image_user_error(fx, "decoy-user", CRISP_ERR_NOT_FOUND,
				"the image has no /etc/passwd");
	put_file(fx, 1, "outside/passwd", FIXTURE_PASSWD);
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);
	expect_image_user_error(fx, "decoy-user", CRISP_ERR_NOT_FOUND,
				"not found in the image's /etc/passwd");
}

static void test_symlink_loop(void **state)
{
	Fx *fx = *state;
	fx_layers(fx, 2);
	put_symlink(fx, 0, "etc/passwd", "passwd2");
	put_symlink(fx, 1, "etc/passwd2", "/etc/passwd");
	expect_image_user_error(fx, "1", CRISP_ERR_INVALID,
				"the image's /etc/passwd: more than 8 symlinks: "
				"/etc/passwd -> /etc/passwd2 -> /etc/passwd -> /etc/passwd2");

	/* Eight hops are followed; the ninth is refused. */
	_cleanup_free_ char *p = fx_path(fx, 0, "etc/passwd");
	assert_int_equal(unlink(p), 0);
	put_symlink(fx, 0, "etc/passwd", "/x/1");
	for (int i = 1; i < 8; i++) {
		_cleanup_free_ char *name = xasprintf("x/%d", i);
		_cleanup_free_ char *target = xasprintf("%d", i + 1);
		put_symlink(fx, (int)(i % 2), name, target);
	}
	put_file(fx, 1, "x/8", FIXTURE_PASSWD);
	expect_image_user(fx, "fixture-only-user", 4711, 4712, NULL, 0);

	_cleanup_free_ char *eight = fx_path(fx, 1, "x/8");
	assert_int_equal(unlink(eight), 0);
	put_symlink(fx, 1, "x/8", "9");
	put_file(fx, 1, "x/9", FIXTURE_PASSWD);
	expect_image_user_error(fx, "fixture-only-user", CRISP_ERR_INVALID, "/x/7 -> /x/8 -> /x/9");
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_userdb: needs root (mknod); skipped\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_image_user_forms, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_empty_user, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_image_user_invalid, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_not_found, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_files, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_no_layers, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cri_precedence, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_cri_invalid, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_malformed_lines, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_additional_gids, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_groups_limit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_file_size, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lower_layer, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_whiteout, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_opaque, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_shadowing, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_shadowing_stops_merge, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_not_regular, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_absolute, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_relative, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_directory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_escape, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_symlink_loop, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests_name("userdb", tests, NULL, NULL);
}
