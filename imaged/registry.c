/*
 * registry.c - the OCI distribution API v2 client (see registry.h).
 */
#include "registry.h"

#include <curl/curl.h>
#include <pthread.h>
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#define ERROR_BODY_MAX 512
#define streq(a, b) (strcmp((a), (b)) == 0)
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define TOKEN_MAX (64 * 1024)
#define HEADER_VALUE_MAX 4096

struct CrispRegistryClient {
	const CrispConfig *config;
	char *username, *password, *auth, *identity_token, *registry_token;
	CURL *curl;	      /* one handle, so connections are reused */
	char *authorization;  /* "Authorization: ..." for auth_key */
	char *auth_key;	      /* "<base>|<repo>" */
	char **http_fallback; /* loopback hosts found not to speak TLS */
};

typedef struct Endpoint {
	char *host;	    /* "host[:port]", for certs and messages */
	char *base;	    /* "https://host[:port]" */
	bool may_fall_back; /* https -> http when the server does not speak TLS */
} Endpoint;

static void endpoint_done(Endpoint *e)
{
	free(e->host);
	free(e->base);
}

typedef struct Response {
	long status;
	char *content_type;
	char *docker_digest;
	char *www_authenticate;
	char error_body[ERROR_BODY_MAX + 1];
	size_t error_len;
	/* where a 200 body goes */
	char *buf;
	size_t len;
	size_t limit;
	const char *what; /* for messages: "manifest ...", "blob sha256:..." */
	int fd;		  /* >= 0: body goes to this file */
	CrispDigestVerifier *verifier;
	CrispError *error; /* from a callback */
	CURL *curl;
	/* progress watch */
	int64_t timeout_s;
	curl_off_t last_now;
	struct timespec last_progress;
	bool stalled;
} Response;

static void response_clear_headers(Response *r)
{
	free(r->content_type);
	free(r->docker_digest);
	free(r->www_authenticate);
	r->content_type = r->docker_digest = r->www_authenticate = NULL;
}

static void response_done(Response *r)
{
	response_clear_headers(r);
	free(r->buf);
	r->buf = NULL;
	crisp_error_free(r->error);
	r->error = NULL;
}

static char *strdup_safe_header(const char *s)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p < ' ' && *p != '\t')
			return NULL;
	return xstrdup(s);
}

static int set_string(char **dst, const char *s)
{
	free(*dst);
	*dst = (s && *s) ? xstrdup(s) : NULL;
	return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init_once(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int crisp_registry_client_new(const CrispConfig *config, const CrispRegistryAuth *auth,
			      CrispRegistryClient **ret, CrispError **err)
{
	/* Clients are made on worker threads; libcurl's global init must run once. */
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_result != CURLE_OK)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO,
				       "cannot initialise libcurl: %s",
				       curl_easy_strerror(curl_init_result));
	if (auth && auth->registry_token) {
		_cleanup_free_ char *t = strdup_safe_header(auth->registry_token);
		if (!t)
			return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
					       "the registry token has control characters");
	}
	CrispRegistryClient *c = xcalloc(1, sizeof(*c));
	c->config = config;
	if (auth) {
		set_string(&c->username, auth->username);
		set_string(&c->password, auth->password);
		set_string(&c->auth, auth->auth);
		set_string(&c->identity_token, auth->identity_token);
		set_string(&c->registry_token, auth->registry_token);
	}
	c->curl = curl_easy_init();
	if (!c->curl) {
		crisp_registry_client_free(c);
		return crisp_error_set(err, CRISP_ERR_INTERNAL, ENOMEM,
				       "cannot create a curl handle");
	}
	*ret = c;
	return 0;
}

CrispRegistryClient *crisp_registry_client_free(CrispRegistryClient *c)
{
	if (!c)
		return NULL;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->username);
	free(c->password);
	free(c->auth);
	free(c->identity_token);
	free(c->registry_token);
	free(c->authorization);
	free(c->auth_key);
	strv_free(c->http_fallback);
	free(c);
	return NULL;
}

void crisp_registry_image_done(CrispRegistryImage *img)
{
	crisp_manifest_done(&img->manifest);
	crisp_platform_done(&img->platform);
}

/* --- endpoints --- */

