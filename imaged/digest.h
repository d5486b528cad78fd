/*
 * digest.h - content digests ("sha256:<hex>") and a streaming verifier.
 *
 * A digest from a manifest, a registry header or a CRI request is untrusted
 * text until crisp_digest_parse() accepts it.  Only a CrispDigest, which
 * that function alone fills, can become a path component, so a string like
 * "sha256:../../etc" never reaches the store.  Accepted: sha256 with exactly
 * 64 and sha512 with exactly 128 lowercase hex digits (the OCI image spec's
 * registered algorithms; uppercase hex is refused, as the spec requires).
 *
 * The verifier hashes content as it streams in (libcrypto EVP) and checks
 * both the digest and, when known, the size a descriptor promised: content
 * longer than promised is refused at the update that crosses the size, so a
 * hostile registry cannot stream without end into the store.
 */
#ifndef CRISP_IMAGED_DIGEST_H
#define CRISP_IMAGED_DIGEST_H

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum CrispDigestAlgorithm {
	CRISP_DIGEST_NONE = 0, /* not set; never the result of a successful parse */
	CRISP_DIGEST_SHA256,
	CRISP_DIGEST_SHA512,
} CrispDigestAlgorithm;

/* "sha512:" and 128 hex digits, and the NUL. */
#define CRISP_DIGEST_STRING_MAX (7 + 128 + 1)

/* A validated digest.  Plain data: copy it by assignment, nothing to free. */
typedef struct CrispDigest {
	CrispDigestAlgorithm algorithm;
	char string[CRISP_DIGEST_STRING_MAX]; /* "sha256:<hex>" */
} CrispDigest;

/*
 * Parses "<algorithm>:<hex>".  On failure the error (CRISP_ERR_INVALID)
 * quotes the input and says what is wrong; *ret is written only on success.
 */
int crisp_digest_parse(const char *s, CrispDigest *ret, CrispError **err);

static inline bool crisp_digest_is_set(const CrispDigest *d)
{
	return d && d->algorithm != CRISP_DIGEST_NONE;
}
/* "sha256" or "sha512"; NULL for CRISP_DIGEST_NONE. */
const char *crisp_digest_algorithm_name(CrispDigestAlgorithm a);
/* The hex part of d's string. */
const char *crisp_digest_hex(const CrispDigest *d);
bool crisp_digest_equal(const CrispDigest *a, const CrispDigest *b);

/*
 * "sha256/<hex>" (malloc'd), for a file under the content store.  d is
 * checked again, so a CrispDigest filled by hand cannot smuggle a path in:
 * -EINVAL when it is not a valid digest.
 */
int crisp_digest_path_component(const CrispDigest *d, char **ret);

/* The digest of a buffer, computed with algorithm a. */
int crisp_digest_compute(CrispDigestAlgorithm a, const void *data, size_t size, CrispDigest *ret,
			 CrispError **err);
/* Checks that data hashes to expected (e.g. a manifest fetched by digest). */
int crisp_digest_verify_buffer(const CrispDigest *expected, const void *data, size_t size,
			       CrispError **err);

struct evp_md_ctx_st;

typedef struct CrispDigestVerifier {
	struct evp_md_ctx_st *ctx;
	CrispDigest expected;
	int64_t expected_size; /* -1 when unknown */
	uint64_t n_bytes;
} CrispDigestVerifier;

/* Zero-initialised, a verifier is safe to _done. */
#define CRISP_DIGEST_VERIFIER_INIT                                                                 \
	{                                                                                          \
		.ctx = NULL, .expected_size = -1                                                   \
	}

/*
 * Starts verifying content that must hash to expected and, when
 * expected_size >= 0, be exactly that many bytes.
 */
int crisp_digest_verifier_init(CrispDigestVerifier *v, const CrispDigest *expected,
			       int64_t expected_size, CrispError **err);
/* Hashes the next chunk; refuses content that grows past the expected size. */
int crisp_digest_verifier_update(CrispDigestVerifier *v, const void *data, size_t size,
				 CrispError **err);
/* Finishes the hash and returns the digest of what was seen. */
int crisp_digest_verifier_final(CrispDigestVerifier *v, CrispDigest *ret, CrispError **err);
/*
 * Final plus the checks: the size (when expected) and an exact comparison
 * with the expected digest.  A mismatch is CRISP_ERR_INVALID naming both.
 */
int crisp_digest_verifier_check(CrispDigestVerifier *v, CrispError **err);
void crisp_digest_verifier_done(CrispDigestVerifier *v);

#endif
