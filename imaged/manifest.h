/*
 * manifest.h - image manifests and indexes from a registry.
 *
 * Accepted documents (schemaVersion 2, parsed with jansson, duplicate keys
 * refused): the OCI image manifest and image index, and Docker's image
 * manifest v2 schema 2 and manifest list.  Docker schema 1 is refused.
 *
 * Which kind a document is comes from the Content-Type the registry sent
 * and the document's own mediaType; when both name a kind they must agree.
 * A Content-Type of application/json or application/octet-stream, or none,
 * says nothing; an OCI document without mediaType is told by its shape.
 * An image manifest with a "manifests" member, or an index with "config" or
 * "layers", is refused: a document must not read as both.
 *
 * Everything that comes back is validated: digests (digest.h), sizes
 * within the limits below, media types well-formed, layer media types ones
 * crisp can unpack.  Unknown members are ignored, as the OCI spec asks;
 * "urls" and "annotations" are not read, and layers are always fetched from
 * the registry the manifest came from.  docs/IMAGES.md lists the formats.
 */
#ifndef CRISP_IMAGED_MANIFEST_H
#define CRISP_IMAGED_MANIFEST_H

#include "digest.h"
#include "error.h"

#include <stdbool.h>
#include <stdint.h>

#define CRISP_MEDIA_TYPE_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define CRISP_MEDIA_TYPE_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define CRISP_MEDIA_TYPE_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define CRISP_MEDIA_TYPE_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define CRISP_MEDIA_TYPE_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define CRISP_MEDIA_TYPE_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"

/* The Accept header a registry client sends for a manifest. */
#define CRISP_MANIFEST_ACCEPT                                                                      \
	CRISP_MEDIA_TYPE_OCI_INDEX ", " CRISP_MEDIA_TYPE_OCI_MANIFEST                              \
				   ", " CRISP_MEDIA_TYPE_DOCKER_LIST                               \
				   ", " CRISP_MEDIA_TYPE_DOCKER_MANIFEST

/* Limits on what a registry may send. */
#define CRISP_MANIFEST_MAX_SIZE (4 * 1024 * 1024)	 /* a manifest or index */
#define CRISP_IMAGE_CONFIG_MAX_SIZE (8 * 1024 * 1024)	 /* an image config */
#define CRISP_LAYER_MAX_SIZE (16LL * 1024 * 1024 * 1024) /* one compressed layer */
#define CRISP_MANIFEST_MAX_LAYERS 128
#define CRISP_INDEX_MAX_MANIFESTS 1024
#define CRISP_JSON_MAX_DEPTH 32
#define CRISP_MEDIA_TYPE_MAX 255
#define CRISP_PLATFORM_FIELD_MAX 64

typedef enum CrispManifestKind {
	CRISP_MANIFEST_UNKNOWN = 0,
	CRISP_MANIFEST_OCI_MANIFEST,
	CRISP_MANIFEST_OCI_INDEX,
	CRISP_MANIFEST_DOCKER_MANIFEST, /* image manifest v2, schema 2 */
	CRISP_MANIFEST_DOCKER_LIST,	/* manifest list v2 */
	CRISP_MANIFEST_DOCKER_SCHEMA1,	/* recognised only to be refused */
} CrispManifestKind;

typedef enum CrispLayerCompression {
	CRISP_LAYER_TAR = 0,
	CRISP_LAYER_TAR_GZIP,
	CRISP_LAYER_TAR_ZSTD,
} CrispLayerCompression;

typedef struct CrispPlatform {
	char *os;	    /* "linux" */
	char *architecture; /* "amd64", "arm64", "arm" */
	char *variant;	    /* "v8", "v7"; NULL when absent */
} CrispPlatform;

typedef struct CrispDescriptor {
	char *media_type;
	CrispDigest digest;
	int64_t size;
	CrispLayerCompression compression; /* layers only */
	bool has_platform;		   /* index entries only */
	CrispPlatform platform;
} CrispDescriptor;

/* An image manifest (OCI or Docker schema 2). */
typedef struct CrispManifest {
	CrispManifestKind kind;
	CrispDescriptor config;
	CrispDescriptor *layers; /* base layer first */
	size_t n_layers;
} CrispManifest;

/* An image index (OCI) or manifest list (Docker). */
typedef struct CrispIndex {
	CrispManifestKind kind;
	CrispDescriptor *manifests;
	size_t n_manifests;
} CrispIndex;

/* Either, for a pull that does not know yet which it fetched. */
typedef struct CrispManifestDocument {
	CrispManifestKind kind;
	CrispManifest manifest; /* when crisp_manifest_kind_is_index(kind) is false */
	CrispIndex index;	/* when it is true */
} CrispManifestDocument;

/* Classifies a media type; parameters after ';' are ignored, case is not. */
CrispManifestKind crisp_manifest_kind_from_media_type(const char *media_type);
bool crisp_manifest_kind_is_index(CrispManifestKind kind);
/* The canonical media type of a kind, or NULL. */
const char *crisp_manifest_kind_media_type(CrispManifestKind kind);

/*
 * Parses a manifest or index.  content_type is the registry's Content-Type
 * header (may be NULL).  Errors are CRISP_ERR_INVALID, or
 * CRISP_ERR_RESOURCE_EXHAUSTED for a limit.
 */
int crisp_manifest_document_parse(const char *content_type, const void *data, size_t size,
				  CrispManifestDocument *ret, CrispError **err);
void crisp_manifest_document_done(CrispManifestDocument *doc);

/* As above, refusing the other kind of document. */
int crisp_manifest_parse(const char *content_type, const void *data, size_t size,
			 CrispManifest *ret, CrispError **err);
void crisp_manifest_done(CrispManifest *m);
int crisp_index_parse(const char *content_type, const void *data, size_t size, CrispIndex *ret,
		      CrispError **err);
void crisp_index_done(CrispIndex *ix);

void crisp_platform_done(CrispPlatform *p);
/* "linux/arm64/v8" (malloc'd). */
char *crisp_platform_string(const CrispPlatform *p);
/* The platform this binary was built for ("linux", "amd64", NULL variant on x86-64). */
void crisp_platform_host(const char **ret_os, const char **ret_arch, const char **ret_variant);

/*
 * Picks the entry of an index for a platform.  Architecture aliases are
 * normalized (x86_64 -> amd64, aarch64 -> arm64, armhf -> arm/v7, i386 ->
 * 386), arm64 without a variant is arm64/v8, arm without one is arm/v7.
 * An exact match wins; otherwise arm and amd64 fall back to an older
 * variant (arm/v7 runs arm/v6 and arm/v5).  Only image manifests are
 * candidates, never nested indexes or artifacts; among equals the first
 * entry wins.  No match is CRISP_ERR_NOT_FOUND listing what the index has.
 * *ret points into ix.
 */
int crisp_index_choose_platform(const CrispIndex *ix, const char *os, const char *arch,
				const char *variant, const CrispDescriptor **ret, CrispError **err);

#endif
