/*
 * reference.c - parsing and normalizing image references (see reference.h).
 *
 * A hand-written scanner rather than regexes: each rule of the grammar is a
 * small function that returns the reason it refuses, and the error quotes
 * the reference (escaped, bounded) with that reason.
 */
#include "reference.h"

#include "parse_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <strings.h>

#define OFFICIAL_PREFIX "library/"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
	return is_alnum(c) || c == '_';
}

static bool has_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] >= 'A' && s[i] <= 'Z')
			return true;
	return false;
}

static bool is_hex(const char *s, size_t want, bool any_case)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
		      (any_case && s[n] >= 'A' && s[n] <= 'F')))
			return false;
	return n == want;
}

/* A bare 64-hex ID, or "sha256:"/"sha512:" and hex of the length (any case). */
static bool looks_like_image_id(const char *s)
{
	if (strncmp(s, "sha256:", 7) == 0)
		return is_hex(s + 7, 64, true);
	if (strncmp(s, "sha512:", 7) == 0)
		return is_hex(s + 7, 128, true);
	return is_hex(s, 64, false);
}

/* tag := [\w][\w.-]{0,127} */
static const char *check_tag(const char *t)
{
	size_t n = strlen(t);
	if (n == 0)
		return "the tag after ':' is empty";
	if (n > CRISP_REFERENCE_TAG_MAX)
		return "the tag is longer than 128 characters";
	if (!is_word(t[0]))
		return "a tag must start with a letter, a digit or '_'";
	for (size_t i = 1; i < n; i++)
		if (!is_word(t[i]) && t[i] != '.' && t[i] != '-')
			return "a tag may only contain letters, digits, '_', '.' and '-'";
	return NULL;
}

/* component := [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*, over s[0..n). */
static const char *check_path_component(const char *s, size_t n)
{
	if (n == 0)
		return "the name has an empty path component";
	size_t i = 0;
	for (;;) {
		if (i >= n || !is_lower_alnum(s[i]))
			return "each path component must start and end with a lowercase letter "
			       "or digit";
		while (i < n && is_lower_alnum(s[i]))
			i++;
		if (i == n)
			return NULL;
		/* A separator: '.', '_', "__" or a run of '-'. */
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i++;
			if (i < n && s[i] == '_')
				i++;
		} else if (s[i] == '-') {
			while (i < n && s[i] == '-')
				i++;
		} else {
			return "a path component may only contain lowercase letters, digits and "
			       "the separators '.', '_', '__' and '-'";
		}
	}
}

static const char *check_path(const char *s)
{
	if (has_upper(s, strlen(s)))
		return "the repository name must be lowercase";
	for (;;) {
		const char *slash = strchrnul(s, '/');
		const char *reason = check_path_component(s, (size_t)(slash - s));
		if (reason)
			return reason;
		if (!*slash)
			return NULL;
		s = slash + 1;
	}
}

/* domain-component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9] */
static bool check_domain_name(const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && s[i] != '.') {
			if (!is_alnum(s[i]) && s[i] != '-')
				return false;
			continue;
		}
		if (i == start || s[start] == '-' || s[i - 1] == '-')
			return false;
		start = i + 1;
	}
	return true;
}

static bool check_port(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 5)
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/*
 * Splits "host[:port]" into the host (brackets of an IPv6 address removed)
 * and the port, or returns false when it is not a valid domain.
 */
