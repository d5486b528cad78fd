/*
 * test_ipc.c - framing, fd passing and budgeted unpacking (common/ipc.c,
 * common/proto_budget.c).
 *
 * Well-formed traffic goes through crisp_ipc_send*(); every violation is
 * crafted as raw packets with sendmsg() on a SOCK_SEQPACKET socketpair, so the
 * receiver sees exactly what a buggy or hostile peer could send.  Tests that
 * receive something refused also count this process's open fds before and
 * after: a refused message must not leave an fd behind.
 */
#include "test_helpers.h"

#include "internal.pb-c.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define TEST_TYPE 300
#define MIB (1024u * 1024u)

typedef struct Pair {
	int a, b; /* a sends, b receives */
} Pair;

static Pair pair_new(void)
{
	int sp[2];
	assert_int_equal(crisp_ipc_socketpair(sp), 0);
	return (Pair){ sp[0], sp[1] };
}

static void pair_close(Pair *p)
{
	p->a = safe_close(p->a);
	p->b = safe_close(p->b);
}

/* Deterministic bytes that differ between sizes, so a misplaced fragment shows. */
static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = xmalloc(len);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (uint8_t)(x >> 16);
	}
	return p;
}

/* Sends one packet exactly as given: an optional header, data, SCM_RIGHTS fds. */
static void send_packet(int fd, const CrispIpcHeader *h, const void *data, size_t len,
			const int *fds, size_t n_fds)
{
	size_t hlen = h ? sizeof(*h) : 0;
	_cleanup_free_ uint8_t *buf = xmalloc(hlen + len);
	_cleanup_free_ void *control = NULL;

	if (h)
		memcpy(buf, h, hlen);
	if (len)
		memcpy(buf + hlen, data, len);
	struct iovec iov = { .iov_base = buf, .iov_len = hlen + len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (n_fds > 0) {
		size_t space = CMSG_SPACE(sizeof(int) * n_fds);
		control = xcalloc(1, space);
		mh.msg_control = control;
		mh.msg_controllen = space;
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
	}
	assert_int_equal(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)(hlen + len));
}

static CrispIpcHeader header(uint16_t flags, uint32_t total_len)
{
	return (CrispIpcHeader){
		.type = TEST_TYPE, .flags = flags, .total_len = total_len, .request_id = 7
	};
}

/* Sends a full-size first fragment of a message of total_len bytes. */
static void send_full_fragment(int fd, const CrispIpcHeader *h)
{
	_cleanup_free_ uint8_t *data = pattern(CRISP_IPC_FRAGMENT_PAYLOAD, 1);
	send_packet(fd, h, data, CRISP_IPC_FRAGMENT_PAYLOAD, NULL, 0);
}

/* Receives on p->b expecting a refusal: result r, error code and message. */
static void expect_refused(int fd, int want_r, CrispErrorCode code, const char *sub)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcMessage m = { 0 };

	int r = th_recv(fd, &m, &err);
	if (r == 1)
		crisp_ipc_message_done(&m);
	assert_int_equal(r, want_r);
	assert_error(err, code, sub);
	/* A failed receive leaves nothing for the caller to release. */
	assert_null(m.payload);
	assert_int_equal(m.n_fds, 0);
}

typedef struct SendJob {
	int fd;
	const uint8_t *data;
	size_t len;
	const int *fds;
	size_t n_fds;
	int result;
} SendJob;

static void *send_thread(void *arg)
{
	SendJob *j = arg;
	j->result = crisp_ipc_send_raw(j->fd, NULL, TEST_TYPE, 0x1122334455667788ull, j->data,
				       j->len, j->fds, j->n_fds);
	return NULL;
}

/* ---- round trips ---- */