static bool host_is_insecure(const CrispConfig *config, const char *host)
{
	for (char **p = config->insecure_registries; p && *p; p++)
		if (streq(*p, host))
			return true;
	const CrispRegistryHost *h = crisp_config_find_registry_host(config, host);
	return h && h->insecure;
}

static bool strv_contains(char **v, const char *s)
{
	for (char **p = v; p && *p; p++)
		if (streq(*p, s))
			return true;
	return false;
}

static void endpoint_for_host(CrispRegistryClient *c, const char *host, Endpoint *ret)
{
	ret->host = xstrdup(host);
	if (host_is_insecure(c->config, host) || strv_contains(c->http_fallback, host)) {
		ret->base = xasprintf("http://%s", host);
		ret->may_fall_back = false;
	} else {
		ret->base = xasprintf("https://%s", host);
		ret->may_fall_back = crisp_domain_is_loopback(host);
	}
}

/* A mirror from the config: "https://host[:port][/prefix]" or "http://...". */
static void endpoint_for_mirror(CrispRegistryClient *c, const char *mirror, Endpoint *ret)
{
	const char *rest = strstr(mirror, "://");
	if (!rest) {
		endpoint_for_host(c, mirror, ret);
		return;
	}
	rest += 3;
	size_t n = strcspn(rest, "/");
	ret->host = xstrndup(rest, n);
	ret->base = xstrdup(mirror);
	size_t l = strlen(ret->base);
	while (l > 0 && ret->base[l - 1] == '/')
		ret->base[--l] = 0;
	ret->may_fall_back = false;
}

/* The endpoints for ref, mirrors first.  Returns how many. */
static size_t endpoints_for(CrispRegistryClient *c, const CrispReference *ref, Endpoint **ret)
{
	const CrispRegistryHost *h = crisp_config_find_registry_host(c->config, ref->domain);
	size_t n_mirrors = h ? strv_length(h->mirrors) : 0;
	Endpoint *e = xcalloc(n_mirrors + 1, sizeof(*e));
	for (size_t i = 0; i < n_mirrors; i++)
		endpoint_for_mirror(c, h->mirrors[i], &e[i]);
	endpoint_for_host(c, ref->domain, &e[n_mirrors]);
	*ret = e;
	return n_mirrors + 1;
}

static void endpoints_free(Endpoint *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		endpoint_done(&e[i]);
	free(e);
}

/* --- curl callbacks --- */

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	Response *r = userdata;
	size_t n = size * nmemb;
	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after a redirect or 100): forget the last one's headers. */
		response_clear_headers(r);
		return n;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon || n > HEADER_VALUE_MAX)
		return n;
	size_t klen = colon - data;
	const char *v = colon + 1;
	const char *end = data + n;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	_cleanup_free_ char *value = xstrndup(v, end - v);
	char **slot = NULL;
	if (klen == 12 && strncasecmp(data, "Content-Type", 12) == 0)
		slot = &r->content_type;
	else if (klen == 21 && strncasecmp(data, "Docker-Content-Digest", 21) == 0)
		slot = &r->docker_digest;
	else if (klen == 16 && strncasecmp(data, "WWW-Authenticate", 16) == 0)
		slot = &r->www_authenticate;
	if (slot) {
		free(*slot);
		*slot = TAKE_PTR(value);
	}
	return n;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userdata)
{
	Response *r = userdata;
	size_t n = size * nmemb;
	long status = 0;
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		/* Keep the start of an error body for the message. */
		size_t k = MIN(n, ERROR_BODY_MAX - r->error_len);
		memcpy(r->error_body + r->error_len, data, k);
		r->error_len += k;
		r->error_body[r->error_len] = 0;
		return n;
	}
	if (r->fd >= 0) {
		if (crisp_digest_verifier_update(r->verifier, data, n, &r->error) < 0)
			return 0;
		for (size_t done = 0; done < n;) {
			ssize_t w = write(r->fd, data + done, n - done);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				crisp_error_set_errno(&r->error, CRISP_ERR_INTERNAL, errno,
						      "writing %s", r->what);
				return 0;
			}
			done += w;
		}
		return n;
	}
	if (n > r->limit - r->len) {
		crisp_error_set(&r->error, CRISP_ERR_RESOURCE_EXHAUSTED, EFBIG,
				"%s is larger than the limit of %zu bytes", r->what, r->limit);
		return 0;
	}
	r->buf = xrealloc(r->buf, r->len + n + 1);
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = 0;
	return n;
}

