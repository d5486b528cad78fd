/*
 * manifest.c - parsing image manifests and indexes (see manifest.h).
 *
 * The order of checks: the Content-Type, then the JSON (bounded, see
 * parse_util.c), then schemaVersion (so schema 1 gets its own message),
 * then mediaType against the Content-Type, then the shape, then each
 * descriptor.  The first failure is the error; nothing is returned half
 * parsed.
 */
#include "manifest.h"

#include "parse_util.h"

#include <stdio.h>
#include <strings.h>

/* A manifest is small; this bounds the tree jansson builds from 4 MiB. */
#define MANIFEST_MAX_VALUES 65536

static const ImagedJsonLimits manifest_limits = {
	.max_size = CRISP_MANIFEST_MAX_SIZE,
	.max_depth = CRISP_JSON_MAX_DEPTH,
	.max_values = MANIFEST_MAX_VALUES,
};

#define SCHEMA1_MESSAGE "schema 1 manifests are not supported; push the image with a current tool"

static const struct {
	const char *media_type;
	CrispManifestKind kind;
} manifest_types[] = {
	{ CRISP_MEDIA_TYPE_OCI_MANIFEST, CRISP_MANIFEST_OCI_MANIFEST },
	{ CRISP_MEDIA_TYPE_OCI_INDEX, CRISP_MANIFEST_OCI_INDEX },
	{ CRISP_MEDIA_TYPE_DOCKER_MANIFEST, CRISP_MANIFEST_DOCKER_MANIFEST },
	{ CRISP_MEDIA_TYPE_DOCKER_LIST, CRISP_MANIFEST_DOCKER_LIST },
	{ "application/vnd.docker.distribution.manifest.v1+json", CRISP_MANIFEST_DOCKER_SCHEMA1 },
	{ "application/vnd.docker.distribution.manifest.v1+prettyjws",
	  CRISP_MANIFEST_DOCKER_SCHEMA1 },
};

typedef enum LayerClass {
	LAYER_OK,
	LAYER_FOREIGN,
} LayerClass;

static const struct {
	const char *media_type;
	LayerClass class;
	CrispLayerCompression compression;
} layer_types[] = {
	{ "application/vnd.oci.image.layer.v1.tar", LAYER_OK, CRISP_LAYER_TAR },
	{ "application/vnd.oci.image.layer.v1.tar+gzip", LAYER_OK, CRISP_LAYER_TAR_GZIP },
	{ "application/vnd.oci.image.layer.v1.tar+zstd", LAYER_OK, CRISP_LAYER_TAR_ZSTD },
	{ "application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER_OK, CRISP_LAYER_TAR_GZIP },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar", LAYER_FOREIGN, 0 },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", LAYER_FOREIGN, 0 },
	{ "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", LAYER_FOREIGN, 0 },
	{ "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", LAYER_FOREIGN, 0 },
};

/* Compares a media type with parameters (";...") and surrounding blanks ignored. */
static bool media_type_is(const char *s, const char *type)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strcspn(s, ";");
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	return n == strlen(type) && strncasecmp(s, type, n) == 0;
}

CrispManifestKind crisp_manifest_kind_from_media_type(const char *media_type)
{
	if (!media_type)
		return CRISP_MANIFEST_UNKNOWN;
	for (size_t i = 0; i < ELEMENTSOF(manifest_types); i++)
		if (media_type_is(media_type, manifest_types[i].media_type))
			return manifest_types[i].kind;
	return CRISP_MANIFEST_UNKNOWN;
}

bool crisp_manifest_kind_is_index(CrispManifestKind kind)
{
	return kind == CRISP_MANIFEST_OCI_INDEX || kind == CRISP_MANIFEST_DOCKER_LIST;
}

static bool kind_is_image_manifest(CrispManifestKind kind)
{
	return kind == CRISP_MANIFEST_OCI_MANIFEST || kind == CRISP_MANIFEST_DOCKER_MANIFEST;
}

