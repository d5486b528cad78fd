/*
 * images.c - ListImages, ImageStatus and RemoveImage, and how a request
 * names an image.
 *
 * A request may name an image by ID ("sha256:<hex>", or the bare hex), by
 * repo tag or by repo digest, in full ("docker.io/library/busybox:latest")
 * or familiar form ("busybox"), which is normalized as a pull would be.
 * Removal follows what CRI-O users expect: a tag removes only that tag, and
 * the image goes with its last tag; an ID or a repo digest removes the
 * image with all its names.  Removing what is not there succeeds, as the
 * CRI asks.  Content goes by collection (gc.c), which keeps whatever a
 * container still uses.
 */
#include "imaged.h"

#include "api.pb-c.h"
#include "image_db.h"
#include "log.h"
#include "reference.h"

#include <ctype.h>
#include <jansson.h>

typedef struct ImageName {
	char *id;   /* the image it names */
	char *name; /* the normalized repo tag or digest; NULL for an ID */
	bool is_digest;
} ImageName;

static void image_name_done(ImageName *n)
{
	free(n->id);
	free(n->name);
}

/*
 * Resolves s with im->lock held: 0 and *ret filled, -ENOENT when no image
 * has that name, or -EINVAL (with *err) when s is no name at all.
 */
static int resolve_locked(Imaged *im, const char *s, ImageName *ret, CrispError **err)
{
	_cleanup_free_ char *id = NULL;
	if (crisp_is_lower_hex(s, 64))
		id = xasprintf("sha256:%s", s);
	else if (strncmp(s, "sha256:", 7) == 0 && crisp_is_lower_hex(s + 7, 64))
		id = xstrdup(s);
	if (id) {
		ImageRecord rec;
		int r = image_db_get(im->db, id, &rec, err);
		if (r < 0)
			return r;
		image_record_done(&rec);
		*ret = (ImageName){ .id = TAKE_PTR(id) };
		return 0;
	}

	CrispReference ref;
	int r = crisp_reference_parse(s, &ref, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *repo = crisp_reference_repository(&ref);
	bool is_digest = crisp_digest_is_set(&ref.digest);
	_cleanup_free_ char *name = is_digest ? xasprintf("%s@%s", repo, ref.digest.string)
					      : xasprintf("%s:%s", repo, ref.tag);
	crisp_reference_done(&ref);
	if ((r = image_db_lookup_name(im->db, name, &id, err)) < 0)
		return r;
	*ret = (ImageName){ .id = TAKE_PTR(id), .name = TAKE_PTR(name), .is_digest = is_digest };
	return 0;
}

int imaged_resolve_image_locked(Imaged *im, const char *s, char **ret_id, CrispError **err)
{
	ImageName name = { 0 };
	int r = resolve_locked(im, s, &name, err);
	if (r == 0)
		*ret_id = TAKE_PTR(name.id);
	image_name_done(&name);
	return r;
}

/* The CRI Image of a record; points into rec and into the arena `keep`. */
typedef struct CriImage {
	Runtime__V1__Image image;
	Runtime__V1__ImageSpec spec;
	Runtime__V1__Int64Value uid;
	char *username;
} CriImage;

static void cri_image_fill(CriImage *out, ImageRecord *rec)
{
	runtime__v1__image__init(&out->image);
	runtime__v1__image_spec__init(&out->spec);
	runtime__v1__int64_value__init(&out->uid);
	out->username = NULL;
	out->image.id = rec->id;
	out->image.n_repo_tags = strv_length(rec->repo_tags);
	out->image.repo_tags = rec->repo_tags;
	out->image.n_repo_digests = strv_length(rec->repo_digests);
	out->image.repo_digests = rec->repo_digests;
	out->image.size = rec->size > 0 ? (uint64_t)rec->size : 0;
	out->image.pinned = rec->pinned;
	out->spec.image = rec->id;
	out->image.spec = &out->spec;

	/* As containerd reports it: a numeric USER is a uid, anything else a name. */
	CrispImageConfig config;
	if (image_db_config_from_json(rec->config_json, &config, NULL) == 0) {
		if (config.user && *config.user) {
			size_t len = strcspn(config.user, ":");
			_cleanup_free_ char *user = xstrndup(config.user, len);
			char *end;
			errno = 0;
			long long v = strtoll(user, &end, 10);
			if (*user && !*end && errno == 0 && isdigit((unsigned char)user[0])) {
				out->uid.value = v;
				out->image.uid = &out->uid;
			} else {
				out->username = TAKE_PTR(user);
				out->image.username = out->username;
			}
		}
		crisp_image_config_done(&config);
	}
}

static void cri_image_done(CriImage *c)
{
	free(c->username);
}

int imaged_list_images(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	const Runtime__V1__ListImagesRequest *q = (const void *)req->msg;
	const char *filter =
		q->filter && q->filter->image && q->filter->image->image && *q->filter->image->image
			? q->filter->image->image
			: NULL;
	ImageRecord *recs = NULL;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&im->lock);
	if (filter) {
		ImageName name = { 0 };
		r = resolve_locked(im, filter, &name, err);
		if (r == 0) {
			recs = xcalloc(1, sizeof(*recs));
			r = image_db_get(im->db, name.id, &recs[0], err);
			n = r == 0;
		}
		image_name_done(&name);
		if (r == -ENOENT)
			r = 0; /* nothing matches: an empty list */
	} else {
		r = image_db_list(im->db, &recs, &n, err);
	}
	pthread_mutex_unlock(&im->lock);
	if (r < 0) {
		image_records_free(recs, n);
		return r;
	}

	CriImage *cri = xcalloc(n ? n : 1, sizeof(*cri));
	Runtime__V1__Image **ptrs = xcalloc(n ? n : 1, sizeof(*ptrs));
	for (size_t i = 0; i < n; i++) {
		cri_image_fill(&cri[i], &recs[i]);
		ptrs[i] = &cri[i].image;
	}
	Runtime__V1__ListImagesResponse a = RUNTIME__V1__LIST_IMAGES_RESPONSE__INIT;
	a.n_images = n;
	a.images = ptrs;
	r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	for (size_t i = 0; i < n; i++)
		cri_image_done(&cri[i]);
	free(cri);
	free(ptrs);
	image_records_free(recs, n);
	return r;
}