/*
 * LOW_SPEED_TIME averages over a window of several seconds, so a registry
 * that sends a few bytes and then stalls is caught only after up to twice
 * the timeout.  This callback (run at least once a second) ends the transfer
 * when no byte came for the whole timeout.
 */
static int xferinfo_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	Response *r = userdata;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (dlnow != r->last_now || r->last_progress.tv_sec == 0) {
		r->last_now = dlnow;
		r->last_progress = now;
		return 0;
	}
	int64_t ms = (int64_t)(now.tv_sec - r->last_progress.tv_sec) * 1000 +
		     (now.tv_nsec - r->last_progress.tv_nsec) / 1000000;
	if (r->timeout_s > 0 && ms >= r->timeout_s * 1000) {
		r->stalled = true;
		return 1;
	}
	return 0;
}

/* --- one request --- */

/*
 * True when host may name a folder under registry_certs_dir.  A bearer realm
 * comes from a registry's answer, so its host is untrusted text: "..", a
 * user part or a slash must not pick another folder's certificates.
 */
static bool host_is_cert_dir_name(const char *host)
{
	if (!*host || host[0] == '.' || strstr(host, ".."))
		return false;
	for (const char *p = host; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr(".-:[]", *p))
			return false;
	return true;
}

static void setup_tls(CrispRegistryClient *c, const Endpoint *e)
{
	const char *dir = c->config->registry_certs_dir;
	if (!dir || !*dir || !host_is_cert_dir_name(e->host))
		return;
	/*
	 * CAINFO names the host's CA; CAPATH keeps its default (Debian's
	 * /etc/ssl/certs), so the system CAs are still trusted too.
	 */
	_cleanup_free_ char *ca = xasprintf("%s/%s/ca.crt", dir, e->host);
	_cleanup_free_ char *cert = xasprintf("%s/%s/client.cert", dir, e->host);
	_cleanup_free_ char *key = xasprintf("%s/%s/client.key", dir, e->host);
	if (access(ca, R_OK) == 0)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, ca);
	if (access(cert, R_OK) == 0 && access(key, R_OK) == 0) {
		curl_easy_setopt(c->curl, CURLOPT_SSLCERT, cert);
		curl_easy_setopt(c->curl, CURLOPT_SSLKEY, key);
	}
}

static int curl_failure(CrispRegistryClient *c, const Endpoint *e, CURLcode rc, const char *errbuf,
			const char *what, size_t r_limit, CrispError **err)
{
	const char *detail = *errbuf ? errbuf : curl_easy_strerror(rc);
	switch (rc) {
	case CURLE_ABORTED_BY_CALLBACK:
	case CURLE_OPERATION_TIMEDOUT:
		if (rc == CURLE_ABORTED_BY_CALLBACK || strstr(detail, "too slow"))
			return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ETIMEDOUT,
					       "%s: no data from %s for %" PRIi64 " s", what,
					       e->host, c->config->pull_progress_timeout);
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ETIMEDOUT, "%s: %s: %s", what,
				       e->host, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EPROTO,
				       "%s: TLS error talking to %s: %s", what, e->host, detail);
	case CURLE_PARTIAL_FILE:
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EIO,
				       "%s: download from %s was cut short: %s", what, e->host,
				       detail);
	case CURLE_FILESIZE_EXCEEDED:
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, EFBIG,
				       "%s from %s is larger than the limit of %zu bytes", what,
				       e->host, r_limit);
	default:
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EIO, "%s: %s: %s", what, e->host,
				       detail);
	}
}

/*
 * GET url (absolute), or POST form (application/x-www-form-urlencoded) to it
 * when form is set.  authorization: a whole "Authorization: ..." header or
 * NULL.  Returns the HTTP status, or a negative errno with *err set.
 */
