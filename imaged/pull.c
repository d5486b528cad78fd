/*
 * pull.c - PullImage: manifest, config and layers from a registry into the
 * content store, each layer unpacked into its snapshot (up to three layers
 * at a time), then one database transaction that makes the image visible.
 *
 * Order matters for what a failure or a crash leaves: blobs become visible
 * only verified (registry.c), snapshots only complete (snapshots.c), and the
 * image only once every part of it is there.  A pull that fails asks for a
 * collection, which removes the blobs and snapshots it fetched that nothing
 * references, once no other pull is in flight; a crash leaves only
 * unreferenced content, which start-up collects.
 */
#include "imaged.h"

#include "api.pb-c.h"
#include "image_db.h"
#include "log.h"
#include "reference.h"
#include "registry.h"
#include "snapshots.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#define PULL_LAYER_WORKERS 3

/* Downloads d into the store unless it is there; concurrent pulls share one download. */
static int fetch_shared(Imaged *im, CrispRegistryClient *c, const CrispReference *ref,
			const CrispDescriptor *d, CrispError **err)
{
	_cleanup_free_ char *key = xasprintf("blob:%s", d->digest.string);
	pthread_mutex_lock(&im->lock);
	for (;;) {
		if (crisp_store_has_blob(im->store, &d->digest)) {
			pthread_mutex_unlock(&im->lock);
			goto check_size;
		}
		if (crisp_inflight_claim(&im->inflight, &im->lock, key))
			break;
	}
	pthread_mutex_unlock(&im->lock);
	int r = crisp_store_fetch_blob(im->store, c, ref, d, err);
	pthread_mutex_lock(&im->lock);
	crisp_inflight_release(&im->inflight, key);
	pthread_mutex_unlock(&im->lock);
	if (r < 0)
		return r;

check_size:;
	/* Stored under the same digest by another image: it must be the size this one says. */
	_cleanup_close_ int fd = crisp_store_open_blob(im->store, &d->digest, err);
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "blob %s",
					     d->digest.string);
	if (st.st_size != d->size)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "the manifest says blob %s has %lld bytes, but it has %lld",
				       d->digest.string, (long long)d->size, (long long)st.st_size);
	return 0;
}

static int read_config(Imaged *im, const CrispDescriptor *d, char **ret, size_t *ret_size,
		       CrispError **err)
{
	if (d->size > CRISP_IMAGE_CONFIG_MAX_SIZE)
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, EFBIG,
				       "image config %s: %lld bytes is more than the %d allowed",
				       d->digest.string, (long long)d->size,
				       CRISP_IMAGE_CONFIG_MAX_SIZE);
	_cleanup_close_ int fd = crisp_store_open_blob(im->store, &d->digest, err);
	if (fd < 0)
		return fd;
	size_t n = (size_t)d->size;
	_cleanup_free_ char *buf = xmalloc(n + 1);
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, k < 0 ? errno : EIO,
						     "reading image config %s", d->digest.string);
		got += (size_t)k;
	}
	buf[n] = 0;
	*ret = TAKE_PTR(buf);
	*ret_size = n;
	return 0;
}

/* The sandbox image is pinned, so the kubelet's image collection leaves it. */
static bool is_sandbox_image(const Imaged *im, const char *repo_tag)
{
	const char *s = im->config->sandbox_image;
	if (!s || !*s || !repo_tag)
		return false;
	CrispReference ref;
	if (crisp_reference_parse(s, &ref, NULL) < 0)
		return false;
	_cleanup_free_ char *full = crisp_reference_string(&ref);
	crisp_reference_done(&ref);
	return streq_ptr(full, repo_tag);
}

typedef struct Pull {
	CrispReference ref;
	CrispRegistryImage img;
	CrispImageConfig config;
	CrispDigest *chain_ids;
	ImageLayerRecord *layers;
	size_t n_layers;
} Pull;

