/*
 * registry.h - a client for the OCI distribution API v2 (libcurl).
 *
 * Fetches manifests (choosing the host platform from an index) and blobs.
 * Everything a registry sends is untrusted: manifests are capped at
 * CRISP_MANIFEST_MAX_SIZE and parsed by manifest.c, their digest is always
 * computed (and checked when pulling by digest), and blobs are verified for
 * size and digest while they stream to a temporary file that becomes visible
 * under its final name only once complete, verified and fsync'd.
 *
 * Endpoints: for a reference on host H, each of registry_hosts[H].mirrors in
 * order, then H itself.  H is reached over HTTPS (system CAs plus
 * <registry_certs_dir>/<H>/ca.crt, client.cert and client.key when present);
 * a registry configured insecure is reached over plain HTTP, and a loopback
 * one over HTTPS falling back to plain HTTP when the server does not speak TLS.
 *
 * Auth: anonymous first; a 401 answers with its WWW-Authenticate challenge:
 * Basic gets the configured credentials, Bearer a token from the realm.
 * Credentials are never sent to another host on a redirect.
 */
#ifndef CRISP_IMAGED_REGISTRY_H
#define CRISP_IMAGED_REGISTRY_H

#include "config.h"
#include "digest.h"
#include "error.h"
#include "manifest.h"
#include "reference.h"

/* CRI AuthConfig.  Any field may be NULL or "". */
typedef struct CrispRegistryAuth {
	const char *username;
	const char *password;
	const char *auth;	    /* base64("username:password") */
	const char *identity_token; /* OAuth2 refresh token, POSTed to a bearer realm */
	const char *registry_token; /* sent as is: "Authorization: Bearer <registry_token>" */
} CrispRegistryAuth;

typedef struct CrispRegistryClient CrispRegistryClient;

/* config must outlive the client; auth (may be NULL) is copied. */
int crisp_registry_client_new(const CrispConfig *config, const CrispRegistryAuth *auth,
			      CrispRegistryClient **ret, CrispError **err);
CrispRegistryClient *crisp_registry_client_free(CrispRegistryClient *c);
static inline void crisp_registry_client_freep(CrispRegistryClient **c)
{
	crisp_registry_client_free(*c);
}
#define _cleanup_registry_client_ _cleanup_(crisp_registry_client_freep)

/* What a manifest fetch found. */
typedef struct CrispRegistryImage {
	CrispDigest repo_digest;     /* of the document the reference named (index or manifest) */
	CrispDigest manifest_digest; /* of the image manifest (== repo_digest without an index) */
	CrispManifest manifest;
	CrispPlatform platform; /* from the index entry; os/architecture NULL without an index */
} CrispRegistryImage;

void crisp_registry_image_done(CrispRegistryImage *img);

/*
 * GET /v2/<repo>/manifests/<digest or tag>.  An index is resolved to the
 * host platform's manifest.  *ret is written only on success.
 */
int crisp_registry_fetch_manifest(CrispRegistryClient *c, const CrispReference *ref,
				  CrispRegistryImage *ret, CrispError **err);

/*
 * GET /v2/<repo>/blobs/<digest> into dest_dirfd/name.  The content is
 * checked against the descriptor's size and digest while it is written; on
 * any failure nothing is left under name (nor any temporary file).  An
 * existing name is left alone and counts as success.
 */
int crisp_registry_fetch_blob(CrispRegistryClient *c, const CrispReference *ref,
			      const CrispDescriptor *d, int dest_dirfd, const char *name,
			      CrispError **err);

#endif
