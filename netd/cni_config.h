/*
 * cni_config.h - the CNI network configs netd uses, and their loading.
 *
 * Files in the conf dir ending in .conflist, .conf or .json are read in
 * lexical order, as the CNI spec's runtimes do; a .conf/.json (one plugin)
 * becomes a list of one.  The first cni_max_networks usable ones are the
 * pod networks, always after the built-in loopback network.  A file that
 * does not parse, lacks a name or a plugin type, or names a plugin type
 * with a path in it ('/' or "..") is skipped, and named in the readiness
 * message when nothing usable is left.
 *
 * netd keeps the loaded set in memory and reloads it when the conf dir
 * changes (inotify; the dir may appear later).  Pods keep the configs they
 * were attached with (net.db), so DEL works after a file changed or went.
 */
#ifndef CRISP_NETD_CNI_CONFIG_H
#define CRISP_NETD_CNI_CONFIG_H

#include "error.h"

#include <jansson.h>
#include <stdbool.h>

#define NETD_CNI_CONFIG_MAX_BYTES (1024 * 1024)

typedef struct NetdNetworks {
	json_t **lists; /* normalized conflists ({"cniVersion", "name", "plugins": [...]}) */
	size_t n;
	char *problem; /* why nothing is usable, when n == 0 */
	unsigned refs;
} NetdNetworks;

/* Loads dir; never fails: an unreadable dir is an empty set with a problem. */
NetdNetworks *netd_networks_load(const char *dir, size_t max);
NetdNetworks *netd_networks_ref(NetdNetworks *n);
void netd_networks_unref(NetdNetworks *n);

/* The built-in loopback network every pod gets first. */
json_t *netd_loopback_network(void);

/* A plugin type is a file name in the plugin dirs, nothing more. */
bool netd_cni_type_is_valid(const char *type);

/* The network's "name" (never NULL for a loaded list). */
const char *netd_network_name(const json_t *list);

#endif
