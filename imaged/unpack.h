/*
 * unpack.h - unpacking one image layer into an empty snapshot directory,
 * confined to that directory.
 *
 * A layer is Class 2 input (ARCHITECTURE.md §2): a tarball from a registry,
 * unpacked by root.  crisp_unpack_layer() takes the blob as it came (tar,
 * tar+gzip or tar+zstd; the compression is detected, and only libarchive's
 * built-in gzip and zstd decoders are enabled, never an external program),
 * and checks the uncompressed stream against the diff ID from the image
 * config while it unpacks.  The caller keys the directory by chain ID and
 * unpacks each layer once; on any failure it removes the whole directory
 * with crisp_remove_tree_at(), so a refused layer leaves nothing behind.
 *
 * Confinement.  No name from the archive reaches a plain path syscall.  The
 * parent directory of each entry is opened with openat2(dest,
 * RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), and the last
 * component is acted on with *at() calls that never follow it (O_NOFOLLOW,
 * O_EXCL, AT_SYMLINK_NOFOLLOW, linkat without AT_SYMLINK_FOLLOW).  Where
 * openat2() is missing (ENOSYS: kernels before 5.6, valgrind) the same
 * resolution is done one O_PATH | O_NOFOLLOW step at a time.  Names are
 * cleaned first: leading "/" and "./", "." components and repeated slashes
 * go; a ".." component anywhere refuses the layer (it is never resolved);
 * so do empty names, names over the path limit and components over 255
 * bytes.  Consequences:
 *   - "/etc/x" is "etc/x" inside the snapshot.
 *   - An entry naming the root itself ("./", "/") is skipped when it is a
 *     directory, as containerd does: the snapshot's root directory belongs
 *     to the snapshotter.  Any other type naming the root is refused.
 *   - Symlinks are created as written, absolute or with "..": inside an
 *     image that is legal, and they are never followed while unpacking.
 *   - A later entry written through a symlink ("esc" -> "/tmp/v", then
 *     "esc/pwned") resolves the symlink as the container will, inside the
 *     snapshot: it lands in <snapshot>/tmp/v/pwned when that directory
 *     exists in the layer, and is refused when the symlink leads nowhere
 *     (crisp creates a missing parent directory, 0755 root:root, as
 *     containerd does, but never through a dangling symlink).  This is
 *     containerd's behaviour; nothing is ever written outside.
 *   - A hard link's target is resolved the same way, must already exist in
 *     this layer and must not be a directory; a link to a symlink links the
 *     symlink itself.  A link to a file of a lower layer cannot be made in a
 *     separate snapshot directory and is refused.
 *
 * What is kept: regular files (holes of sparse files stay holes), directories,
 * symlinks, hard links, character and block devices, FIFOs; numeric owners
 * (names in the archive are never looked up), modes including setuid,
 * setgid and sticky (chown first, then chmod, then xattrs, so the kernel's
 * clearing of those on chown cannot undo them), access and modification
 * times (directories' at the end, after their contents), and the xattrs
 * user.* and security.capability.  Other xattrs (trusted.* needs
 * CAP_SYS_ADMIN, which imaged lacks; security.* besides capabilities;
 * system.*) and user.overlay.* / trusted.overlay.* (they would steer
 * overlayfs) are skipped and counted in CrispUnpackStats.xattrs_skipped, as
 * are xattrs the file system does not support.  An existing directory is
 * kept when the new entry is a directory too; any other existing entry of
 * the same name (earlier in this layer) is replaced, never followed.
 *
 * OCI whiteouts are converted for overlayfs:
 *   - ".wh.<name>" becomes a character device 0/0 named <name>, overlay's
 *     whiteout.  When <name> already exists in this layer the whiteout is a
 *     no-op (image-spec: a whiteout hides only lower layers' entries).
 *   - ".wh..wh..opq" in directory D sets the xattr user.overlay.opaque="y"
 *     on D.  imaged has no CAP_SYS_ADMIN, which trusted.overlay.* needs, so
 *     sandboxd mounts the overlay with the "userxattr" option (Linux >= 5.11),
 *     under which overlayfs reads user.overlay.* instead.  That is also why
 *     user.overlay.* from the archive is never copied.
 *   - Other ".wh..wh.*" names (AUFS metadata) are skipped and counted.
 *
 * Limits (CrispUnpackLimits): number of entries, bytes of the uncompressed
 * stream (which also bounds trailing data after the tar's end) and bytes of
 * file contents (bounds sparse files, whose holes cost no stream bytes), and
 * path length.  Hitting a limit is CRISP_ERR_RESOURCE_EXHAUSTED; a hostile
 * or malformed entry is CRISP_ERR_INVALID; both messages name the entry:
 *   layer entry "../../etc/passwd": ".." is not allowed in image layers
 *
 * docs/IMAGES.md ("Layer unpacking") repeats these rules for users.
 *
 * Needs a file system with user xattrs for opaque directories (overlayfs
 * with userxattr needs Linux >= 5.11 anyway).  One call uses one thread;
 * separate calls on separate directories may run in parallel.
 */
