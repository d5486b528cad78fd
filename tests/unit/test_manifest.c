/*
 * test_manifest.c - what imaged accepts from a registry: digests and the
 * streaming verifier (imaged/digest.c), manifests and indexes
 * (imaged/manifest.c, imaged/platform.c) and image configs
 * (imaged/image_config.c).
 *
 * Each parser gets well-formed documents of every accepted kind, then the
 * documents a broken or hostile registry could send: wrong types, huge and
 * negative numbers, duplicate keys, digests meant as paths, truncated JSON,
 * nesting bombs, invalid UTF-8, mismatched media types, schema 1, and
 * values that would reach host decisions (volumes with "..").
 */
#include "test_helpers.h"

#include "digest.h"
#include "image_config.h"
#include "manifest.h"

#include <signal.h>
#include <stdio.h>

#define HEX_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_B "1123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_C "2123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define HEX_D "3123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DG_A "sha256:" HEX_A
#define DG_B "sha256:" HEX_B
#define DG_C "sha256:" HEX_C
#define DG_D "sha256:" HEX_D

#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define MT_TAR_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_TAR_ZST "application/vnd.oci.image.layer.v1.tar+zstd"
#define MT_TAR "application/vnd.oci.image.layer.v1.tar"
#define MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define CONFIG_DESC(mt) "{\"mediaType\":\"" mt "\",\"digest\":\"" DG_A "\",\"size\":1234}"
#define LAYER_DESC(mt, dg, size)                                                                   \
	"{\"mediaType\":\"" mt "\",\"digest\":\"" dg "\",\"size\":" size "}"

static const char oci_manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
	"\"config\":" CONFIG_DESC(
		MT_OCI_CONFIG) ","
			       "\"layers\":[" LAYER_DESC(MT_TAR_GZ, DG_B, "32654") "," LAYER_DESC(
				       MT_TAR_ZST, DG_C,
				       "17179869184") "," LAYER_DESC(MT_TAR, DG_D,
								     "0") "],"
									  "\"annotations\":{\"org."
									  "opencontainers.image."
									  "created\":\"2024-01-"
									  "01T00:00:00Z\"},"
									  "\"subject\":{"
									  "\"mediaType\":"
									  "\"" MT_OCI_MANIFEST
									  "\",\"digest\":\"" DG_A
									  "\",\"size\":1},"
									  "\"artifactType\":"
									  "\"application/"
									  "vnd.example.thing\"}";

static const char docker_manifest[] =
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
	"\"config\":" CONFIG_DESC(MT_DOCKER_CONFIG) ","
						    "\"layers\":[" LAYER_DESC(MT_DOCKER_LAYER, DG_B,
									      "100") "]}";

#define PLATFORM_ENTRY(mt, dg, os, arch, variant_json)                                             \
	"{\"mediaType\":\"" mt "\",\"digest\":\"" dg "\",\"size\":500,"                            \
	"\"platform\":{\"os\":\"" os "\",\"architecture\":\"" arch "\"" variant_json "}}"

static const char oci_index[] =
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
	/* An attestation manifest, as buildkit writes them. */
	PLATFORM_ENTRY(MT_OCI_MANIFEST, DG_D, "unknown", "unknown", "") "," PLATFORM_ENTRY(
		MT_OCI_MANIFEST, DG_A, "linux", "amd64",
		"") "," PLATFORM_ENTRY(MT_OCI_MANIFEST, DG_B, "linux", "arm64",
				       ",\"variant\":\"v8\"") "," PLATFORM_ENTRY(MT_OCI_MANIFEST,
										 DG_C, "linux",
										 "arm",
										 ",\"variant\":"
										 "\"v7\"") ","
											   /* No platform: allowed in an OCI index, never chosen. */
											   "{\"medi"
											   "aType\""
											   ":"
											   "\"" MT_OCI_MANIFEST
											   "\","
											   "\"diges"
											   "t\":"
											   "\"" DG_A
											   "\","
											   "\"size"
											   "\":1}"
											   "]}";

static const char docker_list[] =
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST
	"\",\"manifests\":[" PLATFORM_ENTRY(MT_DOCKER_MANIFEST, DG_A, "linux", "amd64",
					    "") "," PLATFORM_ENTRY(MT_DOCKER_MANIFEST, DG_B,
								   "linux", "arm",
								   ",\"variant\":\"v6\"") "]}";

/* ---- digests ---------------------------------------------------------- */

static void test_digest_parse(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispDigest d;

	assert_int_equal(crisp_digest_parse(DG_A, &d, &err), 0);
	assert_int_equal(d.algorithm, CRISP_DIGEST_SHA256);
	assert_string_equal(d.string, DG_A);
	assert_string_equal(crisp_digest_hex(&d), HEX_A);
	assert_string_equal(crisp_digest_algorithm_name(d.algorithm), "sha256");

	_cleanup_free_ char *path = NULL;
	assert_int_equal(crisp_digest_path_component(&d, &path), 0);
	assert_string_equal(path, "sha256/" HEX_A);

	CrispDigest e;
	assert_int_equal(crisp_digest_parse("sha512:" HEX_A HEX_B, &e, &err), 0);
	assert_int_equal(e.algorithm, CRISP_DIGEST_SHA512);
	assert_false(crisp_digest_equal(&d, &e));
	CrispDigest copy = d;
	assert_true(crisp_digest_equal(&d, &copy));
	assert_null(crisp_digest_algorithm_name(CRISP_DIGEST_NONE));

	static const struct {
		const char *s;
		const char *message;
	} bad[] = {
		{ "", "empty" },
		{ "sha256:../../etc", "not a hex digit" },
		{ "sha256:../../../../../../etc/passwd", "not a hex digit" },
		{ "sha256/" HEX_A, "prefix" },
		{ "sha256:" HEX_A "/x", "not a hex digit" },
		{ "sha256:" HEX_A "\n", "not a hex digit" },
		{ "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "lowercase" },
		{ "sha256:abc", "exactly 64" },
		{ "sha256:", "exactly 64" },
		{ "sha256:" HEX_A "0", "exactly 64" },
		{ "sha512:" HEX_A, "exactly 128" },
		{ "SHA256:" HEX_A, "not supported" },
		{ "sha384:" HEX_A, "not supported" },
		{ ":" HEX_A, "not supported" },
		{ "sha256+b64u:" HEX_A, "not supported" },
		{ HEX_A, "prefix" },
		{ "sha256:" HEX_A HEX_A HEX_A, "too long" },
		{ "sha256:\x1b[2J", "\\x1b[2J" },
	};
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		CrispDigest untouched = { .algorithm = CRISP_DIGEST_NONE };
		err = crisp_error_free(err);
		if (crisp_digest_parse(bad[i].s, &untouched, &err) >= 0)
			fail_msg("\"%s\" was accepted", bad[i].s);
		assert_error(err, CRISP_ERR_INVALID, bad[i].message);
		assert_false(crisp_digest_is_set(&untouched));
	}
	err = crisp_error_free(err);
	assert_int_equal(crisp_digest_parse(NULL, &d, &err), -EINVAL);
}

static void test_digest_path_forged(void **state)
{
	/* A CrispDigest filled by hand never becomes a path. */
	CrispDigest forged = { .algorithm = CRISP_DIGEST_SHA256 };
	char *path = NULL;

	strcpy(forged.string, "sha256:../../etc");
	assert_int_equal(crisp_digest_path_component(&forged, &path), -EINVAL);
	strcpy(forged.string, DG_A);
	forged.algorithm = CRISP_DIGEST_SHA512;
	assert_int_equal(crisp_digest_path_component(&forged, &path), -EINVAL);
	forged.algorithm = CRISP_DIGEST_NONE;
	assert_int_equal(crisp_digest_path_component(&forged, &path), -EINVAL);
	memset(forged.string, 'a', sizeof(forged.string)); /* no NUL */
	forged.algorithm = CRISP_DIGEST_SHA256;
	assert_int_equal(crisp_digest_path_component(&forged, &path), -EINVAL);
	assert_int_equal(crisp_digest_path_component(NULL, &path), -EINVAL);
	assert_null(path);
}