/* The verbose "info" of ImageStatus: the image config as the registry sent it, and more. */
static char *verbose_info(Imaged *im, const ImageRecord *rec)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(rec->id));
	json_object_set_new(o, "manifestDigest", json_string(rec->manifest_digest));
	json_object_set_new(o, "size", json_integer(rec->size));
	json_object_set_new(o, "pulledAt", json_integer(rec->pulled_at_ns));

	CrispDigest d;
	if (crisp_digest_parse(rec->id, &d, NULL) == 0) {
		_cleanup_close_ int fd = crisp_store_open_blob(im->store, &d, NULL);
		json_error_t jerr;
		/* The config blob was parsed and checked at pull time; it is bounded there too. */
		json_t *spec = fd >= 0 ? json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr) : NULL;
		if (spec)
			json_object_set_new(o, "imageSpec", spec);
	}
	ImageLayerRecord *layers = NULL;
	size_t n = 0;
	if (image_db_layers(im->db, rec->id, &layers, &n, NULL) == 0 && n > 0) {
		json_object_set_new(o, "chainID", json_string(layers[n - 1].chain_id));
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++) {
			json_t *l = json_object();
			json_object_set_new(l, "digest", json_string(layers[i].blob_digest));
			json_object_set_new(l, "mediaType", json_string(layers[i].media_type));
			json_object_set_new(l, "size", json_integer(layers[i].size));
			json_object_set_new(l, "chainID", json_string(layers[i].chain_id));
			json_array_append_new(a, l);
		}
		json_object_set_new(o, "layers", a);
	}
	image_layer_records_free(layers, n);
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

int imaged_image_status(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	const Runtime__V1__ImageStatusRequest *q = (const void *)req->msg;
	const char *s = q->image ? q->image->image : NULL;
	if (!s || !*s)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "image.image is empty");

	ImageName name = { 0 };
	ImageRecord rec = { 0 };
	_cleanup_free_ char *info = NULL;
	pthread_mutex_lock(&im->lock);
	int r = resolve_locked(im, s, &name, err);
	if (r == 0)
		r = image_db_get(im->db, name.id, &rec, err);
	if (r == 0 && q->verbose)
		info = verbose_info(im, &rec);
	pthread_mutex_unlock(&im->lock);
	image_name_done(&name);

	Runtime__V1__ImageStatusResponse a = RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT;
	if (r == -ENOENT) /* not present: an answer without an image, as the CRI asks */
		return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	if (r < 0)
		return r;
	CriImage cri;
	cri_image_fill(&cri, &rec);
	a.image = &cri.image;
	Runtime__V1__ImageStatusResponse__InfoEntry entry =
		RUNTIME__V1__IMAGE_STATUS_RESPONSE__INFO_ENTRY__INIT;
	Runtime__V1__ImageStatusResponse__InfoEntry *entries[1] = { &entry };
	if (info) {
		entry.key = "info";
		entry.value = info;
		a.n_info = 1;
		a.info = entries;
	}
	r = crisp_reply(req, req->type + 1, &a.base, NULL, 0);
	cri_image_done(&cri);
	image_record_done(&rec);
	return r;
}

int imaged_remove_image(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	const Runtime__V1__RemoveImageRequest *q = (const void *)req->msg;
	const char *s = q->image ? q->image->image : NULL;
	if (!s || !*s)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "image.image is empty");

	ImageName name = { 0 };
	pthread_mutex_lock(&im->lock);
	int r = resolve_locked(im, s, &name, err);
	bool removed = false;
	if (r == 0 && name.name && !name.is_digest) {
		int64_t left = 0;
		r = crisp_db_begin(im->db, err);
		if (r == 0)
			r = image_db_remove_name(im->db, name.name, name.id, &left, err);
		/* Repo digests alone do not keep an image: it goes with its last tag. */
		if (r == 0) {
			ImageRecord rec;
			r = image_db_get(im->db, name.id, &rec, err);
			if (r == 0) {
				if (!rec.repo_tags) {
					r = image_db_remove_image(im->db, name.id, err);
					removed = true;
				}
				image_record_done(&rec);
			}
		}
		if (r == 0)
			r = crisp_db_commit(im->db, err);
		if (r < 0)
			crisp_db_rollback(im->db);
	} else if (r == 0) {
		r = image_db_remove_image(im->db, name.id, err);
		removed = true;
	}
	if (r == 0 && removed)
		imaged_collect_locked(im);
	pthread_mutex_unlock(&im->lock);
	if (r == 0 && !name.name)
		log_info("removed image %s", name.id);
	else if (r == 0)
		log_info("removed %s%s%s", name.name, removed ? " and image " : "",
			 removed ? name.id : "");
	image_name_done(&name);
	if (r < 0 && r != -ENOENT)
		return r;
	crisp_error_free(*err);
	*err = NULL;
	Runtime__V1__RemoveImageResponse a = RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