#ifndef CRISP_IMAGED_UNPACK_H
#define CRISP_IMAGED_UNPACK_H

#include "error.h"
#include "fsutil.h"

#include <stddef.h>
#include <stdint.h>

#define CRISP_UNPACK_MAX_ENTRIES_DEFAULT 100000
#define CRISP_UNPACK_MAX_SIZE_DEFAULT (UINT64_C(16) << 30) /* 16 GiB */
#define CRISP_UNPACK_MAX_PATH_DEFAULT 4096

/* A zero field takes the default. */
typedef struct CrispUnpackLimits {
	uint64_t max_entries; /* tar headers, whatever their type */
	uint64_t max_size;    /* bytes of the uncompressed stream, and of file contents */
	size_t max_path;      /* bytes of an entry's name or a link's target */
} CrispUnpackLimits;

#define CRISP_UNPACK_LIMITS_DEFAULT                                                                \
	{                                                                                          \
		.max_entries = CRISP_UNPACK_MAX_ENTRIES_DEFAULT,                                   \
		.max_size = CRISP_UNPACK_MAX_SIZE_DEFAULT,                                         \
		.max_path = CRISP_UNPACK_MAX_PATH_DEFAULT,                                         \
	}

typedef struct CrispUnpackStats {
	uint64_t entries;      /* tar headers read */
	uint64_t tar_size;     /* bytes of the uncompressed stream (what the diff ID covers) */
	uint64_t content_size; /* bytes of regular files' contents */
	uint64_t files;
	uint64_t dirs;
	uint64_t symlinks;
	uint64_t hardlinks;
	uint64_t devices; /* character and block */
	uint64_t fifos;
	uint64_t whiteouts;	  /* ".wh.<name>" made into 0/0 character devices */
	uint64_t opaques;	  /* ".wh..wh..opq" made into user.overlay.opaque */
	uint64_t entries_skipped; /* AUFS metadata, whiteouts of this layer's own entries */
	uint64_t xattrs_skipped;  /* see above; the caller may log a warning */
} CrispUnpackStats;

/*
 * Unpacks the layer read from src_fd (read to its end, not closed) into
 * dest_dirfd, which must be an empty directory.  expected_diff_id is the
 * "sha256:<hex>" of the uncompressed tar, from the image config's
 * rootfs.diff_ids.  limits may be NULL for the defaults.  On success
 * *ret_stats (may be NULL) is filled.  On failure the directory holds a
 * partial layer: the caller removes it with crisp_remove_tree_at().
 */
int crisp_unpack_layer(int src_fd, const char *expected_diff_id, int dest_dirfd,
		       const CrispUnpackLimits *limits, CrispUnpackStats *ret_stats,
		       CrispError **err);

#endif