static void pull_done(Pull *p)
{
	crisp_reference_done(&p->ref);
	crisp_registry_image_done(&p->img);
	crisp_image_config_done(&p->config);
	free(p->chain_ids);
	for (size_t i = 0; i < p->n_layers; i++)
		free(p->layers[i].chain_id);
	free(p->layers); /* the other strings point into img */
}

/*
 * Layers are fetched and unpacked by up to PULL_LAYER_WORKERS threads, each
 * with its own registry client (a curl handle is one thread's): a layer's
 * snapshot does not depend on the ones below it, so they go side by side,
 * as a registry client pulls them.  The first failure stops the others
 * from starting new layers and is the pull's.
 */
typedef struct LayerWork {
	Imaged *im;
	Pull *p;
	const CrispRegistryAuth *auth;
	pthread_mutex_t lock;
	size_t next;
	int r;
	CrispError *err;
} LayerWork;

static int one_layer(LayerWork *w, CrispRegistryClient *c, size_t i, CrispError **err)
{
	Pull *p = w->p;
	const CrispDescriptor *d = &p->img.manifest.layers[i];
	int r = fetch_shared(w->im, c, &p->ref, d, err);
	int64_t id = 0;
	if (r == 0)
		r = imaged_snapshot_ensure(w->im, &p->chain_ids[i], &p->config.diff_ids[i], d, &id,
					   err);
	if (r < 0)
		return r;
	p->layers[i] = (ImageLayerRecord){
		.blob_digest = (char *)d->digest.string,
		.media_type = d->media_type,
		.size = d->size,
		.snapshot_id = id,
		.chain_id = xstrdup(p->chain_ids[i].string),
	};
	return 0;
}

static void *layer_worker(void *arg)
{
	LayerWork *w = arg;
	CrispError *err = NULL;
	CrispRegistryClient *c = NULL;
	int r = crisp_registry_client_new(w->im->config, w->auth, &c, &err);
	for (;;) {
		pthread_mutex_lock(&w->lock);
		bool stop = w->r < 0 || r < 0 || w->next >= w->p->n_layers;
		size_t i = w->next++;
		pthread_mutex_unlock(&w->lock);
		if (stop)
			break;
		r = one_layer(w, c, i, &err);
	}
	crisp_registry_client_free(c);
	pthread_mutex_lock(&w->lock);
	if (r < 0 && w->r == 0) {
		w->r = r;
		crisp_error_move(&w->err, &err);
	}
	pthread_mutex_unlock(&w->lock);
	crisp_error_free(err);
	return NULL;
}

static int fetch_layers(Imaged *im, Pull *p, const CrispRegistryAuth *auth, CrispError **err)
{
	LayerWork w = { .im = im, .p = p, .auth = auth };
	pthread_mutex_init(&w.lock, NULL);
	size_t n = p->n_layers < PULL_LAYER_WORKERS ? p->n_layers : PULL_LAYER_WORKERS;
	pthread_t t[PULL_LAYER_WORKERS];
	size_t started = 0;
	for (; started < n; started++)
		if (pthread_create(&t[started], NULL, layer_worker, &w) != 0)
			break;
	if (started == 0 && n > 0)
		layer_worker(&w); /* no thread to be had: this one does it */
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&w.lock);
	if (w.r < 0)
		crisp_error_move(err, &w.err);
	return w.r;
}

