/*
 * fuzz_manifest.c - imaged's parsers of registry data.
 *
 * The first byte selects the parser and the rest is its input:
 *
 *   byte & 7 == 0  crisp_manifest_parse (image manifest)
 *               1  crisp_index_parse, then choosing several platforms
 *               2  crisp_image_config_parse
 *               3  crisp_reference_parse (text up to the first NUL)
 *               4  crisp_digest_parse and the streaming verifier
 *            5..7  crisp_manifest_document_parse
 *
 * For the JSON parsers, (byte >> 3) picks the Content-Type passed along
 * (none, each manifest type, application/json, schema 1, a foreign one).
 *
 * Besides the sanitizers, the harness checks the contracts: an error is set
 * exactly when a call fails; everything returned is within the documented
 * limits; digests returned can become path components; volumes and the
 * working directory are clean absolute paths; and a reference's printed
 * forms parse back to the same reference.
 */
#include "digest.h"
#include "image_config.h"
#include "manifest.h"
#include "parse_util.h"
#include "reference.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)

static const char *const content_types[] = {
	NULL,
	CRISP_MEDIA_TYPE_OCI_MANIFEST,
	CRISP_MEDIA_TYPE_OCI_INDEX,
	CRISP_MEDIA_TYPE_DOCKER_MANIFEST,
	CRISP_MEDIA_TYPE_DOCKER_LIST,
	"application/json",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	"text/html",
};

static void check_result(int r, CrispError *err)
{
	CHECK((r < 0) == (err != NULL));
	CHECK(!err || err->message);
}

static void check_digest(const CrispDigest *d)
{
	char *path = NULL;
	CHECK(crisp_digest_path_component(d, &path) == 0);
	CHECK(strncmp(path, "sha", 3) == 0 && !strstr(path, ".."));
	free(path);
}

static void check_descriptor(const CrispDescriptor *d, int64_t max)
{
	CHECK(d->media_type && *d->media_type);
	CHECK(d->size >= 0 && d->size <= max);
	check_digest(&d->digest);
	if (d->has_platform)
		CHECK(d->platform.os && d->platform.architecture);
}

static void check_manifest(const CrispManifest *m)
{
	CHECK(m->kind == CRISP_MANIFEST_OCI_MANIFEST || m->kind == CRISP_MANIFEST_DOCKER_MANIFEST);
	CHECK(m->n_layers <= CRISP_MANIFEST_MAX_LAYERS);
	check_descriptor(&m->config, CRISP_IMAGE_CONFIG_MAX_SIZE);
	for (size_t i = 0; i < m->n_layers; i++)
		check_descriptor(&m->layers[i], CRISP_LAYER_MAX_SIZE);
}

static void check_index(const CrispIndex *ix)
{
	static const char *const platforms[][3] = {
		{ "linux", "amd64", NULL }, { "linux", "arm64", NULL }, { "linux", "arm", "v6" },
		{ "linux", "arm", "v8" },   { "linux", "amd64", "v3" }, { "windows", "386", NULL },
	};

	CHECK(crisp_manifest_kind_is_index(ix->kind));
	CHECK(ix->n_manifests <= CRISP_INDEX_MAX_MANIFESTS);
	for (size_t i = 0; i < ix->n_manifests; i++)
		check_descriptor(&ix->manifests[i], CRISP_MANIFEST_MAX_SIZE);
	for (size_t i = 0; i < ELEMENTSOF(platforms); i++) {
		CrispError *err = NULL;
		const CrispDescriptor *d = NULL;
		int r = crisp_index_choose_platform(ix, platforms[i][0], platforms[i][1],
						    platforms[i][2], &d, &err);
		check_result(r, err);
		if (r >= 0)
			CHECK(d >= ix->manifests && d < ix->manifests + ix->n_manifests &&
			      d->has_platform);
		else
			CHECK(err->code == CRISP_ERR_NOT_FOUND);
		crisp_error_free(err);
	}
}

static void check_clean_path(const char *p, bool allow_root)
{
	char *again = NULL;
	const char *reason = NULL;
	CHECK(p[0] == '/');
	CHECK(!strstr(p, "/../") && !strstr(p, "//"));
	/* Cleaning is idempotent. */
	CHECK(imaged_clean_absolute_path(p, allow_root, &again, &reason) == 0);
	CHECK(strcmp(again, p) == 0);
	free(again);
}

static void check_config(const CrispImageConfig *c)
{
	CHECK(c->architecture && c->os);
	CHECK(c->n_diff_ids <= CRISP_MANIFEST_MAX_LAYERS);
	for (size_t i = 0; i < c->n_diff_ids; i++)
		check_digest(&c->diff_ids[i]);
	for (char **e = c->env; e && *e; e++)
		CHECK(strchr(*e, '=') && **e != '=');
	for (char **v = c->volumes; v && *v; v++)
		check_clean_path(*v, false);
	if (c->working_dir)
		check_clean_path(c->working_dir, true);
	CHECK(strv_length(c->labels) % 2 == 0);
	CHECK(c->stop_signal >= 0 && c->stop_signal <= 64);
}