static int do_request(CrispRegistryClient *c, const Endpoint *e, const char *url,
		      const char *accept, const char *authorization, const char *form, Response *r,
		      CrispError **err)
{
	CURL *h = c->curl;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;

	curl_easy_reset(h);
	r->curl = h;
	r->status = 0;
	r->error_len = 0;
	r->error_body[0] = 0;
	response_clear_headers(r);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	/*
	 * Blob downloads are often redirected to storage elsewhere.  Credentials
	 * must not follow to another host: with UNRESTRICTED_AUTH off, libcurl
	 * (since 7.58, CVE-2018-1000007; Debian's is 7.88) drops a custom
	 * Authorization header, and the basic-auth user/password, when a redirect
	 * changes host (since 7.83 also port or scheme).
	 */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	if (c->config->pull_progress_timeout > 0) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)c->config->pull_progress_timeout);
		r->timeout_s = c->config->pull_progress_timeout;
		r->last_now = 0;
		r->last_progress = (struct timespec){ 0 };
		r->stalled = false;
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	curl_easy_setopt(h, CURLOPT_USERAGENT, "crisp-imaged/0.1");
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	if (r->fd < 0 && r->limit > 0)
		curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->limit);
	/* HTTP_PROXY/HTTPS_PROXY/NO_PROXY from the environment: libcurl's default. */
	setup_tls(c, e);
	if (accept) {
		_cleanup_free_ char *a = xasprintf("Accept: %s", accept);
		headers = curl_slist_append(headers, a);
	}
	if (authorization)
		headers = curl_slist_append(headers, authorization);
	if (headers)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	if (form)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, form); /* libcurl sets the form type */

	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	/* The handle keeps pointers to these: unset them before they go away. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(headers);
	if (rc != CURLE_OK) {
		if (r->error) {
			crisp_error_move(err, &r->error);
			return -EIO;
		}
		return curl_failure(c, e, rc, errbuf, r->what, r->limit, err);
	}
	return (int)r->status;
}

/* --- auth --- */

/* Finds key="value" (or key=value) in a challenge's parameters. */
static char *challenge_param(const char *params, const char *key)
{
	size_t klen = strlen(key);
	const char *p = params;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		const char *k = p;
		while (*p && *p != '=' && *p != ',')
			p++;
		if (*p != '=')
			continue;
		size_t this_len = p - k;
		p++;
		char *value;
		if (*p == '"') {
			const char *v = ++p;
			while (*p && *p != '"')
				p++;
			value = xstrndup(v, p - v);
			if (*p)
				p++;
		} else {
			const char *v = p;
			while (*p && *p != ',')
				p++;
			value = xstrndup(v, p - v);
		}
		if (this_len == klen && strncasecmp(k, key, klen) == 0)
			return value;
		free(value);
	}
	return NULL;
}

static char *url_escape(CURL *h, const char *s)
{
	char *e = curl_easy_escape(h, s, 0);
	char *r = xstrdup(e ? e : "");
	curl_free(e);
	return r;
}

static bool have_basic(const CrispRegistryClient *c)
{
	return c->username || c->auth;
}

static char *basic_header(const CrispRegistryClient *c, CrispError **err)
{
	if (c->auth) {
		for (const char *p = c->auth; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '+' && *p != '/' && *p != '=') {
				crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
						"the auth credential is not base64");
				return NULL;
			}
		return xasprintf("Authorization: Basic %s", c->auth);
	}
	_cleanup_free_ char *plain =
		xasprintf("%s:%s", c->username, c->password ? c->password : "");
	size_t n = strlen(plain);
	_cleanup_free_ unsigned char *b64 = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock(b64, (const unsigned char *)plain, (int)n);
	explicit_bzero(plain, n);
	return xasprintf("Authorization: Basic %s", (char *)b64);
}