static bool split_domain(const char *d, char *host, size_t host_size, bool *ret_ipv6)
{
	const char *port = NULL;
	size_t n;

	if (d[0] == '[') {
		const char *close = strchr(d, ']');
		if (!close)
			return false;
		n = (size_t)(close - d - 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return false;
		if (n == 0 || n >= host_size)
			return false;
		memcpy(host, d + 1, n);
		host[n] = '\0';
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return false;
		*ret_ipv6 = true;
	} else {
		const char *colon = strchr(d, ':');
		n = colon ? (size_t)(colon - d) : strlen(d);
		if (colon)
			port = colon + 1;
		if (n == 0 || n >= host_size || !check_domain_name(d, n))
			return false;
		memcpy(host, d, n);
		host[n] = '\0';
		*ret_ipv6 = false;
	}
	return !port || check_port(port);
}

bool crisp_domain_is_loopback(const char *domain)
{
	char host[CRISP_REFERENCE_NAME_MAX + 1];
	bool ipv6 = false;

	if (!domain || strlen(domain) > CRISP_REFERENCE_NAME_MAX ||
	    !split_domain(domain, host, sizeof(host), &ipv6))
		return false;
	if (ipv6) {
		struct in6_addr a6;
		if (inet_pton(AF_INET6, host, &a6) != 1)
			return false;
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		/* ::ffff:127.x.y.z */
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	if (strcasecmp(host, "localhost") == 0)
		return true;
	struct in_addr a4;
	if (inet_pton(AF_INET, host, &a4) != 1)
		return false;
	return (ntohl(a4.s_addr) >> 24) == 127;
}

bool crisp_reference_is_loopback(const CrispReference *ref)
{
	return ref && crisp_domain_is_loopback(ref->domain);
}

/* Sets an error quoting the reference. */
static int refuse(CrispError **err, const char *s, const char *reason)
{
	_cleanup_free_ char *q = imaged_escape(s, IMAGED_QUOTE_MAX);
	return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "invalid image reference \"%s\": %s",
			       q, reason);
}

int crisp_reference_parse(const char *s, CrispReference *ret, CrispError **err)
{
	if (!s || !*s)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "image reference is empty");
	if (strnlen(s, CRISP_REFERENCE_INPUT_MAX + 1) > CRISP_REFERENCE_INPUT_MAX)
		return refuse(err, s, "it is longer than 1024 bytes");

	/* An image ID is not a name: never let one become a pull from the default registry. */
	if (looks_like_image_id(s))
		return refuse(err, s,
			      "it is an image ID, not a name; an image ID can only refer to an "
			      "image already present");

	_cleanup_free_ char *name = xstrdup(s);
	CrispDigest digest = { .algorithm = CRISP_DIGEST_NONE };
	char *at = strchr(name, '@');
	if (at) {
		*at = '\0';
		_cleanup_error_ CrispError *derr = NULL;
		if (crisp_digest_parse(at + 1, &digest, &derr) < 0)
			return refuse(err, s, derr->message);
	}

	const char *tag = NULL;
	char *colon = strrchr(name, ':');
	char *last_slash = strrchr(name, '/');
	if (colon && (!last_slash || colon > last_slash)) {
		*colon = '\0';
		tag = colon + 1;
		const char *reason = check_tag(tag);
		if (reason)
			return refuse(err, s, reason);
	}
	if (!*name)
		return refuse(err, s, "the name is empty");

	/* The domain: the first part, when it looks like a host. */
	const char *domain = CRISP_DEFAULT_REGISTRY;
	const char *remainder = name;
	char *slash = strchr(name, '/');
	if (slash) {
		size_t n = (size_t)(slash - name);
		if (memchr(name, '.', n) || memchr(name, ':', n) ||
		    (n == 9 && memcmp(name, "localhost", 9) == 0) || has_upper(name, n)) {
			*slash = '\0';
			domain = name;
			remainder = slash + 1;
			char host[CRISP_REFERENCE_NAME_MAX + 1];
			bool ipv6;
			if (strlen(domain) > CRISP_REFERENCE_NAME_MAX ||
			    !split_domain(domain, host, sizeof(host), &ipv6))
				return refuse(err, s,
					      "the registry host is not a valid host name, IPv4 "
					      "address or [IPv6] address with an optional port "
					      "(1-65535)");
		}
	}

	const char *reason = check_path(remainder);
	if (reason)
		return refuse(err, s, reason);

	_cleanup_free_ char *path = NULL;
	if (strcmp(domain, CRISP_DEFAULT_REGISTRY) == 0 && !strchr(remainder, '/'))
		path = xasprintf(OFFICIAL_PREFIX "%s", remainder);
	else
		path = xstrdup(remainder);
	if (strlen(domain) + 1 + strlen(path) > CRISP_REFERENCE_NAME_MAX)
		return refuse(err, s, "the repository name is longer than 255 characters");

	if (!tag && !crisp_digest_is_set(&digest))
		tag = "latest";

	*ret = (CrispReference){
		.domain = xstrdup(domain),
		.path = TAKE_PTR(path),
		.tag = tag ? xstrdup(tag) : NULL,
		.digest = digest,
	};
	return 0;
}

void crisp_reference_done(CrispReference *ref)
{
	if (!ref)
		return;
	free(ref->domain);
	free(ref->path);
	free(ref->tag);
	*ref = (CrispReference){ .digest.algorithm = CRISP_DIGEST_NONE };
}

static char *with_tag_digest(const char *name, const CrispReference *ref)
{
	bool has_digest = crisp_digest_is_set(&ref->digest);
	return xasprintf("%s%s%s%s%s", name, ref->tag ? ":" : "", ref->tag ? ref->tag : "",
			 has_digest ? "@" : "", has_digest ? ref->digest.string : "");
}

char *crisp_reference_repository(const CrispReference *ref)
{
	return xasprintf("%s/%s", ref->domain, ref->path);
}

char *crisp_reference_string(const CrispReference *ref)
{
	_cleanup_free_ char *repo = crisp_reference_repository(ref);
	return with_tag_digest(repo, ref);
}

char *crisp_reference_familiar(const CrispReference *ref)
{
	if (strcmp(ref->domain, CRISP_DEFAULT_REGISTRY) != 0)
		return crisp_reference_string(ref);

	const char *name = ref->path;
	size_t plen = strlen(OFFICIAL_PREFIX);
	if (strncmp(name, OFFICIAL_PREFIX, plen) == 0 && !strchr(name + plen, '/'))
		name += plen;
	_cleanup_free_ char *familiar = with_tag_digest(name, ref);

	/*
	 * The short form must read back as the same reference: "foo.test/app"
	 * under the default domain would name another registry, and
	 * "sha256:<hex>" an image ID.  Those keep the domain.
	 */
	_cleanup_free_ char *full = crisp_reference_string(ref);
	CrispReference back;
	if (crisp_reference_parse(familiar, &back, NULL) < 0)
		return TAKE_PTR(full);
	_cleanup_free_ char *again = crisp_reference_string(&back);
	crisp_reference_done(&back);
	return strcmp(again, full) == 0 ? TAKE_PTR(familiar) : TAKE_PTR(full);
}
