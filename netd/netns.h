/*
 * netns.h - pods' network namespaces, pinned by a bind mount.
 *
 * A namespace is made in a short-lived thread that unshares CLONE_NEWNET
 * (which changes only that thread), brings its loopback up and bind-mounts
 * /proc/thread-self/ns/net onto a pin file <state>/netns/<name>; the pin
 * keeps the namespace alive with no process in it, and its path is what
 * runc and the CNI plugins are given.  Work inside a namespace (dialing,
 * statistics) runs in a thread that setns()es into it, so the daemon's
 * other threads stay in the host's namespace.
 *
 * Names come only from netd's own checks (64 hex digits), never raw from a
 * request; every path is <pins_dir>/<name>.
 */
#ifndef CRISP_NETD_NETNS_H
#define CRISP_NETD_NETNS_H

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

/* Creates and pins a new namespace; the pin must not exist yet. */
int netd_netns_create(const char *pins_dir, const char *name, CrispError **err);
/* Unpins and removes the pin file; a missing pin is fine. */
int netd_netns_remove(const char *pins_dir, const char *name, CrispError **err);
/* True when the pin exists and holds a namespace. */
bool netd_netns_exists(const char *pins_dir, const char *name);

/* Runs fn(arg) on a thread inside the pinned namespace; returns fn's result. */
int netd_netns_run(const char *pins_dir, const char *name, int (*fn)(void *arg, CrispError **err),
		   void *arg, CrispError **err);

typedef struct NetdLinkStats {
	char name[16];
	uint64_t rx_bytes, rx_packets, rx_errors, tx_bytes, tx_packets, tx_errors;
} NetdLinkStats;

/* The counters of every interface in the namespace but loopback. */
int netd_netns_link_stats(const char *pins_dir, const char *name, NetdLinkStats **ret,
			  size_t *ret_n, CrispError **err);
/* A TCP connection to localhost:port inside the namespace (127.0.0.1, then ::1). */
int netd_netns_dial(const char *pins_dir, const char *name, int port, int *ret_fd,
		    CrispError **err);

#endif