static int fetch_token(CrispRegistryClient *c, const Endpoint *e, const char *challenge,
		       const char *repo, char **ret, CrispError **err)
{
	_cleanup_free_ char *realm = challenge_param(challenge, "realm");
	_cleanup_free_ char *service = challenge_param(challenge, "service");
	_cleanup_free_ char *scope = challenge_param(challenge, "scope");
	if (!realm || (strncmp(realm, "https://", 8) != 0 && strncmp(realm, "http://", 7) != 0))
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EPROTO,
				       "%s asks for a bearer token without a usable realm",
				       e->host);
	if (!scope)
		scope = xasprintf("repository:%s:pull", repo);
	_cleanup_free_ char *url = xstrdup(realm);
	char sep = strchr(url, '?') ? '&' : '?';
	if (service) {
		_cleanup_free_ char *s = url_escape(c->curl, service);
		char *u = xasprintf("%s%cservice=%s", url, sep, s);
		free(url);
		url = u;
		sep = '&';
	}
	_cleanup_free_ char *sc = url_escape(c->curl, scope);
	char *u = xasprintf("%s%cscope=%s", url, sep, sc);
	free(url);
	url = u;

	/* The realm host, for TLS settings and messages. */
	Endpoint realm_ep = { 0 };
	endpoint_for_mirror(c, realm, &realm_ep);
	Response r = { .fd = -1, .limit = TOKEN_MAX, .what = "token request" };
	_cleanup_free_ char *basic = NULL, *form = NULL;
	if (c->identity_token) {
		/*
		 * An identity token is an OAuth2 refresh token (what `docker login`
		 * stores for some registries): POSTed to the realm, it buys an
		 * access token for the scope, as the distribution token spec says.
		 */
		_cleanup_free_ char *rt = url_escape(c->curl, c->identity_token);
		_cleanup_free_ char *sv = url_escape(c->curl, service ? service : "");
		form = xasprintf("grant_type=refresh_token&client_id=crisp&refresh_token=%s"
				 "&service=%s&scope=%s",
				 rt, sv, sc);
		explicit_bzero(rt, strlen(rt));
		free(url);
		url = xstrdup(realm);
	} else if (have_basic(c)) {
		basic = basic_header(c, err);
		if (!basic) {
			endpoint_done(&realm_ep);
			return -EINVAL;
		}
	}
	int status = do_request(c, &realm_ep, url, NULL, basic, form, &r, err);
	if (basic)
		explicit_bzero(basic, strlen(basic));
	if (form)
		explicit_bzero(form, strlen(form));
	int ret_code = 0;
	if (status < 0) {
		ret_code = status;
	} else if (status == 401 || status == 403) {
		ret_code = crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EACCES,
					   "authentication required: %s refused %s (HTTP %d)",
					   realm_ep.host,
					   c->identity_token ? "the identity token"
					   : have_basic(c)   ? "the credentials"
							     : "an anonymous token",
					   status);
	} else if (status != 200) {
		ret_code = crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EPROTO,
					   "token request to %s: HTTP %d", realm_ep.host, status);
	} else {
		json_error_t jerr;
		json_t *j = r.buf ? json_loadb(r.buf, r.len, 0, &jerr) : NULL;
		const char *tok = NULL;
		if (json_is_object(j)) {
			tok = json_string_value(json_object_get(j, "token"));
			if (!tok || !*tok)
				tok = json_string_value(json_object_get(j, "access_token"));
		}
		char *t = tok && *tok ? strdup_safe_header(tok) : NULL;
		if (!t)
			ret_code = crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EPROTO,
						   "token from %s: no usable token in the answer",
						   realm_ep.host);
		else
			*ret = t;
		json_decref(j);
	}
	response_done(&r);
	endpoint_done(&realm_ep);
	return ret_code;
}

/* Answers a 401's challenge: sets c->authorization for key. */
static int authenticate(CrispRegistryClient *c, const Endpoint *e, const char *repo,
			const char *key, const char *challenge, CrispError **err)
{
	if (!challenge)
		return crisp_error_set(
			err, CRISP_ERR_PERMISSION_DENIED, EACCES,
			"authentication required by %s (HTTP 401 without a challenge)", e->host);
	char *authz = NULL;
	if (strncasecmp(challenge, "Basic", 5) == 0) {
		if (!have_basic(c))
			return crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EACCES,
					       "authentication required by %s and no credentials "
					       "were given",
					       e->host);
		authz = basic_header(c, err);
		if (!authz)
			return -EINVAL;
	} else if (strncasecmp(challenge, "Bearer", 6) == 0) {
		_cleanup_free_ char *token = NULL;
		int r = fetch_token(c, e, challenge + 6, repo, &token, err);
		if (r < 0)
			return r;
		authz = xasprintf("Authorization: Bearer %s", token);
	} else {
		return crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EACCES,
				       "authentication required by %s with an unsupported "
				       "scheme",
				       e->host);
	}
	free(c->authorization);
	c->authorization = authz;
	free(c->auth_key);
	c->auth_key = xstrdup(key);
	return 0;
}

