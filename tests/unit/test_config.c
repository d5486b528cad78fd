/*
 * test_config.c - unit tests of the crisp.conf loader (common/config*.c).
 *
 * Texts go through crisp_config_load_string as "t.conf"; drop-in and
 * missing-file cases use a temporary directory.  Every failing load is also
 * checked to leave the CrispConfig empty, and the suite is meant to run
 * under valgrind too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_internal.h"

#define assert_contains(s, sub)                                                                    \
	do {                                                                                       \
		if (!strstr((s), (sub)))                                                           \
			fail_msg("\"%s\" does not contain \"%s\"", (s), (sub));                    \
	} while (0)

static char tmpdir[PATH_MAX];

static void load_ok(CrispConfig *c, const char *text)
{
	_cleanup_error_ CrispError *err = NULL;

	crisp_config_init_defaults(c);
	if (crisp_config_load_string(c, "t.conf", text, &err) < 0)
		fail_msg("load failed: %s", err ? err->message : "(no error)");
	assert_null(err);
}

/* Loads text expecting CRISP_ERR_INVALID; returns the message. */
static char *load_fail(const char *text)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispConfig c;

	crisp_config_init_defaults(&c);
	int r = crisp_config_load_string(&c, "t.conf", text, &err);
	if (r >= 0) {
		crisp_config_done(&c);
		fail_msg("load succeeded: %s", text);
	}
	assert_int_equal(r, -EINVAL);
	assert_non_null(err);
	assert_int_equal(err->code, CRISP_ERR_INVALID);
	/* A failed load keeps nothing. */
	assert_null(c.log_level);
	assert_null(c.runtimes);
	assert_int_equal(c.n_runtimes, 0);
	assert_null(c.registry_hosts);
	return xstrdup(err->message);
}

#define assert_load_error(text, expected)                                                          \
	do {                                                                                       \
		_cleanup_free_ char *msg_ = load_fail(text);                                       \
		assert_string_equal(msg_, expected);                                               \
	} while (0)

#define assert_load_error_contains(text, sub)                                                      \
	do {                                                                                       \
		_cleanup_free_ char *msg_ = load_fail(text);                                       \
		assert_contains(msg_, sub);                                                        \
	} while (0)

/* --- temporary directory --- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

static int setup_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s/crisp-test-config-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state)
{
	(void)state;
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

static void write_file(const char *name, const char *text)
{
	_cleanup_free_ char *path = tmp_path(name);
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *name)
{
	_cleanup_free_ char *path = tmp_path(name);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* --- tests --- */

static void test_defaults(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	_cleanup_error_ CrispError *err = NULL;

	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_validate(&c, &err), 0);

	assert_string_equal(c.log_level, "info");
	assert_string_equal(c.root, "/var/lib/crisp");
	assert_string_equal(c.state, "/run/crisp");
	assert_string_equal(c.listen, "unix:///run/crisp/crisp.sock");
	assert_string_equal(c.libexec_dir, "");
	assert_string_equal(c.user, "crisp");
	assert_string_equal(c.cgroup_driver, "cgroupfs");
	assert_string_equal(c.default_runtime, "runc");
	assert_string_equal(c.sandbox_image, "");
	assert_true(c.allow_privileged);
	assert_null(c.allowed_sysctls);
	assert_int_equal(c.stop_timeout_default, 10);
	assert_int_equal(c.n_runtimes, 2);
	const CrispRuntimeHandler *runc = crisp_config_find_runtime(&c, "runc");
	const CrispRuntimeHandler *crun = crisp_config_find_runtime(&c, "crun");
	assert_non_null(runc);
	assert_non_null(crun);
	assert_null(crisp_config_find_runtime(&c, "kata"));
	assert_null(crisp_config_find_runtime(&c, NULL));
	assert_string_equal(runc->binary, "/usr/sbin/runc");
	assert_string_equal(runc->root, "/run/crisp/runc");
	assert_string_equal(crun->binary, "/usr/bin/crun");
	assert_string_equal(crun->root, "/run/crisp/crun");
	assert_string_equal(c.cni_conf_dir, "/etc/cni/net.d");
	assert_int_equal(strv_length(c.cni_bin_dirs), 2);
	assert_string_equal(c.cni_bin_dirs[0], "/usr/lib/cni");
	assert_string_equal(c.cni_bin_dirs[1], "/opt/cni/bin");
	assert_int_equal(c.cni_max_networks, 1);
	assert_int_equal(c.cni_plugin_timeout, 60);
	assert_int_equal(c.pull_progress_timeout, 300);
	assert_string_equal(c.registry_certs_dir, "/etc/crisp/certs.d");
	assert_non_null(c.insecure_registries);
	assert_null(c.insecure_registries[0]);
	assert_int_equal(c.n_registry_hosts, 0);
	assert_string_equal(c.stream_address, "127.0.0.1");
	assert_int_equal(c.stream_port, 0);
	assert_string_equal(c.stream_tls_cert, "");
	assert_string_equal(c.stream_tls_key, "");
	assert_int_equal(c.stream_idle_timeout, 14400);
	assert_int_equal(c.stream_max_sessions, 64);

	/* An empty file, or only comments and blanks, changes nothing. */
	_cleanup_config_ CrispConfig d;
	load_ok(&d, "");
	_cleanup_config_ CrispConfig e;
	load_ok(&e, "# nothing\n\n   \n\t# indented comment\n[cni]\n");
	_cleanup_free_ char *jc = crisp_config_to_json(&c);
	_cleanup_free_ char *jd = crisp_config_to_json(&d);
	_cleanup_free_ char *je = crisp_config_to_json(&e);
	assert_string_equal(jc, jd);
	assert_string_equal(jc, je);
}