#define SHA256_EMPTY "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA512_ABC                                                                                 \
	"sha512:"                                                                                  \
	"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836"       \
	"ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"

static void test_digest_compute(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispDigest d, want;

	assert_int_equal(crisp_digest_compute(CRISP_DIGEST_SHA256, "", 0, &d, &err), 0);
	assert_string_equal(d.string, SHA256_EMPTY);
	assert_int_equal(crisp_digest_compute(CRISP_DIGEST_SHA256, NULL, 0, &d, &err), 0);
	assert_string_equal(d.string, SHA256_EMPTY);
	assert_int_equal(crisp_digest_compute(CRISP_DIGEST_SHA512, "abc", 3, &d, &err), 0);
	assert_string_equal(d.string, SHA512_ABC);

	assert_int_equal(crisp_digest_parse(SHA512_ABC, &want, &err), 0);
	assert_int_equal(crisp_digest_verify_buffer(&want, "abc", 3, &err), 0);
	assert_int_equal(crisp_digest_verify_buffer(&want, "abd", 3, &err), -EBADMSG);
	assert_error(err, CRISP_ERR_INVALID, "does not match its digest: expected " SHA512_ABC);
	err = crisp_error_free(err);
	assert_true(crisp_digest_compute(CRISP_DIGEST_NONE, "", 0, &d, &err) < 0);
	assert_error(err, CRISP_ERR_INTERNAL, "no such digest algorithm");
}

static void test_digest_verifier(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispDigest want, got;
	char data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7);
	assert_int_equal(crisp_digest_compute(CRISP_DIGEST_SHA256, data, sizeof(data), &want, &err),
			 0);

	/* Chunks of every size add up to the same digest. */
	for (size_t chunk = 1; chunk <= 4096; chunk *= 4) {
		CrispDigestVerifier v = CRISP_DIGEST_VERIFIER_INIT;
		assert_int_equal(crisp_digest_verifier_init(&v, &want, sizeof(data), &err), 0);
		for (size_t off = 0; off < sizeof(data); off += chunk) {
			size_t n = sizeof(data) - off < chunk ? sizeof(data) - off : chunk;
			assert_int_equal(crisp_digest_verifier_update(&v, data + off, n, &err), 0);
		}
		assert_int_equal(crisp_digest_verifier_update(&v, NULL, 0, &err), 0);
		assert_int_equal(crisp_digest_verifier_check(&v, &err), 0);
		crisp_digest_verifier_done(&v);
	}

	/* Size unknown (-1): only the digest is checked. */
	CrispDigestVerifier v = CRISP_DIGEST_VERIFIER_INIT;
	assert_int_equal(crisp_digest_verifier_init(&v, &want, -1, &err), 0);
	assert_int_equal(crisp_digest_verifier_update(&v, data, sizeof(data), &err), 0);
	assert_int_equal(crisp_digest_verifier_final(&v, &got, &err), 0);
	assert_true(crisp_digest_equal(&got, &want));
	/* Final twice, or update after final, is a caller bug with an error. */
	assert_true(crisp_digest_verifier_final(&v, &got, &err) < 0);
	assert_error(err, CRISP_ERR_INTERNAL, "final called twice");
	err = crisp_error_free(err);
	assert_true(crisp_digest_verifier_update(&v, data, 1, &err) < 0);
	err = crisp_error_free(err);
	crisp_digest_verifier_done(&v);

	/* Wrong content. */
	assert_int_equal(crisp_digest_verifier_init(&v, &want, sizeof(data), &err), 0);
	data[5000] ^= 1;
	assert_int_equal(crisp_digest_verifier_update(&v, data, sizeof(data), &err), 0);
	assert_int_equal(crisp_digest_verifier_check(&v, &err), -EBADMSG);
	assert_error(err, CRISP_ERR_INVALID, "does not match its digest");
	err = crisp_error_free(err);
	data[5000] ^= 1;
	crisp_digest_verifier_done(&v);

	/* Longer than the descriptor says: refused at the update that crosses it. */
	assert_int_equal(crisp_digest_verifier_init(&v, &want, 100, &err), 0);
	assert_int_equal(crisp_digest_verifier_update(&v, data, 100, &err), 0);
	assert_int_equal(crisp_digest_verifier_update(&v, data, 1, &err), -EFBIG);
	assert_error(err, CRISP_ERR_INVALID, "longer than the 100 bytes");
	err = crisp_error_free(err);
	crisp_digest_verifier_done(&v);

	/* Shorter. */
	assert_int_equal(crisp_digest_verifier_init(&v, &want, sizeof(data) + 1, &err), 0);
	assert_int_equal(crisp_digest_verifier_update(&v, data, sizeof(data), &err), 0);
	assert_int_equal(crisp_digest_verifier_check(&v, &err), -EBADMSG);
	assert_error(err, CRISP_ERR_INVALID, "is 10000 bytes, but its descriptor states 10001");
	err = crisp_error_free(err);
	crisp_digest_verifier_done(&v);

	/* Released without final; done twice; done on a fresh one. */
	assert_int_equal(crisp_digest_verifier_init(&v, &want, -1, &err), 0);
	crisp_digest_verifier_done(&v);
	crisp_digest_verifier_done(&v);
	CrispDigestVerifier fresh = CRISP_DIGEST_VERIFIER_INIT;
	crisp_digest_verifier_done(&fresh);
	crisp_digest_verifier_done(NULL);

	CrispDigest none = { .algorithm = CRISP_DIGEST_NONE };
	assert_true(crisp_digest_verifier_init(&v, &none, -1, &err) < 0);
	assert_error(err, CRISP_ERR_INTERNAL, "not set");
}

/* ---- manifests and indexes -------------------------------------------- */

static void manifest_ok(const char *content_type, const char *json, CrispManifest *m)
{
	_cleanup_error_ CrispError *err = NULL;
	if (crisp_manifest_parse(content_type, json, strlen(json), m, &err) < 0)
		fail_msg("manifest refused: %s\n%s", err->message, json);
}

static void index_ok(const char *content_type, const char *json, CrispIndex *ix)
{
	_cleanup_error_ CrispError *err = NULL;
	if (crisp_index_parse(content_type, json, strlen(json), ix, &err) < 0)
		fail_msg("index refused: %s\n%s", err->message, json);
}

/* The document (len bytes; SIZE_MAX: a string) must be refused with this code and message. */
static void document_bad_len(const char *content_type, const char *json, size_t len,
			     CrispErrorCode code, const char *message)
{
	_cleanup_error_ CrispError *err = NULL;
	if (len == SIZE_MAX)
		len = strlen(json);
	CrispManifestDocument doc = { .kind = CRISP_MANIFEST_DOCKER_SCHEMA1 };
	int r = crisp_manifest_document_parse(content_type, json, len, &doc, &err);
	if (r >= 0)
		fail_msg("accepted: %.*s", (int)(len > 300 ? 300 : len), json);
	assert_error(err, code, message);
	assert_int_equal(doc.kind, CRISP_MANIFEST_DOCKER_SCHEMA1); /* untouched */
}

static void document_bad(const char *content_type, const char *json, const char *message)
{
	document_bad_len(content_type, json, strlen(json), CRISP_ERR_INVALID, message);
}

