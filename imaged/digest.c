/*
 * digest.c - parsing, formatting and verifying content digests.
 */
#include "digest.h"

#include "parse_util.h"

#include <openssl/evp.h>

static const struct {
	CrispDigestAlgorithm algorithm;
	const char *name;
	size_t hex_len;
} algorithms[] = {
	{ CRISP_DIGEST_SHA256, "sha256", 64 },
	{ CRISP_DIGEST_SHA512, "sha512", 128 },
};

static size_t algorithm_index(CrispDigestAlgorithm a)
{
	for (size_t i = 0; i < ELEMENTSOF(algorithms); i++)
		if (algorithms[i].algorithm == a)
			return i;
	return SIZE_MAX;
}

const char *crisp_digest_algorithm_name(CrispDigestAlgorithm a)
{
	size_t i = algorithm_index(a);
	return i == SIZE_MAX ? NULL : algorithms[i].name;
}

static const EVP_MD *algorithm_md(CrispDigestAlgorithm a)
{
	switch (a) {
	case CRISP_DIGEST_SHA256:
		return EVP_sha256();
	case CRISP_DIGEST_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* The reason s is not a valid digest, or NULL; *ret_algorithm set when valid. */
static const char *digest_check(const char *s, CrispDigestAlgorithm *ret_algorithm)
{
	const char *colon = strchr(s, ':');
	if (!colon)
		return "it has no \"<algorithm>:\" prefix";

	size_t name_len = (size_t)(colon - s);
	size_t k = SIZE_MAX;
	for (size_t i = 0; i < ELEMENTSOF(algorithms); i++)
		if (strlen(algorithms[i].name) == name_len &&
		    memcmp(algorithms[i].name, s, name_len) == 0)
			k = i;
	if (k == SIZE_MAX)
		return "the algorithm is not supported (sha256 and sha512 are)";

	const char *hex = colon + 1;
	size_t n = 0;
	bool upper = false;
	for (; hex[n]; n++) {
		char c = hex[n];
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
			continue;
		if (c >= 'A' && c <= 'F') {
			upper = true;
			continue;
		}
		return "the hex part has a character that is not a hex digit";
	}
	if (n != algorithms[k].hex_len)
		return algorithms[k].algorithm == CRISP_DIGEST_SHA256
			       ? "a sha256 digest has exactly 64 hex digits"
			       : "a sha512 digest has exactly 128 hex digits";
	if (upper)
		return "hex digits must be lowercase";
	*ret_algorithm = algorithms[k].algorithm;
	return NULL;
}

int crisp_digest_parse(const char *s, CrispDigest *ret, CrispError **err)
{
	if (!s || !*s)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "digest is empty");

	CrispDigestAlgorithm a = CRISP_DIGEST_NONE;
	const char *reason =
		strlen(s) >= CRISP_DIGEST_STRING_MAX ? "it is too long" : digest_check(s, &a);
	if (reason) {
		_cleanup_free_ char *q = imaged_escape(s, IMAGED_QUOTE_MAX);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "invalid digest \"%s\": %s",
				       q, reason);
	}
	CrispDigest d = { .algorithm = a };
	strcpy(d.string, s);
	*ret = d;
	return 0;
}

const char *crisp_digest_hex(const CrispDigest *d)
{
	const char *colon = strchr(d->string, ':');
	return colon ? colon + 1 : d->string + strlen(d->string);
}

bool crisp_digest_equal(const CrispDigest *a, const CrispDigest *b)
{
	return a->algorithm == b->algorithm && a->algorithm != CRISP_DIGEST_NONE &&
	       strncmp(a->string, b->string, sizeof(a->string)) == 0;
}

int crisp_digest_path_component(const CrispDigest *d, char **ret)
{
	CrispDigestAlgorithm a = CRISP_DIGEST_NONE;
	if (!d || memchr(d->string, '\0', sizeof(d->string)) == NULL ||
	    digest_check(d->string, &a) || a != d->algorithm)
		return -EINVAL;
	*ret = xasprintf("%s/%s", crisp_digest_algorithm_name(a), crisp_digest_hex(d));
	return 0;
}