static void test_value_types(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;

	load_ok(&c, "[crisp]\n"
		    "log_level = \"debug\"\n"
		    "root = '/srv/crisp'\n"
		    "[runtime]\n"
		    "allow_privileged = false\n"
		    "stop_timeout_default = +3_600\n"
		    "allowed_sysctls = [\"net.ipv4.*\", 'kernel.shm_rmid_forced', ]\n"
		    "[cni]\n"
		    "  bin_dirs=[\"/a\",\"/b\",\t\"/c\"]\n"
		    "\tmax_networks\t=\t16\n"
		    "[image]\n"
		    "insecure_registries = []\n"
		    "[streaming]\n"
		    "port = 65_535\n"
		    "idle_timeout = 1\n");
	assert_string_equal(c.log_level, "debug");
	assert_string_equal(c.root, "/srv/crisp");
	assert_false(c.allow_privileged);
	assert_int_equal(c.stop_timeout_default, 3600);
	assert_int_equal(strv_length(c.allowed_sysctls), 2);
	assert_string_equal(c.allowed_sysctls[0], "net.ipv4.*");
	assert_string_equal(c.allowed_sysctls[1], "kernel.shm_rmid_forced");
	assert_int_equal(strv_length(c.cni_bin_dirs), 3);
	assert_string_equal(c.cni_bin_dirs[2], "/c");
	assert_int_equal(c.cni_max_networks, 16);
	assert_non_null(c.insecure_registries);
	assert_int_equal(strv_length(c.insecure_registries), 0);
	assert_int_equal(c.stream_port, 65535);
	assert_int_equal(c.stream_idle_timeout, 1);

	/* An empty array is "allow none", not "use the built-in set". */
	_cleanup_config_ CrispConfig d;
	load_ok(&d, "[runtime]\nallowed_sysctls = []\nstop_timeout_default = -0\n");
	assert_non_null(d.allowed_sysctls);
	assert_null(d.allowed_sysctls[0]);
	assert_int_equal(d.stop_timeout_default, 0);

	/* Integer syntax TOML refuses. */
	assert_load_error("[streaming]\nport = 08\n",
			  "t.conf:2: key \"port\" in [streaming]: expected an integer between 0 "
			  "and 65535, got 08");
	assert_load_error_contains("[streaming]\nport = 1__0\n", "got 1__0");
	assert_load_error_contains("[streaming]\nport = _10\n", "got _10");
	assert_load_error_contains("[streaming]\nport = 10_\n", "got 10_");
	assert_load_error_contains("[streaming]\nport = 0x10\n", "got 0x10");
	assert_load_error_contains("[streaming]\nport = 1.5\n", "got 1.5");
	assert_load_error_contains("[streaming]\nport = +\n", "got +");
	assert_load_error_contains("[runtime]\nallow_privileged = True\n",
				   "expected true or false, got True");
}

static void test_escapes(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;

	load_ok(&c, "[runtime]\n"
		    "sandbox_image = \"a\\\"b\\\\c\\nd\\te\\u00e9\\U0001F600\\b\\f\\r\"\n"
		    "[crisp]\n"
		    "user = 'C:\\no\\escapes \"here\"'\n");
	assert_string_equal(c.sandbox_image, "a\"b\\c\nd\te\xc3\xa9\xf0\x9f\x98\x80\b\f\r");
	assert_string_equal(c.user, "C:\\no\\escapes \"here\"");

	assert_load_error(
		"[runtime]\nsandbox_image = \"a\\qb\"\n",
		"t.conf:2: key \"sandbox_image\" in [runtime]: invalid escape \"\\q\" in a string");
	assert_load_error_contains("[runtime]\nsandbox_image = \"\\u0000\"\n",
				   "not an allowed character");
	assert_load_error_contains("[runtime]\nsandbox_image = \"\\uD800\"\n",
				   "not an allowed character");
	assert_load_error_contains("[runtime]\nsandbox_image = \"\\u12\"\n",
				   "expected 4 hex digits");
	assert_load_error_contains("[runtime]\nsandbox_image = \"abc\n", "unterminated string");
	assert_load_error_contains("[runtime]\nsandbox_image = 'abc\n", "unterminated string");
	assert_load_error_contains("[runtime]\nsandbox_image = \"a\\\"\n", "unterminated string");
	assert_load_error_contains("[runtime]\nsandbox_image = \"a\x01\"\n",
				   "control character 0x01");
	assert_load_error_contains("[runtime]\nsandbox_image = \"\"\"x\"\"\"\n",
				   "multi-line strings are not supported");
	assert_load_error_contains("[runtime]\nsandbox_image = '''x'''\n",
				   "multi-line strings are not supported");
}

static void test_comments(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;

	load_ok(&c, "# full line\n"
		    "   # indented full line\n"
		    "[crisp] # after a table\n"
		    "user = \"a#b\" # after a value, \"quoted\"\n"
		    "root = '/x#y'#no blank needed\n"
		    "[cni]\n"
		    "bin_dirs = [\"/#1\", '/#2'] # after an array\n"
		    "max_networks = 2# tight\n"
		    "[runtime]\n"
		    "allow_privileged = false #\n");
	assert_string_equal(c.user, "a#b");
	assert_string_equal(c.root, "/x#y");
	assert_string_equal(c.cni_bin_dirs[0], "/#1");
	assert_string_equal(c.cni_bin_dirs[1], "/#2");
	assert_int_equal(c.cni_max_networks, 2);
	assert_false(c.allow_privileged);

	assert_load_error("[cni]\nmax_networks = # nothing\n",
			  "t.conf:2: key \"max_networks\" in [cni]: missing value");
	assert_load_error(
		"[cni]\nmax_networks = 5 6\n",
		"t.conf:2: key \"max_networks\" in [cni]: unexpected text after the value: \"6\"");
}

static void test_dropins(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = tmp_path("crisp.conf");

	write_file("crisp.conf",
		   "[crisp]\nlog_level = \"debug\"\nuser = \"main\"\n[streaming]\nport = 1000\n");
	make_dir("crisp.conf.d");
	/* Lexical order: 10-a, 20-b, 9-c ("9" > "2"). */
	write_file("crisp.conf.d/20-b.conf",
		   "[streaming]\nport = 2000\n[crisp]\nlog_level = \"warning\"\n");
	write_file("crisp.conf.d/10-a.conf",
		   "[streaming]\nport = 3000\n[crisp]\nlog_level = \"error\"\n");
	write_file("crisp.conf.d/9-c.conf",
		   "[streaming] # the same key in several files is fine\nport = 4000\n");
	write_file("crisp.conf.d/.hidden.conf", "this is not read\n");
	write_file("crisp.conf.d/notes.txt", "nor is this\n");
	write_file("crisp.conf.d/x.conf.bak", "nor this\n");

	crisp_config_init_defaults(&c);
	if (crisp_config_load(&c, path, false, &err) < 0)
		fail_msg("%s", err->message);
	assert_int_equal(c.stream_port, 4000);
	assert_string_equal(c.log_level, "warning");
	assert_string_equal(c.user, "main");

	/* An error in a drop-in names the drop-in, and leaves nothing behind. */
	write_file("crisp.conf.d/30-bad.conf", "[streaming]\n\nport = -1\n");
	CrispConfig d;
	crisp_config_init_defaults(&d);
	assert_int_equal(crisp_config_load(&d, path, false, &err), -EINVAL);
	_cleanup_free_ char *msg =
		xasprintf("%s/crisp.conf.d/30-bad.conf:3: key \"port\" in [streaming]: "
			  "expected an integer between 0 and 65535, got -1",
			  tmpdir);
	assert_string_equal(err->message, msg);
	assert_null(d.log_level);
	assert_null(d.runtimes);
}

