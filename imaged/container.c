/*
 * container.c - containers' writable snapshots: prepare, release, list.
 *
 * Prepare records the container before anything is made on disk (intent
 * first; start-up removes a row whose directory never appeared), then makes
 * <containers>/<key>/{upper,work} under a key imaged draws itself, and
 * resolves the container's user from the image.  Every path in the answer is
 * derived from imaged's own IDs; the request names only a container ID
 * (checked to be 64 hex digits, so it could not be a path even if it were
 * used as one) and an image imaged already holds.  Release accepts only a
 * container imaged prepared.
 */
#include "imaged.h"

#include "api.pb-c.h"
#include "image_db.h"
#include "internal.pb-c.h"
#include "ipc_types.h"
#include "log.h"
#include "snapshots.h"
#include "unpack.h"
#include "userdb.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#define CONTAINER_ID_LEN 64

static int check_container_id(const char *id, CrispError **err)
{
	if (!crisp_is_lower_hex(id, CONTAINER_ID_LEN))
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "container_id \"%.80s\" is not 64 lowercase hex digits",
				       id ? id : "");
	return 0;
}

static void random_key(char buf[static 33])
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		abort(); /* the kernel's random source does not fail after boot */
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(buf + 2 * i, 3, "%02x", b[i]);
}

static int make_dirs(Imaged *im, const char *key, CrispError **err)
{
	if (mkdirat(im->containers_fd, key, 0700) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s/%s",
					     im->containers_path, key);
	_cleanup_close_ int fd =
		openat(im->containers_fd, key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	/* upper's root becomes the container's "/": the usual 0755. */
	if (fd < 0 || mkdirat(fd, "upper", 0755) < 0 || mkdirat(fd, "work", 0700) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "creating %s/%s/{upper,work}", im->containers_path,
					     key);
	return 0;
}

/* Forgets a container: its directory, then its row.  With im->lock held. */
static int forget_locked(Imaged *im, const char *container_id, const char *key, CrispError **err)
{
	int r = crisp_remove_tree_at(im->containers_fd, key);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "removing %s/%s",
					     im->containers_path, key);
	return image_db_container_delete(im->db, container_id, err);
}

static char **strv_or_empty(char **v, size_t *ret_n)
{
	*ret_n = strv_length(v);
	return v;
}

typedef struct Prepared {
	ImageRecord image;
	ImageLayerRecord *layers;
	size_t n_layers;
	CrispImageConfig config;
	CrispResolvedUser user;
	char **lower_dirs;
	char *upper, *work;
} Prepared;

static void prepared_done(Prepared *p)
{
	image_record_done(&p->image);
	image_layer_records_free(p->layers, p->n_layers);
	crisp_image_config_done(&p->config);
	crisp_resolved_user_done(&p->user);
	strv_free(p->lower_dirs);
	free(p->upper);
	free(p->work);
}

static int resolve_user(Imaged *im, const Crisp__PrepareContainerSnapshotRequest *q, Prepared *p,
			CrispError **err)
{
	int *fds = xcalloc(p->n_layers ? p->n_layers : 1, sizeof(int));
	size_t n = 0;
	int r = 0;
	/* Topmost first, as overlayfs stacks them. */
	for (size_t i = p->n_layers; i-- > 0;) {
		char name[24];
		imaged_snapshot_name(p->layers[i].snapshot_id, name);
		fds[n] = openat(im->snapshots_fd, name,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fds[n] < 0) {
			r = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						  "opening snapshot %s", name);
			break;
		}
		n++;
	}
	if (r == 0) {
		CrispUserSpec spec = {
			.image_user = p->config.user,
			.has_run_as_user = q->has_run_as_user,
			.run_as_user = q->run_as_user,
			.run_as_username = q->run_as_username,
			.has_run_as_group = q->has_run_as_group,
			.run_as_group = q->run_as_group,
		};
		r = crisp_userdb_resolve(fds, n, &spec, &p->user, err);
	}
	for (size_t i = 0; i < n; i++)
		safe_close(fds[i]);
	free(fds);
	return r;
}

static int prepare_locked(Imaged *im, const Crisp__PrepareContainerSnapshotRequest *q,
			  const char *key, Prepared *p, CrispError **err)
{
	ContainerRecord existing;
	int r = image_db_container_get(im->db, q->container_id, &existing, err);
	if (r == 0) {
		container_record_done(&existing);
		return crisp_error_set(err, CRISP_ERR_ALREADY_EXISTS, EEXIST,
				       "container %s already has a snapshot", q->container_id);
	}
	if (r != -ENOENT)
		return r;
	_cleanup_free_ char *id = NULL;
	r = imaged_resolve_image_locked(im, q->image, &id, err);
	if (r == -ENOENT)
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "image \"%.300s\" is not present", q->image);
	if (r < 0)
		return r;
	if ((r = image_db_get(im->db, id, &p->image, err)) < 0)
		return r;
	if ((r = image_db_layers(im->db, id, &p->layers, &p->n_layers, err)) < 0)
		return r;
	if ((r = image_db_config_from_json(p->image.config_json, &p->config, err)) < 0)
		return r;
	return image_db_container_insert(im->db, q->container_id, key, id, p->layers, p->n_layers,
					 err);
}