static void test_roundtrip_small(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	Pair p = pair_new();
	CrispIpcMessage m = { 0 };

	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 42, "hello", 5, NULL, 0), 0);
	assert_int_equal(th_recv(p.b, &m, &err), 1);
	assert_null(err);
	assert_int_equal(m.type, TEST_TYPE);
	assert_int_equal(m.request_id, 42);
	assert_int_equal(m.len, 5);
	assert_memory_equal(m.payload, "hello", 5);
	assert_int_equal(m.n_fds, 0);
	crisp_ipc_message_done(&m);

	/* An empty payload (NULL, 0) is a message too, not an end of stream. */
	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE + 1, 43, NULL, 0, NULL, 0), 0);
	assert_int_equal(th_recv(p.b, &m, &err), 1);
	assert_int_equal(m.type, TEST_TYPE + 1);
	assert_int_equal(m.request_id, 43);
	assert_int_equal(m.len, 0);
	crisp_ipc_message_done(&m);

	/* The peer's close before any fragment is a clean end of stream. */
	p.a = safe_close(p.a);
	assert_int_equal(th_recv(p.b, &m, &err), 0);
	assert_null(err);
	pair_close(&p);
}

static void test_roundtrip_proto(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	Pair p = pair_new();
	CrispIpcMessage m = { 0 };
	Crisp__Hello hello = CRISP__HELLO__INIT;

	hello.protocol = (char *)"crisp-internal";
	hello.version = 99;
	hello.peer = (char *)"crisp-test";
	assert_int_equal(crisp_ipc_send(p.a, NULL, TEST_TYPE, 5, &hello.base, NULL, 0), 0);
	assert_int_equal(th_recv(p.b, &m, &err), 1);
	_cleanup_proto_ Crisp__Hello *got =
		(Crisp__Hello *)th_unpack(&crisp__hello__descriptor, &m);
	assert_string_equal(got->protocol, "crisp-internal");
	assert_int_equal(got->version, 99);
	assert_string_equal(got->peer, "crisp-test");
	crisp_ipc_message_done(&m);

	/* A NULL message sends an empty payload. */
	assert_int_equal(crisp_ipc_send(p.a, NULL, TEST_TYPE, 6, NULL, NULL, 0), 0);
	assert_int_equal(th_recv(p.b, &m, &err), 1);
	assert_int_equal(m.len, 0);
	assert_int_equal(m.request_id, 6);
	crisp_ipc_message_done(&m);
	pair_close(&p);
}

/* Sends len bytes from a thread (large messages outgrow the socket buffer) and receives them. */
static void roundtrip_size(size_t len)
{
	_cleanup_error_ CrispError *err = NULL;
	_cleanup_free_ uint8_t *data = pattern(len ? len : 1, (unsigned)len);
	Pair p = pair_new();
	CrispIpcMessage m = { 0 };
	SendJob job = { .fd = p.a, .data = data, .len = len };
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, send_thread, &job), 0);
	int r = th_recv(p.b, &m, &err);
	assert_int_equal(pthread_join(t, NULL), 0);
	if (r != 1)
		fail_msg("size %zu: recv returned %d: %s", len, r, err ? err->message : "");
	assert_int_equal(job.result, 0);
	assert_int_equal(m.type, TEST_TYPE);
	assert_int_equal(m.request_id, 0x1122334455667788ull);
	assert_int_equal(m.len, len);
	if (len && memcmp(m.payload, data, len) != 0)
		fail_msg("size %zu: payload differs", len);
	crisp_ipc_message_done(&m);
	pair_close(&p);
}

static void test_roundtrip_sizes(void **state)
{
	const size_t sizes[] = {
		1,
		CRISP_IPC_FRAGMENT_PAYLOAD - 1,
		CRISP_IPC_FRAGMENT_PAYLOAD,
		CRISP_IPC_FRAGMENT_PAYLOAD + 1,
		2 * CRISP_IPC_FRAGMENT_PAYLOAD,
		1 * MIB,
		CRISP_IPC_MAX_MESSAGE,
	};
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++)
		roundtrip_size(sizes[i]);
}

