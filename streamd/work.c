/*
 * work.c - what sessions need from the privileged daemons.
 *
 * streamd has only its channel to criapi, on which criapi calls and
 * streamd answers.  So a session's need (start this command, connect to
 * that container, dial this port) waits in a queue until criapi's long
 * poll (StreamWorkRequest) picks it up; criapi gets it done and calls
 * StreamWorkDone with the outcome and the fds, which wakes the session.
 * A session that gave up waiting leaves its entry marked abandoned: fds
 * that arrive for it are closed at once.
 */
#include "streamd.h"

#include "clock.h"
#include "daemon.h"
#include "ipc_types.h"
#include "log.h"

#include <pthread.h>
#include <time.h>

#define MAX_WAIT_MS 30000

typedef struct Pending {
	struct Pending *next;
	Crisp__StreamWorkReply *work; /* NULL once handed to criapi */
	uint64_t session;
	bool done, abandoned;
	StreamWorkResult result;
	CrispError *err;
	pthread_cond_t cond;
} Pending;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Timed on the monotonic clock, as its waits' deadlines are: initialised once, in work_init. */
static pthread_cond_t work_cond;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;
static Pending *pending;
static uint64_t next_session = 1;

static void work_init(void)
{
	crisp_cond_init_monotonic(&work_cond);
}

static void unlink_locked(Pending *p)
{
	for (Pending **q = &pending; *q; q = &(*q)->next)
		if (*q == p) {
			*q = p->next;
			return;
		}
}

void streamd_work_result_done(StreamWorkResult *r)
{
	for (size_t i = 0; i < r->n_fds; i++)
		safe_close(r->fds[i]);
	r->n_fds = 0;
}

int streamd_work_run(Crisp__StreamWorkReply *q, int timeout_ms, StreamWorkResult *ret,
		     CrispError **err)
{
	Pending *p = xcalloc(1, sizeof(*p));
	crisp_cond_init_monotonic(&p->cond);
	pthread_once(&work_once, work_init);
	p->work = q;

	pthread_mutex_lock(&lock);
	p->session = q->session = next_session++;
	p->next = pending;
	pending = p;
	pthread_cond_signal(&work_cond);
	struct timespec until = crisp_monotonic_in_ms(timeout_ms);
	while (!p->done)
		if (pthread_cond_timedwait(&p->cond, &lock, &until) == ETIMEDOUT)
			break;
	int r;
	if (!p->done) {
		r = crisp_error_set(err, CRISP_ERR_DEADLINE, ETIMEDOUT,
				    "crisp did not get the %s ready within %d s",
				    q->kind == CRISP__STREAM_WORK_REPLY__KIND__DIAL ? "connection"
										    : "command",
				    timeout_ms / 1000);
		if (p->work) { /* never picked up: just forget it */
			unlink_locked(p);
			pthread_mutex_unlock(&lock);
			pthread_cond_destroy(&p->cond);
			free(p);
			return r;
		}
		p->abandoned = true; /* WorkDone frees it */
		pthread_mutex_unlock(&lock);
		return r;
	}
	unlink_locked(p);
	pthread_mutex_unlock(&lock);
	if (p->err) {
		r = crisp_error_set(err, p->err->code, EIO, "%s", p->err->message);
		crisp_error_free(p->err);
	} else {
		*ret = p->result;
		r = 0;
	}
	pthread_cond_destroy(&p->cond);
	free(p);
	return r;
}

/* criapi's long poll: the oldest work nobody picked up yet, or NONE after max_wait_ms. */
int streamd_work_wait(CrispRequest *req, void *userdata _unused_, CrispError **err _unused_)
{
	const Crisp__StreamWorkRequest *q = (const void *)req->msg;
	int wait_ms = q->max_wait_ms > MAX_WAIT_MS ? MAX_WAIT_MS : (int)q->max_wait_ms;
	struct timespec until = crisp_monotonic_in_ms(wait_ms);

	pthread_once(&work_once, work_init);
	pthread_mutex_lock(&lock);
	Pending *found = NULL;
	for (;;) {
		for (Pending *p = pending; p; p = p->next)
			if (p->work)
				found = p; /* the list is newest first: keep the last */
		if (found || pthread_cond_timedwait(&work_cond, &lock, &until) == ETIMEDOUT)
			break;
	}
	Crisp__StreamWorkReply none = CRISP__STREAM_WORK_REPLY__INIT;
	Crisp__StreamWorkReply *work = found ? found->work : &none;
	/* Sent under the lock: the session owns the request and may give up once unlocked. */
	int r = crisp_reply(req, CRISP_MSG_STREAMD_WORK_ANS, &work->base, NULL, 0);
	if (found)
		found->work = NULL;
	pthread_mutex_unlock(&lock);
	return r;
}

int streamd_work_done(CrispRequest *req, void *userdata _unused_, CrispError **err)
{
	const Crisp__StreamWorkDone *q = (const void *)req->msg;
	if (q->n_fds != req->n_fds || q->n_fds > 4)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "StreamWorkDone declares %u fds but carries %zu", q->n_fds,
				       req->n_fds);
	pthread_mutex_lock(&lock);
	Pending *p = pending;
	while (p && !(p->session == q->session && !p->work && !p->done))
		p = p->next;
	if (!p) {
		pthread_mutex_unlock(&lock);
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "no streaming session %llu waits for work",
				       (unsigned long long)q->session);
	}
	StreamWorkResult res = { .n_fds = 0 };
	for (size_t i = 0; i < q->n_fds; i++)
		res.fds[res.n_fds++] = crisp_request_take_fd(req, i);
	if (q->attach) {
		res.attach.tty = q->attach->tty;
		res.attach.stdin = q->attach->stdin;
		res.attach.stdin_once = q->attach->stdin_once;
	}
	if (p->abandoned) {
		unlink_locked(p);
		pthread_mutex_unlock(&lock);
		streamd_work_result_done(&res);
		pthread_cond_destroy(&p->cond);
		free(p);
	} else {
		if (q->error_code)
			crisp_error_set(&p->err, crisp_error_from_wire(q->error_code), EIO, "%s",
					q->error_message ? q->error_message : "failed");
		else
			p->result = res;
		if (q->error_code)
			streamd_work_result_done(&res);
		p->done = true;
		pthread_cond_signal(&p->cond);
		pthread_mutex_unlock(&lock);
	}
	Crisp__StreamWorkDoneReply a = CRISP__STREAM_WORK_DONE_REPLY__INIT;
	return crisp_reply(req, CRISP_MSG_STREAMD_WORK_DONE_ANS, &a.base, NULL, 0);
}
