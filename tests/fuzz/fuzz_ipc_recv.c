/*
 * fuzz_ipc_recv.c - crisp_ipc_recv against an arbitrary peer.
 *
 * The input is a script of packets.  Each input gets a fresh SOCK_SEQPACKET
 * pair (so no queued packet or half-read message leaks into the next input);
 * the packets are written into one end until the socket buffer is full, that
 * end is closed, and the other end is drained with crisp_ipc_recv as a daemon
 * drains a channel, decoding every message as the first messages a daemon
 * decodes (the hello, a spawn request).
 *
 * A packet in the input is
 *   u16 LE  n    the next n input bytes start the packet (fewer at the end)
 *   u8      ctl  bits 0-4: size class, bits 5-7: how many fds to attach
 * Size class (ctl & 0x1f) % 18: 0, the packet is those bytes; 1, zero-padded
 * to exactly CRISP_IPC_PACKET_SIZE (a full fragment); k = 2..17, padded to
 * CRISP_IPC_PACKET_SIZE + k - 1, more than the receiver accepts (MSG_TRUNC).
 * Padding lets a short input build the large packets that fragmentation and
 * truncation need; libFuzzer's default -max_len would never reach them.
 * The fd counts include more than CRISP_IPC_MAX_FDS (MSG_CTRUNC); each fd is
 * a duplicate of one /dev/null fd.
 *
 * Besides the sanitizers, the harness checks the receiver's contract: an
 * error is set exactly when the result is negative, a message never holds
 * more than CRISP_IPC_MAX_FDS fds, and no fd survives the input.
 */
#include "ipc.h"
#include "internal.pb-c.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKET (CRISP_IPC_PACKET_SIZE + 16u)

static const unsigned fd_counts[8] = { 0, 1, 2, 3, 7, 8, 9, 12 };

static long count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		abort();
	long n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Returns false when the socket buffer is full or the send failed: stop feeding. */
static bool send_one(int fd, const uint8_t *buf, size_t len, int null_fd, unsigned n_fds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	union {
		char buf[CMSG_SPACE(sizeof(int) * 12)];
		struct cmsghdr align;
	} control;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (n_fds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		for (unsigned i = 0; i < n_fds; i++)
			memcpy(CMSG_DATA(c) + i * sizeof(int), &null_fd, sizeof(int));
	}
	/* Non-blocking: nobody reads until the writer is done. */
	return sendmsg(fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0;
}

static void feed(int fd, const uint8_t *data, size_t size, int null_fd)
{
	static uint8_t packet[MAX_PACKET];

	while (size >= 3) {
		size_t n = (size_t)data[0] | (size_t)data[1] << 8;
		unsigned ctl = data[2];
		data += 3;
		size -= 3;
		if (n > size)
			n = size;
		memcpy(packet, data, n);
		data += n;
		size -= n;

		size_t len = n;
		unsigned cls = (ctl & 0x1f) % 18;
		if (cls == 1)
			len = CRISP_IPC_PACKET_SIZE;
		else if (cls >= 2)
			len = CRISP_IPC_PACKET_SIZE + cls - 1;
		if (len > n)
			memset(packet + n, 0, len - n);

		if (!send_one(fd, packet, len, null_fd, fd_counts[ctl >> 5]))
			return;
	}
}

static void decode(const ProtobufCMessageDescriptor *desc, const CrispIpcMessage *m)
{
	CrispError *err = NULL;
	ProtobufCMessage *msg = crisp_proto_unpack(desc, m->payload, m->len, &err);
	if (!msg == !err)
		abort(); /* exactly one of message and error */
	crisp_proto_free(msg);
	crisp_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	long fds_before = count_fds();
	int pair[2];
	if (crisp_ipc_socketpair(pair) < 0)
		abort();
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd < 0)
		abort();

	feed(pair[0], data, size, null_fd);
	/* The receiver sees the end of the stream once the queue is drained. */
	close(pair[0]);
	close(null_fd);

	for (;;) {
		CrispIpcMessage m;
		CrispError *err = NULL;
		int r = crisp_ipc_recv(pair[1], &m, &err);
		if ((r < 0) != (err != NULL) || (err && !err->message))
			abort();
		crisp_error_free(err);
		if (r <= 0)
			break;
		if (m.n_fds > CRISP_IPC_MAX_FDS || !m.payload)
			abort();
		decode(&crisp__hello__descriptor, &m);
		decode(&crisp__spawn_request__descriptor, &m);
		crisp_ipc_message_done(&m);
	}
	close(pair[1]);

	long fds_after = count_fds();
	if (fds_after != fds_before) {
		fprintf(stderr, "fuzz_ipc_recv: %ld fds open before the input, %ld after\n",
			fds_before, fds_after);
		abort();
	}
	return 0;
}
