/*
 * inflight.h - work that concurrent requests share or take turns at: one
 * download of a blob or one unpack of a snapshot however many pulls want it
 * (imaged), one change at a time to a pod's network (netd).
 *
 * A key ("blob:sha256:...", "pod:<id>") is claimed by the first request
 * that needs it; later ones wait until the owner releases it, then look
 * again: the work is done, or (when the owner failed) one of them claims the
 * key and tries itself.  Every call is made with the caller's mutex held;
 * waiting releases it.
 */
#ifndef CRISP_INFLIGHT_H
#define CRISP_INFLIGHT_H

#include <pthread.h>
#include <stdbool.h>

typedef struct CrispInflightKey CrispInflightKey;

typedef struct CrispInflight {
	pthread_cond_t released;
	CrispInflightKey *keys;
} CrispInflight;

void crisp_inflight_init(CrispInflight *t);
void crisp_inflight_done(CrispInflight *t);

/*
 * With lock held: when nobody works on key, claims it and returns true (the
 * caller must crisp_inflight_release() it).  Otherwise waits until the owner
 * releases it and returns false: the caller checks again whether the work is
 * done before claiming.
 */
bool crisp_inflight_claim(CrispInflight *t, pthread_mutex_t *lock, const char *key);
/* With lock held: releases a claimed key and wakes the waiters. */
void crisp_inflight_release(CrispInflight *t, const char *key);

/*
 * Taking turns rather than sharing (one change to a pod at a time): takes
 * lock, waits until key is free and claims it, and drops lock again.
 * crisp_inflight_put releases it, taking lock itself.
 */
void crisp_inflight_take(CrispInflight *t, pthread_mutex_t *lock, const char *key);
void crisp_inflight_put(CrispInflight *t, pthread_mutex_t *lock, const char *key);

#endif