static void reference_roundtrip(const char *s, const char *want)
{
	CrispReference again;
	CrispError *err = NULL;
	int r = crisp_reference_parse(s, &again, &err);
	check_result(r, err);
	CHECK(r == 0);
	char *s2 = crisp_reference_string(&again);
	CHECK(strcmp(s2, want) == 0);
	free(s2);
	crisp_reference_done(&again);
}

static void fuzz_reference(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	CHECK(text);
	memcpy(text, data, size);
	text[size] = '\0';

	CrispReference ref;
	CrispError *err = NULL;
	int r = crisp_reference_parse(text, &ref, &err);
	check_result(r, err);
	if (r >= 0) {
		CHECK(ref.domain && ref.path && (ref.tag || crisp_digest_is_set(&ref.digest)));
		char *repo = crisp_reference_repository(&ref);
		CHECK(strlen(repo) <= CRISP_REFERENCE_NAME_MAX);
		char *s = crisp_reference_string(&ref);
		char *f = crisp_reference_familiar(&ref);
		reference_roundtrip(s, s);
		reference_roundtrip(f, s);
		(void)crisp_reference_is_loopback(&ref);
		if (crisp_digest_is_set(&ref.digest))
			check_digest(&ref.digest);
		free(repo);
		free(s);
		free(f);
		crisp_reference_done(&ref);
	}
	crisp_error_free(err);
	free(text);
}

static void fuzz_digest(const uint8_t *data, size_t size)
{
	/* The first line is the digest, the rest the content. */
	const uint8_t *nl = memchr(data, '\n', size);
	size_t len = nl ? (size_t)(nl - data) : size;
	char *text = malloc(len + 1);
	CHECK(text);
	memcpy(text, data, len);
	text[len] = '\0';

	CrispDigest d;
	CrispError *err = NULL;
	int r = crisp_digest_parse(text, &d, &err);
	check_result(r, err);
	if (r >= 0) {
		CHECK(strcmp(d.string, text) == 0);
		check_digest(&d);
		const uint8_t *content = nl ? nl + 1 : data + size;
		size_t n = (size_t)(data + size - content);
		CrispDigestVerifier v = CRISP_DIGEST_VERIFIER_INIT;
		/* Right, unknown, or one short of the content's size. */
		int64_t expect = n % 3 == 0 ? (int64_t)n : n % 3 == 1 ? -1 : (int64_t)n - 1;
		CHECK(crisp_digest_verifier_init(&v, &d, expect, &err) == 0);
		size_t half = n / 2;
		r = crisp_digest_verifier_update(&v, content, half, &err);
		if (r >= 0)
			r = crisp_digest_verifier_update(&v, content + half, n - half, &err);
		if (r >= 0)
			r = crisp_digest_verifier_check(&v, &err);
		check_result(r, err);
		crisp_digest_verifier_done(&v);
	}
	crisp_error_free(err);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	const char *ct = content_types[(sel >> 3) % ELEMENTSOF(content_types)];
	data++;
	size--;

	CrispError *err = NULL;
	int r;
	switch (sel & 7) {
	case 0: {
		CrispManifest m;
		r = crisp_manifest_parse(ct, data, size, &m, &err);
		check_result(r, err);
		if (r >= 0) {
			check_manifest(&m);
			crisp_manifest_done(&m);
		}
		break;
	}
	case 1: {
		CrispIndex ix;
		r = crisp_index_parse(ct, data, size, &ix, &err);
		check_result(r, err);
		if (r >= 0) {
			check_index(&ix);
			crisp_index_done(&ix);
		}
		break;
	}
	case 2: {
		CrispImageConfig c;
		r = crisp_image_config_parse(data, size, &c, &err);
		check_result(r, err);
		if (r >= 0) {
			check_config(&c);
			crisp_image_config_done(&c);
		}
		break;
	}
	case 3:
		fuzz_reference(data, size);
		break;
	case 4:
		fuzz_digest(data, size);
		break;
	default: {
		CrispManifestDocument doc;
		r = crisp_manifest_document_parse(ct, data, size, &doc, &err);
		check_result(r, err);
		if (r >= 0) {
			if (crisp_manifest_kind_is_index(doc.kind))
				check_index(&doc.index);
			else
				check_manifest(&doc.manifest);
			crisp_manifest_document_done(&doc);
		}
		break;
	}
	}
	crisp_error_free(err);
	return 0;
}
