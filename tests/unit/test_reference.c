/*
 * test_reference.c - image references (imaged/reference.c): normalization,
 * the printed forms, loopback detection, and references a kubelet, a typo
 * or a hostile caller may pass.
 *
 * Expected strings are built from CRISP_DEFAULT_REGISTRY; every other host
 * is loopback or under .test.
 */
#include "test_helpers.h"

#include "reference.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX128 HEX64 HEX64
#define DEF CRISP_DEFAULT_REGISTRY

typedef struct Valid {
	const char *input;
	const char *domain;
	const char *path;
	const char *tag;    /* NULL: none */
	const char *digest; /* NULL: none */
	const char *string;
	const char *familiar;
	bool loopback;
} Valid;

static const Valid valid[] = {
	{ "busybox", DEF, "library/busybox", "latest", NULL, DEF "/library/busybox:latest",
	  "busybox:latest", false },
	{ "busybox:1.36", DEF, "library/busybox", "1.36", NULL, DEF "/library/busybox:1.36",
	  "busybox:1.36", false },
	{ "user/app", DEF, "user/app", "latest", NULL, DEF "/user/app:latest", "user/app:latest",
	  false },
	{ DEF "/busybox", DEF, "library/busybox", "latest", NULL, DEF "/library/busybox:latest",
	  "busybox:latest", false },
	{ DEF "/library/busybox:1", DEF, "library/busybox", "1", NULL, DEF "/library/busybox:1",
	  "busybox:1", false },
	{ DEF "/library/a/b", DEF, "library/a/b", "latest", NULL, DEF "/library/a/b:latest",
	  "library/a/b:latest", false },
	{ "a/b/c/d", DEF, "a/b/c/d", "latest", NULL, DEF "/a/b/c/d:latest", "a/b/c/d:latest",
	  false },
	{ "127.0.0.1:5000/app:1.0", "127.0.0.1:5000", "app", "1.0", NULL, "127.0.0.1:5000/app:1.0",
	  "127.0.0.1:5000/app:1.0", true },
	{ "localhost/app", "localhost", "app", "latest", NULL, "localhost/app:latest",
	  "localhost/app:latest", true },
	{ "localhost:5000/a/b", "localhost:5000", "a/b", "latest", NULL,
	  "localhost:5000/a/b:latest", "localhost:5000/a/b:latest", true },
	{ "registry.test/a/b@sha256:" HEX64, "registry.test", "a/b", NULL, "sha256:" HEX64,
	  "registry.test/a/b@sha256:" HEX64, "registry.test/a/b@sha256:" HEX64, false },
	{ "registry.test/a/b:1.0@sha256:" HEX64, "registry.test", "a/b", "1.0", "sha256:" HEX64,
	  "registry.test/a/b:1.0@sha256:" HEX64, "registry.test/a/b:1.0@sha256:" HEX64, false },
	{ "busybox@sha512:" HEX128, DEF, "library/busybox", NULL, "sha512:" HEX128,
	  DEF "/library/busybox@sha512:" HEX128, "busybox@sha512:" HEX128, false },
	{ "user/app:v2@sha256:" HEX64, DEF, "user/app", "v2", "sha256:" HEX64,
	  DEF "/user/app:v2@sha256:" HEX64, "user/app:v2@sha256:" HEX64, false },
	{ "[::1]:5000/app", "[::1]:5000", "app", "latest", NULL, "[::1]:5000/app:latest",
	  "[::1]:5000/app:latest", true },
	{ "[::1]/app:x", "[::1]", "app", "x", NULL, "[::1]/app:x", "[::1]/app:x", true },
	{ "[::ffff:127.0.0.1]/app", "[::ffff:127.0.0.1]", "app", "latest", NULL,
	  "[::ffff:127.0.0.1]/app:latest", "[::ffff:127.0.0.1]/app:latest", true },
	{ "[2001:db8::1]:5000/app", "[2001:db8::1]:5000", "app", "latest", NULL,
	  "[2001:db8::1]:5000/app:latest", "[2001:db8::1]:5000/app:latest", false },
	{ "127.1.2.3/app", "127.1.2.3", "app", "latest", NULL, "127.1.2.3/app:latest",
	  "127.1.2.3/app:latest", true },
	{ "128.0.0.1/app", "128.0.0.1", "app", "latest", NULL, "128.0.0.1/app:latest",
	  "128.0.0.1/app:latest", false },
	{ "localhost.registry.test/app", "localhost.registry.test", "app", "latest", NULL,
	  "localhost.registry.test/app:latest", "localhost.registry.test/app:latest", false },
	{ "LOCALHOST/app", "LOCALHOST", "app", "latest", NULL, "LOCALHOST/app:latest",
	  "LOCALHOST/app:latest", true },
	/* An uppercase first component is a host, as in distribution/reference. */
	{ "Registry.Test/app", "Registry.Test", "app", "latest", NULL, "Registry.Test/app:latest",
	  "Registry.Test/app:latest", false },
	{ "UPPER/app", "UPPER", "app", "latest", NULL, "UPPER/app:latest", "UPPER/app:latest",
	  false },
	{ "registry.test:443/app", "registry.test:443", "app", "latest", NULL,
	  "registry.test:443/app:latest", "registry.test:443/app:latest", false },
	{ "a__b/c-d--e/f.g/h_i", DEF, "a__b/c-d--e/f.g/h_i", "latest", NULL,
	  DEF "/a__b/c-d--e/f.g/h_i:latest", "a__b/c-d--e/f.g/h_i:latest", false },
	{ "app:_Tag.1-x", DEF, "library/app", "_Tag.1-x", NULL, DEF "/library/app:_Tag.1-x",
	  "app:_Tag.1-x", false },
	{ "x-y.registry.test:5000/p", "x-y.registry.test:5000", "p", "latest", NULL,
	  "x-y.registry.test:5000/p:latest", "x-y.registry.test:5000/p:latest", false },
	/* Names that only look like image IDs in their short form. */
	{ "sha256", DEF, "library/sha256", "latest", NULL, DEF "/library/sha256:latest",
	  "sha256:latest", false },
	{ "sha256:1.0", DEF, "library/sha256", "1.0", NULL, DEF "/library/sha256:1.0", "sha256:1.0",
	  false },
	{ DEF "/library/sha256:" HEX64, DEF, "library/sha256", HEX64, NULL,
	  DEF "/library/sha256:" HEX64, DEF "/library/sha256:" HEX64, false },
	{ HEX64 ":1", DEF, "library/" HEX64, "1", NULL, DEF "/library/" HEX64 ":1", HEX64 ":1",
	  false },
	/* A first path component that looks like a host keeps the default domain. */
	{ DEF "/foo.test/app", DEF, "foo.test/app", "latest", NULL, DEF "/foo.test/app:latest",
	  DEF "/foo.test/app:latest", false },
	{ DEF "/foo.bar:1", DEF, "library/foo.bar", "1", NULL, DEF "/library/foo.bar:1",
	  "foo.bar:1", false },
	/* A one-component name that looks like host:port is a name and a tag. */
	{ "localhost:5000", DEF, "library/localhost", "5000", NULL, DEF "/library/localhost:5000",
	  "localhost:5000", false },
};