static const char *status_text(const Response *r)
{
	return r->error_len ? r->error_body : "";
}

/*
 * GET <base>/v2/<repo>/<path>, answering one 401 challenge.  Returns 0 on a
 * 200, else a negative errno with *err set.
 */
static int registry_get(CrispRegistryClient *c, Endpoint *e, const char *repo, const char *path,
			const char *accept, Response *r, CrispError **err)
{
	for (int attempt = 0;; attempt++) {
		_cleanup_free_ char *url = xasprintf("%s/v2/%s/%s", e->base, repo, path);
		_cleanup_free_ char *key = xasprintf("%s|%s", e->base, repo);
		_cleanup_free_ char *token_header = NULL;
		const char *authz = NULL;
		if (c->registry_token) {
			token_header = xasprintf("Authorization: Bearer %s", c->registry_token);
			authz = token_header;
		} else if (c->authorization && streq_ptr(c->auth_key, key)) {
			authz = c->authorization;
		}
		CrispError *local = NULL;
		int status = do_request(c, e, url, accept, authz, NULL, r, &local);
		if (status == -EPROTO && e->may_fall_back && local &&
		    strstr(local->message, "TLS error") && !strstr(local->message, "certificate")) {
			/* A loopback registry that speaks plain HTTP, as dockerd allows. */
			crisp_error_free(local);
			local = NULL;
			strv_push(&c->http_fallback, e->host);
			free(e->base);
			e->base = xasprintf("http://%s", e->host);
			e->may_fall_back = false;
			attempt--;
			continue;
		}
		if (status < 0) {
			crisp_error_move(err, &local);
			return status;
		}
		crisp_error_free(local);
		if (status == 200)
			return 0;
		if (status == 401 && attempt == 0 && !c->registry_token) {
			_cleanup_free_ char *challenge =
				r->www_authenticate ? xstrdup(r->www_authenticate) : NULL;
			int k = authenticate(c, e, repo, key, challenge, err);
			if (k < 0)
				return k;
			continue;
		}
		if (status == 401 || status == 403)
			return crisp_error_set(err, CRISP_ERR_PERMISSION_DENIED, EACCES,
					       "%s: authentication required: %s refused the "
					       "credentials (HTTP %d)",
					       r->what, e->host, status);
		if (status == 404)
			return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
					       "%s: not found on %s (HTTP 404) %.200s", r->what,
					       e->host, status_text(r));
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, EIO,
				       "%s: %s answered HTTP %d %.200s", r->what, e->host, status,
				       status_text(r));
	}
}

/* --- manifests --- */

static int get_manifest_document(CrispRegistryClient *c, Endpoint *e, const char *repo,
				 const char *tag_or_digest, const CrispDigest *expected,
				 CrispManifestDocument *doc, CrispDigest *digest, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("manifests/%s", tag_or_digest);
	_cleanup_free_ char *what = xasprintf("manifest %s:%s", repo, tag_or_digest);
	Response r = { .fd = -1, .limit = CRISP_MANIFEST_MAX_SIZE, .what = what };
	int k = registry_get(c, e, repo, path, CRISP_MANIFEST_ACCEPT, &r, err);
	if (k < 0)
		goto out;
	const char *data = r.buf ? r.buf : "";
	if (expected && crisp_digest_is_set(expected)) {
		k = crisp_digest_verify_buffer(expected, data, r.len, err);
		if (k < 0) {
			crisp_error_wrap(err, "%s from %s", what, e->host);
			goto out;
		}
		*digest = *expected;
	} else {
		k = crisp_digest_compute(CRISP_DIGEST_SHA256, data, r.len, digest, err);
		if (k < 0)
			goto out;
		/* A registry's own digest header, when it names sha256, must agree. */
		CrispDigest header;
		CrispError *ignored = NULL;
		if (r.docker_digest &&
		    crisp_digest_parse(r.docker_digest, &header, &ignored) >= 0 &&
		    header.algorithm == CRISP_DIGEST_SHA256 &&
		    !crisp_digest_equal(&header, digest)) {
			k = crisp_error_set(err, CRISP_ERR_INVALID, EBADMSG,
					    "%s from %s: content has digest %s but the registry "
					    "says %s",
					    what, e->host, digest->string, header.string);
			goto out;
		}
		crisp_error_free(ignored);
	}
	k = crisp_manifest_document_parse(r.content_type, data, r.len, doc, err);
	if (k < 0)
		crisp_error_wrap(err, "%s from %s", what, e->host);
out:
	response_done(&r);
	return k;
}

