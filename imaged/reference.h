/*
 * reference.h - image references as the kubelet and crictl pass them.
 *
 * Grammar (distribution/reference):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path
 *   domain    := host [ ":" port ]      host: DNS name, IPv4 or "[" IPv6 "]"
 *   path      := component [ "/" component ]*
 *   component := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" 64 lowercase hex | "sha512:" 128 lowercase hex
 *
 * Normalization: the first "/"-separated part is the domain when it has a
 * '.' or a ':', is "localhost", or has an uppercase letter; otherwise the
 * domain is CRISP_DEFAULT_REGISTRY.  A single-component path under that
 * domain gets "library/" in front.  With neither tag nor digest the tag is
 * "latest"; with both, both are kept and the digest is what is pulled.
 * "domain/path" may be at most 255 bytes.
 *
 * Refused besides grammar errors: an uppercase path, and what looks like
 * an image ID (64 hex digits, "sha256:" + 64 or "sha512:" + 128 hex digits
 * of either case): a pull must not turn an ID into a request to the default
 * registry.
 */
#ifndef CRISP_IMAGED_REFERENCE_H
#define CRISP_IMAGED_REFERENCE_H

#include "digest.h"
#include "error.h"

#include <stdbool.h>

/* The domain normalization puts in front of a name without one. */
#define CRISP_DEFAULT_REGISTRY "docker.io"

/* Longest "domain/path", and longest reference text considered at all. */
#define CRISP_REFERENCE_NAME_MAX 255
#define CRISP_REFERENCE_TAG_MAX 128
#define CRISP_REFERENCE_INPUT_MAX 1024

typedef struct CrispReference {
	char *domain;	    /* "registry.test", "127.0.0.1:5000", "[::1]:5000", never NULL */
	char *path;	    /* "library/busybox", never NULL */
	char *tag;	    /* NULL only when the reference has a digest and no tag */
	CrispDigest digest; /* algorithm CRISP_DIGEST_NONE when absent */
} CrispReference;

/* Parses and normalizes s; *ret is written only on success.  Errors are CRISP_ERR_INVALID. */
int crisp_reference_parse(const char *s, CrispReference *ret, CrispError **err);
void crisp_reference_done(CrispReference *ref);

/* "<default>/library/busybox:latest", "registry.test/a@sha256:...", tag and digest both when set. */
char *crisp_reference_string(const CrispReference *ref);
/* "<default>/library/busybox": the name, without tag or digest. */
char *crisp_reference_repository(const CrispReference *ref);
/*
 * The short form people type: "busybox:latest", "user/app:1", "registry.test/a:1".
 * It always parses back to ref; where a short form would not, the full one is returned.
 */
char *crisp_reference_familiar(const CrispReference *ref);
/* True when the domain is localhost, in 127.0.0.0/8 or [::1], with or without a port. */
bool crisp_reference_is_loopback(const CrispReference *ref);
/* The same test for a domain ("host" or "host:port") on its own, e.g. from the config. */
bool crisp_domain_is_loopback(const char *domain);

#endif
