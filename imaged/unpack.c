/*
 * unpack.c - one layer stream into one empty snapshot directory: the
 * readers, the diff ID, the limits on the stream, and the driver.  unpack.h
 * states the contract; unpack_entry.c puts each entry on disk, and
 * unpack_path.c holds the confined lookups.
 *
 * Two libarchive readers are chained so the diff ID covers exactly the
 * bytes the tar reader sees:
 *
 *   src_fd --src_read()--> outer: gzip | zstd | none, format "raw"
 *          --archive_read_data(outer)--> inner_read(): hash, count
 *          --> inner: format tar, no filters --> entries
 *
 * The outer reader only decompresses: its single "raw" entry is the
 * uncompressed tar.  Every byte of it passes once through inner_read(),
 * which feeds the digest verifier and the size limit before the tar reader
 * sees it; after the tar's end the rest of the stream (padding, trailing
 * data) is drained through the same path, so the hash covers the whole
 * uncompressed blob, as the diff ID is defined.  Doing it in one pass means
 * the layer is decompressed once, and nothing unhashed is ever unpacked
 * without being counted.  The digest can only be judged at the end; a
 * mismatch fails the layer and the caller removes what was unpacked.
 *
 * The inner reader has no filters, so a compressed tar inside the
 * compressed stream is not a valid layer (no double-decompression bombs),
 * and the outer one enables only the built-in gzip and zstd decoders:
 * libarchive falls back to running an external program when a library is
 * missing, which imaged must never do, so that case is an error.
 */
#include "unpack_internal.h"

#include "parse_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

static Unpack *unpack_free(Unpack *u)
{
	if (!u)
		return NULL;
	if (u->inner)
		archive_read_free(u->inner);
	if (u->outer)
		archive_read_free(u->outer);
	crisp_digest_verifier_done(&u->verifier);
	crisp_error_free(u->stream_err);
	for (size_t i = 0; i < u->n_dirs; i++)
		free(u->dirs[i].path);
	free(u->dirs);
	free(u);
	return NULL;
}
static void unpack_freep(Unpack **u)
{
	unpack_free(*u);
}

/* ---- errors that name the entry ---- */

static int entry_errorv(CrispError **err, CrispErrorCode code, int errnum, bool with_errno,
			const char *name, const char *fmt, va_list ap)
{
	_cleanup_free_ char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	_cleanup_free_ char *q = imaged_escape(name, UNPACK_QUOTE_MAX);
	if (with_errno)
		return crisp_error_set_errno(err, code, errnum, "layer entry \"%s\": %s", q, msg);
	return crisp_error_set(err, code, errnum, "layer entry \"%s\": %s", q, msg);
}

int unpack_entry_fail(CrispError **err, CrispErrorCode code, int errnum, const char *name,
		      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = entry_errorv(err, code, errnum, false, name, fmt, ap);
	va_end(ap);
	return r;
}

/* As unpack_entry_fail, appending strerror(errnum); the code follows from errnum. */
int unpack_entry_fail_errno(CrispError **err, int errnum, const char *name, const char *fmt, ...)
{
	CrispErrorCode code;
	switch (errnum) {
	case ENOENT:
	case ENOTDIR:
	case ELOOP:
	case EINVAL:
	case EEXIST:
	case EXDEV:
	case ENAMETOOLONG:
	case ERANGE:
	case E2BIG:
		code = CRISP_ERR_INVALID; /* what the layer asks for cannot be done */
		break;
	default:
		code = CRISP_ERR_INTERNAL; /* the host's fault: ENOSPC, EIO, EPERM, ... */
		break;
	}
	va_list ap;
	va_start(ap, fmt);
	int r = entry_errorv(err, code, errnum, true, name, fmt, ap);
	va_end(ap);
	return r;
}

/* The reason a reader failed: a callback's own error, or libarchive's message. */
int unpack_stream_fail(Unpack *u, struct archive *a, const char *name, CrispError **err)
{
	if (u->stream_err) {
		int r = u->stream_err->errnum > 0 ? -u->stream_err->errnum : -EIO;
		_cleanup_error_ CrispError *e = TAKE_PTR(u->stream_err);
		if (!err)
			return r;
		crisp_error_move(err, &e);
		if (!name)
			return r;
		_cleanup_free_ char *q = imaged_escape(name, UNPACK_QUOTE_MAX);
		return crisp_error_wrap(err, "layer entry \"%s\"", q);
	}
	const char *s = archive_error_string(a);
	_cleanup_free_ char *q = imaged_escape(s ? s : "unknown error", UNPACK_QUOTE_MAX);
	if (name)
		return unpack_entry_fail(err, CRISP_ERR_INVALID, EBADMSG, name,
					 "malformed tar stream: %s", q);
	return crisp_error_set(err, CRISP_ERR_INVALID, EBADMSG, "the layer is not a valid tar: %s",
			       q);
}

/* ---- the two readers ---- */

static la_ssize_t src_read(struct archive *a, void *userdata, const void **ret_buf)
{
	Unpack *u = userdata;
	for (;;) {
		ssize_t n = read(u->src_fd, u->src_buf, sizeof(u->src_buf));
		if (n >= 0) {
			*ret_buf = u->src_buf;
			return n;
		}
		if (errno == EINTR)
			continue;
		int e = errno;
		crisp_error_set_errno(&u->stream_err, CRISP_ERR_INTERNAL, e, "reading the layer");
		archive_set_error(a, e, "reading the layer failed");
		return -1;
	}
}