static int fetch_manifest_from(CrispRegistryClient *c, Endpoint *e, const CrispReference *ref,
			       CrispRegistryImage *ret, CrispError **err)
{
	CrispManifestDocument doc = { 0 };
	CrispDigest digest = { 0 };
	const char *what = crisp_digest_is_set(&ref->digest) ? ref->digest.string : ref->tag;
	int k = get_manifest_document(c, e, ref->path, what, &ref->digest, &doc, &digest, err);
	if (k < 0)
		return k;
	CrispRegistryImage img = { .repo_digest = digest, .manifest_digest = digest };
	if (!crisp_manifest_kind_is_index(doc.kind)) {
		img.manifest = doc.manifest;
		doc.manifest = (CrispManifest){ 0 };
		crisp_manifest_document_done(&doc);
		*ret = img;
		return 0;
	}
	const char *os, *arch, *variant;
	const CrispDescriptor *d;
	crisp_platform_host(&os, &arch, &variant);
	k = crisp_index_choose_platform(&doc.index, os, arch, variant, &d, err);
	if (k < 0) {
		crisp_error_wrap(err, "%s/%s:%s", e->host, ref->path, what);
		crisp_manifest_document_done(&doc);
		return k;
	}
	img.manifest_digest = d->digest;
	img.platform.os = d->platform.os ? xstrdup(d->platform.os) : NULL;
	img.platform.architecture =
		d->platform.architecture ? xstrdup(d->platform.architecture) : NULL;
	img.platform.variant = d->platform.variant ? xstrdup(d->platform.variant) : NULL;
	crisp_manifest_document_done(&doc);

	CrispManifestDocument inner = { 0 };
	CrispDigest inner_digest;
	k = get_manifest_document(c, e, ref->path, img.manifest_digest.string, &img.manifest_digest,
				  &inner, &inner_digest, err);
	if (k < 0) {
		crisp_platform_done(&img.platform);
		return k;
	}
	if (crisp_manifest_kind_is_index(inner.kind)) {
		crisp_manifest_document_done(&inner);
		crisp_platform_done(&img.platform);
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL,
				       "%s/%s@%s: an index inside an index is not supported",
				       e->host, ref->path, img.manifest_digest.string);
	}
	img.manifest = inner.manifest;
	inner.manifest = (CrispManifest){ 0 };
	crisp_manifest_document_done(&inner);
	*ret = img;
	return 0;
}

/* Keeps the last error in full and notes the earlier ones. */
static void collect_error(CrispError **all, CrispError **one, const char *host)
{
	if (!*all) {
		crisp_error_move(all, one);
		return;
	}
	CrispError *e = *one;
	*one = NULL;
	char *m = xasprintf("%s; before that: %s", e->message, (*all)->message);
	free(e->message);
	e->message = m;
	crisp_error_free(*all);
	*all = e;
}

/* One attempt at one endpoint; what it fetches depends on the caller. */
typedef int (*EndpointAttempt)(CrispRegistryClient *c, Endpoint *e, const CrispReference *ref,
			       void *userdata, CrispError **err);

/*
 * Tries each endpoint for ref (the mirrors in order, then the registry) until
 * one attempt succeeds.  When all fail, the error names every endpoint's
 * failure, the last one first.
 */
static int try_endpoints(CrispRegistryClient *c, const CrispReference *ref, EndpointAttempt attempt,
			 void *userdata, CrispError **err)
{
	Endpoint *eps;
	size_t n = endpoints_for(c, ref, &eps);
	CrispError *all = NULL;
	int k = -EIO;
	for (size_t i = 0; i < n; i++) {
		CrispError *one = NULL;
		k = attempt(c, &eps[i], ref, userdata, &one);
		if (k >= 0)
			break;
		collect_error(&all, &one, eps[i].host);
	}
	endpoints_free(eps, n);
	if (k < 0) {
		crisp_error_move(err, &all);
		return k;
	}
	crisp_error_free(all);
	return 0;
}