/* The sender's side of the wire format: full fragments with MORE, then a short last one. */
static void test_fragment_layout(void **state)
{
	const size_t len = 1 * MIB;
	_cleanup_free_ uint8_t *data = pattern(len, 3);
	_cleanup_free_ uint8_t *packet = xmalloc(CRISP_IPC_PACKET_SIZE + 1);
	Pair p = pair_new();
	SendJob job = { .fd = p.a, .data = data, .len = len };
	pthread_t t;
	size_t got = 0, packets = 0;

	assert_int_equal(pthread_create(&t, NULL, send_thread, &job), 0);
	for (;;) {
		th_wait_readable(p.b, TH_TIMEOUT_MS);
		ssize_t n = recv(p.b, packet, CRISP_IPC_PACKET_SIZE + 1, 0);
		assert_true(n >= (ssize_t)sizeof(CrispIpcHeader));
		assert_true((size_t)n <= CRISP_IPC_PACKET_SIZE);
		CrispIpcHeader h;
		memcpy(&h, packet, sizeof(h));
		size_t chunk = (size_t)n - sizeof(h);
		assert_int_equal(h.type, TEST_TYPE);
		assert_int_equal(h.request_id, 0x1122334455667788ull);
		assert_int_equal(h.total_len, len);
		assert_memory_equal(packet + sizeof(h), data + got, chunk);
		got += chunk;
		packets++;
		if (!(h.flags & CRISP_IPC_FLAG_MORE))
			break;
		assert_int_equal(h.flags, CRISP_IPC_FLAG_MORE);
		assert_int_equal(chunk, CRISP_IPC_FRAGMENT_PAYLOAD);
	}
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(job.result, 0);
	assert_int_equal(got, len);
	assert_int_equal(packets,
			 (len + CRISP_IPC_FRAGMENT_PAYLOAD - 1) / CRISP_IPC_FRAGMENT_PAYLOAD);
	pair_close(&p);
}

/* ---- the send side's limits ---- */

static void test_send_limits(void **state)
{
	_cleanup_free_ uint8_t *big = xcalloc(1, CRISP_IPC_MAX_MESSAGE + 1);
	Pair p = pair_new();
	char byte;

	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, big, CRISP_IPC_MAX_MESSAGE + 1,
					    NULL, 0),
			 -EMSGSIZE);

	/* The same through the protobuf path: a hello with a 16 MiB peer name. */
	Crisp__Hello hello = CRISP__HELLO__INIT;
	memset(big, 'x', CRISP_IPC_MAX_MESSAGE);
	big[CRISP_IPC_MAX_MESSAGE] = '\0';
	hello.peer = (char *)big;
	assert_int_equal(crisp_ipc_send(p.a, NULL, TEST_TYPE, 1, &hello.base, NULL, 0), -EMSGSIZE);

	int fds[CRISP_IPC_MAX_FDS + 1];
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		fds[i] = p.a;
	assert_int_equal(
		crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, "x", 1, fds, CRISP_IPC_MAX_FDS + 1),
		-EINVAL);
	fds[1] = -1;
	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, "x", 1, fds, 2), -EBADF);

	/* Nothing of the refused messages reached the wire. */
	assert_int_equal(recv(p.b, &byte, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);

	/* A gone peer is an error, not a SIGPIPE. */
	p.b = safe_close(p.b);
	int r = crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, "x", 1, NULL, 0);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	pair_close(&p);
}

/* ---- crafted violations on the receive side ---- */

static void test_recv_over_cap(void **state)
{
	Pair p = pair_new();
	CrispIpcHeader h = header(CRISP_IPC_FLAG_MORE, CRISP_IPC_MAX_MESSAGE + 1);

	/* Refused on the header alone, before any payload is buffered. */
	send_packet(p.a, &h, NULL, 0, NULL, 0);
	expect_refused(p.b, -EMSGSIZE, CRISP_ERR_RESOURCE_EXHAUSTED, "exceeds");

	h = header(0, UINT32_MAX);
	send_packet(p.a, &h, "abc", 3, NULL, 0);
	expect_refused(p.b, -EMSGSIZE, CRISP_ERR_RESOURCE_EXHAUSTED, "exceeds");
	pair_close(&p);
}

static void test_recv_short_packet(void **state)
{
	Pair p = pair_new();
	CrispIpcHeader h = header(0, 0);

	/* Eight bytes of a sixteen-byte header. */
	send_packet(p.a, NULL, &h, 8, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "shorter than the header");

	/* A short packet as a continuation is no better. */
	h = header(CRISP_IPC_FLAG_MORE, CRISP_IPC_FRAGMENT_PAYLOAD + 10);
	send_full_fragment(p.a, &h);
	send_packet(p.a, NULL, &h, 15, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "shorter than the header");
	pair_close(&p);
}

