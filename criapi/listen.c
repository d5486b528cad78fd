/*
 * listen.c - the CRI socket, created by criapi itself before it drops privileges.
 *
 * gRPC would unlink whatever sits at the path, a live socket of another
 * instance included, so we take a lock file first and create the socket
 * ourselves; gRPC then gets each accepted connection (server.c).
 */
#include "criapi.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

int criapi_listen(const char *path, int *ret_lock_fd, CrispError **err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return crisp_error_set(err, CRISP_ERR_INVALID, ENAMETOOLONG,
				       "socket path %s is longer than %zu bytes", path,
				       sizeof(sa.sun_path) - 1);
	strcpy(sa.sun_path, path);

	_cleanup_free_ char *lock_path = xasprintf("%s.lock", path);
	_cleanup_close_ int lock_fd =
		open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock_fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "opening %s",
					     lock_path);
	if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0)
		return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EBUSY,
				       "%s is held by another running crisp; refusing to take over "
				       "its socket %s",
				       lock_path, path);

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "socket");

	/* Holding the lock, anything at the path is a leftover of a previous run. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return crisp_error_set(err, CRISP_ERR_FAILED_PRECONDITION, EEXIST,
					       "%s exists and is not a socket; not removing it",
					       path);
		if (unlink(path) < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						     "removing stale socket %s", path);
	}

	/* Created 0600 by the umask, then opened to the group: never briefly wider. */
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "binding %s", path);
	if (chmod(path, 0660) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "chmod %s", path);
	if (listen(fd, SOMAXCONN) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "listening on %s",
					     path);

	*ret_lock_fd = TAKE_FD(lock_fd);
	return TAKE_FD(fd);
}
