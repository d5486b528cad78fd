/*
 * userdb.h - the user a container runs as, from the image's /etc/passwd and
 * /etc/group.
 *
 * Both files are Class 2 input (ARCHITECTURE.md §2): they come from the
 * image, and what we make of them becomes the uid, gid and groups of a
 * process on the host.  They are read from the image's unpacked layers
 * (directories as imaged/unpack.h leaves them, topmost first), the way
 * overlayfs will merge them, and never from anywhere else:
 *   - The path is walked one component at a time across the stack, with
 *     *at() calls on a single name that never follow a symlink
 *     (AT_SYMLINK_NOFOLLOW, O_NOFOLLOW); no "/" or ".." reaches the kernel,
 *     and an entry on another mount than its layer is refused.
 *   - The topmost layer holding a name decides what it is.  A 0/0 character
 *     device (whiteout) hides the name in lower layers; a directory with
 *     user.overlay.opaque="y" hides the lower layers' directories of the
 *     same name; a non-directory over a directory hides it, and a
 *     non-directory under a directory is hidden and ends the merge there.
 *   - A symlink (for any component, not only the last) is read and its
 *     target substituted into the path: absolute targets from the image's
 *     root, relative ones from the link's directory; ".." is resolved
 *     lexically and stops at the root ("/../x" is "/x"), as RESOLVE_IN_ROOT
 *     does.  After USERDB_SYMLINK_MAX symlinks the lookup is refused
 *     (CRISP_ERR_INVALID) with the chain in the message.
 *   - The file itself must be a regular file: a directory, FIFO, device or
 *     socket is refused (CRISP_ERR_INVALID), since that is a broken image
 *     and reading a FIFO could block.  A file over USERDB_FILE_MAX bytes is
 *     CRISP_ERR_RESOURCE_EXHAUSTED.  A missing file, or a path through a
 *     missing or non-directory component, is "absent".
 *
 * Lines are "name:passwd:uid:gid[:...]" (/etc/passwd, at least 4 fields) and
 * "name:passwd:gid[:member,member...]" (/etc/group, at least 3 fields).
 * Blank lines, lines starting with '#', lines with a NUL byte, an empty name
 * or one starting with '+' or '-' (NIS compat entries), and ids that are not
 * plain decimal 0..4294967294 are skipped.  The first matching line wins, as
 * in glibc.  getpwent() and friends are not used: they read the host's
 * files, keep global state and honour NIS entries.
 *
 * Which user (as containerd and CRI-O decide it):
 *   1. run_as_username: looked up by name in /etc/passwd; it must be there.
 *   2. else run_as_user: that uid; the gid of its /etc/passwd entry if there
 *      is one, else 0.
 *   3. else the image's User: "" is uid 0, gid 0.  "user[:group]": a numeric
 *      user is taken as a uid (gid from its /etc/passwd entry, else 0); a
 *      name must be in /etc/passwd.  A numeric group is the gid; a group
 *      name must be in /etc/group; "user:" is "user", as runc reads it.
 *   run_as_group then replaces the gid, and is refused without run_as_user
 *   or run_as_username (CRI).  The image's User is not looked at, nor
 *   checked, when the CRI request names the user.
 * Additional gids are the groups of /etc/group that list the user's
 * /etc/passwd name as a member (for "" that of uid 0), when the user has an
 * entry (by name or by uid); the final primary gid is left out.
 *
 * Errors: CRISP_ERR_INVALID for a malformed User or CRI value (ids outside
 * 0..4294967294, control characters, more than one ':', an empty user part,
 * more than USERDB_USER_MAX bytes); CRISP_ERR_NOT_FOUND for a name
 * missing from the image's files; CRISP_ERR_RESOURCE_EXHAUSTED for files
 * over USERDB_FILE_MAX or more than USERDB_GROUPS_MAX additional gids;
 * other failures to read a layer are CRISP_ERR_INTERNAL with their errno.  Names from the image
 * or the request appear in messages escaped (imaged_escape).
 */
#ifndef CRISP_IMAGED_USERDB_H
#define CRISP_IMAGED_USERDB_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of /etc/passwd or /etc/group read at most. */
#define USERDB_FILE_MAX (1024 * 1024)
/* Symlinks followed while looking up one file. */
#define USERDB_SYMLINK_MAX 8
/* Additional gids at most (the kernel's NGROUPS_MAX). */
#define USERDB_GROUPS_MAX 65536
/* Bytes of a User string or a run_as_username; image_config.h's bound. */
#define USERDB_USER_MAX 256

typedef struct CrispUserSpec {
	const char *image_user;	     /* the image config's User; NULL is "" */
	bool has_run_as_user;	     /* CRI SecurityContext.run_as_user */
	int64_t run_as_user;	     /* valid 0..4294967294 */
	const char *run_as_username; /* CRI SecurityContext.run_as_username; NULL or "" = unset */
	bool has_run_as_group;	     /* CRI SecurityContext.run_as_group */
	int64_t run_as_group;	     /* valid 0..4294967294 */
} CrispUserSpec;

typedef struct CrispResolvedUser {
	uint32_t uid, gid;
	uint32_t *additional_gids; /* sorted, unique, gid excluded; NULL when none */
	size_t n_additional_gids;
} CrispResolvedUser;

/*
 * Resolves spec against the image whose unpacked layers are layer_fds
 * (directories opened O_RDONLY, topmost first; n_layers may be 0 for an
 * empty image).  The fds are only read from and stay open.  *ret is written
 * only on success; release it with crisp_resolved_user_done().
 */
int crisp_userdb_resolve(const int *layer_fds, size_t n_layers, const CrispUserSpec *spec,
			 CrispResolvedUser *ret, CrispError **err);

/* Frees what u holds and zeroes it; accepts NULL. */
void crisp_resolved_user_done(CrispResolvedUser *u);

#endif