/* Everything between the manifest and the database: config, blobs, snapshots. */
static int fetch_content(Imaged *im, CrispRegistryClient *c, const CrispRegistryAuth *auth, Pull *p,
			 CrispError **err)
{
	const CrispManifest *m = &p->img.manifest;
	int r = fetch_shared(im, c, &p->ref, &m->config, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *json = NULL;
	size_t size = 0;
	if ((r = read_config(im, &m->config, &json, &size, err)) < 0)
		return r;
	if ((r = crisp_image_config_parse(json, size, &p->config, err)) < 0)
		return r;
	if ((r = crisp_image_config_check_layers(&p->config, m, err)) < 0)
		return r;

	p->chain_ids = xcalloc(m->n_layers ? m->n_layers : 1, sizeof(CrispDigest));
	if ((r = imaged_chain_ids(p->config.diff_ids, m->n_layers, p->chain_ids, err)) < 0)
		return r;
	p->layers = xcalloc(m->n_layers ? m->n_layers : 1, sizeof(ImageLayerRecord));
	p->n_layers = m->n_layers;
	return fetch_layers(im, p, auth, err);
}

static int record(Imaged *im, Pull *p, CrispError **err)
{
	const CrispManifest *m = &p->img.manifest;
	_cleanup_free_ char *repo = crisp_reference_repository(&p->ref);
	_cleanup_free_ char *tag = p->ref.tag ? xasprintf("%s:%s", repo, p->ref.tag) : NULL;
	_cleanup_free_ char *digest = xasprintf("%s@%s", repo, p->img.repo_digest.string);
	_cleanup_free_ char *config_json = image_db_config_to_json(&p->config);
	int64_t size = m->config.size;
	for (size_t i = 0; i < m->n_layers; i++)
		size += m->layers[i].size;
	ImagePullRecord rec = {
		.id = m->config.digest.string,
		.manifest_digest = p->img.manifest_digest.string,
		.size = size,
		.pinned = is_sandbox_image(im, tag),
		.config_json = config_json,
		.repo_tag = tag,
		.repo_digest = digest,
		.layers = p->layers,
		.n_layers = p->n_layers,
	};
	return image_db_record_pull(im->db, &rec, err);
}

/* A pull is "active" from its first download to its database record (gc.c). */
static void pull_begin(Imaged *im)
{
	pthread_mutex_lock(&im->lock);
	im->active_pulls++;
	pthread_mutex_unlock(&im->lock);
}

static void pull_end(Imaged *im, bool failed)
{
	pthread_mutex_lock(&im->lock);
	im->active_pulls--;
	if (failed)
		im->gc_pending = true;
	if (im->active_pulls == 0 && im->gc_pending)
		imaged_collect_locked(im);
	pthread_mutex_unlock(&im->lock);
}

static const char *nonempty(const char *s)
{
	return s && *s ? s : NULL;
}

int imaged_pull_image(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	const Runtime__V1__PullImageRequest *q = (const void *)req->msg;
	const char *image = q->image ? q->image->image : NULL;
	if (!image || !*image)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "image.image is empty");

	_cleanup_(pull_done) Pull p = { 0 };
	int r = crisp_reference_parse(image, &p.ref, err);
	if (r < 0)
		return r;

	CrispRegistryAuth auth = { 0 };
	if (q->auth) {
		auth.username = nonempty(q->auth->username);
		auth.password = nonempty(q->auth->password);
		auth.auth = nonempty(q->auth->auth);
		auth.identity_token = nonempty(q->auth->identity_token);
		auth.registry_token = nonempty(q->auth->registry_token);
	}
	_cleanup_registry_client_ CrispRegistryClient *c = NULL;
	if ((r = crisp_registry_client_new(im->config, &auth, &c, err)) < 0)
		return r;

	_cleanup_free_ char *shown = crisp_reference_string(&p.ref);
	if ((r = crisp_registry_fetch_manifest(c, &p.ref, &p.img, err)) < 0)
		return crisp_error_wrap(err, "pulling %s", shown);

	pull_begin(im);
	r = fetch_content(im, c, &auth, &p, err);
	if (r == 0) {
		pthread_mutex_lock(&im->lock);
		r = record(im, &p, err);
		pthread_mutex_unlock(&im->lock);
	}
	pull_end(im, r < 0);
	if (r < 0)
		return crisp_error_wrap(err, "pulling %s", shown);

	log_info("pulled %s as %s", shown, p.img.manifest.config.digest.string);
	Runtime__V1__PullImageResponse a = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;
	a.image_ref = p.img.manifest.config.digest.string;
	return crisp_reply(req, req->type + 1, &a.base, NULL, 0);
}
