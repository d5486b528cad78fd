/*
 * state.c - imaged's start-up: open the store, then make disk and database
 * agree again after whatever stopped the last run.
 *
 * A crash can leave, by the order pulls and prepares follow:
 *   - a snapshot row 'unpacking', with a partial directory or none: both go;
 *   - a snapshot directory without a row (made after the row, so only when
 *     the row's removal was the step interrupted): it goes;
 *   - a container row whose directory was never made: the row goes (the
 *     prepare never answered); a container directory without a row: it goes;
 *   - blobs or temporaries no image references: collection removes them.
 * A snapshot row marked ready whose directory is gone was damaged from
 * outside; the images built on it are forgotten (a later pull unpacks them
 * again) and the row goes once nothing references it.
 */
#include "imaged.h"

#include "image_db.h"
#include "log.h"
#include "snapshots.h"
#include "unpack.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

static int open_dir(const char *path, CrispError **err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "creating %s", path);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "opening %s", path);
	return fd;
}

/* Calls fn for each entry of dirfd but "." and "..". */
static int for_each_entry(int dirfd, const char *shown,
			  int (*fn)(Imaged *im, const char *name, CrispError **err), Imaged *im,
			  CrispError **err)
{
	int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		safe_close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "listing %s", shown);
	}
	rewinddir(d);
	_cleanup_strv_free_ char **names = NULL;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			strv_push(&names, e->d_name);
	closedir(d);
	for (char **n = names; n && *n; n++) {
		int r = fn(im, *n, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int remove_unless_snapshot(Imaged *im, const char *name, CrispError **err)
{
	char *end;
	errno = 0;
	long long id = isdigit((unsigned char)name[0]) ? strtoll(name, &end, 10) : -1;
	bool known = false;
	if (id > 0 && errno == 0 && !*end) {
		int r = image_db_snapshot_exists(im->db, id, &known, err);
		if (r < 0)
			return r;
	}
	if (known)
		return 0;
	log_warning("removing %s/%s, which no snapshot owns", im->snapshots_path, name);
	int r = crisp_remove_tree_at(im->snapshots_fd, name);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "removing %s/%s",
					     im->snapshots_path, name);
	return 0;
}

static int remove_unless_container(Imaged *im, const char *name, CrispError **err)
{
	_cleanup_strv_free_ char **ids = NULL, **keys = NULL;
	int r = image_db_container_list(im->db, &ids, &keys, err);
	if (r < 0)
		return r;
	for (char **k = keys; k && *k; k++)
		if (strcmp(*k, name) == 0)
			return 0;
	log_warning("removing %s/%s, which no container owns", im->containers_path, name);
	r = crisp_remove_tree_at(im->containers_fd, name);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "removing %s/%s",
					     im->containers_path, name);
	return 0;
}

static int reconcile_snapshots(Imaged *im, CrispError **err)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int r = image_db_snapshots_unpacking(im->db, &ids, &n, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		log_warning("removing snapshot %" PRId64 ", left unfinished", ids[i]);
		r = imaged_snapshot_remove_locked(im, ids[i], err);
	}
	free(ids);
	if (r < 0)
		return r;
	if ((r = for_each_entry(im->snapshots_fd, im->snapshots_path, remove_unless_snapshot, im,
				err)) < 0)
		return r;

	/* Images on a snapshot whose directory vanished cannot be used. */
	ImageRecord *images = NULL;
	size_t n_images = 0;
	if ((r = image_db_list(im->db, &images, &n_images, err)) < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n_images; i++) {
		ImageLayerRecord *layers = NULL;
		size_t n_layers = 0;
		r = image_db_layers(im->db, images[i].id, &layers, &n_layers, err);
		for (size_t j = 0; r == 0 && j < n_layers; j++) {
			char name[24];
			struct stat st;
			imaged_snapshot_name(layers[j].snapshot_id, name);
			if (fstatat(im->snapshots_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISDIR(st.st_mode))
				continue;
			log_warning("forgetting image %s: its snapshot %s is gone", images[i].id,
				    name);
			r = image_db_remove_image(im->db, images[i].id, err);
			break;
		}
		image_layer_records_free(layers, n_layers);
	}
	image_records_free(images, n_images);
	return r;
}

static int reconcile_containers(Imaged *im, CrispError **err)
{
	_cleanup_strv_free_ char **ids = NULL, **keys = NULL;
	int r = image_db_container_list(im->db, &ids, &keys, err);
	for (size_t i = 0; r == 0 && ids && ids[i]; i++) {
		struct stat st;
		if (fstatat(im->containers_fd, keys[i], &st, AT_SYMLINK_NOFOLLOW) == 0)
			continue;
		log_warning("forgetting container %s: its snapshot was never made", ids[i]);
		r = image_db_container_delete(im->db, ids[i], err);
	}
	if (r < 0)
		return r;
	return for_each_entry(im->containers_fd, im->containers_path, remove_unless_container, im,
			      err);
}

int imaged_setup(CrispBackend *b, CrispError **err)
{
	Imaged *im = xcalloc(1, sizeof(*im));
	b->state = im;
	im->backend = b;
	im->config = &b->opts.config;
	im->db = b->db;
	im->snapshots_fd = im->containers_fd = -1;
	pthread_mutex_init(&im->lock, NULL);
	crisp_inflight_init(&im->inflight);

	_cleanup_free_ char *store = xasprintf("%s/%s", b->dir, IMAGED_STORE_DIR);
	int r = crisp_store_open(store, &im->store, err);
	if (r < 0)
		return r;
	im->snapshots_path = xasprintf("%s/%s", store, IMAGED_SNAPSHOTS_DIR);
	if ((r = im->snapshots_fd = open_dir(im->snapshots_path, err)) < 0)
		return r;
	im->containers_path = xasprintf("%s/%s", b->dir, IMAGED_CONTAINERS_DIR);
	if ((r = im->containers_fd = open_dir(im->containers_path, err)) < 0)
		return r;

	pthread_mutex_lock(&im->lock);
	r = reconcile_snapshots(im, err);
	if (r == 0)
		r = reconcile_containers(im, err);
	if (r == 0)
		imaged_collect_locked(im);
	pthread_mutex_unlock(&im->lock);
	if (r < 0)
		return crisp_error_wrap(err, "reconciling %s with image.db", b->dir);
	return 0;
}

void imaged_teardown(CrispBackend *b)
{
	Imaged *im = b->state;
	if (!im)
		return;
	crisp_store_free(im->store);
	safe_close(im->snapshots_fd);
	safe_close(im->containers_fd);
	free(im->snapshots_path);
	free(im->containers_path);
	crisp_inflight_done(&im->inflight);
	pthread_mutex_destroy(&im->lock);
	free(im);
	b->state = NULL;
}