static void test_recv_truncated_chain(void **state)
{
	Pair p = pair_new();

	/* A single last fragment with fewer bytes than declared. */
	CrispIpcHeader h = header(0, 100);
	send_packet(p.a, &h, "0123456789", 10, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "truncated: 10 of 100");

	/* A chain whose last fragment comes one fragment early. */
	h = header(CRISP_IPC_FLAG_MORE, 2 * CRISP_IPC_FRAGMENT_PAYLOAD + 10);
	send_full_fragment(p.a, &h);
	h.flags = 0;
	send_packet(p.a, &h, "0123456789", 10, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "message truncated");

	/* A fragment carrying more than the declared total. */
	h = header(0, 5);
	send_packet(p.a, &h, "0123456789", 10, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "more than the declared 5 bytes");
	pair_close(&p);
}

static void test_recv_peer_closes_mid_message(void **state)
{
	Pair p = pair_new();
	CrispIpcHeader h = header(CRISP_IPC_FLAG_MORE, 3 * CRISP_IPC_FRAGMENT_PAYLOAD);

	send_full_fragment(p.a, &h);
	send_full_fragment(p.a, &h);
	p.a = safe_close(p.a);
	/* Not a clean end of stream: half a message arrived. */
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "closed in the middle of a message");
	pair_close(&p);
}

static void test_recv_foreign_fragment(void **state)
{
	const size_t total = CRISP_IPC_FRAGMENT_PAYLOAD + 4;
	struct {
		const char *what;
		CrispIpcHeader second;
	} cases[] = {
		{ "type", { .type = TEST_TYPE + 2, .total_len = total, .request_id = 7 } },
		{ "request id", { .type = TEST_TYPE, .total_len = total, .request_id = 8 } },
		{ "total length", { .type = TEST_TYPE, .total_len = total + 1, .request_id = 7 } },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		Pair p = pair_new();
		CrispIpcHeader h = header(CRISP_IPC_FLAG_MORE, total);
		send_full_fragment(p.a, &h);
		send_packet(p.a, &cases[i].second, "abcd", 4, NULL, 0);
		print_message("fragment with a different %s\n", cases[i].what);
		expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "does not continue");
		pair_close(&p);
	}
}

static void test_recv_unknown_flags(void **state)
{
	Pair p = pair_new();
	CrispIpcHeader h = header(0x0100, 3);

	send_packet(p.a, &h, "abc", 3, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "unknown frame flags 0x100");

	/* Also on a continuation fragment. */
	h = header(CRISP_IPC_FLAG_MORE, CRISP_IPC_FRAGMENT_PAYLOAD + 3);
	send_full_fragment(p.a, &h);
	h.flags = 0x8000;
	send_packet(p.a, &h, "abc", 3, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "unknown frame flags 0x8000");
	pair_close(&p);
}

static void test_recv_short_nonfinal_fragment(void **state)
{
	Pair p = pair_new();
	CrispIpcHeader h = header(CRISP_IPC_FLAG_MORE, 1000);

	send_packet(p.a, &h, "abcdefghij", 10, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "non-final fragment of 10 bytes");

	/* An empty non-final fragment would let a peer stream forever. */
	send_packet(p.a, &h, NULL, 0, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "non-final fragment of 0 bytes");
	pair_close(&p);
}

static void test_recv_oversized_packet(void **state)
{
	const size_t len = CRISP_IPC_PACKET_SIZE + 1 - sizeof(CrispIpcHeader);
	_cleanup_free_ uint8_t *data = pattern(len, 9);
	Pair p = pair_new();
	CrispIpcHeader h = header(0, (uint32_t)len);

	/* Well-formed but one byte over the packet size: the kernel truncates it (MSG_TRUNC). */
	send_packet(p.a, &h, data, len, NULL, 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "packet larger than");
	pair_close(&p);
}

/* ---- fd passing ---- */