static void test_dropin_cross_check_origin(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = tmp_path("crisp.conf");

	write_file("crisp.conf", "[runtimes.kata]\nbinary = \"/usr/bin/kata\"\n");
	make_dir("crisp.conf.d");
	write_file("crisp.conf.d/50-tls.conf", "[streaming]\n\ntls_key = \"/etc/k.pem\"\n");
	write_file("crisp.conf.d/60-runtime.conf", "[runtime]\ndefault_runtime = \"kata\"\n");

	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, path, false, &err), -EINVAL);
	_cleanup_free_ char *msg =
		xasprintf("%s/crisp.conf.d/50-tls.conf:3: key \"tls_key\" in [streaming] is set "
			  "but \"tls_cert\" is not: set both or neither",
			  tmpdir);
	assert_string_equal(err->message, msg);

	/* Fixed, the handler added by the main file is the default one. */
	write_file("crisp.conf.d/50-tls.conf",
		   "[streaming]\ntls_key = \"/etc/k.pem\"\ntls_cert = \"/etc/c.pem\"\n");
	err = crisp_error_free(err);
	crisp_config_init_defaults(&c);
	if (crisp_config_load(&c, path, false, &err) < 0)
		fail_msg("%s", err->message);
	assert_string_equal(c.default_runtime, "kata");
	assert_string_equal(crisp_config_find_runtime(&c, "kata")->root, "/run/crisp/kata");
}

static void test_unknown_table(void **state)
{
	(void)state;
	assert_load_error("[crisp]\nuser = \"x\"\n[foo]\n", "t.conf:3: unknown table [foo]");
	assert_load_error("[crisp.sub]\n", "t.conf:1: unknown table [crisp.sub]");
	assert_load_error("[runtimes.runc.extra]\n",
			  "t.conf:1: unknown table [runtimes.runc.extra]");
	assert_load_error("[registry.hosts.docker.io]\n",
			  "t.conf:1: unknown table [registry.hosts.docker.io] (quote a host name "
			  "that has dots: "
			  "[registry.hosts.\"docker.io\"])");
	assert_load_error("[registry.mirrors.\"docker.io\"]\n",
			  "t.conf:1: unknown table [registry.mirrors.\"docker.io\"]");
	assert_load_error("[[runtimes]]\n",
			  "t.conf:1: arrays of tables ([[...]]) are not supported");
	assert_load_error_contains("[cni] junk\n",
				   "t.conf:1: unexpected text after the table name: \"junk\"");
	assert_load_error_contains("[cni\n",
				   "t.conf:1: invalid table name: expected \".\" or \"]\"");
	assert_load_error_contains("[]\n", "t.conf:1: invalid table name");
	assert_load_error("[\n", "t.conf:1: invalid table name: missing \"]\"");
	assert_load_error_contains("[a.]\n", "t.conf:1: invalid table name");
	assert_load_error_contains("[a b]\n", "t.conf:1: invalid table name");
	assert_load_error_contains("[a.b.c.d.e.f.g.h.i]\n", "more than 8 parts");
}

static void test_unknown_key(void **state)
{
	(void)state;
	assert_load_error("[cni]\nconf_dir = \"/x\"\nfoo = 1\n",
			  "t.conf:3: unknown key \"foo\" in [cni]");
	/* A key of another table. */
	assert_load_error("[cni]\nport = 1\n", "t.conf:2: unknown key \"port\" in [cni]");
	assert_load_error("port = 1\n",
			  "t.conf:1: key \"port\" is outside any table: put it under its [table]");
	assert_load_error("[runtimes]\nbinary = \"/x\"\n",
			  "t.conf:2: unknown key \"binary\" in [runtimes]");
	assert_load_error("[registry.hosts]\nmirrors = []\n",
			  "t.conf:2: unknown key \"mirrors\" in [registry.hosts]");
	assert_load_error("[runtimes.runc]\nroot_dir = \"/x\"\n",
			  "t.conf:2: unknown key \"root_dir\" in [runtimes.runc]");
	assert_load_error("[registry.hosts.\"quay.io\"]\nmirror = []\n",
			  "t.conf:2: unknown key \"mirror\" in [registry.hosts.\"quay.io\"]");
	assert_load_error("[cni]\nconf.dir = \"/x\"\n",
			  "t.conf:2: dotted keys are not supported: put the key under its [table]");
	assert_load_error("[cni]\n\"conf_dir\" = \"/x\"\n",
			  "t.conf:2: quoted keys are not supported");
	assert_load_error(
		"[cni]\nconf_dir: \"/x\"\n",
		"t.conf:2: malformed line: expected \"key = value\", \"[table]\" or \"# comment\"");
	assert_load_error(
		"[cni]\n= \"/x\"\n",
		"t.conf:2: malformed line: expected \"key = value\", \"[table]\" or \"# comment\"");
	assert_load_error(
		"[cni]\nconf_dir\n",
		"t.conf:2: malformed line: expected \"key = value\", \"[table]\" or \"# comment\"");
}

