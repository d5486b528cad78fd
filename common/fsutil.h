/*
 * fsutil.h - file system helpers every daemon uses.
 */
#ifndef CRISP_FSUTIL_H
#define CRISP_FSUTIL_H

#include <stdint.h>

/*
 * Removes name under dirfd and, when it is a directory, everything below it,
 * never following a symlink.  Uses a constant number of fds whatever the
 * depth.  A missing name is not an error.  Returns 0 or a negative errno.
 */
int crisp_remove_tree_at(int dirfd, const char *name);

/*
 * What dir uses on disk: allocated bytes (st_blocks) and inodes, each inode
 * once however many hard links reach it (as the kubelet's eviction
 * expects), without crossing into other file systems.  Returns 0 or a
 * negative errno.
 */
int crisp_disk_usage(const char *dir, uint64_t *ret_bytes, uint64_t *ret_inodes);

#endif