static void test_fds_roundtrip(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	Pair p = pair_new();
	CrispIpcMessage m = { 0 };
	int pipefd[2];

	size_t before = th_count_fds();
	/* Sent without CLOEXEC: the received copies must get it anyway. */
	assert_int_equal(pipe(pipefd), 0);
	int fds[3] = { pipefd[0], open("/dev/null", O_RDONLY), pipefd[1] };
	assert_true(fds[1] >= 0);

	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, "x", 1, fds, 3), 0);
	assert_int_equal(th_recv(p.b, &m, &err), 1);
	assert_int_equal(m.n_fds, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_true(th_same_file(m.fds[i], fds[i]));
		assert_true(th_fd_is_cloexec(m.fds[i]));
	}

	/* Taking an fd hands it over; done closes only the rest. */
	int taken = crisp_ipc_message_take_fd(&m, 1);
	assert_true(taken >= 0);
	assert_int_equal(m.fds[1], -1);
	assert_int_equal(crisp_ipc_message_take_fd(&m, 1), -1);
	assert_int_equal(crisp_ipc_message_take_fd(&m, 3), -1);
	crisp_ipc_message_done(&m);
	assert_true(th_same_file(taken, fds[1]));
	safe_close(taken);
	for (size_t i = 0; i < 3; i++)
		safe_close(fds[i]);
	assert_int_equal(th_count_fds(), before);
	pair_close(&p);
}

static void test_fds_max_with_fragments(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	const size_t len = 3 * CRISP_IPC_FRAGMENT_PAYLOAD + 17;
	_cleanup_free_ uint8_t *data = pattern(len, 11);
	Pair p = pair_new();
	CrispIpcMessage m = { 0 };
	int fds[CRISP_IPC_MAX_FDS];

	size_t before = th_count_fds();
	for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
		/* Distinct files, so the order can be checked. */
		int pp[2];
		assert_int_equal(pipe2(pp, O_CLOEXEC), 0);
		safe_close(pp[1]);
		fds[i] = pp[0];
	}
	SendJob job = { .fd = p.a, .data = data, .len = len, .fds = fds, .n_fds = ELEMENTSOF(fds) };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, send_thread, &job), 0);
	int r = th_recv(p.b, &m, &err);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(job.result, 0);
	assert_int_equal(r, 1);
	assert_int_equal(m.len, len);
	assert_memory_equal(m.payload, data, len);
	assert_int_equal(m.n_fds, CRISP_IPC_MAX_FDS);
	for (size_t i = 0; i < ELEMENTSOF(fds); i++) {
		assert_true(th_same_file(m.fds[i], fds[i]));
		assert_true(th_fd_is_cloexec(m.fds[i]));
	}
	crisp_ipc_message_done(&m);
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		safe_close(fds[i]);
	assert_int_equal(th_count_fds(), before);
	pair_close(&p);
}

static void test_fds_on_continuation(void **state)
{
	Pair p = pair_new();
	size_t before = th_count_fds();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);

	CrispIpcHeader h = header(CRISP_IPC_FLAG_MORE, CRISP_IPC_FRAGMENT_PAYLOAD + 4);
	send_full_fragment(p.a, &h);
	h.flags = 0;
	send_packet(p.a, &h, "abcd", 4, (int[]){ fd, fd }, 2);
	safe_close(fd);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "continuation fragment");
	assert_int_equal(th_count_fds(), before);
	pair_close(&p);
}

static void test_fds_too_many(void **state)
{
	const size_t counts[] = { CRISP_IPC_MAX_FDS + 1, 200 };
	Pair p = pair_new();

	for (size_t k = 0; k < ELEMENTSOF(counts); k++) {
		size_t before = th_count_fds();
		_cleanup_free_ int *fds = xcalloc(counts[k], sizeof(int));
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fd >= 0);
		for (size_t i = 0; i < counts[k]; i++)
			fds[i] = fd;
		CrispIpcHeader h = header(0, 1);
		send_packet(p.a, &h, "x", 1, fds, counts[k]);
		safe_close(fd);
		/* The receive buffer has room for CRISP_IPC_MAX_FDS: the kernel truncates. */
		expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "control data truncated");
		assert_int_equal(th_count_fds(), before);
	}
	pair_close(&p);
}

static void test_wrong_cmsg_type(void **state)
{
	Pair p = pair_new();
	int one = 1;

	/* With SO_PASSCRED every packet carries SCM_CREDENTIALS, which is not ours. */
	assert_int_equal(setsockopt(p.b, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, "x", 1, NULL, 0), 0);
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "unexpected control message");

	/* The same when the sender attaches the credentials itself. */
	CrispIpcHeader h = header(0, 1);
	uint8_t buf[sizeof(h) + 1];
	memcpy(buf, &h, sizeof(h));
	buf[sizeof(h)] = 'x';
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} control = { 0 };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof(control.buf),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
	struct ucred cred = { .pid = getpid(), .uid = getuid(), .gid = getgid() };
	memcpy(CMSG_DATA(c), &cred, sizeof(cred));
	assert_int_equal(sendmsg(p.a, &mh, MSG_NOSIGNAL), (ssize_t)sizeof(buf));
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "unexpected control message");
	pair_close(&p);
}

