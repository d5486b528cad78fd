/*
 * unpack_bench - imaged's layer unpacking (crisp_unpack_layer, imaged/unpack.c)
 * timed on its own, so bench/pull.sh can set it against `tar -x` of the same
 * blobs.  A pull's wall time mixes the download with the unpack; this tool
 * runs only the unpack, with the code imaged runs.
 *
 *   unpack_bench DEST BLOB DIFF_ID [BLOB DIFF_ID ...]
 *
 * DEST must not exist.  The i-th BLOB (tar, tar+gzip or tar+zstd, as stored)
 * is unpacked into the new empty directory DEST/<i> with the default limits,
 * checked against DIFF_ID ("sha256:<hex>"), and then syncfs()'d, as imaged
 * does for each snapshot (snapshots.c).  The unpack and the syncfs are timed
 * apart with CLOCK_MONOTONIC.  Output: one line per layer and a last line
 *
 *   RESULT layers=N entries=E tar_bytes=T content_bytes=C unpack_s=U syncfs_s=S
 *
 * DEST is left in place for the caller to inspect and remove.  Unlike
 * imaged, this runs with all of root's capabilities and without imaged's
 * seccomp filter; the unpack code is the same.  On failure the refused
 * layer's directory is removed (unpack.h asks its callers to) and the tool
 * exits 1.
 */
#include "error.h"
#include "macros.h"
#include "unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct Totals {
	uint64_t entries;
	uint64_t tar_size;
	uint64_t content_size;
	double unpack_s;
	double syncfs_s;
} Totals;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A new empty directory DEST/NAME, opened as imaged opens a snapshot. */
static int make_layer_dir(int dest_fd, const char *name)
{
	if (mkdirat(dest_fd, name, 0755) < 0)
		return -errno;
	int fd = openat(dest_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Unpacks one blob into DEST/NAME and syncs it; adds its numbers to *t. */
static int unpack_one(int dest_fd, const char *name, const char *blob, const char *diff_id,
		      Totals *t)
{
	_cleanup_close_ int src = open(blob, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		fprintf(stderr, "unpack_bench: %s: %s\n", blob, strerror(errno));
		return -errno;
	}
	_cleanup_close_ int dir = make_layer_dir(dest_fd, name);
	if (dir < 0) {
		fprintf(stderr, "unpack_bench: creating %s: %s\n", name, strerror(-dir));
		return dir;
	}

	_cleanup_error_ CrispError *err = NULL;
	CrispUnpackStats st = { 0 };
	double t0 = now_s();
	int r = crisp_unpack_layer(src, diff_id, dir, NULL, &st, &err);
	double t1 = now_s();
	if (r < 0) {
		fprintf(stderr, "unpack_bench: %s: %s\n", blob, err->message);
		crisp_remove_tree_at(dest_fd, name);
		return r;
	}
	if (syncfs(dir) < 0) {
		fprintf(stderr, "unpack_bench: syncfs %s: %s\n", name, strerror(errno));
		return -errno;
	}
	double t2 = now_s();

	printf("layer %s: %" PRIu64 " entries (%" PRIu64 " files, %" PRIu64 " dirs), %" PRIu64
	       " tar bytes, unpack %.3f s, syncfs %.3f s\n",
	       name, st.entries, st.files, st.dirs, st.tar_size, t1 - t0, t2 - t1);
	t->entries += st.entries;
	t->tar_size += st.tar_size;
	t->content_size += st.content_size;
	t->unpack_s += t1 - t0;
	t->syncfs_s += t2 - t1;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (argc - 2) % 2 != 0) {
		fprintf(stderr, "usage: unpack_bench DEST BLOB DIFF_ID [BLOB DIFF_ID ...]\n");
		return 2;
	}
	const char *dest = argv[1];
	/* A fresh DEST, so every layer lands in an empty directory as in imaged. */
	if (mkdir(dest, 0755) < 0) {
		fprintf(stderr, "unpack_bench: mkdir %s: %s\n", dest, strerror(errno));
		return 1;
	}
	_cleanup_close_ int dest_fd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dest_fd < 0) {
		fprintf(stderr, "unpack_bench: %s: %s\n", dest, strerror(errno));
		return 1;
	}

	Totals t = { 0 };
	int layers = (argc - 2) / 2;
	for (int i = 0; i < layers; i++) {
		char name[16];
		snprintf(name, sizeof(name), "%d", i);
		if (unpack_one(dest_fd, name, argv[2 + 2 * i], argv[3 + 2 * i], &t) < 0)
			return 1;
	}
	printf("RESULT layers=%d entries=%" PRIu64 " tar_bytes=%" PRIu64 " content_bytes=%" PRIu64
	       " unpack_s=%.6f syncfs_s=%.6f\n",
	       layers, t.entries, t.tar_size, t.content_size, t.unpack_s, t.syncfs_s);
	return 0;
}
