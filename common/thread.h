/*
 * thread.h - threads nobody joins.
 */
#ifndef CRISP_THREAD_H
#define CRISP_THREAD_H

/*
 * Starts fn(arg) on a detached thread: it frees its own resources when fn
 * returns.  0, or pthread_create's error number (fn never runs then).
 */
int crisp_thread_start_detached(void *(*fn)(void *), void *arg);

#endif
