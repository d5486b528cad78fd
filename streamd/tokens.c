/*
 * tokens.c - the requests criapi registered for Exec, Attach and
 * PortForward, each under a random token that names it in the URL.
 *
 * A token is 128 random bits, good once, and only for the kind of call
 * that made it; unused, it expires after a minute (as containerd's).  The
 * table is small (a kubelet asks for a URL only when a client connects
 * right after), and expired entries are swept on every add.
 */
#include "streamd.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/random.h>

#define MAX_TOKENS 4096

typedef struct Entry {
	struct Entry *next;
	char token[STREAMD_TOKEN_LEN + 1];
	int64_t expires_ms;
	StreamKind kind;
	ProtobufCMessage *msg;
} Entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Entry *entries;
static size_t n_entries;

static void entry_free(Entry *e)
{
	protobuf_c_message_free_unpacked(e->msg, NULL);
	free(e);
}

static void sweep_locked(int64_t now)
{
	for (Entry **p = &entries; *p;) {
		Entry *e = *p;
		if (e->expires_ms > now) {
			p = &e->next;
			continue;
		}
		*p = e->next;
		n_entries--;
		entry_free(e);
	}
}

int streamd_token_add(StreamKind kind, const ProtobufCMessage *msg,
		      char ret_token[static STREAMD_TOKEN_LEN + 1], CrispError **err)
{
	uint8_t raw[STREAMD_TOKEN_LEN / 2];
	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "getrandom");
	Entry *e = xcalloc(1, sizeof(*e));
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(e->token + 2 * i, 3, "%02x", raw[i]);
	e->kind = kind;
	e->expires_ms = crisp_now_ms() + STREAMD_TOKEN_TTL_MS;
	e->msg = crisp_proto_copy(msg);

	pthread_mutex_lock(&lock);
	sweep_locked(crisp_now_ms());
	if (n_entries >= MAX_TOKENS) {
		pthread_mutex_unlock(&lock);
		entry_free(e);
		return crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, EAGAIN,
				       "%d streaming URLs are waiting for their clients already",
				       MAX_TOKENS);
	}
	e->next = entries;
	entries = e;
	n_entries++;
	memcpy(ret_token, e->token, sizeof(e->token));
	pthread_mutex_unlock(&lock);
	return 0;
}

/* Constant time: a client must not learn a token a digit at a time. */
static bool same_token(const char *a, const char *b)
{
	unsigned diff = 0;
	for (size_t i = 0; i < STREAMD_TOKEN_LEN; i++)
		diff |= (unsigned)(a[i] ^ b[i]);
	return diff == 0;
}

int streamd_token_take(StreamKind kind, const char *token, StreamRequest *ret)
{
	Entry *found = NULL;
	if (!token || strlen(token) != STREAMD_TOKEN_LEN)
		return -ENOENT;
	pthread_mutex_lock(&lock);
	sweep_locked(crisp_now_ms());
	for (Entry **p = &entries; *p; p = &(*p)->next) {
		if ((*p)->kind == kind && same_token((*p)->token, token)) {
			found = *p;
			*p = found->next;
			n_entries--;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
	if (!found)
		return -ENOENT;
	*ret = (StreamRequest){ .kind = kind };
	if (kind == STREAM_EXEC)
		ret->exec = (Runtime__V1__ExecRequest *)found->msg;
	else if (kind == STREAM_ATTACH)
		ret->attach = (Runtime__V1__AttachRequest *)found->msg;
	else
		ret->port_forward = (Runtime__V1__PortForwardRequest *)found->msg;
	free(found); /* the message is the request's now */
	return 0;
}

void streamd_request_done(StreamRequest *r)
{
	if (r->exec)
		protobuf_c_message_free_unpacked(&r->exec->base, NULL);
	if (r->attach)
		protobuf_c_message_free_unpacked(&r->attach->base, NULL);
	if (r->port_forward)
		protobuf_c_message_free_unpacked(&r->port_forward->base, NULL);
	*r = (StreamRequest){ 0 };
}