static void test_wrong_type(void **state)
{
	(void)state;
	assert_load_error("[crisp]\n\n\n\n\n\n[streaming]\nport = \"x\"\n",
			  "t.conf:8: key \"port\" in [streaming]: expected an integer between 0 "
			  "and 65535, got \"x\"");
	assert_load_error("[streaming]\nport = x\n",
			  "t.conf:2: key \"port\" in [streaming]: expected an integer between 0 "
			  "and 65535, got x");
	assert_load_error("[runtime]\nallow_privileged = \"yes\" # comment not shown\n",
			  "t.conf:2: key \"allow_privileged\" in [runtime]: expected true or "
			  "false, got \"yes\"");
	assert_load_error("[crisp]\nuser = 5\n",
			  "t.conf:2: key \"user\" in [crisp]: expected a non-empty string, got 5");
	assert_load_error(
		"[crisp]\nuser = [\"a\"]\n",
		"t.conf:2: key \"user\" in [crisp]: expected a non-empty string, got [\"a\"]");
	assert_load_error("[cni]\nbin_dirs = \"/usr/lib/cni\"\n",
			  "t.conf:2: key \"bin_dirs\" in [cni]: expected a non-empty array of "
			  "absolute paths, got "
			  "\"/usr/lib/cni\"");
	assert_load_error("[cni]\nbin_dirs = [\"/a\", 1]\n",
			  "t.conf:2: key \"bin_dirs\" in [cni]: expected a non-empty array of "
			  "absolute paths, got "
			  "[\"/a\", 1]");
	assert_load_error_contains("[cni]\nbin_dirs = [[\"/a\"]]\n",
				   "nested arrays are not supported");
	assert_load_error_contains("[cni]\nbin_dirs = {a = 1}\n",
				   "inline tables are not supported");
	assert_load_error_contains("[cni]\nbin_dirs = [\"/a\" \"/b\"]\n",
				   "expected \",\" or \"]\" in array");
	assert_load_error_contains("[cni]\nbin_dirs = [,]\n", "missing value in array");
	assert_load_error_contains("[runtime]\nstop_timeout_default = 1979-05-27\n",
				   "got 1979-05-27");
}

static void test_out_of_range(void **state)
{
	(void)state;
	assert_load_error("[streaming]\nport = 65536\n",
			  "t.conf:2: key \"port\" in [streaming]: expected an integer between 0 "
			  "and 65535, got 65536");
	assert_load_error("[streaming]\nport = 99999999999999999999\n",
			  "t.conf:2: key \"port\" in [streaming]: expected an integer between 0 "
			  "and 65535, got "
			  "99999999999999999999");
	assert_load_error_contains(
		"[streaming]\nmax_sessions = -9223372036854775809\n",
		"expected an integer between 1 and 4096, got -9223372036854775809");
	assert_load_error_contains("[streaming]\nmax_sessions = 0\n",
				   "expected an integer between 1 and 4096, got 0");
	assert_load_error_contains("[cni]\nmax_networks = 17\n", "between 1 and 16, got 17");
	assert_load_error_contains("[cni]\nplugin_timeout = 0\n", "between 1 and 600, got 0");
	assert_load_error_contains("[image]\npull_progress_timeout = 86401\n",
				   "between 1 and 86400, got 86401");
	assert_load_error_contains("[runtime]\nstop_timeout_default = 3601\n",
				   "between 0 and 3600, got 3601");
	assert_load_error("[crisp]\nlog_level = \"verbose\"\n",
			  "t.conf:2: key \"log_level\" in [crisp]: expected one of \"debug\", "
			  "\"info\", \"warning\", "
			  "\"error\", got \"verbose\"");
	assert_load_error_contains("[runtime]\ncgroup_driver = \"Systemd\"\n",
				   "expected one of \"cgroupfs\", \"systemd\", got \"Systemd\"");
	assert_load_error("[crisp]\nroot = \"var/lib/crisp\"\n",
			  "t.conf:2: key \"root\" in [crisp]: expected an absolute path, got "
			  "\"var/lib/crisp\"");
	assert_load_error_contains("[crisp]\nlibexec_dir = \"bin\"\n",
				   "expected an absolute path or \"\", got \"bin\"");
	assert_load_error_contains("[crisp]\nuser = \"\"\n",
				   "expected a non-empty string, got \"\"");
	assert_load_error("[crisp]\nlisten = \"tcp://127.0.0.1:1234\"\n",
			  "t.conf:2: key \"listen\" in [crisp]: expected \"unix://\" followed by "
			  "an absolute path of "
			  "at most 107 bytes, got \"tcp://127.0.0.1:1234\"");
	assert_load_error_contains("[crisp]\nlisten = \"unix://run/crisp.sock\"\n",
				   "key \"listen\"");
	assert_load_error_contains("[crisp]\nlisten = \"unix:///\"\n", "key \"listen\"");
	assert_load_error("[cni]\nbin_dirs = []\n", "t.conf:2: key \"bin_dirs\" in [cni]: expected "
						    "a non-empty array of absolute paths, got []");
	assert_load_error("[cni]\nbin_dirs = [\"/a\", \"opt/cni\"]\n",
			  "t.conf:2: key \"bin_dirs\" in [cni]: expected a non-empty array of "
			  "absolute paths, got "
			  "\"opt/cni\" (element 2)");
	assert_load_error_contains("[runtime]\nallowed_sysctls = [\"net.*.x\"]\n",
				   "got \"net.*.x\" (element 1)");
	assert_load_error_contains("[runtime]\nallowed_sysctls = [\"\"]\n", "(element 1)");
	assert_load_error_contains("[image]\ninsecure_registries = [\"http://x\"]\n",
				   "got \"http://x\" (element 1)");
	assert_load_error_contains("[streaming]\ntls_cert = \"cert.pem\"\n",
				   "key \"tls_cert\" in [streaming]");

	/* Long values are shortened in messages. */
	_cleanup_free_ char *msg = load_fail(
		"[crisp]\nroot = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\n");
	assert_contains(msg, "aaaa...");
	assert_true(strlen(msg) < 200);

	/* Bounds themselves are fine. */
	_cleanup_config_ CrispConfig c;
	load_ok(&c, "[streaming]\nport = 0\nmax_sessions = 4096\n[cni]\nmax_networks = 1\n");
	assert_int_equal(c.stream_max_sessions, 4096);
}

