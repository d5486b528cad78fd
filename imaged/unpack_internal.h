/*
 * unpack_internal.h - what unpack.c (the readers, the diff ID, the driver)
 * and unpack_entry.c (one tar entry onto the disk) share.  Internal to
 * imaged's unpacking; unpack.h is the interface.
 */
#ifndef CRISP_IMAGED_UNPACK_INTERNAL_H
#define CRISP_IMAGED_UNPACK_INTERNAL_H

#include "digest.h"
#include "unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdbool.h>
#include <time.h>

#define UNPACK_BUF_SIZE (128 * 1024)
/* How much of an entry's name an error message shows. */
#define UNPACK_QUOTE_MAX 256
/* Directories' times are set at the end, so their names are kept until then. */
#define UNPACK_DIR_TIMES_MAX_BYTES (UINT64_C(64) << 20)

typedef struct DirTimes {
	char *path; /* cleaned name */
	struct timespec times[2];
} DirTimes;

typedef struct Unpack {
	int src_fd;
	int root;
	CrispUnpackLimits limits;
	struct archive *outer;
	struct archive *inner;
	CrispDigestVerifier verifier;
	CrispError *stream_err; /* set by the read callbacks, which cannot return one */
	CrispUnpackStats stats;
	DirTimes *dirs;
	size_t n_dirs;
	uint64_t dir_bytes;
	unsigned char src_buf[UNPACK_BUF_SIZE];
	unsigned char tar_buf[UNPACK_BUF_SIZE];
} Unpack;

/* Errors that name the entry: layer entry "<escaped name>": <message>. */
int unpack_entry_fail(CrispError **err, CrispErrorCode code, int errnum, const char *name,
		      const char *fmt, ...) _printf_(5, 6);
/* As unpack_entry_fail, appending strerror(errnum); the code follows from errnum. */
int unpack_entry_fail_errno(CrispError **err, int errnum, const char *name, const char *fmt, ...)
	_printf_(4, 5);
/* Why reader a failed: a read callback's own error, or libarchive's message.  name may be NULL. */
int unpack_stream_fail(Unpack *u, struct archive *a, const char *name, CrispError **err);

/* Puts one entry (its data read from u->inner) into the snapshot. */
int unpack_one_entry(Unpack *u, struct archive_entry *e, CrispError **err);
/* Sets directories' times, deferred until their contents exist. */
int unpack_apply_dir_times(Unpack *u, CrispError **err);

#endif
