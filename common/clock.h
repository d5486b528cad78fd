/*
 * clock.h - the monotonic clock every deadline in crisp is measured on, and
 * condition variables that wait on it (a wall-clock jump must neither
 * stretch nor cut a wait).
 */
#ifndef CRISP_CLOCK_H
#define CRISP_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds. */
int64_t crisp_now_ms(void);

/* Initialises cond to time its waits on CLOCK_MONOTONIC. */
void crisp_cond_init_monotonic(pthread_cond_t *cond);

/* The CLOCK_MONOTONIC instant ms milliseconds from now, for pthread_cond_timedwait. */
struct timespec crisp_monotonic_in_ms(int64_t ms);

#endif
