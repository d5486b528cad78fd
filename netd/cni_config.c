/*
 * cni_config.c - loading CNI network configs (see cni_config.h).
 */
#include "cni_config.h"

#include "macros.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>

bool netd_cni_type_is_valid(const char *type)
{
	if (!type || !*type || strlen(type) > 255 || strstr(type, ".."))
		return false;
	for (const char *p = type; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
			return false;
	return true;
}

const char *netd_network_name(const json_t *list)
{
	const char *n = json_string_value(json_object_get(list, "name"));
	return n ? n : "";
}

json_t *netd_loopback_network(void)
{
	return json_pack("{s:s, s:s, s:[{s:s}]}", "cniVersion", "1.0.0", "name", "cni-loopback",
			 "plugins", "type", "loopback");
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* Checks one plugin entry; NULL when fine, else why not (malloc'd). */
static char *check_plugin(const json_t *p, size_t i)
{
	if (!json_is_object(p))
		return xasprintf("plugin %zu is not an object", i);
	const char *type = json_string_value(json_object_get(p, "type"));
	if (!type || !*type)
		return xasprintf("plugin %zu has no \"type\"", i);
	if (!netd_cni_type_is_valid(type))
		return xasprintf("plugin type \"%.80s\" is not a plain file name", type);
	return NULL;
}

/* The file as a normalized conflist, or NULL with *ret_problem set. */
static json_t *load_file(const char *path, bool list, char **ret_problem)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		*ret_problem = root ? xasprintf("%s: not a JSON object", path)
				    : xasprintf("%s: %s (line %d)", path, jerr.text, jerr.line);
		json_decref(root);
		return NULL;
	}
	const char *name = json_string_value(json_object_get(root, "name"));
	if (!name || !*name) {
		*ret_problem = xasprintf("%s: no \"name\"", path);
		json_decref(root);
		return NULL;
	}
	json_t *out;
	if (list) {
		out = root;
	} else {
		/* One plugin: the list holds it, without the list-level keys. */
		json_t *plugin = json_deep_copy(root);
		json_object_del(plugin, "name");
		json_object_del(plugin, "cniVersion");
		out = json_pack("{s:O?, s:s, s:[o]}", "cniVersion",
				json_object_get(root, "cniVersion"), "name", name, "plugins",
				plugin);
		json_decref(root);
	}
	json_t *plugins = json_object_get(out, "plugins");
	if (!json_is_array(plugins) || json_array_size(plugins) == 0) {
		*ret_problem = xasprintf("%s: no \"plugins\"", path);
		json_decref(out);
		return NULL;
	}
	if (!json_string_value(json_object_get(out, "cniVersion")))
		json_object_set_new(out, "cniVersion", json_string("0.4.0"));
	size_t i;
	json_t *p;
	json_array_foreach(plugins, i, p)
	{
		char *why = check_plugin(p, i);
		if (why) {
			*ret_problem = xasprintf("%s: %s", path, why);
			free(why);
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

NetdNetworks *netd_networks_load(const char *dir, size_t max)
{
	NetdNetworks *n = xcalloc(1, sizeof(*n));
	n->refs = 1;
	struct dirent **entries = NULL;
	int k = scandir(dir, &entries, NULL, alphasort);
	if (k < 0) {
		n->problem =
			xasprintf("cannot read the CNI config dir %s: %s", dir, strerror(errno));
		return n;
	}
	char *first_problem = NULL;
	for (int i = 0; i < k; i++) {
		const char *f = entries[i]->d_name;
		bool list = has_suffix(f, ".conflist");
		if (f[0] != '.' && n->n < max &&
		    (list || has_suffix(f, ".conf") || has_suffix(f, ".json"))) {
			_cleanup_free_ char *path = xasprintf("%s/%s", dir, f);
			char *why = NULL;
			json_t *l = load_file(path, list, &why);
			if (l) {
				n->lists = xrealloc(n->lists, (n->n + 1) * sizeof(json_t *));
				n->lists[n->n++] = l;
			} else if (!first_problem) {
				first_problem = why;
			} else {
				free(why);
			}
		}
		free(entries[i]);
	}
	free(entries);
	if (n->n == 0)
		n->problem = first_problem ? xasprintf("no usable network config in %s: %s", dir,
						       first_problem)
					   : xasprintf("no network config found in %s", dir);
	free(first_problem);
	return n;
}

NetdNetworks *netd_networks_ref(NetdNetworks *n)
{
	__atomic_add_fetch(&n->refs, 1, __ATOMIC_SEQ_CST);
	return n;
}

void netd_networks_unref(NetdNetworks *n)
{
	if (!n || __atomic_sub_fetch(&n->refs, 1, __ATOMIC_SEQ_CST) > 0)
		return;
	for (size_t i = 0; i < n->n; i++)
		json_decref(n->lists[i]);
	free(n->lists);
	free(n->problem);
	free(n);
}