static void test_manifest_oci(void **state)
{
	CrispManifest m;
	manifest_ok(MT_OCI_MANIFEST, oci_manifest, &m);
	assert_int_equal(m.kind, CRISP_MANIFEST_OCI_MANIFEST);
	assert_string_equal(m.config.media_type, MT_OCI_CONFIG);
	assert_string_equal(m.config.digest.string, DG_A);
	assert_int_equal(m.config.size, 1234);
	assert_int_equal(m.n_layers, 3);
	assert_string_equal(m.layers[0].digest.string, DG_B);
	assert_int_equal(m.layers[0].size, 32654);
	assert_int_equal(m.layers[0].compression, CRISP_LAYER_TAR_GZIP);
	assert_int_equal(m.layers[1].size, CRISP_LAYER_MAX_SIZE); /* the limit itself is fine */
	assert_int_equal(m.layers[1].compression, CRISP_LAYER_TAR_ZSTD);
	assert_int_equal(m.layers[2].size, 0);
	assert_int_equal(m.layers[2].compression, CRISP_LAYER_TAR);
	assert_false(m.layers[0].has_platform);
	crisp_manifest_done(&m);
	crisp_manifest_done(&m);

	/* Content-Type parameters and case, no Content-Type, application/json. */
	static const char *const types[] = {
		MT_OCI_MANIFEST "; charset=utf-8",
		" Application/VND.oci.image.manifest.v1+json ",
		NULL,
		"",
		"application/json",
		"application/octet-stream",
	};
	for (size_t i = 0; i < ELEMENTSOF(types); i++) {
		manifest_ok(types[i], oci_manifest, &m);
		crisp_manifest_done(&m);
	}

	/* No mediaType: the shape says image manifest.  No layers is an empty image. */
	manifest_ok(NULL,
		    "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(MT_OCI_CONFIG) ",\"layers\":[]}",
		    &m);
	assert_int_equal(m.kind, CRISP_MANIFEST_OCI_MANIFEST);
	assert_int_equal(m.n_layers, 0);
	crisp_manifest_done(&m);
	manifest_ok(MT_OCI_MANIFEST,
		    "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(MT_OCI_CONFIG) ",\"layers\":[]}",
		    &m);
	crisp_manifest_done(&m);
}

static void test_manifest_docker(void **state)
{
	CrispManifest m;
	manifest_ok(MT_DOCKER_MANIFEST, docker_manifest, &m);
	assert_int_equal(m.kind, CRISP_MANIFEST_DOCKER_MANIFEST);
	assert_string_equal(m.config.media_type, MT_DOCKER_CONFIG);
	assert_int_equal(m.n_layers, 1);
	assert_string_equal(m.layers[0].media_type, MT_DOCKER_LAYER);
	assert_int_equal(m.layers[0].compression, CRISP_LAYER_TAR_GZIP);
	crisp_manifest_done(&m);
	manifest_ok(NULL, docker_manifest, &m);
	crisp_manifest_done(&m);

	/* Docker schema 2 requires mediaType in the document. */
	document_bad(
		MT_DOCKER_MANIFEST,
		"{\"schemaVersion\":2,\"config\":" CONFIG_DESC(MT_DOCKER_CONFIG) ",\"layers\":[]}",
		"must state its mediaType");
}

static void test_document_kinds(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispManifestDocument doc;

	assert_int_equal(
		crisp_manifest_document_parse(NULL, oci_index, strlen(oci_index), &doc, &err), 0);
	assert_int_equal(doc.kind, CRISP_MANIFEST_OCI_INDEX);
	assert_int_equal(doc.index.n_manifests, 5);
	crisp_manifest_document_done(&doc);
	assert_int_equal(crisp_manifest_document_parse(MT_DOCKER_MANIFEST, docker_manifest,
						       strlen(docker_manifest), &doc, &err),
			 0);
	assert_int_equal(doc.kind, CRISP_MANIFEST_DOCKER_MANIFEST);
	assert_int_equal(doc.manifest.n_layers, 1);
	crisp_manifest_document_done(&doc);
	crisp_manifest_document_done(NULL);

	/* The strict entry points refuse the other kind. */
	CrispManifest m;
	CrispIndex ix;
	assert_true(crisp_manifest_parse(NULL, oci_index, strlen(oci_index), &m, &err) < 0);
	assert_error(err, CRISP_ERR_INVALID, "expected an image manifest, got an image index");
	err = crisp_error_free(err);
	assert_true(crisp_index_parse(NULL, oci_manifest, strlen(oci_manifest), &ix, &err) < 0);
	assert_error(err, CRISP_ERR_INVALID, "expected an image index");
	err = crisp_error_free(err);

	assert_int_equal(crisp_manifest_kind_from_media_type(MT_DOCKER_LIST),
			 CRISP_MANIFEST_DOCKER_LIST);
	assert_int_equal(crisp_manifest_kind_from_media_type("text/plain"), CRISP_MANIFEST_UNKNOWN);
	assert_int_equal(crisp_manifest_kind_from_media_type(NULL), CRISP_MANIFEST_UNKNOWN);
	assert_true(crisp_manifest_kind_is_index(CRISP_MANIFEST_OCI_INDEX));
	assert_false(crisp_manifest_kind_is_index(CRISP_MANIFEST_OCI_MANIFEST));
	assert_string_equal(crisp_manifest_kind_media_type(CRISP_MANIFEST_OCI_INDEX), MT_OCI_INDEX);
	assert_contains(CRISP_MANIFEST_ACCEPT, MT_DOCKER_LIST);
	assert_contains(CRISP_MANIFEST_ACCEPT, MT_OCI_MANIFEST);
}

static void test_media_type_mismatch(void **state)
{
	document_bad(MT_OCI_MANIFEST, docker_manifest,
		     "Content-Type " MT_OCI_MANIFEST " but the document's mediaType is "
		     "" MT_DOCKER_MANIFEST);
	document_bad(MT_OCI_INDEX, oci_manifest, "the document's mediaType is " MT_OCI_MANIFEST);
	document_bad(MT_DOCKER_MANIFEST, oci_index, "Content-Type " MT_DOCKER_MANIFEST);
	document_bad("text/html", oci_manifest, "Content-Type \"text/html\"");
	document_bad("text/html\x1b[0m", oci_manifest, "\"text/html\\x1b[0m\"");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example+json\","
		     "\"config\":" CONFIG_DESC(MT_OCI_CONFIG) ",\"layers\":[]}",
		     "mediaType \"application/vnd.example+json\" is not an image manifest");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"mediaType\":5,\"config\":" CONFIG_DESC(
			     MT_OCI_CONFIG) ",\"layers\":[]}",
		     "mediaType must be a string, not integer");
	/* A document must not read as both a manifest and an index. */
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(
			     MT_OCI_CONFIG) ",\"layers\":[],\"manifests\":[]}",
		     "do not tell an image manifest from an index");
	document_bad(MT_OCI_MANIFEST,
		     "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(
			     MT_OCI_CONFIG) ",\"layers\":[],\"manifests\":[]}",
		     "must not have a \"manifests\" member");
	document_bad(MT_OCI_INDEX, "{\"schemaVersion\":2,\"manifests\":[],\"layers\":[]}",
		     "must not have \"config\" or \"layers\"");
	document_bad(NULL, "{\"schemaVersion\":2}", "do not tell");
}

static void test_schema1(void **state)
{
	static const char schema1[] =
		"{\"schemaVersion\":1,\"name\":\"a/b\",\"tag\":\"1\",\"architecture\":\"amd64\","
		"\"fsLayers\":[{\"blobSum\":\"" DG_A
		"\"}],\"history\":[{\"v1Compatibility\":\"{}\"}],"
		"\"signatures\":[]}";
	const char *msg =
		"schema 1 manifests are not supported; push the image with a current tool";

	document_bad(NULL, schema1, msg);
	document_bad("application/vnd.docker.distribution.manifest.v1+prettyjws", schema1, msg);
	document_bad("application/vnd.docker.distribution.manifest.v1+json", oci_manifest, msg);
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution."
		     "manifest.v1+json\"}",
		     msg);
	document_bad(NULL, "{\"schemaVersion\":3,\"manifests\":[]}", "schemaVersion 3");
	document_bad(NULL, "{\"schemaVersion\":\"2\",\"manifests\":[]}",
		     "schemaVersion must be an integer, not string");
	document_bad(NULL, "{\"schemaVersion\":2.0,\"manifests\":[]}",
		     "must be an integer, not real number");
	document_bad(NULL, "{\"manifests\":[]}", "no schemaVersion");
}