static void parse_ok(const char *s, CrispReference *ref)
{
	_cleanup_error_ CrispError *err = NULL;
	if (crisp_reference_parse(s, ref, &err) < 0)
		fail_msg("parsing \"%s\": %s", s, err->message);
	assert_null(err);
}

static void test_valid(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(valid); i++) {
		const Valid *v = &valid[i];
		CrispReference ref;
		parse_ok(v->input, &ref);

		assert_string_equal(ref.domain, v->domain);
		assert_string_equal(ref.path, v->path);
		if (v->tag)
			assert_string_equal(ref.tag, v->tag);
		else
			assert_null(ref.tag);
		if (v->digest) {
			assert_true(crisp_digest_is_set(&ref.digest));
			assert_string_equal(ref.digest.string, v->digest);
		} else {
			assert_false(crisp_digest_is_set(&ref.digest));
		}

		_cleanup_free_ char *s = crisp_reference_string(&ref);
		_cleanup_free_ char *f = crisp_reference_familiar(&ref);
		_cleanup_free_ char *repo = crisp_reference_repository(&ref);
		_cleanup_free_ char *want_repo = xasprintf("%s/%s", v->domain, v->path);
		assert_string_equal(s, v->string);
		assert_string_equal(f, v->familiar);
		assert_string_equal(repo, want_repo);
		if (crisp_reference_is_loopback(&ref) != v->loopback)
			fail_msg("%s: loopback should be %d", v->input, v->loopback);

		/* Both printed forms parse back to the same reference. */
		CrispReference again;
		parse_ok(s, &again);
		_cleanup_free_ char *s2 = crisp_reference_string(&again);
		assert_string_equal(s2, s);
		crisp_reference_done(&again);
		parse_ok(f, &again);
		_cleanup_free_ char *s3 = crisp_reference_string(&again);
		assert_string_equal(s3, s);
		crisp_reference_done(&again);

		crisp_reference_done(&ref);
		assert_null(ref.domain);
		crisp_reference_done(&ref); /* twice is harmless */
	}
}

