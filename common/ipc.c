/*
 * ipc.c - SEQPACKET framing, fragmenting and fd passing.
 */
#include "ipc.h"

#include <sys/socket.h>
#include <sys/uio.h>

void crisp_ipc_message_done(CrispIpcMessage *m)
{
	if (!m)
		return;
	free(m->payload);
	m->payload = NULL;
	m->len = 0;
	for (size_t i = 0; i < m->n_fds; i++)
		m->fds[i] = safe_close(m->fds[i]);
	m->n_fds = 0;
}

int crisp_ipc_message_take_fd(CrispIpcMessage *m, size_t i)
{
	if (i >= m->n_fds)
		return -1;
	return TAKE_FD(m->fds[i]);
}

int crisp_ipc_socketpair(int ret_fds[2])
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ret_fds) < 0)
		return -errno;
	return 0;
}

static int send_packet(int fd, const CrispIpcHeader *h, const uint8_t *data, size_t len,
		       const int *fds, size_t n_fds)
{
	struct iovec iov[2] = {
		{ .iov_base = (void *)h, .iov_len = sizeof(*h) },
		{ .iov_base = (void *)data, .iov_len = len },
	};
	union {
		char buf[CMSG_SPACE(sizeof(int) * CRISP_IPC_MAX_FDS)];
		struct cmsghdr align;
	} control;
	struct msghdr mh = {
		.msg_iov = iov,
		.msg_iovlen = len ? 2 : 1,
	};

	if (n_fds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}

	for (;;) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n >= 0) {
			/* SEQPACKET sends a packet whole or not at all. */
			return (size_t)n == sizeof(*h) + len ? 0 : -EPROTO;
		}
		if (errno != EINTR)
			return -errno;
	}
}

int crisp_ipc_send_raw(int fd, pthread_mutex_t *lock, uint16_t type, uint64_t request_id,
		       const void *payload, size_t len, const int *fds, size_t n_fds)
{
	const uint8_t *p = payload;
	int r = 0;

	if (len > CRISP_IPC_MAX_MESSAGE)
		return -EMSGSIZE;
	if (n_fds > CRISP_IPC_MAX_FDS)
		return -EINVAL;
	for (size_t i = 0; i < n_fds; i++)
		if (fds[i] < 0)
			return -EBADF;

	if (lock)
		pthread_mutex_lock(lock);

	size_t off = 0;
	do {
		size_t chunk = len - off;
		if (chunk > CRISP_IPC_FRAGMENT_PAYLOAD)
			chunk = CRISP_IPC_FRAGMENT_PAYLOAD;
		CrispIpcHeader h = {
			.type = type,
			.flags = off + chunk < len ? CRISP_IPC_FLAG_MORE : 0,
			.total_len = (uint32_t)len,
			.request_id = request_id,
		};
		r = send_packet(fd, &h, p + off, chunk, off == 0 ? fds : NULL,
				off == 0 ? n_fds : 0);
		off += chunk;
	} while (r >= 0 && off < len);

	if (lock)
		pthread_mutex_unlock(lock);
	return r;
}

int crisp_ipc_send(int fd, pthread_mutex_t *lock, uint16_t type, uint64_t request_id,
		   const ProtobufCMessage *msg, const int *fds, size_t n_fds)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0;

	if (msg) {
		len = protobuf_c_message_get_packed_size(msg);
		if (len > CRISP_IPC_MAX_MESSAGE)
			return -EMSGSIZE;
		buf = crisp_proto_pack(msg, &len);
	}
	return crisp_ipc_send_raw(fd, lock, type, request_id, buf, len, fds, n_fds);
}

/*
 * Collects the fds of one packet.  Only a single SCM_RIGHTS cmsg is allowed;
 * any other control message, or fds on a later fragment, is a violation.
 * Fds are stored into *m even on failure so crisp_ipc_message_done closes them.
 */
