/*
 * inflight.c - shared work between concurrent pulls (see inflight.h).
 *
 * The table holds only the keys being worked on, a handful at a time, so a
 * list is enough; one condition variable serves every key, and a waiter
 * whose key is still claimed after a wake-up simply waits again.
 */
#include "inflight.h"

#include "clock.h"
#include "macros.h"

#include <string.h>

struct CrispInflightKey {
	char *key;
	CrispInflightKey *next;
};

void crisp_inflight_init(CrispInflight *t)
{
	crisp_cond_init_monotonic(&t->released);
	t->keys = NULL;
}

void crisp_inflight_done(CrispInflight *t)
{
	while (t->keys) {
		CrispInflightKey *k = t->keys;
		t->keys = k->next;
		free(k->key);
		free(k);
	}
	pthread_cond_destroy(&t->released);
}

static CrispInflightKey **find(CrispInflight *t, const char *key)
{
	CrispInflightKey **p = &t->keys;
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

bool crisp_inflight_claim(CrispInflight *t, pthread_mutex_t *lock, const char *key)
{
	if (*find(t, key)) {
		while (*find(t, key))
			pthread_cond_wait(&t->released, lock);
		return false;
	}
	CrispInflightKey *k = xcalloc(1, sizeof(*k));
	k->key = xstrdup(key);
	k->next = t->keys;
	t->keys = k;
	return true;
}

void crisp_inflight_release(CrispInflight *t, const char *key)
{
	CrispInflightKey **p = find(t, key);
	if (!*p)
		abort(); /* releasing what was never claimed: a broken invariant */
	CrispInflightKey *k = *p;
	*p = k->next;
	free(k->key);
	free(k);
	pthread_cond_broadcast(&t->released);
}

void crisp_inflight_take(CrispInflight *t, pthread_mutex_t *lock, const char *key)
{
	pthread_mutex_lock(lock);
	while (!crisp_inflight_claim(t, lock, key))
		;
	pthread_mutex_unlock(lock);
}

void crisp_inflight_put(CrispInflight *t, pthread_mutex_t *lock, const char *key)
{
	pthread_mutex_lock(lock);
	crisp_inflight_release(t, key);
	pthread_mutex_unlock(lock);
}