typedef struct Invalid {
	const char *input;
	const char *message;
} Invalid;

static const Invalid invalid[] = {
	{ "", "empty" },
	{ "Busybox", "must be lowercase" },
	{ "user/App", "must be lowercase" },
	{ "registry.test/App", "must be lowercase" },
	{ "busybox:", "tag after ':' is empty" },
	{ "busybox:-x", "must start with" },
	{ "busybox:.x", "must start with" },
	{ "busybox:a$b", "may only contain" },
	{ "busybox:a/b", "registry host" },
	{ "busybox@sha256:../../etc", "invalid digest" },
	{ "busybox@sha256:" HEX64 "/../../etc", "invalid digest" },
	{ "busybox@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	  "must be lowercase" },
	{ "busybox@sha256:abc", "exactly 64" },
	{ "busybox@sha256:" HEX64 "0", "exactly 64" },
	{ "busybox@sha512:" HEX64, "exactly 128" },
	{ "busybox@md5:0123456789abcdef0123456789abcdef", "not supported" },
	{ "busybox@SHA256:" HEX64, "not supported" },
	{ "busybox@", "digest is empty" },
	{ "busybox@" HEX64, "no \"<algorithm>:\" prefix" },
	{ "registry.test/app@sha256:" HEX64 "@sha256:" HEX64, "invalid digest" },
	{ "a//b", "empty path component" },
	{ "/busybox", "empty path component" },
	{ "busybox/", "empty path component" },
	{ "registry.test/", "empty path component" },
	{ "a_-b", "start and end" },
	{ "a___b", "start and end" },
	{ "-a", "start and end" },
	{ "a.", "start and end" },
	{ "a..b", "start and end" },
	{ "a+b", "may only contain" },
	{ "busy box", "may only contain" },
	{ "busybox\n", "busybox\\x0a" },
	{ "\x1b[31mred", "\\x1b[31mred" },
	{ "caf\xc3\xa9", "caf\\xc3\\xa9" },
	{ ":tag", "the name is empty" },
	{ "@sha256:" HEX64, "the name is empty" },
	{ "registry.test:0/app", "registry host" },
	{ "registry.test:99999/app", "registry host" },
	{ "registry.test:123456/app", "registry host" },
	{ "registry.test:/app", "registry host" },
	{ "registry.test:x/app", "registry host" },
	{ ":5000/app", "registry host" },
	{ "regi_stry.test/app", "registry host" },
	{ "-registry.test/app", "registry host" },
	{ "registry-.test/app", "registry host" },
	{ "registry..test/app", "registry host" },
	{ ".registry.test/app", "registry host" },
	{ "[::1/app", "registry host" },
	{ "[::1]x/app", "registry host" },
	{ "[zz::1]/app", "registry host" },
	{ "[]/app", "start and end" },
	{ "[]:5000/app", "registry host" },
	{ "[::1]:0/app", "registry host" },
	{ "[fe80::1%eth0]/app", "registry host" },
	/* Image IDs are not names. */
	{ HEX64, "image ID" },
	{ "sha256:" HEX64, "image ID" },
	{ "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "image ID" },
	{ "sha512:" HEX128, "image ID" },
};

static void test_invalid(void **state)
{
	for (size_t i = 0; i < ELEMENTSOF(invalid); i++) {
		_cleanup_error_ CrispError *err = NULL;
		CrispReference ref = { .domain = (char *)"untouched" };
		int r = crisp_reference_parse(invalid[i].input, &ref, &err);
		if (r >= 0)
			fail_msg("\"%s\" was accepted", invalid[i].input);
		assert_int_equal(r, -EINVAL);
		assert_error(err, CRISP_ERR_INVALID, invalid[i].message);
		/* ret is written only on success. */
		assert_string_equal(ref.domain, "untouched");
		/* Messages never carry raw control bytes. */
		for (const char *p = err->message; *p; p++)
			assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
	}
}

static void test_null_and_no_err(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispReference ref;
	assert_int_equal(crisp_reference_parse(NULL, &ref, &err), -EINVAL);
	assert_error(err, CRISP_ERR_INVALID, "empty");
	/* err may be NULL. */
	assert_int_equal(crisp_reference_parse("Bad", &ref, NULL), -EINVAL);
	crisp_reference_done(NULL);
}

static void test_lengths(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispReference ref;

	/* 128-character tags are the maximum. */
	char tag[200];
	memset(tag, 'a', 128);
	tag[128] = '\0';
	_cleanup_free_ char *ok = xasprintf("app:%s", tag);
	parse_ok(ok, &ref);
	assert_int_equal(strlen(ref.tag), 128);
	crisp_reference_done(&ref);
	strcat(tag, "a");
	_cleanup_free_ char *long_tag = xasprintf("app:%s", tag);
	assert_int_equal(crisp_reference_parse(long_tag, &ref, &err), -EINVAL);
	assert_error(err, CRISP_ERR_INVALID, "longer than 128");
	err = crisp_error_free(err);

	/* "domain/path" up to 255 bytes: registry.test (13) + '/' + 241. */
	char path[300];
	memset(path, 'p', 241);
	path[241] = '\0';
	_cleanup_free_ char *max_name = xasprintf("registry.test/%s", path);
	assert_int_equal(strlen(max_name), 255);
	parse_ok(max_name, &ref);
	crisp_reference_done(&ref);
	strcat(path, "p");
	_cleanup_free_ char *too_long = xasprintf("registry.test/%s", path);
	assert_int_equal(crisp_reference_parse(too_long, &ref, &err), -EINVAL);
	assert_error(err, CRISP_ERR_INVALID, "longer than 255");
	err = crisp_error_free(err);

	/* The default domain and "library/" count too. */
	memset(path, 'p', 255);
	path[255] = '\0';
	assert_int_equal(crisp_reference_parse(path, &ref, &err), -EINVAL);
	assert_error(err, CRISP_ERR_INVALID, "longer than 255");
	err = crisp_error_free(err);

	/* Huge input: refused before any work, and the message stays short. */
	size_t n = 1 << 20;
	_cleanup_free_ char *huge = xmalloc(n + 1);
	memset(huge, 'a', n);
	huge[n] = '\0';
	assert_int_equal(crisp_reference_parse(huge, &ref, &err), -EINVAL);
	assert_error(err, CRISP_ERR_INVALID, "longer than 1024 bytes");
	assert_true(strlen(err->message) < 300);
	assert_contains(err->message, "...");
}

static void test_loopback_domains(void **state)
{
	static const struct {
		const char *domain;
		bool loopback;
	} cases[] = {
		{ "localhost", true },
		{ "localhost:5000", true },
		{ "LocalHost:1", true },
		{ "127.0.0.1", true },
		{ "127.0.0.1:5000", true },
		{ "127.255.255.254:80", true },
		{ "[::1]", true },
		{ "[::1]:5000", true },
		{ "[0:0:0:0:0:0:0:1]:5000", true },
		{ "[::ffff:127.0.0.2]", true },
		{ "128.0.0.1", false },
		{ "126.0.0.1", false },
		{ "0127.0.0.1", false },
		{ "127.0.0.1.registry.test", false },
		{ "127.1", false },
		{ "localhost.registry.test", false },
		{ "sub.localhost", false },
		{ "[::2]", false },
		{ "[::ffff:10.0.0.1]", false },
		{ "[::1]:0", false },
		{ "localhost:", false },
		{ "registry.test", false },
		{ "", false },
		{ NULL, false },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (crisp_domain_is_loopback(cases[i].domain) != cases[i].loopback)
			fail_msg("%s: loopback should be %d",
				 cases[i].domain ? cases[i].domain : "(null)", cases[i].loopback);
	assert_false(crisp_reference_is_loopback(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_null_and_no_err),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_loopback_domains),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
