/*
 * fsutil.h - file system helpers every daemon uses.
 */
#ifndef CRISP_FSUTIL_H
#define CRISP_FSUTIL_H

/*
 * Removes name under dirfd and, when it is a directory, everything below it,
 * never following a symlink.  Uses a constant number of fds whatever the
 * depth.  A missing name is not an error.  Returns 0 or a negative errno.
 */
int crisp_remove_tree_at(int dirfd, const char *name);

#endif
