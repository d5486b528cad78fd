/*
 * crisp_fetch - test tool for the registry client (imaged/registry.c).
 *
 *   crisp_fetch [--insecure HOST] [--ca-dir DIR] [--user U --password P]
 *               [--progress-timeout S] [--mirror HOST=MIRROR] REF OUTDIR
 *
 * Fetches the manifest, the config and the layers of REF into
 * OUTDIR/blobs/sha256/<hex> (a content store, store.h) and prints a JSON summary; on failure prints the
 * error and exits 1.
 */
#include "config.h"
#include "error.h"
#include "reference.h"
#include "registry.h"
#include "store.h"

#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/stat.h>

static int fail(CrispError *e)
{
	fprintf(stderr, "crisp_fetch: %s\n", e ? e->message : "failed");
	crisp_error_free(e);
	return 1;
}

static void add_mirror(CrispConfig *c, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq) {
		fprintf(stderr, "crisp_fetch: --mirror wants HOST=MIRROR\n");
		exit(2);
	}
	_cleanup_free_ char *host = xstrndup(arg, eq - arg);
	CrispRegistryHost *h = NULL;
	for (size_t i = 0; i < c->n_registry_hosts; i++)
		if (strcmp(c->registry_hosts[i].host, host) == 0)
			h = &c->registry_hosts[i];
	if (!h) {
		c->registry_hosts =
			xrealloc(c->registry_hosts, (c->n_registry_hosts + 1) * sizeof(*h));
		h = &c->registry_hosts[c->n_registry_hosts++];
		*h = (CrispRegistryHost){ .host = xstrdup(host) };
		h->mirrors = xcalloc(1, sizeof(char *));
	}
	strv_push(&h->mirrors, eq + 1);
}

static int mkdir_p(const char *path)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = 0;
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	if (mkdir(p, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "insecure", required_argument, NULL, 'i' },
		{ "ca-dir", required_argument, NULL, 'c' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'p' },
		{ "progress-timeout", required_argument, NULL, 't' },
		{ "mirror", required_argument, NULL, 'm' },
		{ 0 },
	};
	_cleanup_config_ CrispConfig config;
	crisp_config_init_defaults(&config);
	CrispRegistryAuth auth = { 0 };
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
		switch (o) {
		case 'i':
			strv_push(&config.insecure_registries, optarg);
			break;
		case 'c':
			free(config.registry_certs_dir);
			config.registry_certs_dir = xstrdup(optarg);
			break;
		case 'u':
			auth.username = optarg;
			break;
		case 'p':
			auth.password = optarg;
			break;
		case 't':
			config.pull_progress_timeout = strtoll(optarg, NULL, 10);
			break;
		case 'm':
			add_mirror(&config, optarg);
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: crisp_fetch [options] REF OUTDIR\n");
		return 2;
	}
	const char *outdir = argv[optind + 1];

	CrispError *err = NULL;
	int r = mkdir_p(outdir);
	if (r < 0) {
		fprintf(stderr, "crisp_fetch: mkdir %s: %s\n", outdir, strerror(-r));
		return 1;
	}
	_cleanup_store_ CrispStore *store = NULL;
	if (crisp_store_open(outdir, &store, &err) < 0)
		return fail(err);

	_cleanup_registry_client_ CrispRegistryClient *client = NULL;
	if (crisp_registry_client_new(&config, &auth, &client, &err) < 0)
		return fail(err);
	CrispReference ref;
	if (crisp_reference_parse(argv[optind], &ref, &err) < 0)
		return fail(err);
	CrispRegistryImage img;
	if (crisp_registry_fetch_manifest(client, &ref, &img, &err) < 0) {
		crisp_reference_done(&ref);
		return fail(err);
	}
	int rc = 0;
	r = crisp_store_fetch_blob(store, client, &ref, &img.manifest.config, &err);
	for (size_t i = 0; r >= 0 && i < img.manifest.n_layers; i++)
		r = crisp_store_fetch_blob(store, client, &ref, &img.manifest.layers[i], &err);
	if (r < 0) {
		rc = fail(err);
	} else {
		json_t *layers = json_array();
		for (size_t i = 0; i < img.manifest.n_layers; i++)
			json_array_append_new(layers,
					      json_string(img.manifest.layers[i].digest.string));
		_cleanup_free_ char *platform =
			img.platform.os ? crisp_platform_string(&img.platform) : NULL;
		json_t *j = json_pack(
			"{s:s, s:s, s:s, s:o, s:s?}", "repo_digest", img.repo_digest.string,
			"manifest_digest", img.manifest_digest.string, "config",
			img.manifest.config.digest.string, "layers", layers, "platform", platform);
		char *s = json_dumps(j, JSON_SORT_KEYS);
		printf("%s\n", s);
		free(s);
		json_decref(j);
	}
	crisp_registry_image_done(&img);
	crisp_reference_done(&ref);
	return rc;
}