/* Hashes and counts a piece of the uncompressed stream. */
static int account(Unpack *u, const void *buf, size_t n)
{
	if (n > u->limits.max_size - u->stats.tar_size)
		return crisp_error_set(&u->stream_err, CRISP_ERR_RESOURCE_EXHAUSTED, EFBIG,
				       "the layer's uncompressed size exceeds the limit of %" PRIu64
				       " bytes",
				       u->limits.max_size);
	u->stats.tar_size += n;
	return crisp_digest_verifier_update(&u->verifier, buf, n, &u->stream_err);
}

static la_ssize_t inner_read(struct archive *a, void *userdata, const void **ret_buf)
{
	Unpack *u = userdata;
	la_ssize_t n = archive_read_data(u->outer, u->tar_buf, sizeof(u->tar_buf));
	if (n < 0) {
		if (!u->stream_err) {
			const char *s = archive_error_string(u->outer);
			_cleanup_free_ char *q = imaged_escape(s ? s : "unknown error", 200);
			crisp_error_set(&u->stream_err, CRISP_ERR_INVALID, EBADMSG,
					"decompressing the layer failed: %s", q);
		}
		archive_set_error(a, EIO, "decompressing the layer failed");
		return -1;
	}
	if (account(u, u->tar_buf, (size_t)n) < 0) {
		archive_set_error(a, EIO, "the layer was refused while reading");
		return -1;
	}
	*ret_buf = u->tar_buf;
	return n;
}

static int open_readers(Unpack *u, CrispError **err)
{
	u->outer = archive_read_new();
	u->inner = archive_read_new();
	if (!u->outer || !u->inner)
		abort();

	if (archive_read_support_filter_gzip(u->outer) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(u->outer) != ARCHIVE_OK)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, ENOTSUP,
				       "libarchive lacks built-in gzip or zstd support, and imaged "
				       "does not run external decompressors");
	if (archive_read_support_format_raw(u->outer) != ARCHIVE_OK)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, ENOTSUP,
				       "libarchive lacks the raw format");
	if (archive_read_open(u->outer, u, NULL, src_read, NULL) != ARCHIVE_OK)
		return unpack_stream_fail(u, u->outer, NULL, err);
	struct archive_entry *raw;
	int ar = archive_read_next_header(u->outer, &raw);
	if (ar == ARCHIVE_EOF)
		return crisp_error_set(err, CRISP_ERR_INVALID, EBADMSG, "the layer is empty");
	if (ar < ARCHIVE_WARN)
		return unpack_stream_fail(u, u->outer, NULL, err);

	if (archive_read_support_format_tar(u->inner) != ARCHIVE_OK ||
	    archive_read_support_format_empty(u->inner) != ARCHIVE_OK)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, ENOTSUP,
				       "libarchive lacks the tar format");
	if (archive_read_open(u->inner, u, NULL, inner_read, NULL) != ARCHIVE_OK)
		return unpack_stream_fail(u, u->inner, NULL, err);
	return 0;
}

/* After the tar's end: hash the rest of the uncompressed stream. */
static int drain(Unpack *u, CrispError **err)
{
	for (;;) {
		la_ssize_t n = archive_read_data(u->outer, u->tar_buf, sizeof(u->tar_buf));
		if (n == 0)
			return 0;
		if (n < 0)
			return unpack_stream_fail(u, u->outer, NULL, err);
		if (account(u, u->tar_buf, (size_t)n) < 0)
			return unpack_stream_fail(u, u->outer, NULL, err);
	}
}

/* The snapshot directory must be empty: whiteouts and links must not meet stale files. */
static int check_dest(int dest_dirfd, CrispError **err)
{
	int fd = openat(dest_dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "opening the snapshot directory");
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, e,
					     "reading the snapshot directory");
	}
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)))
		if (!streq_ptr(de->d_name, ".") && !streq_ptr(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	if (!empty)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, ENOTEMPTY,
				       "the snapshot directory is not empty");
	return 0;
}

int crisp_unpack_layer(int src_fd, const char *expected_diff_id, int dest_dirfd,
		       const CrispUnpackLimits *limits, CrispUnpackStats *ret_stats,
		       CrispError **err)
{
	CrispDigest expected;
	int r = crisp_digest_parse(expected_diff_id, &expected, err);
	if (r < 0)
		return crisp_error_wrap(err, "layer diff ID");
	r = check_dest(dest_dirfd, err);
	if (r < 0)
		return r;

	_cleanup_(unpack_freep) Unpack *u = xcalloc(1, sizeof(*u));
	u->src_fd = src_fd;
	u->root = dest_dirfd;
	u->limits = (CrispUnpackLimits)CRISP_UNPACK_LIMITS_DEFAULT;
	if (limits && limits->max_entries)
		u->limits.max_entries = limits->max_entries;
	if (limits && limits->max_size)
		u->limits.max_size = limits->max_size;
	if (limits && limits->max_path)
		u->limits.max_path = limits->max_path;
	r = crisp_digest_verifier_init(&u->verifier, &expected, -1, err);
	if (r < 0)
		return r;

	r = open_readers(u, err);
	if (r < 0)
		return r;
	for (;;) {
		struct archive_entry *e;
		int ar = archive_read_next_header(u->inner, &e);
		if (ar == ARCHIVE_EOF)
			break;
		/* ARCHIVE_WARN: e.g. a UTF-8 name the C locale cannot convert; the bytes are kept. */
		if (ar < ARCHIVE_WARN)
			return unpack_stream_fail(u, u->inner, NULL, err);
		u->stats.entries++;
		r = unpack_one_entry(u, e, err);
		if (r < 0)
			return r;
	}
	r = drain(u, err);
	if (r < 0)
		return r;
	r = crisp_digest_verifier_check(&u->verifier, err);
	if (r < 0)
		return crisp_error_wrap(err, "checking the layer's diff ID");
	r = unpack_apply_dir_times(u, err);
	if (r < 0)
		return r;
	if (ret_stats)
		*ret_stats = u->stats;
	return 0;
}
