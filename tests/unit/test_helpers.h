/*
 * test_helpers.h - small pieces shared by the unit tests of common/.
 *
 * cmocka reports a failure by longjmp()ing out of the test, so assertions
 * belong in the thread that runs the test; helper threads record what they
 * saw and the test checks it after pthread_join().
 */
#ifndef CRISP_TEST_HELPERS_H
#define CRISP_TEST_HELPERS_H

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>

#include "error.h"
#include "ipc.h"

/* Generous: only reached when something is broken, and then it beats hanging. */
#define TH_TIMEOUT_MS 5000

#define assert_contains(s, sub)                                                                    \
	do {                                                                                       \
		const char *_s_ = (s);                                                             \
		if (!_s_ || !strstr(_s_, (sub)))                                                   \
			fail_msg("\"%s\" does not contain \"%s\"", _s_ ? _s_ : "(null)", (sub));   \
	} while (0)

/* The error must be set, with this code and a message containing sub. */
#define assert_error(err, want_code, sub)                                                          \
	do {                                                                                       \
		const CrispError *_e_ = (err);                                                     \
		if (!_e_)                                                                          \
			fail_msg("no error was set");                                              \
		if (_e_->code != (want_code))                                                      \
			fail_msg("error code %s, expected %s (%s)",                                \
				 crisp_error_code_name(_e_->code),                                 \
				 crisp_error_code_name(want_code), _e_->message);                  \
		assert_contains(_e_->message, (sub));                                              \
	} while (0)

/* Open fds of this process, from /proc/self/fd (the listing's own fd excluded). */
size_t th_count_fds(void);
bool th_fd_is_cloexec(int fd);
/* True when a and b refer to the same open file (same device and inode). */
bool th_same_file(int a, int b);

int64_t th_now_ms(void);
void th_sleep_ms(unsigned ms);

/* A condition variable on CLOCK_MONOTONIC, the clock of th_now_ms(). */
void th_cond_init(pthread_cond_t *cond);
/* Waits on cond (initialised by th_cond_init) until woken; false once th_now_ms() >= until_ms. */
bool th_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t until_ms);

/* pthread_join that fails the test instead of waiting past timeout_ms. */
void th_join(pthread_t thread, int timeout_ms);

/* Waits until fd is readable (or hung up); fails the test after timeout_ms. */
void th_wait_readable(int fd, int timeout_ms);
/* crisp_ipc_recv that fails the test instead of blocking past TH_TIMEOUT_MS. */
int th_recv(int fd, CrispIpcMessage *m, CrispError **err);
/* Expects the peer to have closed the channel: recv sees a clean end of stream. */
void th_expect_closed(int fd);

/* Reads fd until end of file (fails the test after TH_TIMEOUT_MS); malloc'd, NUL-terminated. */
char *th_read_all(int fd);

/* A fresh directory under $TMPDIR (or /tmp), and its recursive removal. */
char *th_mkdtemp(void);
void th_rm_rf(const char *path);

/* Unpacks m's payload with desc, failing the test if it does not decode. */
ProtobufCMessage *th_unpack(const ProtobufCMessageDescriptor *desc, const CrispIpcMessage *m);

#endif