static void test_json_hostile(void **state)
{
	/* Truncated at every length: never accepted, never a crash. */
	size_t n = strlen(oci_manifest);
	for (size_t i = 0; i < n; i++) {
		_cleanup_error_ CrispError *err = NULL;
		CrispManifestDocument doc;
		assert_true(crisp_manifest_document_parse(NULL, oci_manifest, i, &doc, &err) < 0);
		assert_non_null(err);
	}
	document_bad_len(NULL, "", 0, CRISP_ERR_INVALID, "not valid JSON");
	document_bad_len(NULL, NULL, 0, CRISP_ERR_INVALID, "not valid JSON");
	document_bad(NULL, "[]", "must be a JSON object, not a JSON array");
	document_bad(NULL, "{\"schemaVersion\":2} trailing", "not valid JSON");
	document_bad(NULL, "{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}",
		     "duplicate object key");
	document_bad(MT_DOCKER_MANIFEST,
		     "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
		     "\"config\":{\"mediaType\":\"" MT_DOCKER_CONFIG "\",\"digest\":\"" DG_A "\","
		     "\"digest\":\"" DG_B "\",\"size\":1},\"layers\":[]}",
		     "duplicate object key");
	/* Invalid UTF-8 and NUL characters. */
	document_bad(NULL, "{\"schemaVersion\":2,\"x\":\"\xff\xfe\",\"manifests\":[]}",
		     "unable to decode byte");
	document_bad(NULL, "{\"schemaVersion\":2,\"x\":\"\xc0\xaf\",\"manifests\":[]}",
		     "unable to decode byte");
	document_bad(NULL, "{\"schemaVersion\":2,\"x\":\"\\ud800\",\"manifests\":[]}",
		     "not valid JSON");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\\u0000x\","
		     "\"manifests\":[]}",
		     "not valid JSON");
	static const char with_nul[] = "{\"schemaVersion\":2,\0\"manifests\":[]}";
	document_bad_len(NULL, with_nul, sizeof(with_nul) - 1, CRISP_ERR_INVALID, "not valid JSON");
	/* Numbers out of every range. */
	document_bad(NULL, "{\"schemaVersion\":99999999999999999999999,\"manifests\":[]}",
		     "too big");
	document_bad(NULL, "{\"schemaVersion\":-2,\"manifests\":[]}", "schemaVersion -2");
	document_bad(NULL, "{\"schemaVersion\":1e400,\"manifests\":[]}", "not valid JSON");
}

static void test_json_bombs(void **state)
{
	/* Nesting far past the limit: refused by the pre-scan, not by recursion. */
	size_t depth = 200000;
	_cleanup_free_ char *bomb = xmalloc(depth * 2 + 64);
	size_t o = (size_t)sprintf(bomb, "{\"schemaVersion\":2,\"x\":");
	memset(bomb + o, '[', depth);
	o += depth;
	memset(bomb + o, ']', depth);
	o += depth;
	bomb[o++] = '}';
	document_bad_len(NULL, bomb, o, CRISP_ERR_INVALID, "deeper than 32 levels");

	/* Just under the limit is parsed (and the unknown member ignored). */
	_cleanup_free_ char *deep =
		xasprintf("{\"schemaVersion\":2,\"x\":%.*s%.*s,\"manifests\":[]}", 31,
			  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", 31,
			  "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	CrispIndex ix;
	index_ok(NULL, deep, &ix);
	assert_int_equal(ix.n_manifests, 0);
	crisp_index_done(&ix);

	/* Brackets inside strings do not count. */
	_cleanup_free_ char *in_string = xmalloc(10000);
	o = (size_t)sprintf(in_string, "{\"schemaVersion\":2,\"x\":\"");
	memset(in_string + o, '[', 5000);
	o += 5000;
	o += (size_t)sprintf(in_string + o, "\\\"[\",\"manifests\":[]}");
	in_string[o] = '\0';
	index_ok(NULL, in_string, &ix);
	crisp_index_done(&ix);

	/* Many small values: refused before jansson builds a huge tree. */
	size_t count = 100000;
	_cleanup_free_ char *wide = xmalloc(count * 2 + 64);
	o = (size_t)sprintf(wide, "{\"schemaVersion\":2,\"manifests\":[],\"x\":[");
	for (size_t i = 0; i < count; i++) {
		wide[o++] = '1';
		wide[o++] = ',';
	}
	wide[o - 1] = ']';
	wide[o++] = '}';
	document_bad_len(NULL, wide, o, CRISP_ERR_RESOURCE_EXHAUSTED, "more than 65536 values");

	/* Over the size limit. */
	size_t big = CRISP_MANIFEST_MAX_SIZE + 1;
	_cleanup_free_ char *huge = xmalloc(big);
	memset(huge, ' ', big);
	memcpy(huge, "{\"schemaVersion\":2,\"manifests\":[]}", 35);
	document_bad_len(NULL, huge, big, CRISP_ERR_RESOURCE_EXHAUSTED,
			 "more than the limit of 4194304");
	/* At the limit it is fine (whitespace is legal JSON). */
	huge[big - 1] = '\0';
	index_ok(NULL, huge, &ix);
	crisp_index_done(&ix);
}

#define MANIFEST_WITH_LAYER(layer)                                                                 \
	"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST                                    \
	"\",\"config\":" CONFIG_DESC(MT_OCI_CONFIG) ",\"layers\":[" layer "]}"

static void test_descriptors_hostile(void **state)
{
	static const struct {
		const char *layer;
		CrispErrorCode code;
		const char *message;
	} cases[] = {
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "-1"), CRISP_ERR_INVALID,
		  "layers[0].size is negative (-1)" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "17179869185"), CRISP_ERR_RESOURCE_EXHAUSTED,
		  "layers[0].size is 17179869185, more than the limit" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "9223372036854775807"), CRISP_ERR_RESOURCE_EXHAUSTED,
		  "more than the limit" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "-9223372036854775808"), CRISP_ERR_INVALID,
		  "negative" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "9223372036854775808"), CRISP_ERR_INVALID,
		  "too big" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "1e3"), CRISP_ERR_INVALID,
		  "layers[0].size must be an integer, not real number" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "1.0"), CRISP_ERR_INVALID, "not real number" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "\"5\""), CRISP_ERR_INVALID, "not string" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "true"), CRISP_ERR_INVALID, "not boolean" },
		{ LAYER_DESC(MT_TAR_GZ, DG_B, "null"), CRISP_ERR_INVALID,
		  "layers[0].size is missing" },
		{ LAYER_DESC(MT_TAR_GZ, "sha256:../../etc", "1"), CRISP_ERR_INVALID,
		  "layers[0].digest: invalid digest \"sha256:../../etc\"" },
		{ LAYER_DESC(
			  MT_TAR_GZ,
			  "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
			  "1"),
		  CRISP_ERR_INVALID, "lowercase" },
		{ LAYER_DESC(MT_TAR_GZ, "md5:abc", "1"), CRISP_ERR_INVALID, "not supported" },
		{ "{\"mediaType\":\"" MT_TAR_GZ "\",\"size\":1}", CRISP_ERR_INVALID,
		  "layers[0].digest is missing" },
		{ "{\"mediaType\":\"" MT_TAR_GZ "\",\"digest\":[],\"size\":1}", CRISP_ERR_INVALID,
		  "layers[0].digest must be a string, not array" },
		{ "{\"digest\":\"" DG_B "\",\"size\":1}", CRISP_ERR_INVALID,
		  "layers[0].mediaType is missing" },
		{ LAYER_DESC("not a media type", DG_B, "1"), CRISP_ERR_INVALID,
		  "is not a media type" },
		{ LAYER_DESC("application/", DG_B, "1"), CRISP_ERR_INVALID, "is not a media type" },
		{ LAYER_DESC("a/b/c", DG_B, "1"), CRISP_ERR_INVALID, "is not a media type" },
		{ LAYER_DESC("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", DG_B,
			     "1"),
		  CRISP_ERR_INVALID, "non-distributable (foreign) layer" },
		{ LAYER_DESC("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", DG_B,
			     "1"),
		  CRISP_ERR_INVALID, "non-distributable" },
		{ LAYER_DESC("application/vnd.example.model+gguf", DG_B, "1"), CRISP_ERR_INVALID,
		  "which crisp cannot unpack" },
		{ LAYER_DESC("Application/Vnd.Oci.Image.Layer.V1.Tar+gzip", DG_B, "1"),
		  CRISP_ERR_INVALID, "cannot unpack" },
		{ "\"" DG_B "\"", CRISP_ERR_INVALID, "layers[0] must be an object, not string" },
		{ "null", CRISP_ERR_INVALID, "layers[0] must be an object, not null" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_free_ char *json = xasprintf(
			"{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
			"\"config\":" CONFIG_DESC(MT_OCI_CONFIG) ",\"layers\":[" LAYER_DESC(
				MT_TAR, DG_A, "1") ",%s]}",
			cases[i].layer);
		/* The bad layer is the second one: the message must say so. */
		_cleanup_free_ char *want = xstrdup(cases[i].message);
		char *p = strstr(want, "layers[0]");
		if (p)
			p[7] = '1';
		document_bad_len(MT_OCI_MANIFEST, json, strlen(json), cases[i].code, want);
	}

	/* The config descriptor. */
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.example."
		     "config.v1+json\",\"digest\":\"" DG_A "\",\"size\":1},\"layers\":[]}",
		     "this is not a container image");
	document_bad_len(NULL,
			 "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" MT_OCI_CONFIG
			 "\",\"digest\":\"" DG_A "\",\"size\":8388609},\"layers\":[]}",
			 SIZE_MAX, CRISP_ERR_RESOURCE_EXHAUSTED, "config.size is 8388609");
	document_bad(MT_OCI_MANIFEST, "{\"schemaVersion\":2,\"config\":[],\"layers\":[]}",
		     "config must be an object, not array");
	document_bad(MT_OCI_MANIFEST, "{\"schemaVersion\":2,\"layers\":[]}", "config is missing");
	document_bad(
		MT_OCI_MANIFEST,
		"{\"schemaVersion\":2,\"config\":" CONFIG_DESC(MT_OCI_CONFIG) ",\"layers\":{}}",
		"layers must be an array, not object");
	document_bad(MT_OCI_MANIFEST,
		     "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(MT_OCI_CONFIG) "}",
		     "layers is missing");
}

