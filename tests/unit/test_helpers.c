/*
 * test_helpers.c - see test_helpers.h.
 */
#include "test_helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

size_t th_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	/* The directory stream held one fd while it was read. */
	return n - 1;
}

bool th_fd_is_cloexec(int fd)
{
	int flags = fcntl(fd, F_GETFD);
	assert_true(flags >= 0);
	return flags & FD_CLOEXEC;
}

bool th_same_file(int a, int b)
{
	struct stat sa, sb;
	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int64_t th_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void th_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void th_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	assert_int_equal(pthread_condattr_init(&ca), 0);
	assert_int_equal(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
	assert_int_equal(pthread_cond_init(cond, &ca), 0);
	pthread_condattr_destroy(&ca);
}

bool th_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t until_ms)
{
	int64_t left = until_ms - th_now_ms();
	struct timespec ts;

	if (left <= 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += left / 1000;
	ts.tv_nsec += (long)(left % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cond, lock, &ts);
	return true;
}

void th_join(pthread_t thread, int timeout_ms)
{
	struct timespec ts;
	int r;

	/* pthread_timedjoin_np measures against CLOCK_REALTIME. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	r = pthread_timedjoin_np(thread, NULL, &ts);
	if (r == ETIMEDOUT)
		fail_msg("a thread did not end within %d ms", timeout_ms);
	assert_int_equal(r, 0);
}

void th_wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		fail_msg("fd %d: nothing arrived within %d ms", fd, timeout_ms);
	assert_int_equal(r, 1);
}

int th_recv(int fd, CrispIpcMessage *m, CrispError **err)
{
	th_wait_readable(fd, TH_TIMEOUT_MS);
	return crisp_ipc_recv(fd, m, err);
}

void th_expect_closed(int fd)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispIpcMessage m = { 0 };

	int r = th_recv(fd, &m, &err);
	if (r == 1) {
		unsigned type = m.type;
		crisp_ipc_message_done(&m);
		fail_msg("expected the channel to close, got a message of type %u", type);
	}
	if (r < 0)
		fail_msg("expected a clean end of stream, got %d: %s", r,
			 err ? err->message : "(no error)");
}

char *th_read_all(int fd)
{
	size_t len = 0, cap = 256;
	char *buf = xmalloc(cap);

	for (;;) {
		th_wait_readable(fd, TH_TIMEOUT_MS);
		if (len + 1 >= cap)
			buf = xrealloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		assert_true(n >= 0);
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

char *th_mkdtemp(void)
{
	const char *base = getenv("TMPDIR");
	char *path = xasprintf("%s/crisp-unit-XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(path));
	return path;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) < 0 ? -1 : 0;
}

void th_rm_rf(const char *path)
{
	if (path)
		assert_int_equal(nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

ProtobufCMessage *th_unpack(const ProtobufCMessageDescriptor *desc, const CrispIpcMessage *m)
{
	_cleanup_error_ CrispError *err = NULL;
	ProtobufCMessage *msg = crisp_proto_unpack(desc, m->payload, m->len, &err);
	if (!msg)
		fail_msg("unpacking %s: %s", desc->name, err ? err->message : "(no error)");
	return msg;
}
