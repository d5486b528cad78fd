/*
 * platform.c - the host's platform and choosing it from an image index.
 *
 * Names follow the OCI image-index spec (GOOS/GOARCH values) with the
 * aliases people and older tools use.  A variant is an ordered level for
 * arm ("v5" < "v6" < "v7" < "v8") and amd64 ("v1" < "v2" < "v3" < "v4"),
 * and a host runs every level up to its own; anything else must match
 * exactly.  See manifest.h for the contract.
 */
#include "manifest.h"

#include <stdio.h>
#include <strings.h>

void crisp_platform_host(const char **ret_os, const char **ret_arch, const char **ret_variant)
{
	*ret_os = "linux";
#if defined(__x86_64__)
	*ret_arch = "amd64";
	*ret_variant = NULL;
#elif defined(__aarch64__)
	*ret_arch = "arm64";
	*ret_variant = "v8";
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7
	*ret_arch = "arm";
	*ret_variant = "v7";
#elif defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH == 6
	*ret_arch = "arm";
	*ret_variant = "v6";
#elif defined(__arm__)
	*ret_arch = "arm";
	*ret_variant = "v5";
#elif defined(__i386__)
	*ret_arch = "386";
	*ret_variant = NULL;
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
	*ret_arch = "ppc64le";
	*ret_variant = NULL;
#elif defined(__s390x__)
	*ret_arch = "s390x";
	*ret_variant = NULL;
#elif defined(__riscv) && __riscv_xlen == 64
	*ret_arch = "riscv64";
	*ret_variant = NULL;
#else
#error "unknown host architecture: add it to crisp_platform_host()"
#endif
}

typedef struct Normalized {
	char arch[CRISP_PLATFORM_FIELD_MAX + 1];
	char variant[CRISP_PLATFORM_FIELD_MAX + 1]; /* "" when none */
	int level; /* ordered variant level for arm and amd64, else -1 */
} Normalized;

static void copy_lower(char *dst, size_t size, const char *src)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < size; i++)
		dst[i] = (char)((src[i] >= 'A' && src[i] <= 'Z') ? src[i] + 32 : src[i]);
	dst[i] = '\0';
}

/* "v7" or "7" -> 7; -1 for anything else. */
static int variant_number(const char *v)
{
	if (v[0] == 'v')
		v++;
	if (!(v[0] >= '1' && v[0] <= '9') || v[1])
		return -1;
	return v[0] - '0';
}

static void normalize(const char *arch, const char *variant, Normalized *n)
{
	copy_lower(n->arch, sizeof(n->arch), arch);
	copy_lower(n->variant, sizeof(n->variant), variant);
	n->level = -1;

	if (!strcmp(n->arch, "x86_64") || !strcmp(n->arch, "x86-64"))
		strcpy(n->arch, "amd64");
	else if (!strcmp(n->arch, "aarch64"))
		strcpy(n->arch, "arm64");
	else if (!strcmp(n->arch, "i386") || !strcmp(n->arch, "i686"))
		strcpy(n->arch, "386");
	else if (!strcmp(n->arch, "armhf")) {
		strcpy(n->arch, "arm");
		if (!n->variant[0])
			strcpy(n->variant, "v7");
	} else if (!strcmp(n->arch, "armel")) {
		strcpy(n->arch, "arm");
		if (!n->variant[0])
			strcpy(n->variant, "v6");
	}

	if (!strcmp(n->arch, "arm64")) {
		if (!n->variant[0] || !strcmp(n->variant, "8"))
			strcpy(n->variant, "v8");
	} else if (!strcmp(n->arch, "arm")) {
		if (!n->variant[0])
			strcpy(n->variant, "v7");
		int k = variant_number(n->variant);
		if (k >= 5 && k <= 8) {
			snprintf(n->variant, sizeof(n->variant), "v%d", k);
			n->level = k;
		}
	} else if (!strcmp(n->arch, "amd64")) {
		int k = n->variant[0] ? variant_number(n->variant) : 1;
		if (k >= 1 && k <= 4) {
			/* v1 is the baseline, written without a variant. */
			if (k == 1)
				n->variant[0] = '\0';
			else
				snprintf(n->variant, sizeof(n->variant), "v%d", k);
			n->level = k;
		}
	}
}

/* 0 for an exact match, a higher number for a worse one, -1 for none. */
static int match_rank(const Normalized *host, const Normalized *cand)
{
	if (strcmp(host->arch, cand->arch) != 0)
		return -1;
	if (strcmp(host->variant, cand->variant) == 0)
		return 0;
	if (host->level >= 0 && cand->level >= 0 && cand->level < host->level)
		return host->level - cand->level;
	return -1;
}

static bool is_image_manifest_type(const char *media_type)
{
	CrispManifestKind k = crisp_manifest_kind_from_media_type(media_type);
	return k == CRISP_MANIFEST_OCI_MANIFEST || k == CRISP_MANIFEST_DOCKER_MANIFEST;
}

int crisp_index_choose_platform(const CrispIndex *ix, const char *os, const char *arch,
				const char *variant, const CrispDescriptor **ret, CrispError **err)
{
	if (!os || !arch)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EINVAL,
				       "choosing from an index needs an os and an architecture");

	Normalized host;
	normalize(arch, variant, &host);

	const CrispDescriptor *best = NULL;
	int best_rank = -1;
	for (size_t i = 0; i < ix->n_manifests; i++) {
		const CrispDescriptor *d = &ix->manifests[i];
		if (!d->has_platform || !is_image_manifest_type(d->media_type) ||
		    strcasecmp(d->platform.os, os) != 0)
			continue;
		Normalized cand;
		normalize(d->platform.architecture, d->platform.variant, &cand);
		int rank = match_rank(&host, &cand);
		if (rank >= 0 && (!best || rank < best_rank)) {
			best = d;
			best_rank = rank;
		}
	}
	if (best) {
		*ret = best;
		return 0;
	}

	/* Say what there is, so the person can pick another image or tag. */
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *list = xmalloc(cap);
	list[0] = '\0';
	size_t shown = 0;
	for (size_t i = 0; i < ix->n_manifests && shown < 16; i++) {
		const CrispDescriptor *d = &ix->manifests[i];
		if (!d->has_platform || !is_image_manifest_type(d->media_type))
			continue;
		_cleanup_free_ char *p = crisp_platform_string(&d->platform);
		int n = snprintf(list + len, cap - len, "%s%s", shown ? ", " : "", p);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
		shown++;
	}
	return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
			       "the image index has no manifest for %s/%s%s%s; it has %s", os,
			       host.arch, host.variant[0] ? "/" : "", host.variant,
			       shown ? list : "no platform-specific image manifests");
}