static void test_layer_count(void **state)
{
	for (size_t count = 128; count <= 129; count++) {
		size_t cap = 200 * count + 1000, o = 0;
		_cleanup_free_ char *json = xmalloc(cap);
		o += (size_t)snprintf(json + o, cap - o,
				      "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(
					      MT_OCI_CONFIG) ",\"layers\":[");
		for (size_t i = 0; i < count; i++)
			o += (size_t)snprintf(json + o, cap - o,
					      "%s" LAYER_DESC(MT_TAR_GZ, DG_B, "1"), i ? "," : "");
		o += (size_t)snprintf(json + o, cap - o, "]}");

		_cleanup_error_ CrispError *err = NULL;
		CrispManifest m;
		int r = crisp_manifest_parse(NULL, json, o, &m, &err);
		if (count == 128) {
			assert_int_equal(r, 0);
			assert_int_equal(m.n_layers, 128);
			crisp_manifest_done(&m);
		} else {
			assert_true(r < 0);
			assert_error(err, CRISP_ERR_RESOURCE_EXHAUSTED,
				     "layers has 129 entries, more than the limit of 128");
		}
	}
}

static void test_index_parse(void **state)
{
	CrispIndex ix;
	index_ok(MT_OCI_INDEX, oci_index, &ix);
	assert_int_equal(ix.kind, CRISP_MANIFEST_OCI_INDEX);
	assert_int_equal(ix.n_manifests, 5);
	assert_true(ix.manifests[1].has_platform);
	assert_string_equal(ix.manifests[1].platform.os, "linux");
	assert_string_equal(ix.manifests[1].platform.architecture, "amd64");
	assert_null(ix.manifests[1].platform.variant);
	assert_string_equal(ix.manifests[2].platform.variant, "v8");
	assert_false(ix.manifests[4].has_platform);
	_cleanup_free_ char *p = crisp_platform_string(&ix.manifests[3].platform);
	assert_string_equal(p, "linux/arm/v7");
	crisp_index_done(&ix);
	crisp_index_done(&ix);

	index_ok(MT_DOCKER_LIST, docker_list, &ix);
	assert_int_equal(ix.kind, CRISP_MANIFEST_DOCKER_LIST);
	assert_int_equal(ix.n_manifests, 2);
	crisp_index_done(&ix);

	/* An empty index parses; choosing from it fails. */
	index_ok(NULL, "{\"schemaVersion\":2,\"manifests\":[]}", &ix);
	assert_int_equal(ix.kind, CRISP_MANIFEST_OCI_INDEX);
	crisp_index_done(&ix);

	/* Entries of the OCI index may be nested indexes or artifacts. */
	index_ok(NULL,
		 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_INDEX
		 "\",\"digest\":\"" DG_A "\",\"size\":3},{\"mediaType\":\"application/"
		 "vnd.example+json\",\"digest\":\"" DG_B "\",\"size\":3,\"annotations\":{}}]}",
		 &ix);
	crisp_index_done(&ix);

	/* Hostile entries. */
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":[{"
		     "\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"digest\":\"" DG_A
		     "\",\"size\":3}]}",
		     "manifests[0].platform is missing");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"manifests\":[" PLATFORM_ENTRY(
			     MT_OCI_MANIFEST, DG_A, "linux", "amd64",
			     "") ",{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DG_A
				 "\",\"size\":3,\"platform\":{\"os\":"
				 "\"linux\"}}]}",
		     "manifests[1].platform.architecture is missing");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"manifests\":[" PLATFORM_ENTRY(
			     MT_OCI_MANIFEST, DG_A, "linux", "amd 64", "") "]}",
		     "manifests[0].platform.architecture \"amd 64\" is not a platform name");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"manifests\":[" PLATFORM_ENTRY(MT_OCI_MANIFEST, DG_A,
									   "", "amd64", "") "]}",
		     "platform.os \"\" is not a platform name");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"manifests\":[" PLATFORM_ENTRY(
			     MT_OCI_MANIFEST, DG_A, "linux", "amd64", ",\"variant\":7") "]}",
		     "platform.variant must be a string, not integer");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
		     "\",\"digest\":\"" DG_A "\",\"size\":3,\"platform\":\"linux/amd64\"}]}",
		     "manifests[0].platform must be an object, not string");
	document_bad_len(NULL,
			 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
			 "\",\"digest\":\"" DG_A "\",\"size\":4194305}]}",
			 SIZE_MAX, CRISP_ERR_RESOURCE_EXHAUSTED, "manifests[0].size");
	document_bad(NULL, "{\"schemaVersion\":2,\"manifests\":{}}",
		     "manifests must be an array, not object");
	document_bad(NULL,
		     "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
		     "\",\"digest\":\"sha256:" HEX_A "/../x\",\"size\":3}]}",
		     "manifests[0].digest: invalid digest");

	/* 1025 entries. */
	size_t count = CRISP_INDEX_MAX_MANIFESTS + 1, cap = count * 200 + 100, o = 0;
	_cleanup_free_ char *json = xmalloc(cap);
	o += (size_t)snprintf(json, cap, "{\"schemaVersion\":2,\"manifests\":[");
	for (size_t i = 0; i < count; i++)
		o += (size_t)snprintf(json + o, cap - o,
				      "%s{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DG_A
				      "\",\"size\":3}",
				      i ? "," : "");
	o += (size_t)snprintf(json + o, cap - o, "]}");
	document_bad_len(NULL, json, o, CRISP_ERR_RESOURCE_EXHAUSTED,
			 "manifests has 1025 entries, more than the limit of 1024");
}

