/*
 * profile_sets.h - syscall groups the backend profiles combine.
 *
 * Each profile lists its syscalls explicitly in its own directory; these
 * macros only name the groups several of them share, so a reader sees in one
 * place what "file system work" means.
 */
#ifndef CRISP_PROFILE_SETS_H
#define CRISP_PROFILE_SETS_H

/* Opening, creating, renaming and removing files and directories, and syncing them. */
#define CRISP_SYSCALLS_FILES                                                                       \
	"openat", "open", "openat2", "getdents64", "readlink", "readlinkat", "access",             \
		"faccessat", "faccessat2", "stat", "lstat", "mkdir", "mkdirat", "rmdir", "unlink", \
		"unlinkat", "rename", "renameat", "renameat2", "link", "linkat", "symlink",        \
		"symlinkat", "fchmod", "fchmodat", "chmod", "fchown", "fchownat", "chown",         \
		"lchown", "utimensat", "ftruncate", "truncate", "fallocate", "fsync", "fdatasync", \
		"statfs", "fstatfs", "flock", "getcwd", "chdir", "fchdir", "umask", "fadvise64",   \
		"copy_file_range", "sendfile"

/* Extended attributes, for layer contents (security.capability and friends). */
#define CRISP_SYSCALLS_XATTR                                                                       \
	"setxattr", "lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr", "listxattr",   \
		"llistxattr", "flistxattr", "removexattr", "lremovexattr", "fremovexattr"

/* Being a network client or server on sockets the process creates. */
#define CRISP_SYSCALLS_SOCKETS                                                                     \
	"socket", "connect", "bind", "listen", "accept4", "sendmmsg", "recvmmsg"

#endif