static void fill_config(const CrispImageConfig *c, Crisp__ImageRuntimeConfig *out,
			Crisp__ImageRuntimeConfig__LabelsEntry **entries,
			Crisp__ImageRuntimeConfig__LabelsEntry *storage)
{
	crisp__image_runtime_config__init(out);
	out->user = c->user ? c->user : "";
	out->env = strv_or_empty(c->env, &out->n_env);
	out->has_entrypoint = c->entrypoint != NULL;
	out->entrypoint = strv_or_empty(c->entrypoint, &out->n_entrypoint);
	out->has_cmd = c->cmd != NULL;
	out->cmd = strv_or_empty(c->cmd, &out->n_cmd);
	out->working_dir = c->working_dir ? c->working_dir : "";
	out->exposed_ports = strv_or_empty(c->exposed_ports, &out->n_exposed_ports);
	out->volumes = strv_or_empty(c->volumes, &out->n_volumes);
	size_t n = strv_length(c->labels) / 2;
	for (size_t i = 0; i < n; i++) {
		crisp__image_runtime_config__labels_entry__init(&storage[i]);
		storage[i].key = c->labels[2 * i];
		storage[i].value = c->labels[2 * i + 1];
		entries[i] = &storage[i];
	}
	out->n_labels = n;
	out->labels = entries;
	out->stop_signal = c->stop_signal;
}

static int reply_prepared(CrispRequest *req, Prepared *p)
{
	Crisp__PrepareContainerSnapshotReply a = CRISP__PREPARE_CONTAINER_SNAPSHOT_REPLY__INIT;
	Crisp__ImageRuntimeConfig config;
	size_t n_labels = strv_length(p->config.labels) / 2;
	_cleanup_free_ Crisp__ImageRuntimeConfig__LabelsEntry **entries =
		xcalloc(n_labels + 1, sizeof(*entries));
	_cleanup_free_ Crisp__ImageRuntimeConfig__LabelsEntry *storage =
		xcalloc(n_labels + 1, sizeof(*storage));
	fill_config(&p->config, &config, entries, storage);
	a.image_id = p->image.id;
	a.lower_dirs = strv_or_empty(p->lower_dirs, &a.n_lower_dirs);
	a.upper_dir = p->upper;
	a.work_dir = p->work;
	a.config = &config;
	a.uid = p->user.uid;
	a.gid = p->user.gid;
	a.n_additional_gids = p->user.n_additional_gids;
	a.additional_gids = p->user.additional_gids;
	return crisp_reply(req, CRISP_MSG_IMAGED_PREPARE_ANS, &a.base, NULL, 0);
}

int imaged_prepare_container(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	const Crisp__PrepareContainerSnapshotRequest *q = (const void *)req->msg;
	int r = check_container_id(q->container_id, err);
	if (r < 0)
		return r;
	if (!q->image || !*q->image)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "image is empty");

	char key[33];
	random_key(key);
	_cleanup_(prepared_done) Prepared p = { 0 };
	pthread_mutex_lock(&im->lock);
	r = prepare_locked(im, q, key, &p, err);
	pthread_mutex_unlock(&im->lock);
	if (r < 0)
		return r;

	r = make_dirs(im, key, err);
	if (r == 0)
		r = resolve_user(im, q, &p, err);
	if (r < 0) {
		/* Nothing stays behind: no directory, no row. */
		CrispError *cleanup = NULL;
		pthread_mutex_lock(&im->lock);
		if (forget_locked(im, q->container_id, key, &cleanup) < 0) {
			log_error("%s", cleanup->message);
			crisp_error_free(cleanup);
		}
		imaged_collect_locked(im);
		pthread_mutex_unlock(&im->lock);
		return crisp_error_wrap(err, "container %s", q->container_id);
	}

	for (size_t i = p.n_layers; i-- > 0;)
		strv_push(&p.lower_dirs, imaged_snapshot_path(im, p.layers[i].snapshot_id));
	p.upper = xasprintf("%s/%s/upper", im->containers_path, key);
	p.work = xasprintf("%s/%s/work", im->containers_path, key);
	log_info("prepared the snapshot of container %s from image %s", q->container_id,
		 p.image.id);
	return reply_prepared(req, &p);
}

int imaged_release_container(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	const Crisp__ReleaseContainerSnapshotRequest *q = (const void *)req->msg;
	int r = check_container_id(q->container_id, err);
	if (r < 0)
		return r;
	ContainerRecord rec = { 0 };
	pthread_mutex_lock(&im->lock);
	r = image_db_container_get(im->db, q->container_id, &rec, err);
	if (r == -ENOENT)
		r = crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				    "imaged holds no snapshot for container %s", q->container_id);
	if (r == 0)
		r = forget_locked(im, rec.container_id, rec.key, err);
	if (r == 0)
		imaged_collect_locked(im);
	pthread_mutex_unlock(&im->lock);
	container_record_done(&rec);
	if (r < 0)
		return r;
	log_info("released the snapshot of container %s", q->container_id);
	Crisp__ReleaseContainerSnapshotReply a = CRISP__RELEASE_CONTAINER_SNAPSHOT_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_IMAGED_RELEASE_ANS, &a.base, NULL, 0);
}

int imaged_list_containers(CrispRequest *req, void *userdata, CrispError **err)
{
	Imaged *im = imaged_of(userdata);
	_cleanup_strv_free_ char **ids = NULL, **keys = NULL;
	pthread_mutex_lock(&im->lock);
	int r = image_db_container_list(im->db, &ids, &keys, err);
	pthread_mutex_unlock(&im->lock);
	if (r < 0)
		return r;
	Crisp__ListContainerSnapshotsReply a = CRISP__LIST_CONTAINER_SNAPSHOTS_REPLY__INIT;
	a.container_ids = strv_or_empty(ids, &a.n_container_ids);
	return crisp_reply(req, CRISP_MSG_IMAGED_LIST_CONTAINERS_ANS, &a.base, NULL, 0);
}
