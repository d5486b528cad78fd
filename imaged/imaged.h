/*
 * imaged.h - crisp-imaged: registry pulls, content store, unpack, snapshots.
 *
 * The daemon's state, shared by its handlers (which run on worker threads):
 *
 *   <root>/image/image.db          metadata (image_db.h)
 *   <root>/image/store/blobs/      verified content by digest (store.h)
 *   <root>/image/store/snapshots/<n>/
 *                                  one unpacked layer per chain ID; <n> is the
 *                                  row id in the snapshots table, short so that
 *                                  an overlay lowerdir of many layers stays
 *                                  within a page
 *   <root>/image/containers/<key>/{upper,work}
 *                                  a container's writable layer; <key> is
 *                                  issued by imaged, never taken from a request
 *
 * Locking: `lock` guards the database (each transaction is taken whole under
 * it), the in-flight table and the collection state.  Downloads and unpacks
 * run without it; the in-flight table (inflight.h) makes concurrent pulls of
 * one blob or one snapshot share the work.  Collection (gc.c) runs only when
 * no pull is between fetching content and recording it in the database.
 */
#ifndef CRISP_IMAGED_H
#define CRISP_IMAGED_H

#include "backend.h"
#include "daemon.h"
#include "inflight.h"
#include "sandbox.h"
#include "store.h"

#include <pthread.h>

/* Under <root>/image: image content, and containers' writable layers. */
#define IMAGED_STORE_DIR "store"
#define IMAGED_CONTAINERS_DIR "containers"
#define IMAGED_SNAPSHOTS_DIR "snapshots"

typedef struct Imaged {
	CrispBackend *backend;
	const CrispConfig *config;
	sqlite3 *db;
	CrispStore *store;
	char *snapshots_path; /* <root>/image/store/snapshots */
	int snapshots_fd;
	char *containers_path; /* <root>/image/containers */
	int containers_fd;

	pthread_mutex_t lock;
	CrispInflight inflight;
	unsigned active_pulls; /* pulls holding content not yet in the database */
	bool gc_pending;       /* a collection waits for active_pulls to reach 0 */
} Imaged;

extern const CrispProfile imaged_profile;

/* Start-up and shutdown (state.c). */
int imaged_setup(CrispBackend *b, CrispError **err);
void imaged_teardown(CrispBackend *b);

/* CRI ImageService (fsinfo.c, pull.c, images.c). */
int imaged_image_fs_info(CrispRequest *req, void *userdata, CrispError **err);
int imaged_pull_image(CrispRequest *req, void *userdata, CrispError **err);
int imaged_list_images(CrispRequest *req, void *userdata, CrispError **err);
int imaged_image_status(CrispRequest *req, void *userdata, CrispError **err);
int imaged_remove_image(CrispRequest *req, void *userdata, CrispError **err);

/*
 * The ID of the image s names (an ID, repo tag or repo digest, full or
 * familiar): -ENOENT when imaged has no such image, -EINVAL with *err when s
 * names nothing.  With im->lock held (images.c).
 */
int imaged_resolve_image_locked(Imaged *im, const char *s, char **ret_id, CrispError **err);

/* Containers' writable snapshots (container.c). */
int imaged_prepare_container(CrispRequest *req, void *userdata, CrispError **err);
int imaged_release_container(CrispRequest *req, void *userdata, CrispError **err);
int imaged_list_containers(CrispRequest *req, void *userdata, CrispError **err);

/*
 * Collection (gc.c): removes snapshots and blobs no image and no container
 * references any more.  Call with im->lock held; when a pull is in flight
 * the collection is deferred to the end of the last one.
 */
void imaged_collect_locked(Imaged *im);

static inline Imaged *imaged_of(void *userdata)
{
	return ((CrispBackend *)userdata)->state;
}

#endif