const char *crisp_manifest_kind_media_type(CrispManifestKind kind)
{
	for (size_t i = 0; i < ELEMENTSOF(manifest_types); i++)
		if (manifest_types[i].kind == kind)
			return manifest_types[i].media_type;
	return NULL;
}

/* RFC 6838 restricted-name characters. */
static bool is_media_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       strchr("!#$&^_.+-", c) != NULL;
}

/* type "/" subtype, each 1-127 restricted-name characters. */
static bool media_type_valid(const char *s)
{
	const char *slash = strchr(s, '/');
	if (!slash)
		return false;
	size_t type_len = (size_t)(slash - s), sub_len = strlen(slash + 1);
	if (type_len == 0 || type_len > 127 || sub_len == 0 || sub_len > 127)
		return false;
	for (const char *p = s; *p; p++)
		if (p != slash && !is_media_char(*p))
			return false;
	return true;
}

void crisp_platform_done(CrispPlatform *p)
{
	if (!p)
		return;
	free(p->os);
	free(p->architecture);
	free(p->variant);
	*p = (CrispPlatform){ 0 };
}

char *crisp_platform_string(const CrispPlatform *p)
{
	return xasprintf("%s/%s%s%s", p->os ? p->os : "?", p->architecture ? p->architecture : "?",
			 p->variant ? "/" : "", p->variant ? p->variant : "");
}

static void descriptor_done(CrispDescriptor *d)
{
	free(d->media_type);
	crisp_platform_done(&d->platform);
	*d = (CrispDescriptor){ 0 };
}

static void descriptors_free(CrispDescriptor *d, size_t n)
{
	for (size_t i = 0; i < n; i++)
		descriptor_done(&d[i]);
	free(d);
}

/* os, architecture, variant: short identifiers. */
static bool platform_field_valid(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' || *s == '-' || *s == '+'))
			return false;
	return true;
}

static int parse_platform_field(json_t *obj, const char *where, const char *key, bool required,
				char **ret, CrispError **err)
{
	const char *s;
	int r = imaged_json_get_string(obj, where, key, required, CRISP_PLATFORM_FIELD_MAX, &s,
				       err);
	if (r <= 0) {
		*ret = NULL;
		return r;
	}
	if (!platform_field_valid(s)) {
		_cleanup_free_ char *q = imaged_escape(s, IMAGED_QUOTE_MAX);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s.%s \"%s\" is not a platform name (letters, digits, '.', "
				       "'_', '+', '-')",
				       where, key, q);
	}
	*ret = xstrdup(s);
	return 1;
}

static int parse_platform(json_t *obj, const char *where, CrispPlatform *ret, CrispError **err)
{
	_cleanup_free_ char *pwhere = xasprintf("%s.platform", where);
	CrispPlatform p = { 0 };
	int r;

	if ((r = parse_platform_field(obj, pwhere, "os", true, &p.os, err)) < 0 ||
	    (r = parse_platform_field(obj, pwhere, "architecture", true, &p.architecture, err)) <
		    0 ||
	    (r = parse_platform_field(obj, pwhere, "variant", false, &p.variant, err)) < 0) {
		crisp_platform_done(&p);
		return r;
	}
	*ret = p;
	return 0;
}

typedef enum DescriptorRole {
	ROLE_CONFIG,
	ROLE_LAYER,
	ROLE_INDEX_ENTRY,
} DescriptorRole;

static int parse_layer_type(CrispDescriptor *d, const char *where, CrispError **err)
{
	for (size_t i = 0; i < ELEMENTSOF(layer_types); i++) {
		if (strcmp(d->media_type, layer_types[i].media_type) != 0)
			continue;
		if (layer_types[i].class == LAYER_FOREIGN)
			return crisp_error_set(
				err, CRISP_ERR_INVALID, EMEDIUMTYPE,
				"%s has media type %s, a non-distributable (foreign) layer: crisp "
				"only fetches layers from the image's own registry; push the image "
				"with all its layers",
				where, d->media_type);
		d->compression = layer_types[i].compression;
		return 0;
	}
	return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
			       "%s has media type %s, which crisp cannot unpack (it unpacks tar, "
			       "tar+gzip and tar+zstd layers)",
			       where, d->media_type);
}