static void test_duplicates(void **state)
{
	(void)state;
	assert_load_error("[streaming]\nport = 1\n# again\nport = 2\n",
			  "t.conf:4: key \"port\" in [streaming] is set twice (first on line 2)");
	assert_load_error("[cni]\nmax_networks = 1\n[streaming]\n[cni]\n",
			  "t.conf:4: table [cni] is defined twice (first on line 1)");
	/* The same table spelled differently is still the same table. */
	assert_load_error("[runtimes.runc]\n[runtimes.\"runc\"]\n",
			  "t.conf:2: table [runtimes.runc] is defined twice (first on line 1)");
	assert_load_error(
		"[registry.hosts.'quay.io']\n[registry.hosts.\"quay.io\"]\n",
		"t.conf:2: table [registry.hosts.\"quay.io\"] is defined twice (first on line 1)");
	/* The same key name in two tables is no duplicate. */
	_cleanup_config_ CrispConfig c;
	load_ok(&c, "[runtimes.runc]\nroot = \"/a\"\n[runtimes.crun]\nroot = \"/b\"\n");
	assert_string_equal(crisp_config_find_runtime(&c, "runc")->root, "/a");
	assert_string_equal(crisp_config_find_runtime(&c, "crun")->root, "/b");
}

static void test_line_too_long(void **state)
{
	(void)state;
	char value[200];

	/* The longest line inih takes whole: 198 bytes. */
	memset(value, 'a', sizeof(value));
	value[198 - strlen("sandbox_image = \"\"")] = '\0';
	_cleanup_free_ char *ok = xasprintf("[runtime]\nsandbox_image = \"%s\"\n", value);
	_cleanup_config_ CrispConfig c;
	load_ok(&c, ok);
	assert_int_equal(strlen(c.sandbox_image), 198 - strlen("sandbox_image = \"\""));

	_cleanup_free_ char *crlf = xasprintf("[runtime]\r\nsandbox_image = \"%s\"\r\n", value);
	_cleanup_config_ CrispConfig d;
	load_ok(&d, crlf);
	assert_string_equal(c.sandbox_image, d.sandbox_image);

	value[198 - strlen("sandbox_image = \"\"")] = 'a';
	value[199 - strlen("sandbox_image = \"\"")] = '\0';
	_cleanup_free_ char *long1 = xasprintf("[runtime]\n\nsandbox_image = \"%s\"\n", value);
	assert_load_error(long1, "t.conf:3: line is longer than 198 bytes");

	/* Long comments too: inih would read the rest as a line of its own. */
	memset(value, '#', sizeof(value));
	value[sizeof(value) - 1] = '\0';
	_cleanup_free_ char *long2 = xasprintf("%s\n", value);
	assert_load_error(long2, "t.conf:1: line is longer than 198 bytes");
}

static void test_multiline_refused(void **state)
{
	(void)state;
	/* inih (INI_ALLOW_MULTILINE) would append this line to the previous value. */
	assert_load_error(
		"[crisp]\nuser = \"a\"\n    b\n",
		"t.conf:3: malformed line: expected \"key = value\" (a value cannot continue on an "
		"indented line; arrays must be on one line)");
	assert_load_error("[cni]\nbin_dirs = [\"/a\",\n  \"/b\"]\n",
			  "t.conf:2: key \"bin_dirs\" in [cni]: unterminated array (arrays must be "
			  "on one line)");
	assert_load_error("[cni]\nbin_dirs = [\"/a\", # first\n",
			  "t.conf:2: key \"bin_dirs\" in [cni]: unterminated array (arrays must be "
			  "on one line)");
	/* Indented keys and tables are plain TOML, not continuations. */
	_cleanup_config_ CrispConfig c;
	load_ok(&c, "[crisp]\nuser = \"a\"\n  root = \"/r\"\n  [cni]\n  max_networks = 3\n");
	assert_string_equal(c.user, "a");
	assert_string_equal(c.root, "/r");
	assert_int_equal(c.cni_max_networks, 3);
}

static void test_semicolon(void **state)
{
	(void)state;
	/* inih's inline comment prefix is ";" after a blank: it would cut the string. */
	assert_load_error("[runtime]\nsandbox_image = \"a ;b\"\n",
			  "t.conf:2: key \"sandbox_image\" in [runtime]: \";\" after a blank "
			  "inside a string or array "
			  "is not supported (the INI parser reads it as a comment)");
	assert_load_error_contains("[runtime]\nallowed_sysctls = [\"a\", ;\"b\"]\n",
				   "\";\" after a blank");
	assert_load_error("[cni]\nmax_networks = 2 ; two\n",
			  "t.conf:2: key \"max_networks\" in [cni]: \";\" does not start a comment "
			  "in TOML; use \"#\"");
	assert_load_error_contains("[cni]\nmax_networks = ;2\n", "\";\" does not start a comment");
	assert_load_error("; comment\n",
			  "t.conf:1: \";\" does not start a comment in TOML; use \"#\"");
	assert_load_error_contains("[cni] ; x\n", "unexpected text after the table name");

	/* Without a blank before it, or inside a "#" comment, ";" is harmless. */
	_cleanup_config_ CrispConfig c;
	load_ok(&c, "[runtime]\nsandbox_image = \"a;b\" # c ; d\n[cni]\nmax_networks = 2 # two ; "
		    "three\n"
		    "[registry.hosts.\"x\"]\nmirrors = [\"https://m/;a\"]\n");
	assert_string_equal(c.sandbox_image, "a;b");
	assert_int_equal(c.cni_max_networks, 2);
}

static void test_missing_explicit_file(void **state)
{
	(void)state;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = tmp_path("nope.conf");
	CrispConfig c;

	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, path, false, &err), -ENOENT);
	assert_int_equal(err->code, CRISP_ERR_NOT_FOUND);
	_cleanup_free_ char *msg =
		xasprintf("%s: cannot open configuration file: %s", path, strerror(ENOENT));
	assert_string_equal(err->message, msg);
	assert_null(c.log_level);
	assert_null(c.runtimes);

	/* A directory is no configuration file. */
	err = crisp_error_free(err);
	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, tmpdir, true, &err), -EINVAL);
	assert_contains(err->message, "not a regular file");
	assert_null(c.log_level);

	/* Neither is the drop-in directory a file. */
	err = crisp_error_free(err);
	write_file("x.conf", "");
	write_file("x.conf.d", "");
	_cleanup_free_ char *x = tmp_path("x.conf");
	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, x, false, &err), -ENOTDIR);
	assert_contains(err->message, "x.conf.d: cannot open drop-in directory");
}