static const char *choose(const CrispIndex *ix, const char *os, const char *arch,
			  const char *variant)
{
	_cleanup_error_ CrispError *err = NULL;
	const CrispDescriptor *d = NULL;
	if (crisp_index_choose_platform(ix, os, arch, variant, &d, &err) < 0) {
		assert_non_null(err);
		assert_int_equal(err->code, CRISP_ERR_NOT_FOUND);
		return NULL;
	}
	return d->digest.string;
}

static void test_choose_platform(void **state)
{
	CrispIndex ix;
	index_ok(NULL, oci_index, &ix);

	assert_string_equal(choose(&ix, "linux", "amd64", NULL), DG_A);
	assert_string_equal(choose(&ix, "linux", "x86_64", NULL), DG_A);
	assert_string_equal(choose(&ix, "linux", "amd64", "v1"), DG_A);
	assert_string_equal(choose(&ix, "Linux", "AMD64", ""), DG_A);
	/* A v3 host runs the baseline. */
	assert_string_equal(choose(&ix, "linux", "amd64", "v3"), DG_A);
	assert_string_equal(choose(&ix, "linux", "arm64", NULL), DG_B);
	assert_string_equal(choose(&ix, "linux", "arm64", "v8"), DG_B);
	assert_string_equal(choose(&ix, "linux", "arm64", "8"), DG_B);
	assert_string_equal(choose(&ix, "linux", "aarch64", NULL), DG_B);
	assert_null(choose(&ix, "linux", "arm64", "v9"));
	assert_string_equal(choose(&ix, "linux", "arm", "v7"), DG_C);
	assert_string_equal(choose(&ix, "linux", "arm", NULL), DG_C);
	assert_string_equal(choose(&ix, "linux", "armhf", NULL), DG_C);
	assert_string_equal(choose(&ix, "linux", "arm", "7"), DG_C);
	/* An arm/v8 host runs arm/v7 code; an arm/v6 host cannot. */
	assert_string_equal(choose(&ix, "linux", "arm", "v8"), DG_C);
	assert_null(choose(&ix, "linux", "arm", "v6"));
	assert_null(choose(&ix, "linux", "armel", NULL));
	assert_null(choose(&ix, "windows", "amd64", NULL));
	assert_null(choose(&ix, "linux", "riscv64", NULL));

	/* The host's own platform is in this index (x86-64 and arm64 builders). */
	const char *os, *arch, *variant;
	crisp_platform_host(&os, &arch, &variant);
	assert_string_equal(os, "linux");
	assert_non_null(arch);

	_cleanup_error_ CrispError *err = NULL;
	const CrispDescriptor *d = NULL;
	assert_true(crisp_index_choose_platform(&ix, "linux", "s390x", NULL, &d, &err) < 0);
	assert_error(err, CRISP_ERR_NOT_FOUND,
		     "the image index has no manifest for linux/s390x; it has unknown/unknown, "
		     "linux/amd64, linux/arm64/v8, linux/arm/v7");
	assert_null(d);
	err = crisp_error_free(err);
	assert_true(crisp_index_choose_platform(&ix, NULL, "amd64", NULL, &d, &err) < 0);
	crisp_index_done(&ix);

	/* The best match wins over an earlier worse one; ties go to the first. */
	index_ok(
		NULL,
		"{\"schemaVersion\":2,\"manifests\":[" PLATFORM_ENTRY(MT_OCI_MANIFEST, DG_A, "linux", "arm", ",\"variant\":\"v5\"") "," PLATFORM_ENTRY(
			MT_OCI_MANIFEST, DG_B, "linux", "arm",
			",\"variant\":\"v6\"") "," PLATFORM_ENTRY(MT_OCI_MANIFEST, DG_C, "linux",
								  "arm",
								  ",\"variant\":\"6\"") "," PLATFORM_ENTRY(MT_OCI_INDEX,
													   DG_D,
													   "linux",
													   "arm",
													   ",\"variant\":\"v7\"") "]}",
		&ix);
	assert_string_equal(choose(&ix, "linux", "arm", "v7"), DG_B);
	assert_string_equal(choose(&ix, "linux", "arm", "v5"), DG_A);
	crisp_index_done(&ix);

	/* No platform-specific manifests at all. */
	index_ok(NULL, "{\"schemaVersion\":2,\"manifests\":[]}", &ix);
	err = crisp_error_free(err);
	assert_true(crisp_index_choose_platform(&ix, "linux", "amd64", NULL, &d, &err) < 0);
	assert_error(err, CRISP_ERR_NOT_FOUND, "no platform-specific image manifests");
	crisp_index_done(&ix);
}

/* ---- image configs ---------------------------------------------------- */

static const char full_config[] =
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"variant\":\"v2\","
	"\"created\":\"2024-01-02T03:04:05.123456789Z\","
	"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DG_A "\",\"" DG_B "\"]},"
	"\"history\":[{\"created_by\":\"x\"}],"
	"\"config\":{\"User\":\"1000:1000\","
	"\"Env\":[\"PATH=/usr/bin:/bin\",\"EMPTY=\",\"A=b=c\"],"
	"\"Entrypoint\":[\"/bin/sh\",\"-c\"],\"Cmd\":[\"echo hi\"],"
	"\"WorkingDir\":\"/app/\","
	"\"ExposedPorts\":{\"80/tcp\":{},\"53/UDP\":{},\"8080\":{},\"9000-9010/sctp\":{}},"
	"\"Volumes\":{\"/data/\":{},\"/var//log/./x\":{},\"/data\":{}},"
	"\"Labels\":{\"org.example.a\":\"1\",\"b\":\"\"},"
	"\"StopSignal\":\"SIGQUIT\",\"Healthcheck\":{\"Test\":[\"NONE\"]}}}";

static void config_ok(const char *json, CrispImageConfig *c)
{
	_cleanup_error_ CrispError *err = NULL;
	if (crisp_image_config_parse(json, strlen(json), c, &err) < 0)
		fail_msg("config refused: %s\n%s", err->message, json);
}