static void test_truncated_control(void **state)
{
	Pair p = pair_new();
	int one = 1;
	size_t before = th_count_fds();
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	int fds[CRISP_IPC_MAX_FDS];
	for (size_t i = 0; i < ELEMENTSOF(fds); i++)
		fds[i] = fd;

	/* Credentials take part of the control buffer, so the fds no longer fit. */
	assert_int_equal(setsockopt(p.b, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)), 0);
	assert_int_equal(crisp_ipc_send_raw(p.a, NULL, TEST_TYPE, 1, "x", 1, fds, ELEMENTSOF(fds)),
			 0);
	safe_close(fd);
	/* The kernel puts the credentials first, so that is what the refusal names. */
	expect_refused(p.b, -EPROTO, CRISP_ERR_INVALID, "unexpected control message");
	assert_int_equal(th_count_fds(), before);
	pair_close(&p);
}

/* ---- budgeted unpacking ---- */

/* A SpawnRequest with n args of arg_len bytes each, packed. */
static uint8_t *pack_spawn_request(size_t n, size_t arg_len, size_t *ret_len)
{
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	_cleanup_free_ char **args = xcalloc(n ? n : 1, sizeof(char *));
	_cleanup_free_ char *arg = xmalloc(arg_len + 1);

	memset(arg, 'a', arg_len);
	arg[arg_len] = '\0';
	for (size_t i = 0; i < n; i++)
		args[i] = arg;
	req.kind = 5;
	req.id = (char *)"container-1";
	req.n_args = n;
	req.args = args;
	req.wait = true;
	req.timeout_ms = 1234;
	return crisp_proto_pack(&req.base, ret_len);
}

static void test_budget_exhausted(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	size_t len;
	_cleanup_free_ uint8_t *buf = pack_spawn_request(200, 100, &len);

	ProtobufCMessage *msg =
		crisp_proto_unpack_budget(&crisp__spawn_request__descriptor, buf, len, 4096, &err);
	assert_null(msg);
	assert_error(err, CRISP_ERR_RESOURCE_EXHAUSTED, "decoding would need more than 4096 bytes");
	assert_contains(err->message, "crisp.SpawnRequest");
	err = crisp_error_free(err);

	/* The same bytes fit the default budget. */
	_cleanup_proto_ Crisp__SpawnRequest *req = (Crisp__SpawnRequest *)crisp_proto_unpack(
		&crisp__spawn_request__descriptor, buf, len, &err);
	assert_non_null(req);
	assert_int_equal(req->n_args, 200);
}

/*
 * At the smallest budget that works, one byte less must be reported as
 * exhaustion, not as a malformed message.
 */
static void test_budget_boundary(void **state)
{
	size_t len;
	_cleanup_free_ uint8_t *buf = pack_spawn_request(20, 30, &len);
	size_t lo = 0, hi = 1 * MIB;

	while (lo + 1 < hi) {
		size_t mid = (lo + hi) / 2;
		ProtobufCMessage *msg = crisp_proto_unpack_budget(&crisp__spawn_request__descriptor,
								  buf, len, mid, NULL);
		if (msg)
			hi = mid;
		else
			lo = mid;
		crisp_proto_free(msg);
	}
	_cleanup_error_ CrispError *err = NULL;
	assert_null(crisp_proto_unpack_budget(&crisp__spawn_request__descriptor, buf, len, hi - 1,
					      &err));
	assert_error(err, CRISP_ERR_RESOURCE_EXHAUSTED, "decoding would need");
	_cleanup_proto_ ProtobufCMessage *msg =
		crisp_proto_unpack_budget(&crisp__spawn_request__descriptor, buf, len, hi, NULL);
	assert_non_null(msg);
}