static int manifest_attempt(CrispRegistryClient *c, Endpoint *e, const CrispReference *ref,
			    void *userdata, CrispError **err)
{
	return fetch_manifest_from(c, e, ref, userdata, err);
}

int crisp_registry_fetch_manifest(CrispRegistryClient *c, const CrispReference *ref,
				  CrispRegistryImage *ret, CrispError **err)
{
	return try_endpoints(c, ref, manifest_attempt, ret, err);
}

/* --- blobs --- */

static int open_temp(int dirfd, const char *name, char **ret_tmpname, CrispError **err)
{
	int fd = openat(dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0) {
		*ret_tmpname = NULL;
		return fd;
	}
	for (int i = 0; i < 100; i++) {
		uint64_t rnd = 0;
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint64_t)getpid() * 1000003u + (uint64_t)i;
		char *tmp = xasprintf("%s.tmp-%016llx", name, (unsigned long long)rnd);
		fd = openat(dirfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd >= 0) {
			*ret_tmpname = tmp;
			return fd;
		}
		int e = errno;
		free(tmp);
		if (e != EEXIST)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, e,
						     "creating a temporary file for %s", name);
	}
	return crisp_error_set(err, CRISP_ERR_INTERNAL, EEXIST, "creating a temporary file for %s",
			       name);
}

static int make_visible(int fd, const char *tmpname, int dirfd, const char *name, CrispError **err)
{
	if (tmpname) {
		if (renameat(dirfd, tmpname, dirfd, name) < 0)
			return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
						     "renaming the blob to %s", name);
		return 0;
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dirfd, name, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno == EEXIST)
		return 0; /* another pull stored it first: content-addressed, the same */
	if (linkat(fd, "", dirfd, name, AT_EMPTY_PATH) == 0 || errno == EEXIST)
		return 0;
	return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "linking the blob to %s",
				     name);
}

static int fetch_blob_from(CrispRegistryClient *c, Endpoint *e, const CrispReference *ref,
			   const CrispDescriptor *d, int dirfd, const char *name, CrispError **err)
{
	_cleanup_free_ char *tmpname = NULL;
	_cleanup_close_ int fd = open_temp(dirfd, name, &tmpname, err);
	if (fd < 0)
		return fd;
	_cleanup_free_ char *path = xasprintf("blobs/%s", d->digest.string);
	_cleanup_free_ char *what = xasprintf("blob %s", d->digest.string);
	CrispDigestVerifier v = CRISP_DIGEST_VERIFIER_INIT;
	int k = crisp_digest_verifier_init(&v, &d->digest, d->size, err);
	if (k < 0)
		goto fail;
	Response r = { .fd = fd, .verifier = &v, .what = what };
	k = registry_get(c, e, ref->path, path, NULL, &r, err);
	response_done(&r);
	if (k < 0)
		goto fail;
	k = crisp_digest_verifier_check(&v, err);
	if (k < 0) {
		crisp_error_wrap(err, "blob %s of %s from %s", d->digest.string, ref->path,
				 e->host);
		goto fail;
	}
	if (fsync(fd) < 0) {
		k = crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "fsync of %s", name);
		goto fail;
	}
	k = make_visible(fd, tmpname, dirfd, name, err);
	if (k < 0)
		goto fail;
	crisp_digest_verifier_done(&v);
	return 0;
fail:
	crisp_digest_verifier_done(&v);
	if (tmpname)
		(void)unlinkat(dirfd, tmpname, 0);
	return k;
}

typedef struct BlobTarget {
	const CrispDescriptor *d;
	int dirfd;
	const char *name;
} BlobTarget;

static int blob_attempt(CrispRegistryClient *c, Endpoint *e, const CrispReference *ref,
			void *userdata, CrispError **err)
{
	const BlobTarget *t = userdata;
	return fetch_blob_from(c, e, ref, t->d, t->dirfd, t->name, err);
}

int crisp_registry_fetch_blob(CrispRegistryClient *c, const CrispReference *ref,
			      const CrispDescriptor *d, int dest_dirfd, const char *name,
			      CrispError **err)
{
	struct stat st;
	if (fstatat(dest_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
		return 0;
	BlobTarget t = { .d = d, .dirfd = dest_dirfd, .name = name };
	return try_endpoints(c, ref, blob_attempt, &t, err);
}
