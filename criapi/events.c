/*
 * events.c - GetContainerEvents: one hub, many subscribers.
 *
 * A subscription stays open until the client goes away or crisp stops; each
 * event goes to every subscriber's send queue, so a slow subscriber delays
 * nobody else.  Events come from sandboxd as it creates, starts, stops and
 * deletes containers and pods.
 */
#include "criapi.h"

#include <pthread.h>

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

void criapi_events_close_all(void)
{
	pthread_mutex_lock(&hub_lock);
	hub_closed = true;
	for (Subscriber *s = subscribers; s; s = s->next)
		criapi_stream_finish(s->stream, GRPC_STATUS_UNAVAILABLE, "crisp is stopping");
	pthread_mutex_unlock(&hub_lock);
}