/* Two bytes per empty repeated string expand far past the default 8x budget. */
static void test_budget_default_expansion(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	size_t len;
	_cleanup_free_ uint8_t *buf = pack_spawn_request(100000, 0, &len);

	assert_true(len < 250000);
	assert_null(crisp_proto_unpack(&crisp__spawn_request__descriptor, buf, len, &err));
	assert_error(err, CRISP_ERR_RESOURCE_EXHAUSTED, "decoding would need");
}

static void test_budget_malformed(void **state)
{
	static const struct {
		const char *what;
		uint8_t bytes[4];
		size_t len;
	} cases[] = {
		{ "string length past the end", { 0x12, 0x05, 'a' }, 3 },
		{ "truncated length varint", { 0x12, 0x80 }, 2 },
		{ "wire type 7", { 0x0f, 0x00 }, 2 },
		{ "truncated fixed64", { 0x09, 0x01, 0x02 }, 3 },
		{ "field number 0", { 0x00, 0x01 }, 2 },
	};

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		_cleanup_error_ CrispError *err = NULL;
		print_message("%s\n", cases[i].what);
		ProtobufCMessage *msg =
			crisp_proto_unpack_budget(&crisp__spawn_request__descriptor, cases[i].bytes,
						  cases[i].len, 1 * MIB, &err);
		assert_null(msg);
		assert_error(err, CRISP_ERR_INVALID, "crisp.SpawnRequest: malformed message");
		assert_int_equal(err->errnum, EBADMSG);
	}
}

static void test_budget_success_frees(void **state)
{
	_cleanup_error_ CrispError *err = NULL;
	size_t len;
	_cleanup_free_ uint8_t *buf = pack_spawn_request(3, 10, &len);

	Crisp__SpawnRequest *a = (Crisp__SpawnRequest *)crisp_proto_unpack_budget(
		&crisp__spawn_request__descriptor, buf, len, 64 * 1024, &err);
	Crisp__SpawnRequest *b = (Crisp__SpawnRequest *)crisp_proto_unpack(
		&crisp__spawn_request__descriptor, buf, len, &err);
	assert_null(err);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->kind, 5);
	assert_string_equal(a->id, "container-1");
	assert_int_equal(a->n_args, 3);
	assert_string_equal(a->args[2], "aaaaaaaaaa");
	assert_true(a->wait);
	assert_int_equal(a->timeout_ms, 1234);
	assert_string_equal(b->args[0], a->args[0]);
	/* Each message owns its budget: freeing one leaves the other intact. */
	crisp_proto_free(a);
	assert_string_equal(b->id, "container-1");
	crisp_proto_free(b);
	crisp_proto_free(NULL);

	/* An empty payload decodes to an empty message. */
	_cleanup_proto_ ProtobufCMessage *empty =
		crisp_proto_unpack(&crisp__health_request__descriptor, NULL, 0, &err);
	assert_non_null(empty);
	assert_null(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_small),
		cmocka_unit_test(test_roundtrip_proto),
		cmocka_unit_test(test_roundtrip_sizes),
		cmocka_unit_test(test_fragment_layout),
		cmocka_unit_test(test_send_limits),
		cmocka_unit_test(test_recv_over_cap),
		cmocka_unit_test(test_recv_short_packet),
		cmocka_unit_test(test_recv_truncated_chain),
		cmocka_unit_test(test_recv_peer_closes_mid_message),
		cmocka_unit_test(test_recv_foreign_fragment),
		cmocka_unit_test(test_recv_unknown_flags),
		cmocka_unit_test(test_recv_short_nonfinal_fragment),
		cmocka_unit_test(test_recv_oversized_packet),
		cmocka_unit_test(test_fds_roundtrip),
		cmocka_unit_test(test_fds_max_with_fragments),
		cmocka_unit_test(test_fds_on_continuation),
		cmocka_unit_test(test_fds_too_many),
		cmocka_unit_test(test_wrong_cmsg_type),
		cmocka_unit_test(test_truncated_control),
		cmocka_unit_test(test_budget_exhausted),
		cmocka_unit_test(test_budget_boundary),
		cmocka_unit_test(test_budget_default_expansion),
		cmocka_unit_test(test_budget_malformed),
		cmocka_unit_test(test_budget_success_frees),
	};

	/* A test's own mistake should fail an assertion, not kill the run. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
