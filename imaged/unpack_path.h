/*
 * unpack_path.h - the confined file system steps of layer unpacking
 * (internal to unpack.c, and to its tests).
 *
 * Everything here works relative to a root directory fd and never follows a
 * symlink out of it: names are cleaned lexically first (unpack_clean_name),
 * directories are opened with openat2(RESOLVE_IN_ROOT), and the caller acts
 * on the final component with *at() calls that do not follow it.
 */
#ifndef CRISP_IMAGED_UNPACK_PATH_H
#define CRISP_IMAGED_UNPACK_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* Longest component Linux accepts (NAME_MAX). */
#define UNPACK_COMPONENT_MAX 255

/*
 * Cleans a name from a layer: strips leading "/" and "./", drops "."
 * components, repeated and trailing slashes.  Refuses (-EINVAL, or
 * -ENAMETOOLONG) an empty name, a ".." component, a name longer than
 * max_path bytes, or a component longer than UNPACK_COMPONENT_MAX;
 * *ret_reason (static text) then says why.  The result is "" for the root
 * itself.  *ret is malloc'd.
 */
int unpack_clean_name(const char *name, size_t max_path, char **ret, const char **ret_reason);

/* The last component of a cleaned name ("" for the root). */
const char *unpack_last_component(const char *clean);

/*
 * openat2(rootfd, path, flags | O_CLOEXEC) with RESOLVE_IN_ROOT,
 * RESOLVE_NO_MAGICLINKS and RESOLVE_NO_XDEV; "" opens the root.  Retries on
 * EAGAIN.  Returns the fd or a negative errno.
 *
 * Where openat2() fails with ENOSYS (kernels before 5.6, valgrind 3.19) the
 * same resolution is done by hand, one O_PATH | O_NOFOLLOW step at a time;
 * flags must then be O_PATH or include O_DIRECTORY.
 */
int unpack_openat_in_root(int rootfd, const char *path, int flags);

/* Tests set this to use the by-hand resolution even where openat2() exists. */
extern bool unpack_force_walk;

/*
 * Opens (O_PATH | O_DIRECTORY) the directory that holds the cleaned name
 * `clean`.  When create_missing, missing directories on the way are created
 * (0755, owned by the caller) one at a time, each inside the root; a
 * component that exists but cannot be resolved (a symlink leading nowhere)
 * is refused with -ENOENT.  Returns the fd or a negative errno, and points
 * *ret_base at clean's last component.
 */
int unpack_open_parent(int rootfd, const char *clean, bool create_missing, const char **ret_base);

#endif
