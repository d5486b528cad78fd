/*
 * image_config.h - the image configuration blob (OCI image config, which
 * Docker's application/vnd.docker.container.image.v1+json shares).
 *
 * Values from an image never reach a host-side decision unchecked
 * (ARCHITECTURE.md §2), so the parser validates every field it returns and
 * refuses the whole config on the first bad one; the error names the field:
 *
 *   architecture, os   required short identifiers; variant optional
 *   created            optional RFC 3339 date-time
 *   rootfs             type "layers"; diff_ids valid digests, at most
 *                      CRISP_MANIFEST_MAX_LAYERS
 *   config.User        no control characters, at most 256 bytes
 *   config.Env         "KEY=VALUE" strings with a non-empty KEY; an entry
 *                      without '=' is refused (runc would refuse it later
 *                      with a worse message)
 *   config.Entrypoint, config.Cmd
 *                      arrays of strings (a lone string is one argument, as
 *                      Docker reads it); null or absent is "not set"
 *   config.WorkingDir  absolute, no ".." component; returned cleaned
 *   config.ExposedPorts keys "PORT[-PORT][/tcp|udp|sctp]", returned as
 *                      "PORT/proto"
 *   config.Volumes     keys absolute, no ".." component, not "/"; returned
 *                      cleaned
 *   config.Labels      string values
 *   config.StopSignal  a signal name (SIGTERM, TERM, SIGRTMIN+3) or number
 *
 * Unknown members (history, container_config, Healthcheck, ...) are ignored.
 */
#ifndef CRISP_IMAGED_IMAGE_CONFIG_H
#define CRISP_IMAGED_IMAGE_CONFIG_H

#include "digest.h"
#include "error.h"
#include "manifest.h"

#include <stddef.h>

/* Entries in any one array or object of the config (Env, Labels, ...). */
#define CRISP_IMAGE_CONFIG_MAX_ITEMS 16384
/* Entries in ExposedPorts and in Volumes (duplicates after cleaning are merged). */
#define CRISP_IMAGE_CONFIG_MAX_KEYS 1024
#define CRISP_IMAGE_CONFIG_USER_MAX 256

typedef struct CrispImageConfig {
	char *architecture;
	char *os;
	char *variant; /* NULL when absent */
	char *created; /* RFC 3339 as written; NULL when absent */
	CrispDigest *diff_ids;
	size_t n_diff_ids;

	char *user;	      /* NULL when absent or empty */
	char **env;	      /* "KEY=VALUE"; NULL when absent */
	char **entrypoint;    /* NULL when absent or null; an empty strv for [] */
	char **cmd;	      /* likewise */
	char *working_dir;    /* cleaned absolute path; NULL when absent or empty */
	char **exposed_ports; /* "80/tcp"; NULL when none */
	char **volumes;	      /* cleaned absolute paths; NULL when none */
	char **labels;	      /* key, value, key, value, ...; NULL when none */
	int stop_signal;      /* a signal number; 0 when absent */
} CrispImageConfig;

/* Parses at most CRISP_IMAGE_CONFIG_MAX_SIZE bytes; *ret written only on success. */
int crisp_image_config_parse(const void *data, size_t size, CrispImageConfig *ret,
			     CrispError **err);
void crisp_image_config_done(CrispImageConfig *c);

/* The value of a label, or NULL. */
const char *crisp_image_config_label(const CrispImageConfig *c, const char *key);

/*
 * Checks the config against the manifest it came with: one diff_id per
 * layer.  The pull calls this after fetching both.
 */
int crisp_image_config_check_layers(const CrispImageConfig *c, const CrispManifest *m,
				    CrispError **err);

/* Parses a StopSignal value; 1..SIGRTMAX, or -EINVAL. */
int crisp_signal_parse(const char *s, int *ret);

#endif