static int parse_descriptor(json_t *obj, const char *where, DescriptorRole role,
			    CrispManifestKind parent, CrispDescriptor *ret, CrispError **err)
{
	_cleanup_(descriptor_done) CrispDescriptor d = { 0 };
	const char *media_type, *digest;
	json_t *platform;
	int r;

	if (!json_is_object(obj))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s must be an object, not %s", where,
				       imaged_json_type_name(obj));

	r = imaged_json_get_string(obj, where, "mediaType", true, CRISP_MEDIA_TYPE_MAX, &media_type,
				   err);
	if (r < 0)
		return r;
	if (!media_type_valid(media_type)) {
		_cleanup_free_ char *q = imaged_escape(media_type, IMAGED_QUOTE_MAX);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s.mediaType \"%s\" is not a media type", where, q);
	}
	d.media_type = xstrdup(media_type);

	r = imaged_json_get_string(obj, where, "digest", true, CRISP_DIGEST_STRING_MAX + 16,
				   &digest, err);
	if (r < 0)
		return r;
	r = crisp_digest_parse(digest, &d.digest, err);
	if (r < 0)
		return crisp_error_wrap(err, "%s.digest", where);

	int64_t max = role == ROLE_CONFIG  ? CRISP_IMAGE_CONFIG_MAX_SIZE
		      : role == ROLE_LAYER ? CRISP_LAYER_MAX_SIZE
					   : CRISP_MANIFEST_MAX_SIZE;
	r = imaged_json_get_size(obj, where, "size", true, max, &d.size, err);
	if (r < 0)
		return r;

	switch (role) {
	case ROLE_CONFIG:
		if (strcmp(d.media_type, CRISP_MEDIA_TYPE_OCI_CONFIG) != 0 &&
		    strcmp(d.media_type, CRISP_MEDIA_TYPE_DOCKER_CONFIG) != 0)
			return crisp_error_set(
				err, CRISP_ERR_INVALID, EMEDIUMTYPE,
				"%s has media type %s: this is not a container image (an image "
				"config is %s or %s)",
				where, d.media_type, CRISP_MEDIA_TYPE_OCI_CONFIG,
				CRISP_MEDIA_TYPE_DOCKER_CONFIG);
		break;
	case ROLE_LAYER:
		r = parse_layer_type(&d, where, err);
		if (r < 0)
			return r;
		break;
	case ROLE_INDEX_ENTRY:
		r = imaged_json_get_object(obj, where, "platform",
					   parent == CRISP_MANIFEST_DOCKER_LIST, &platform, err);
		if (r < 0)
			return r;
		if (r > 0) {
			r = parse_platform(platform, where, &d.platform, err);
			if (r < 0)
				return r;
			d.has_platform = true;
		}
		break;
	}
	*ret = d;
	d = (CrispDescriptor){ 0 };
	return 0;
}