static int take_fds(struct msghdr *mh, CrispIpcMessage *m, bool first, CrispError **err)
{
	int r = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "unexpected control message (level %d, type %d)",
					    c->cmsg_level, c->cmsg_type);
			continue;
		}
		if (c->cmsg_len < CMSG_LEN(0) || (c->cmsg_len - CMSG_LEN(0)) % sizeof(int) != 0) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "malformed SCM_RIGHTS length %zu", (size_t)c->cmsg_len);
			continue;
		}
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		/* The kernel already installed every fd: close the ones we cannot keep. */
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->n_fds < CRISP_IPC_MAX_FDS && first && r >= 0)
				m->fds[m->n_fds++] = fd;
			else {
				safe_close(fd);
				if (r >= 0)
					r = crisp_error_set(
						err, CRISP_ERR_INVALID, EPROTO,
						first ? "more than %u fds in one message"
						      : "fds on a continuation fragment (limit %u)",
						CRISP_IPC_MAX_FDS);
			}
		}
	}
	return r;
}

int crisp_ipc_recv(int fd, CrispIpcMessage *ret, CrispError **err)
{
	CrispIpcMessage m = { 0 };
	CrispIpcHeader first = { 0 };
	size_t got = 0;
	bool have_first = false;
	_cleanup_free_ uint8_t *packet = xmalloc(CRISP_IPC_PACKET_SIZE);
	int r;

	for (;;) {
		union {
			char buf[CMSG_SPACE(sizeof(int) * CRISP_IPC_MAX_FDS)];
			struct cmsghdr align;
		} control;
		struct iovec iov = { .iov_base = packet, .iov_len = CRISP_IPC_PACKET_SIZE };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = control.buf,
			.msg_controllen = sizeof(control.buf),
		};

		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = crisp_error_set_errno(err, CRISP_ERR_UNAVAILABLE, errno,
						  "receiving on internal channel");
			goto fail;
		}
		/* Before the end-of-stream check: an empty packet reads as the end of
		 * the stream, yet it can carry SCM_RIGHTS fds the kernel has already
		 * installed, and they must be closed with the message (fuzz_ipc_recv
		 * found them leaking). */
		r = take_fds(&mh, &m, !have_first, err);
		if (r < 0)
			goto fail;
		if (n == 0) {
			if (!have_first) {
				crisp_ipc_message_done(&m);
				return 0;
			}
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "channel closed in the middle of a message");
			goto fail;
		}
		if (mh.msg_flags & MSG_CTRUNC) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "control data truncated (too many fds)");
			goto fail;
		}
		if (mh.msg_flags & MSG_TRUNC) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "packet larger than %u bytes", CRISP_IPC_PACKET_SIZE);
			goto fail;
		}
		if ((size_t)n < sizeof(CrispIpcHeader)) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "packet of %zd bytes is shorter than the header", n);
			goto fail;
		}

		CrispIpcHeader h;
		memcpy(&h, packet, sizeof(h));
		size_t chunk = (size_t)n - sizeof(h);

		if (h.flags & ~CRISP_IPC_KNOWN_FLAGS) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "unknown frame flags 0x%x", h.flags);
			goto fail;
		}
		if (!have_first) {
			if (h.total_len > CRISP_IPC_MAX_MESSAGE) {
				r = crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, EMSGSIZE,
						    "message of %u bytes exceeds the %u byte limit",
						    h.total_len, CRISP_IPC_MAX_MESSAGE);
				goto fail;
			}
			first = h;
			have_first = true;
			m.type = h.type;
			m.request_id = h.request_id;
			m.payload = xmalloc(h.total_len + 1);
		} else if (h.type != first.type || h.request_id != first.request_id ||
			   h.total_len != first.total_len) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "fragment does not continue the message in progress");
			goto fail;
		}

		if (chunk > first.total_len - got) {
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "fragment carries more than the declared %u bytes",
					    first.total_len);
			goto fail;
		}
		memcpy(m.payload + got, packet + sizeof(h), chunk);
		got += chunk;

		if (!(h.flags & CRISP_IPC_FLAG_MORE)) {
			if (got != first.total_len) {
				r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
						    "message truncated: %zu of %u bytes", got,
						    first.total_len);
				goto fail;
			}
			m.len = got;
			*ret = m;
			return 1;
		}
		if (chunk != CRISP_IPC_FRAGMENT_PAYLOAD) {
			/* Only the last fragment may be short: anything else is a stream
			 * we would have to buffer without bound. */
			r = crisp_error_set(err, CRISP_ERR_INVALID, EPROTO,
					    "non-final fragment of %zu bytes", chunk);
			goto fail;
		}
	}

fail:
	crisp_ipc_message_done(&m);
	return r;
}
