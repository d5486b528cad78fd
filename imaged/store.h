/*
 * store.h - the content store: verified blobs by digest.
 *
 * Layout under root: blobs/<algorithm>/<hex>, as in an OCI image layout.
 * A file there is only ever created complete and verified (registry.c
 * writes a temporary file and links it in after checking size and digest),
 * so presence means the content is good.  Paths come only from a validated
 * CrispDigest (crisp_digest_path_component), never from registry text.
 */
#ifndef CRISP_IMAGED_STORE_H
#define CRISP_IMAGED_STORE_H

#include "digest.h"
#include "error.h"
#include "manifest.h"
#include "reference.h"
#include "registry.h"

#include <stdbool.h>

typedef struct CrispStore CrispStore;

/* Opens (creating as needed, mode 0755) root and root/blobs/{sha256,sha512}. */
int crisp_store_open(const char *root, CrispStore **ret, CrispError **err);
CrispStore *crisp_store_free(CrispStore *s);
static inline void crisp_store_freep(CrispStore **s)
{
	crisp_store_free(*s);
}
#define _cleanup_store_ _cleanup_(crisp_store_freep)

bool crisp_store_has_blob(CrispStore *s, const CrispDigest *d);
/* Opens a stored blob read-only (O_NOFOLLOW); -ENOENT when absent. */
int crisp_store_open_blob(CrispStore *s, const CrispDigest *d, CrispError **err);
/* Removes a blob; absent is fine. */
int crisp_store_remove_blob(CrispStore *s, const CrispDigest *d, CrispError **err);
/*
 * Removes every file under blobs/ whose digest is not in keep (a sorted,
 * NULL-terminated list of digest strings), temporary files of interrupted
 * downloads included.  *ret_removed counts the files removed.
 */
int crisp_store_collect(CrispStore *s, char *const *keep, size_t *ret_removed, CrispError **err);
/* Fetches the blob d names from ref's registry into the store, unless present. */
int crisp_store_fetch_blob(CrispStore *s, CrispRegistryClient *c, const CrispReference *ref,
			   const CrispDescriptor *d, CrispError **err);

#endif