static int parse_descriptor_array(json_t *arr, const char *name, DescriptorRole role,
				  CrispManifestKind parent, CrispDescriptor **ret, size_t *ret_n,
				  CrispError **err)
{
	size_t n = json_array_size(arr);
	CrispDescriptor *v = xcalloc(n ? n : 1, sizeof(*v));

	for (size_t i = 0; i < n; i++) {
		char where[64];
		snprintf(where, sizeof(where), "%s[%zu]", name, i);
		int r = parse_descriptor(json_array_get(arr, i), where, role, parent, &v[i], err);
		if (r < 0) {
			descriptors_free(v, i);
			return r;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

static int manifest_body(json_t *root, CrispManifestKind kind, CrispManifest *ret, CrispError **err)
{
	json_t *config, *layers;
	int r;

	if (json_object_get(root, "manifests"))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "an image manifest must not have a \"manifests\" member");

	r = imaged_json_get_object(root, "", "config", true, &config, err);
	if (r < 0)
		return r;
	r = imaged_json_get_array(root, "", "layers", true, CRISP_MANIFEST_MAX_LAYERS, &layers,
				  err);
	if (r < 0)
		return r;

	CrispManifest m = { .kind = kind };
	r = parse_descriptor(config, "config", ROLE_CONFIG, kind, &m.config, err);
	if (r < 0)
		return r;
	r = parse_descriptor_array(layers, "layers", ROLE_LAYER, kind, &m.layers, &m.n_layers, err);
	if (r < 0) {
		descriptor_done(&m.config);
		return r;
	}
	*ret = m;
	return 0;
}

static int index_body(json_t *root, CrispManifestKind kind, CrispIndex *ret, CrispError **err)
{
	json_t *manifests;
	int r;

	if (json_object_get(root, "config") || json_object_get(root, "layers"))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "an image index must not have \"config\" or \"layers\" "
				       "members");

	r = imaged_json_get_array(root, "", "manifests", true, CRISP_INDEX_MAX_MANIFESTS,
				  &manifests, err);
	if (r < 0)
		return r;

	CrispIndex ix = { .kind = kind };
	r = parse_descriptor_array(manifests, "manifests", ROLE_INDEX_ENTRY, kind, &ix.manifests,
				   &ix.n_manifests, err);
	if (r < 0)
		return r;
	*ret = ix;
	return 0;
}

/* What the Content-Type says: a kind, UNKNOWN for "nothing", or an error. */
static int content_type_kind(const char *content_type, CrispManifestKind *ret, CrispError **err)
{
	if (!content_type || !*content_type || media_type_is(content_type, "application/json") ||
	    media_type_is(content_type, "application/octet-stream")) {
		*ret = CRISP_MANIFEST_UNKNOWN;
		return 0;
	}
	CrispManifestKind k = crisp_manifest_kind_from_media_type(content_type);
	if (k == CRISP_MANIFEST_DOCKER_SCHEMA1)
		return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE, SCHEMA1_MESSAGE);
	if (k == CRISP_MANIFEST_UNKNOWN) {
		_cleanup_free_ char *q = imaged_escape(content_type, IMAGED_QUOTE_MAX);
		return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
				       "the registry answered with Content-Type \"%s\", which is "
				       "not an image manifest or index",
				       q);
	}
	*ret = k;
	return 0;
}

static int document_kind(json_t *root, CrispManifestKind from_header, CrispManifestKind *ret,
			 CrispError **err)
{
	json_t *sv = json_object_get(root, "schemaVersion");
	if (!sv)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "the manifest has no schemaVersion");
	if (!json_is_integer(sv))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "schemaVersion must be an integer, not %s",
				       imaged_json_type_name(sv));
	if (json_integer_value(sv) == 1)
		return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE, SCHEMA1_MESSAGE);
	if (json_integer_value(sv) != 2)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "schemaVersion %lld is not supported (2 is)",
				       (long long)json_integer_value(sv));

	const char *mt;
	int r = imaged_json_get_string(root, "", "mediaType", false, CRISP_MEDIA_TYPE_MAX, &mt,
				       err);
	if (r < 0)
		return r;

	CrispManifestKind from_doc = CRISP_MANIFEST_UNKNOWN;
	if (mt) {
		from_doc = crisp_manifest_kind_from_media_type(mt);
		if (from_doc == CRISP_MANIFEST_DOCKER_SCHEMA1)
			return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
					       SCHEMA1_MESSAGE);
		if (from_doc == CRISP_MANIFEST_UNKNOWN) {
			_cleanup_free_ char *q = imaged_escape(mt, IMAGED_QUOTE_MAX);
			return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
					       "mediaType \"%s\" is not an image manifest or index",
					       q);
		}
	}

	if (from_header && from_doc && from_header != from_doc)
		return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
				       "the registry sent Content-Type %s but the document's "
				       "mediaType is %s",
				       crisp_manifest_kind_media_type(from_header),
				       crisp_manifest_kind_media_type(from_doc));

	CrispManifestKind k = from_doc ? from_doc : from_header;
	if ((k == CRISP_MANIFEST_DOCKER_MANIFEST || k == CRISP_MANIFEST_DOCKER_LIST) && !from_doc)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "a Docker schema 2 %s must state its mediaType",
				       k == CRISP_MANIFEST_DOCKER_LIST ? "manifest list"
								       : "manifest");
	if (!k) {
		/* An OCI document without mediaType: its shape tells. */
		bool has_manifests = json_object_get(root, "manifests") != NULL;
		bool has_image = json_object_get(root, "config") || json_object_get(root, "layers");
		if (has_manifests && !has_image)
			k = CRISP_MANIFEST_OCI_INDEX;
		else if (has_image && !has_manifests)
			k = CRISP_MANIFEST_OCI_MANIFEST;
		else
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "the document has no mediaType, and its members do "
					       "not tell an image manifest from an index");
	}
	*ret = k;
	return 0;
}