static void test_missing_default_file(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = tmp_path("crisp.conf");

	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, path, true, &err), 0);
	assert_null(err);
	assert_string_equal(c.log_level, "info");
	assert_int_equal(c.n_runtimes, 2);

	/* The drop-ins still apply without the main file. */
	make_dir("crisp.conf.d");
	write_file("crisp.conf.d/a.conf", "[crisp]\nlog_level = \"debug\"\n");
	crisp_config_done(&c);
	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, path, true, &err), 0);
	assert_string_equal(c.log_level, "debug");
}

static void test_runtime_handlers(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;

	load_ok(&c,
		"[crisp]\nstate = \"/tmp/s\"\n"
		"[runtime]\ndefault_runtime = \"kata\"\n"
		"[runtimes.runc]\nbinary = \"/opt/runc\"\n"
		"[runtimes.kata]\nbinary = \"/usr/bin/kata-runtime\"\nroot = \"/var/run/kata\"\n"
		"[runtimes.\"gvisor.v1\"]\nbinary = \"/usr/bin/runsc\"\n");
	assert_int_equal(c.n_runtimes, 4);
	const CrispRuntimeHandler *runc = crisp_config_find_runtime(&c, "runc");
	assert_string_equal(runc->binary, "/opt/runc");
	/* Roots not set follow [crisp] state. */
	assert_string_equal(runc->root, "/tmp/s/runc");
	assert_string_equal(crisp_config_find_runtime(&c, "crun")->root, "/tmp/s/crun");
	assert_string_equal(crisp_config_find_runtime(&c, "crun")->binary, "/usr/bin/crun");
	const CrispRuntimeHandler *kata = crisp_config_find_runtime(&c, "kata");
	assert_non_null(kata);
	assert_string_equal(kata->binary, "/usr/bin/kata-runtime");
	assert_string_equal(kata->root, "/var/run/kata");
	assert_string_equal(crisp_config_find_runtime(&c, "gvisor.v1")->root, "/tmp/s/gvisor.v1");
	assert_string_equal(c.default_runtime, "kata");

	/* --state after loading moves the roots that follow it, and only those. */
	crisp_config_set_state(&c, "/run/other");
	assert_string_equal(c.state, "/run/other");
	assert_string_equal(runc->root, "/run/other/runc");
	assert_string_equal(crisp_config_find_runtime(&c, "gvisor.v1")->root,
			    "/run/other/gvisor.v1");
	assert_string_equal(kata->root, "/var/run/kata");

	assert_load_error("[crisp]\n[runtimes.kata]\nroot = \"/r\"\n",
			  "t.conf:2: table [runtimes.kata]: key \"binary\" is required");
	assert_load_error("[runtime]\ndefault_runtime = \"kata\"\n",
			  "t.conf:2: key \"default_runtime\" in [runtime]: no runtime handler is "
			  "named \"kata\" "
			  "(handlers: runc, crun)");
	assert_load_error("[runtimes.runc]\nbinary = \"runc\"\n",
			  "t.conf:2: key \"binary\" in [runtimes.runc]: expected an absolute path, "
			  "got \"runc\"");
	assert_load_error_contains("[runtimes.\"a/b\"]\n",
				   "t.conf:1: table [runtimes.\"a/b\"]: a runtime handler name");
	assert_load_error_contains("[runtimes.\"..\"]\n", "a runtime handler name");
	assert_load_error_contains("[runtimes.\"\"]\n", "a runtime handler name");
}

static void test_registry_hosts(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	/* Longer than inih's 49-byte section names: the table is read by crisp itself. */
	const char *long_host = "registry-mirror.internal.department.example.com:5000";

	_cleanup_free_ char *text = xasprintf(
		"[registry.hosts.\"docker.io\"]\n"
		"mirrors = [\"https://mirror.example.com\", \"http://10.0.0.1:5000/v2\"]\n"
		"[registry.hosts.'localhost:5000']\n"
		"insecure = true\n"
		"[registry.hosts.\"%s\"]\n"
		"insecure = true\n"
		"[registry.hosts.\"[::1]:5000\"]\n"
		"[image]\n"
		"insecure_registries = [\"localhost:5000\", \"10.1.1.1\"]\n",
		long_host);
	load_ok(&c, text);
	assert_int_equal(c.n_registry_hosts, 4);
	const CrispRegistryHost *d = crisp_config_find_registry_host(&c, "docker.io");
	assert_non_null(d);
	assert_int_equal(strv_length(d->mirrors), 2);
	assert_string_equal(d->mirrors[0], "https://mirror.example.com");
	assert_string_equal(d->mirrors[1], "http://10.0.0.1:5000/v2");
	assert_false(d->insecure);
	const CrispRegistryHost *l = crisp_config_find_registry_host(&c, "localhost:5000");
	assert_true(l->insecure);
	assert_non_null(l->mirrors);
	assert_null(l->mirrors[0]);
	assert_true(crisp_config_find_registry_host(&c, long_host)->insecure);
	assert_non_null(crisp_config_find_registry_host(&c, "[::1]:5000"));
	assert_null(crisp_config_find_registry_host(&c, "quay.io"));
	assert_string_equal(c.insecure_registries[1], "10.1.1.1");

	_cleanup_free_ char *long_err =
		xasprintf("[registry.hosts.\"%s\"]\nmirrors = [\"ftp://x\"]\n", long_host);
	_cleanup_free_ char *long_msg =
		xasprintf("t.conf:2: key \"mirrors\" in [registry.hosts.\"%s\"]: expected an "
			  "array of http:// or https:// URLs, got \"ftp://x\" (element 1)",
			  long_host);
	assert_load_error(long_err, long_msg);
	assert_load_error("[registry.hosts.\"a/b\"]\n",
			  "t.conf:1: table [registry.hosts.\"a/b\"]: expected a registry host "
			  "(host or host:port)");
	assert_load_error_contains("[registry.hosts.\"docker.io\"]\ninsecure = 1\n",
				   "expected true or false, got 1");
}

