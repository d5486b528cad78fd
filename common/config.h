/*
 * config.h - crisp.conf, the node configuration every crisp process reads.
 *
 * The configuration is /etc/crisp/crisp.conf (or --config) followed by the
 * drop-ins, the files named "*.conf" in "<config path>.d", in lexical
 * (strcmp) order; a later file overrides single keys of an earlier one.  The syntax is a TOML subset:
 * [tables] (dotted, with quoted parts: [registry.hosts."docker.io"]),
 * bare keys, and values that are basic or literal strings, integers,
 * booleans and single-line arrays of strings, with "#" comments.
 * Anything outside that subset is an error, never silently ignored.
 *
 * Contract:
 *   crisp_config_init_defaults(&c);
 *   if (crisp_config_load(&c, path, path_is_default, &err) < 0) -> log err, exit
 *   crisp_config_set_string(&c.listen, arg_listen);   (flags win over files;
 *   crisp_config_set_state(&c, arg_state);             state moves runtime roots)
 *   if (crisp_config_validate(&c, &err) < 0) -> log err, exit
 *   ...
 *   crisp_config_done(&c);
 *
 * Errors are CRISP_ERR_INVALID and read "<file>:<line>: <what>", naming the
 * key and its table, e.g.
 *   /etc/crisp/crisp.conf:12: unknown key "foo" in [cni]
 * A file that cannot be read is CRISP_ERR_NOT_FOUND (missing) or
 * CRISP_ERR_INTERNAL with the errno.
 *
 * The keys, their types, defaults and bounds are declared once, in the key
 * table in config.c; packaging/crisp.conf documents each of them.
 */
#ifndef CRISP_CONFIG_H
#define CRISP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CRISP_CONFIG_DEFAULT_PATH "/etc/crisp/crisp.conf"

/* [runtimes.<name>]: binary = "/abs/path", root = "/abs/path" */
typedef struct CrispRuntimeHandler {
	char *name;
	char *binary;
	char *root;	      /* unless set, "<state>/<name>" */
	bool root_is_default; /* root follows state: crisp_config_set_state moves it */
} CrispRuntimeHandler;

/* [registry.hosts."<host>"]: mirrors = ["https://..."], insecure = bool */
typedef struct CrispRegistryHost {
	char *host;
	char **mirrors; /* never NULL after loading; tried in order before the host itself */
	bool insecure;
} CrispRegistryHost;

/*
 * String fields are never NULL after crisp_config_init_defaults ("" where the
 * default is empty); string arrays are never NULL except allowed_sysctls,
 * where NULL means the built-in safe set and an empty array allows none.
 */
typedef struct CrispConfig {
	/* [crisp] */
	char *log_level;   /* "debug"|"info"|"warning"|"error" */
	char *root;	   /* persistent state, absolute */
	char *state;	   /* runtime state, absolute */
	char *listen;	   /* "unix://" + absolute path */
	char *libexec_dir; /* "" = next to the crisp binary */
	char *user;	   /* unprivileged user for criapi/streamd */
	/* [runtime] */
	char *cgroup_driver;   /* "cgroupfs"|"systemd" */
	char *default_runtime; /* must name a handler */
	char *sandbox_image;   /* "" = built-in crisp-pause */
	bool allow_privileged;
	char **allowed_sysctls;	      /* names, or prefixes ending in "*" */
	int64_t stop_timeout_default; /* seconds */
	CrispRuntimeHandler *runtimes;
	size_t n_runtimes;
	/* [cni] */
	char *cni_conf_dir;
	char **cni_bin_dirs;
	int64_t cni_max_networks;
	int64_t cni_plugin_timeout; /* seconds */
	/* [image] */
	int64_t pull_progress_timeout; /* seconds */
	char *registry_certs_dir;
	char **insecure_registries;
	CrispRegistryHost *registry_hosts;
	size_t n_registry_hosts;
	/* [streaming] */
	char *stream_address;
	int64_t stream_port;			/* 0: the kernel chooses */
	char *stream_tls_cert, *stream_tls_key; /* both or neither */
	int64_t stream_idle_timeout;		/* seconds */
	int64_t stream_max_sessions;
} CrispConfig;

/* Fills *c with the built-in defaults (runtimes runc and crun included). */
void crisp_config_init_defaults(CrispConfig *c);

/*
 * Applies path, then "<path>.d/ *.conf" in lexical order, on top of *c
 * (normally fresh defaults).  A missing path is fine only when
 * path_is_default; a missing ".d" directory is always fine.  Cross-checks
 * run last (crisp_config_validate, plus: a new runtime handler needs a
 * binary).  On failure *c is released as by crisp_config_done and err names
 * file, line and key.
 */
int crisp_config_load(CrispConfig *c, const char *path, bool path_is_default, CrispError **err);

/* As crisp_config_load for one text and no drop-ins; name is used in messages. */
int crisp_config_load_string(CrispConfig *c, const char *name, const char *text, CrispError **err);

/*
 * Checks every value against its key's type and bounds, and the cross-key
 * rules.  Loading does this already; call it again after command-line flags
 * overwrote fields.  *c is not changed.
 */
int crisp_config_validate(const CrispConfig *c, CrispError **err);

/* Releases the contents of *c and zeroes it.  Usable with _cleanup_(). */
void crisp_config_done(CrispConfig *c);
#define _cleanup_config_ _cleanup_(crisp_config_done)

const CrispRuntimeHandler *crisp_config_find_runtime(const CrispConfig *c, const char *name);
const CrispRegistryHost *crisp_config_find_registry_host(const CrispConfig *c, const char *host);

/*
 * The effective configuration as a JSON object with the file's layout
 * ({"crisp": {...}, "runtimes": {"runc": {...}}, "registry": {"hosts": {...}}, ...}),
 * malloc'd.  Used by Status verbose.
 */
char *crisp_config_to_json(const CrispConfig *c);

/* Replaces a string field (for command-line flags); value NULL sets NULL. */
void crisp_config_set_string(char **field, const char *value);
/* Sets state and moves the runtime roots that follow it ("<state>/<name>"); use it for --state. */
void crisp_config_set_state(CrispConfig *c, const char *state);

#endif