static void digest_from_bytes(CrispDigestAlgorithm a, const unsigned char *md, unsigned len,
			      CrispDigest *ret)
{
	static const char hex[] = "0123456789abcdef";
	CrispDigest d = { .algorithm = a };
	int n = snprintf(d.string, sizeof(d.string), "%s:", crisp_digest_algorithm_name(a));
	char *o = d.string + n;
	for (unsigned i = 0; i < len; i++) {
		*o++ = hex[md[i] >> 4];
		*o++ = hex[md[i] & 15];
	}
	*o = '\0';
	*ret = d;
}

int crisp_digest_compute(CrispDigestAlgorithm a, const void *data, size_t size, CrispDigest *ret,
			 CrispError **err)
{
	const EVP_MD *md = algorithm_md(a);
	if (!md)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
				       "no such digest algorithm (%d)", (int)a);

	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (EVP_Digest(data ? data : "", size, out, &len, md, NULL) != 1)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "computing a %s digest failed",
				       crisp_digest_algorithm_name(a));
	digest_from_bytes(a, out, len, ret);
	return 0;
}

static int mismatch(const CrispDigest *expected, const CrispDigest *actual, CrispError **err)
{
	return crisp_error_set(err, CRISP_ERR_INVALID, EBADMSG,
			       "content does not match its digest: expected %s, got %s",
			       expected->string, actual->string);
}

int crisp_digest_verify_buffer(const CrispDigest *expected, const void *data, size_t size,
			       CrispError **err)
{
	CrispDigest actual;
	int r = crisp_digest_compute(expected->algorithm, data, size, &actual, err);
	if (r < 0)
		return r;
	if (!crisp_digest_equal(expected, &actual))
		return mismatch(expected, &actual, err);
	return 0;
}

int crisp_digest_verifier_init(CrispDigestVerifier *v, const CrispDigest *expected,
			       int64_t expected_size, CrispError **err)
{
	const EVP_MD *md = algorithm_md(expected->algorithm);
	if (!md)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
				       "verifier: the expected digest is not set");

	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		abort();
	if (EVP_DigestInit_ex(ctx, md, NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "starting a %s digest failed",
				       crisp_digest_algorithm_name(expected->algorithm));
	}
	*v = (CrispDigestVerifier){
		.ctx = ctx,
		.expected = *expected,
		.expected_size = expected_size < 0 ? -1 : expected_size,
	};
	return 0;
}

int crisp_digest_verifier_update(CrispDigestVerifier *v, const void *data, size_t size,
				 CrispError **err)
{
	if (!v->ctx)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
				       "verifier: update after final or before init");
	if (size > UINT64_MAX - v->n_bytes ||
	    (v->expected_size >= 0 && v->n_bytes + size > (uint64_t)v->expected_size))
		return crisp_error_set(err, CRISP_ERR_INVALID, EFBIG,
				       "content of %s is longer than the %lld bytes its descriptor "
				       "states",
				       v->expected.string, (long long)v->expected_size);
	if (size > 0 && EVP_DigestUpdate(v->ctx, data, size) != 1)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "hashing content failed");
	v->n_bytes += size;
	return 0;
}

int crisp_digest_verifier_final(CrispDigestVerifier *v, CrispDigest *ret, CrispError **err)
{
	if (!v->ctx)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
				       "verifier: final called twice or before init");

	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int ok = EVP_DigestFinal_ex(v->ctx, out, &len);
	EVP_MD_CTX_free(v->ctx);
	v->ctx = NULL;
	if (ok != 1)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "finishing a digest failed");
	digest_from_bytes(v->expected.algorithm, out, len, ret);
	return 0;
}

int crisp_digest_verifier_check(CrispDigestVerifier *v, CrispError **err)
{
	CrispDigest actual;
	int r = crisp_digest_verifier_final(v, &actual, err);
	if (r < 0)
		return r;
	if (v->expected_size >= 0 && v->n_bytes != (uint64_t)v->expected_size)
		return crisp_error_set(
			err, CRISP_ERR_INVALID, EBADMSG,
			"content of %s is %llu bytes, but its descriptor states %lld",
			v->expected.string, (unsigned long long)v->n_bytes,
			(long long)v->expected_size);
	if (!crisp_digest_equal(&v->expected, &actual))
		return mismatch(&v->expected, &actual, err);
	return 0;
}

void crisp_digest_verifier_done(CrispDigestVerifier *v)
{
	if (!v)
		return;
	EVP_MD_CTX_free(v->ctx);
	v->ctx = NULL;
}