static void test_registry_hosts_dropin_override(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = tmp_path("crisp.conf");

	write_file("crisp.conf",
		   "[registry.hosts.\"docker.io\"]\nmirrors = [\"https://a\"]\ninsecure = true\n"
		   "[runtimes.kata]\nbinary = \"/k\"\n");
	make_dir("crisp.conf.d");
	write_file("crisp.conf.d/1.conf",
		   "[registry.hosts.\"docker.io\"]\nmirrors = [\"https://b\", \"https://c\"]\n"
		   "[runtimes.kata]\nroot = \"/kr\"\n");
	crisp_config_init_defaults(&c);
	if (crisp_config_load(&c, path, false, &err) < 0)
		fail_msg("%s", err->message);
	assert_int_equal(c.n_registry_hosts, 1);
	const CrispRegistryHost *h = crisp_config_find_registry_host(&c, "docker.io");
	/* Arrays are replaced, not merged; keys not repeated keep their value. */
	assert_int_equal(strv_length(h->mirrors), 2);
	assert_string_equal(h->mirrors[0], "https://b");
	assert_true(h->insecure);
	const CrispRuntimeHandler *kata = crisp_config_find_runtime(&c, "kata");
	assert_string_equal(kata->binary, "/k");
	assert_string_equal(kata->root, "/kr");
}

static void test_syntax_misc(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;

	/* BOM, CRLF, tabs. */
	load_ok(&c, "\xef\xbb\xbf[crisp]\r\nuser\t=\t\"r\xc3\xa9mi\"\r\n\r\n");
	assert_string_equal(c.user, "r\xc3\xa9mi");

	assert_load_error("[crisp]\nuser = \"\xff\"\n", "t.conf:2: not valid UTF-8");
	assert_load_error_contains("[crisp]\nuser = \"\xc0\xaf\"\n",
				   "not valid UTF-8"); /* overlong "/" */
	assert_load_error_contains("[crisp]\nuser = \"\xed\xa0\x80\"\n",
				   "not valid UTF-8"); /* surrogate */
	assert_load_error_contains("[crisp]\nuser = 'a\x7f'\n", "control character 0x7f");
}

static void test_nul_byte(void **state)
{
	(void)state;
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ char *path = tmp_path("nul.conf");
	CrispConfig c;

	FILE *f = fopen(path, "we");
	assert_non_null(f);
	assert_int_equal(fwrite("[crisp]\nuser = \"a\0b\"\n", 1, 21, f), 21);
	assert_int_equal(fclose(f), 0);

	crisp_config_init_defaults(&c);
	assert_int_equal(crisp_config_load(&c, path, false, &err), -EINVAL);
	_cleanup_free_ char *msg = xasprintf("%s:2: contains a NUL byte", path);
	assert_string_equal(err->message, msg);
}

static void test_validate_after_flags(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;
	_cleanup_error_ CrispError *err = NULL;

	load_ok(&c, "[crisp]\nlisten = \"unix:///tmp/a.sock\"\n");
	/* Flags win: they overwrite fields after loading. */
	crisp_config_set_string(&c.listen, "unix:///tmp/b.sock");
	assert_string_equal(c.listen, "unix:///tmp/b.sock");
	assert_int_equal(crisp_config_validate(&c, &err), 0);

	crisp_config_set_string(&c.listen, "/tmp/b.sock");
	assert_int_equal(crisp_config_validate(&c, &err), -EINVAL);
	assert_string_equal(
		err->message,
		"key \"listen\" in [crisp]: expected \"unix://\" followed by an absolute "
		"path of at most 107 bytes, got \"/tmp/b.sock\"");
	err = crisp_error_free(err);

	crisp_config_set_string(&c.listen, "unix:///tmp/b.sock");
	crisp_config_set_string(&c.default_runtime, "nope");
	assert_int_equal(crisp_config_validate(&c, &err), -EINVAL);
	assert_string_equal(
		err->message,
		"key \"default_runtime\" in [runtime]: no runtime handler is named \"nope\" "
		"(handlers: runc, crun)");
	err = crisp_error_free(err);

	crisp_config_set_string(&c.default_runtime, "crun");
	crisp_config_set_string(&c.stream_tls_cert, "/c.pem");
	assert_int_equal(crisp_config_validate(&c, &err), -EINVAL);
	assert_string_equal(err->message, "key \"tls_cert\" in [streaming] is set but \"tls_key\" "
					  "is not: set both or neither");
	err = crisp_error_free(err);

	crisp_config_set_string(&c.stream_tls_cert, NULL);
	assert_null(c.stream_tls_cert);
	crisp_config_set_string(&c.user, NULL);
	assert_int_equal(crisp_config_validate(&c, &err), -EINVAL);
	assert_string_equal(err->message,
			    "key \"user\" in [crisp]: expected a non-empty string, got \"\"");
}

static json_t *object_path(json_t *root, const char *a, const char *b)
{
	json_t *o = json_object_get(root, a);
	assert_non_null(o);
	if (b) {
		o = json_object_get(o, b);
		assert_non_null(o);
	}
	return o;
}

/* Compares every field declared in the key table with its JSON value. */
static void assert_fields_match(json_t *obj, const void *base, ConfigScope scope)
{
	for (size_t i = 0; i < config_n_keys; i++) {
		const ConfigKey *k = &config_keys[i];
		if (k->scope != scope)
			continue;
		json_t *table = scope == SCOPE_MAIN ? json_object_get(obj, k->table) : obj;
		assert_non_null(table);
		json_t *j = json_object_get(table, k->name);
		if (!j)
			fail_msg("key %s.%s missing from the JSON", k->table, k->name);
		const void *f = (const char *)base + k->offset;
		switch (k->type) {
		case CONFIG_STRING:
			assert_string_equal(json_string_value(j), *(char *const *)f);
			break;
		case CONFIG_INT:
			assert_true(json_is_integer(j));
			assert_int_equal(json_integer_value(j), *(const int64_t *)f);
			break;
		case CONFIG_BOOL:
			assert_true(json_is_boolean(j));
			assert_int_equal(json_is_true(j), *(const bool *)f);
			break;
		case CONFIG_STRV: {
			char *const *v = *(char **const *)f;
			if (!v) {
				assert_true(json_is_null(j));
				break;
			}
			assert_true(json_is_array(j));
			assert_int_equal(json_array_size(j), strv_length(v));
			for (size_t e = 0; v[e]; e++)
				assert_string_equal(json_string_value(json_array_get(j, e)), v[e]);
			break;
		}
		}
	}
}

