/*
 * events.c - GetContainerEvents: one hub, many subscribers.
 *
 * A subscription stays open until the client goes away or crisp stops; each
 * event goes to every subscriber's send queue, so a slow subscriber delays
 * nobody else.  Events come from sandboxd as it creates, starts, stops and
 * deletes containers and pods: a poller thread long-polls sandboxd's
 * WaitEvents and publishes each event, as sandboxd serialized it, to the
 * hub; while sandboxd is away (restarting) it retries every 200 ms.  Each
 * poll waits at most a second in sandboxd, which holds a worker meanwhile:
 * short enough that stopping sandboxd never waits long for it.
 */
#include "criapi.h"

#include "ipc_types.h"
#include "log.h"
#include "thread.h"

#include <pthread.h>

#define POLL_WAIT_MS 1000

typedef struct Subscriber {
	struct Subscriber *next;
	CriapiStream *stream;
} Subscriber;

static pthread_mutex_t hub_lock = PTHREAD_MUTEX_INITIALIZER;
static Subscriber *subscribers;
static bool hub_closed;

static void unsubscribe(CriapiStream *stream, void *userdata _unused_)
{
	Subscriber *gone = NULL;

	pthread_mutex_lock(&hub_lock);
	for (Subscriber **p = &subscribers; *p; p = &(*p)->next)
		if ((*p)->stream == stream) {
			gone = *p;
			*p = gone->next;
			break;
		}
	pthread_mutex_unlock(&hub_lock);
	if (gone) {
		criapi_stream_unref(gone->stream);
		free(gone);
	}
}

int criapi_events_subscribe(const CriapiCall *call _unused_, CriapiStream *stream, CrispError **err)
{
	Subscriber *s = xcalloc(1, sizeof(*s));

	pthread_mutex_lock(&hub_lock);
	if (hub_closed) {
		pthread_mutex_unlock(&hub_lock);
		free(s);
		return crisp_error_set(err, CRISP_ERR_UNAVAILABLE, ESHUTDOWN, "crisp is stopping");
	}
	s->stream = criapi_stream_ref(stream);
	s->next = subscribers;
	subscribers = s;
	pthread_mutex_unlock(&hub_lock);

	/* Outside the hub lock: if the call already ended, this unsubscribes at once. */
	criapi_stream_on_close(stream, unsubscribe, NULL);
	return CRIAPI_STREAM_DETACHED;
}

void criapi_events_publish(const ProtobufCMessage *event)
{
	pthread_mutex_lock(&hub_lock);
	for (Subscriber *s = subscribers; s; s = s->next)
		criapi_stream_send(s->stream, event);
	pthread_mutex_unlock(&hub_lock);
}

static void publish_raw(const ProtobufCBinaryData *e)
{
	pthread_mutex_lock(&hub_lock);
	for (Subscriber *s = subscribers; s; s = s->next)
		criapi_stream_send_raw(s->stream, e->data, e->len);
	pthread_mutex_unlock(&hub_lock);
}

static bool closed(void)
{
	pthread_mutex_lock(&hub_lock);
	bool c = hub_closed;
	pthread_mutex_unlock(&hub_lock);
	return c;
}

static void *poll_sandboxd(void *arg _unused_)
{
	uint64_t after = 0;
	while (!closed()) {
		Crisp__WaitEventsRequest m = CRISP__WAIT_EVENTS_REQUEST__INIT;
		m.after = after;
		m.max_wait_ms = POLL_WAIT_MS;
		Crisp__WaitEventsReply *a = (Crisp__WaitEventsReply *)criapi_backend_long_poll(
			CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_WAIT_EVENTS_REQ,
			&m.base, &crisp__wait_events_reply__descriptor, POLL_WAIT_MS);
		if (!a)
			continue;
		if (a->lost)
			log_warning("container events: some were dropped before they were read");
		for (size_t i = 0; i < a->n_events; i++)
			publish_raw(&a->events[i]);
		after = a->last;
		crisp_proto_free(a);
	}
	return NULL;
}

int criapi_events_start(CrispError **err)
{
	int r = crisp_thread_start_detached(poll_sandboxd, NULL);
	if (r != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, r,
					     "starting the container events poller");
	return 0;
}

void criapi_events_close_all(void)
{
	pthread_mutex_lock(&hub_lock);
	hub_closed = true;
	for (Subscriber *s = subscribers; s; s = s->next)
		criapi_stream_finish(s->stream, GRPC_STATUS_UNAVAILABLE, "crisp is stopping");
	pthread_mutex_unlock(&hub_lock);
}