int crisp_manifest_document_parse(const char *content_type, const void *data, size_t size,
				  CrispManifestDocument *ret, CrispError **err)
{
	CrispManifestKind from_header = CRISP_MANIFEST_UNKNOWN, kind = CRISP_MANIFEST_UNKNOWN;
	int r = content_type_kind(content_type, &from_header, err);
	if (r < 0)
		return r;

	json_t *root = NULL;
	r = imaged_json_load(data, size, &manifest_limits, "manifest", &root, err);
	if (r < 0)
		return r;

	CrispManifestDocument doc = { 0 };
	r = document_kind(root, from_header, &kind, err);
	if (r >= 0) {
		doc.kind = kind;
		if (crisp_manifest_kind_is_index(kind))
			r = index_body(root, kind, &doc.index, err);
		else
			r = manifest_body(root, kind, &doc.manifest, err);
	}
	json_decref(root);
	if (r < 0)
		return r;
	*ret = doc;
	return 0;
}

void crisp_manifest_document_done(CrispManifestDocument *doc)
{
	if (!doc)
		return;
	crisp_manifest_done(&doc->manifest);
	crisp_index_done(&doc->index);
	doc->kind = CRISP_MANIFEST_UNKNOWN;
}

int crisp_manifest_parse(const char *content_type, const void *data, size_t size,
			 CrispManifest *ret, CrispError **err)
{
	CrispManifestDocument doc;
	int r = crisp_manifest_document_parse(content_type, data, size, &doc, err);
	if (r < 0)
		return r;
	if (!kind_is_image_manifest(doc.kind)) {
		crisp_manifest_document_done(&doc);
		return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
				       "expected an image manifest, got an image index: choose a "
				       "platform's manifest from it first");
	}
	*ret = doc.manifest;
	return 0;
}

int crisp_index_parse(const char *content_type, const void *data, size_t size, CrispIndex *ret,
		      CrispError **err)
{
	CrispManifestDocument doc;
	int r = crisp_manifest_document_parse(content_type, data, size, &doc, err);
	if (r < 0)
		return r;
	if (!crisp_manifest_kind_is_index(doc.kind)) {
		crisp_manifest_document_done(&doc);
		return crisp_error_set(err, CRISP_ERR_INVALID, EMEDIUMTYPE,
				       "expected an image index, got an image manifest");
	}
	*ret = doc.index;
	return 0;
}

void crisp_manifest_done(CrispManifest *m)
{
	if (!m)
		return;
	descriptor_done(&m->config);
	descriptors_free(m->layers, m->n_layers);
	*m = (CrispManifest){ 0 };
}

void crisp_index_done(CrispIndex *ix)
{
	if (!ix)
		return;
	descriptors_free(ix->manifests, ix->n_manifests);
	*ix = (CrispIndex){ 0 };
}