static void test_to_json(void **state)
{
	(void)state;
	_cleanup_config_ CrispConfig c;

	load_ok(&c, "[crisp]\nuser = \"quote\\\" back\\\\ nl\\n \xc3\xa9\"\n"
		    "[runtime]\nallowed_sysctls = [\"net.*\"]\nallow_privileged = false\n"
		    "[runtimes.kata]\nbinary = \"/k\"\n"
		    "[registry.hosts.\"docker.io\"]\nmirrors = [\"https://m\"]\ninsecure = true\n"
		    "[streaming]\nport = 10010\n");
	_cleanup_free_ char *s = crisp_config_to_json(&c);
	json_error_t jerr;
	json_t *root = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		fail_msg("invalid JSON (%s): %s", jerr.text, s);

	assert_fields_match(root, &c, SCOPE_MAIN);
	json_t *runtimes = object_path(root, "runtimes", NULL);
	assert_int_equal(json_object_size(runtimes), c.n_runtimes);
	for (size_t i = 0; i < c.n_runtimes; i++)
		assert_fields_match(object_path(runtimes, c.runtimes[i].name, NULL), &c.runtimes[i],
				    SCOPE_RUNTIME);
	json_t *hosts = object_path(root, "registry", "hosts");
	assert_int_equal(json_object_size(hosts), 1);
	assert_fields_match(object_path(hosts, "docker.io", NULL), &c.registry_hosts[0],
			    SCOPE_REGISTRY_HOST);

	/* A few by hand, in case the table walk and the writer share a mistake. */
	assert_string_equal(json_string_value(object_path(root, "crisp", "user")),
			    "quote\" back\\ nl\n \xc3\xa9");
	assert_int_equal(json_integer_value(object_path(root, "streaming", "port")), 10010);
	assert_string_equal(
		json_string_value(json_object_get(object_path(runtimes, "kata", NULL), "root")),
		"/run/crisp/kata");
	assert_false(json_is_null(object_path(root, "runtime", "allowed_sysctls")));
	json_decref(root);

	/* The built-in sysctl set shows as null. */
	_cleanup_config_ CrispConfig d;
	crisp_config_init_defaults(&d);
	_cleanup_free_ char *t = crisp_config_to_json(&d);
	root = json_loads(t, 0, &jerr);
	assert_non_null(root);
	assert_true(json_is_null(object_path(root, "runtime", "allowed_sysctls")));
	assert_int_equal(json_object_size(object_path(root, "registry", "hosts")), 0);
	json_decref(root);

	/* A flag value that is not UTF-8 still gives valid JSON. */
	crisp_config_set_string(&d.sandbox_image, "a\xffz");
	_cleanup_free_ char *u = crisp_config_to_json(&d);
	root = json_loads(u, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(object_path(root, "runtime", "sandbox_image")),
			    "a?z");
	json_decref(root);
}

static char *packaged_conf_path(void)
{
#ifdef CRISP_SOURCE_DIR
	return xasprintf("%s/packaging/crisp.conf", CRISP_SOURCE_DIR);
#else
	const char *tail = strstr(__FILE__, "tests/unit/test_config.c");
	if (!tail)
		return NULL;
	return xasprintf("%.*spackaging/crisp.conf", (int)(tail - __FILE__), __FILE__);
#endif
}

/* The shipped crisp.conf lists every key with exactly the built-in defaults. */
static void test_packaged_conf(void **state)
{
	(void)state;
	_cleanup_free_ char *path = packaged_conf_path();
	if (!path || access(path, R_OK) < 0) {
		print_message("packaging/crisp.conf not found, skipped\n");
		skip();
	}

	_cleanup_config_ CrispConfig defaults, loaded;
	_cleanup_error_ CrispError *err = NULL;
	crisp_config_init_defaults(&defaults);
	crisp_config_init_defaults(&loaded);
	if (crisp_config_load(&loaded, path, false, &err) < 0)
		fail_msg("%s", err->message);
	_cleanup_free_ char *a = crisp_config_to_json(&defaults);
	_cleanup_free_ char *b = crisp_config_to_json(&loaded);
	assert_string_equal(a, b);

	FILE *f = fopen(path, "re");
	assert_non_null(f);
	_cleanup_free_ char *text = xcalloc(1, 65536);
	size_t n = fread(text, 1, 65535, f);
	fclose(f);
	assert_true(n > 0 && n < 65535);

	for (size_t i = 0; i < config_n_keys; i++) {
		const ConfigKey *k = &config_keys[i];
		_cleanup_free_ char *header =
			k->scope == SCOPE_MAIN	    ? xasprintf("\n[%s]\n", k->table)
			: k->scope == SCOPE_RUNTIME ? xstrdup("\n[runtimes.runc]\n")
						    : xstrdup("\n# [registry.hosts.");
		const char *section = strstr(text, header);
		if (!section)
			fail_msg("%s has no %s", path, header + 1);
		const char *next = strstr(section + strlen(header), "\n[");
		_cleanup_free_ char *body =
			next ? xstrndup(section, (size_t)(next - section)) : xstrdup(section);
		_cleanup_free_ char *set = xasprintf("\n%s = ", k->name);
		_cleanup_free_ char *commented = xasprintf("\n# %s = ", k->name);
		if (!strstr(body, set) && !strstr(body, commented))
			fail_msg("%s does not document key \"%s\" in [%s]", path, k->name,
				 k->table);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_value_types),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_comments),
		cmocka_unit_test_setup_teardown(test_dropins, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_dropin_cross_check_origin, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test(test_unknown_table),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_line_too_long),
		cmocka_unit_test(test_multiline_refused),
		cmocka_unit_test(test_semicolon),
		cmocka_unit_test_setup_teardown(test_missing_explicit_file, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_missing_default_file, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test(test_runtime_handlers),
		cmocka_unit_test(test_registry_hosts),
		cmocka_unit_test_setup_teardown(test_registry_hosts_dropin_override, setup_tmpdir,
						teardown_tmpdir),
		cmocka_unit_test(test_syntax_misc),
		cmocka_unit_test_setup_teardown(test_nul_byte, setup_tmpdir, teardown_tmpdir),
		cmocka_unit_test(test_validate_after_flags),
		cmocka_unit_test(test_to_json),
		cmocka_unit_test(test_packaged_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