static void assert_strv(char **v, const char *const *want, size_t n)
{
	assert_non_null(v);
	assert_int_equal(strv_length(v), n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(v[i], want[i]);
}

static void test_config_full(void **state)
{
	CrispImageConfig c;
	config_ok(full_config, &c);

	assert_string_equal(c.architecture, "amd64");
	assert_string_equal(c.os, "linux");
	assert_string_equal(c.variant, "v2");
	assert_string_equal(c.created, "2024-01-02T03:04:05.123456789Z");
	assert_int_equal(c.n_diff_ids, 2);
	assert_string_equal(c.diff_ids[1].string, DG_B);
	assert_string_equal(c.user, "1000:1000");
	assert_strv(c.env, (const char *const[]){ "PATH=/usr/bin:/bin", "EMPTY=", "A=b=c" }, 3);
	assert_strv(c.entrypoint, (const char *const[]){ "/bin/sh", "-c" }, 2);
	assert_strv(c.cmd, (const char *const[]){ "echo hi" }, 1);
	assert_string_equal(c.working_dir, "/app");
	assert_strv(c.exposed_ports,
		    (const char *const[]){ "80/tcp", "53/udp", "8080/tcp", "9000-9010/sctp" }, 4);
	/* Cleaned, and "/data/" and "/data" are one volume. */
	assert_strv(c.volumes, (const char *const[]){ "/data", "/var/log/x" }, 2);
	assert_strv(c.labels, (const char *const[]){ "org.example.a", "1", "b", "" }, 4);
	assert_string_equal(crisp_image_config_label(&c, "org.example.a"), "1");
	assert_string_equal(crisp_image_config_label(&c, "b"), "");
	assert_null(crisp_image_config_label(&c, "1"));
	assert_int_equal(c.stop_signal, SIGQUIT);

	_cleanup_error_ CrispError *err = NULL;
	CrispManifest m;
	manifest_ok(NULL,
		    "{\"schemaVersion\":2,\"config\":" CONFIG_DESC(
			    MT_OCI_CONFIG) ",\"layers\":[" LAYER_DESC(MT_TAR_GZ, DG_A,
								      "1") "," LAYER_DESC(MT_TAR_GZ,
											  DG_B,
											  "1") "]}",
		    &m);
	assert_int_equal(crisp_image_config_check_layers(&c, &m, &err), 0);
	crisp_manifest_done(&m);
	manifest_ok(MT_DOCKER_MANIFEST, docker_manifest, &m);
	assert_true(crisp_image_config_check_layers(&c, &m, &err) < 0);
	assert_error(err, CRISP_ERR_INVALID,
		     "lists 2 layers (rootfs.diff_ids) but the manifest has 1");
	crisp_manifest_done(&m);

	crisp_image_config_done(&c);
	crisp_image_config_done(&c);
	crisp_image_config_done(NULL);
}

static void test_config_minimal(void **state)
{
	CrispImageConfig c;
	config_ok("{\"architecture\":\"arm64\",\"os\":\"linux\","
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  &c);
	assert_null(c.variant);
	assert_null(c.created);
	assert_int_equal(c.n_diff_ids, 0);
	assert_null(c.user);
	assert_null(c.env);
	assert_null(c.entrypoint);
	assert_null(c.cmd);
	assert_null(c.working_dir);
	assert_null(c.exposed_ports);
	assert_null(c.volumes);
	assert_null(c.labels);
	assert_int_equal(c.stop_signal, 0);
	crisp_image_config_done(&c);

	/* null is "not set", [] is set and empty, a string is one argument; empty maps are none. */
	config_ok("{\"architecture\":\"arm64\",\"os\":\"linux\",\"created\":null,"
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
		  "\"config\":{\"User\":\"\",\"Env\":null,\"Entrypoint\":[],\"Cmd\":\"sh\","
		  "\"WorkingDir\":\"\",\"Volumes\":{},\"ExposedPorts\":null,\"Labels\":{},"
		  "\"StopSignal\":\"\"}}",
		  &c);
	assert_null(c.user);
	assert_null(c.env);
	assert_non_null(c.entrypoint);
	assert_int_equal(strv_length(c.entrypoint), 0);
	assert_strv(c.cmd, (const char *const[]){ "sh" }, 1);
	assert_null(c.working_dir);
	assert_null(c.volumes);
	assert_null(c.labels);
	crisp_image_config_done(&c);

	/* Timestamps with offsets; "/" as the working directory. */
	config_ok("{\"architecture\":\"arm64\",\"os\":\"linux\",\"created\":"
		  "\"1970-01-01T00:00:00+05:30\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},"
		  "\"config\":{\"WorkingDir\":\"/\"}}",
		  &c);
	assert_string_equal(c.working_dir, "/");
	crisp_image_config_done(&c);
}

static void config_bad_len(const char *json, size_t len, CrispErrorCode code, const char *message)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispImageConfig c = { .os = (char *)"untouched" };
	if (crisp_image_config_parse(json, len, &c, &err) >= 0)
		fail_msg("config accepted: %.*s", (int)(len > 300 ? 300 : len), json);
	assert_error(err, code, message);
	assert_string_equal(c.os, "untouched");
}

#define CONFIG_WITH(inner)                                                                         \
	"{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","            \
	"\"diff_ids\":[]},\"config\":{" inner "}}"

static void test_config_hostile(void **state)
{
	static const struct {
		const char *json;
		const char *message;
	} cases[] = {
		/* Volumes and WorkingDir reach mount decisions. */
		{ CONFIG_WITH("\"Volumes\":{\"/data/../../etc\":{}}"),
		  "config.Volumes entry \"/data/../../etc\" has a \"..\" component" },
		{ CONFIG_WITH("\"Volumes\":{\"/..\":{}}"), "has a \"..\" component" },
		{ CONFIG_WITH("\"Volumes\":{\"..\":{}}"), "is not an absolute path" },
		{ CONFIG_WITH("\"Volumes\":{\"data\":{}}"), "is not an absolute path" },
		{ CONFIG_WITH("\"Volumes\":{\"\":{}}"), "is not an absolute path" },
		{ CONFIG_WITH("\"Volumes\":{\"/\":{}}"), "is the root directory" },
		{ CONFIG_WITH("\"Volumes\":{\"//./\":{}}"), "is the root directory" },
		{ CONFIG_WITH("\"Volumes\":{\"/a\\nb\":{}}"), "\"/a\\x0ab\" contains a control" },
		{ CONFIG_WITH("\"Volumes\":[\"/data\"]"),
		  "config.Volumes must be an object, not array" },
		{ CONFIG_WITH("\"WorkingDir\":\"app\""),
		  "config.WorkingDir \"app\" is not an absolute path" },
		{ CONFIG_WITH("\"WorkingDir\":\"/a/../../b\""), "has a \"..\" component" },
		{ CONFIG_WITH("\"WorkingDir\":5"),
		  "config.WorkingDir must be a string, not integer" },
		/* Env: KEY=VALUE only. */
		{ CONFIG_WITH("\"Env\":[\"PATH=/bin\",\"FOO\"]"),
		  "config.Env entry \"FOO\" has no '='" },
		{ CONFIG_WITH("\"Env\":[\"=x\"]"), "has an empty variable name" },
		{ CONFIG_WITH("\"Env\":[\"\"]"), "has no '='" },
		{ CONFIG_WITH("\"Env\":[1]"), "config.Env[0] must be a string, not integer" },
		{ CONFIG_WITH("\"Env\":\"A=b\""), "config.Env must be an array, not string" },
		{ CONFIG_WITH("\"Env\":{\"A\":\"b\"}"), "must be an array, not object" },
		{ CONFIG_WITH("\"Cmd\":[\"a\",null]"), "config.Cmd[1] must be a string, not null" },
		{ CONFIG_WITH("\"Entrypoint\":{}"),
		  "config.Entrypoint must be an array of strings" },
		{ CONFIG_WITH("\"Entrypoint\":true"), "not boolean" },
		{ CONFIG_WITH("\"Labels\":{\"a\":1}"),
		  "config.Labels \"a\" must be a string, not integer" },
		{ CONFIG_WITH("\"Labels\":{\"a\\u001b\":{}}"), "\"a\\x1b\" must be a string" },
		{ CONFIG_WITH("\"Labels\":[]"), "config.Labels must be an object" },
		{ CONFIG_WITH("\"User\":\"root\\n\""),
		  "config.User \"root\\x0a\" contains a control" },
		{ CONFIG_WITH("\"User\":0"), "config.User must be a string, not integer" },
		{ CONFIG_WITH("\"StopSignal\":\"SIGFOO\""),
		  "config.StopSignal \"SIGFOO\" is not a signal" },
		{ CONFIG_WITH("\"StopSignal\":\"0\""), "is not a signal" },
		{ CONFIG_WITH("\"StopSignal\":\"65\""), "is not a signal" },
		{ CONFIG_WITH("\"StopSignal\":\"-9\""), "is not a signal" },
		{ CONFIG_WITH("\"StopSignal\":\"99999999999999999999\""), "is not a signal" },
		{ CONFIG_WITH("\"StopSignal\":15"), "must be a string, not integer" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"80/icmp\":{}}"),
		  "config.ExposedPorts entry \"80/icmp\" is not PORT" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"0/tcp\":{}}"), "is not PORT" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"65536\":{}}"), "is not PORT" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"http\":{}}"), "is not PORT" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"90-80/tcp\":{}}"), "is not PORT" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"80-/tcp\":{}}"), "is not PORT" },
		{ CONFIG_WITH("\"ExposedPorts\":{\"/tcp\":{}}"), "is not PORT" },
		{ CONFIG_WITH("\"Env\":[],\"Env\":[]"), "duplicate object key" },
		/* The top level. */
		{ "{\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  "architecture is missing" },
		{ "{\"architecture\":7,\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		  "\"diff_ids\":[]}}",
		  "architecture must be a string, not integer" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux; rm -rf /\",\"rootfs\":{\"type\":"
		  "\"layers\",\"diff_ids\":[]}}",
		  "os \"linux; rm -rf /\" is not a platform name" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\"}", "rootfs is missing" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"tar\","
		  "\"diff_ids\":[]}}",
		  "rootfs.type \"tar\" is not supported" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\"}}",
		  "rootfs.diff_ids is missing" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		  "\"diff_ids\":[\"" DG_A "\",\"sha256:../../etc\"]}}",
		  "rootfs.diff_ids[1]: invalid digest \"sha256:../../etc\"" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		  "\"diff_ids\":[5]}}",
		  "rootfs.diff_ids[0] must be a string, not integer" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"yesterday\","
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  "created \"yesterday\" is not an RFC 3339 date-time" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-13-01T00:00:"
		  "00Z\","
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  "is not an RFC 3339" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":\"2024-01-01T00:00:"
		  "00\","
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  "is not an RFC 3339" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"created\":0,"
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  "created must be a string, not integer" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":[],"
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
		  "config must be an object, not array" },
		{ "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		  "\"diff_ids\":[]},\"x\":\"\xed\xa0\x80\"}",
		  "unable to decode byte" },
		{ "{\"architecture\":\"amd64\"", "not valid JSON" },
		{ "", "not valid JSON" },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		config_bad_len(cases[i].json, strlen(cases[i].json), CRISP_ERR_INVALID,
			       cases[i].message);

	/* 129 diff_ids. */
	size_t cap = 129 * 80 + 200, o = 0;
	_cleanup_free_ char *json = xmalloc(cap);
	o += (size_t)snprintf(json, cap,
			      "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":"
			      "\"layers\",\"diff_ids\":[");
	for (size_t i = 0; i < 129; i++)
		o += (size_t)snprintf(json + o, cap - o, "%s\"" DG_A "\"", i ? "," : "");
	o += (size_t)snprintf(json + o, cap - o, "]}}");
	config_bad_len(json, o, CRISP_ERR_RESOURCE_EXHAUSTED, "more than the limit of 128");

	/* Over 8 MiB. */
	size_t big = CRISP_IMAGE_CONFIG_MAX_SIZE + 1;
	_cleanup_free_ char *huge = xmalloc(big);
	memset(huge, ' ', big);
	huge[0] = '{';
	huge[big - 1] = '}';
	config_bad_len(huge, big, CRISP_ERR_RESOURCE_EXHAUSTED, "image config is 8388609 bytes");

	/* Nesting inside an ignored member still counts. */
	_cleanup_free_ char *deep = xmalloc(200);
	o = (size_t)sprintf(deep, "{\"history\":");
	memset(deep + o, '[', 40);
	o += 40;
	memset(deep + o, ']', 40);
	o += 40;
	deep[o++] = '}';
	config_bad_len(deep, o, CRISP_ERR_INVALID, "deeper than 32 levels");

	/* Too many Env entries. */
	size_t n = CRISP_IMAGE_CONFIG_MAX_ITEMS + 1;
	cap = n * 8 + 300;
	_cleanup_free_ char *env = xmalloc(cap);
	o = (size_t)snprintf(env, cap,
			     "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{"
			     "\"type\":\"layers\",\"diff_ids\":[]},\"config\":{\"Env\":[");
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(env + o, cap - o, "%s\"A=1\"", i ? "," : "");
	o += (size_t)snprintf(env + o, cap - o, "]}}");
	config_bad_len(env, o, CRISP_ERR_RESOURCE_EXHAUSTED, "config.Env has 16385 entries");
}

static void test_signals(void **state)
{
	static const struct {
		const char *s;
		int want; /* 0: refused */
	} cases[] = {
		{ "9", SIGKILL },
		{ "15", SIGTERM },
		{ "TERM", SIGTERM },
		{ "SIGTERM", SIGTERM },
		{ "sigterm", SIGTERM },
		{ "SIGKILL", SIGKILL },
		{ "SIGWINCH", SIGWINCH },
		{ "SIGPWR", SIGPWR },
		{ "SIGSYS", SIGSYS },
		{ "64", 64 },
		{ "0", 0 },
		{ "65", 0 },
		{ "32", 0 },
		{ "33", 0 },
		{ "-1", 0 },
		{ "+9", 0 },
		{ "9x", 0 },
		{ "0009", 0 },
		{ "SIG", 0 },
		{ "SIGSIGTERM", 0 },
		{ "SIGFOO", 0 },
		{ "SIGRTMIN+99", 0 },
		{ "RTMIN-1", 0 },
		{ "RTMAX+1", 0 },
		{ "SIGRTMIN+", 0 },
		{ "", 0 },
		{ " SIGTERM", 0 },
	};
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int n = -1;
		int r = crisp_signal_parse(cases[i].s, &n);
		if (cases[i].want) {
			if (r < 0 || n != cases[i].want)
				fail_msg("\"%s\": got %d (r=%d), want %d", cases[i].s, n, r,
					 cases[i].want);
		} else if (r >= 0) {
			fail_msg("\"%s\" was accepted as %d", cases[i].s, n);
		}
	}
	int n = 0;
	assert_int_equal(crisp_signal_parse("SIGRTMIN", &n), 0);
	assert_int_equal(n, SIGRTMIN);
	assert_int_equal(crisp_signal_parse("SIGRTMIN+3", &n), 0);
	assert_int_equal(n, SIGRTMIN + 3);
	assert_int_equal(crisp_signal_parse("RTMAX-2", &n), 0);
	assert_int_equal(n, SIGRTMAX - 2);
	assert_int_equal(crisp_signal_parse(NULL, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digest_parse),	cmocka_unit_test(test_digest_path_forged),
		cmocka_unit_test(test_digest_compute),	cmocka_unit_test(test_digest_verifier),
		cmocka_unit_test(test_manifest_oci),	cmocka_unit_test(test_manifest_docker),
		cmocka_unit_test(test_document_kinds),	cmocka_unit_test(test_media_type_mismatch),
		cmocka_unit_test(test_schema1),		cmocka_unit_test(test_json_hostile),
		cmocka_unit_test(test_json_bombs),	cmocka_unit_test(test_descriptors_hostile),
		cmocka_unit_test(test_layer_count),	cmocka_unit_test(test_index_parse),
		cmocka_unit_test(test_choose_platform), cmocka_unit_test(test_config_full),
		cmocka_unit_test(test_config_minimal),	cmocka_unit_test(test_config_hostile),
		cmocka_unit_test(test_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
