/*
 * events.c - container and pod events, for GetContainerEvents.
 *
 * Each change of a container's or pod's state (created, started, stopped,
 * deleted) becomes a runtime.v1.ContainerEventResponse, kept serialized in
 * a ring with a sequence number.  criapi long-polls them (WaitEvents): a
 * waiting request holds one worker until there are events after the
 * sequence it names, or its wait ends.  A consumer that fell behind the
 * ring's size is told it lost some.  A container that ends by itself is
 * noticed by a watcher on conmon's exit files, so its STOPPED event comes
 * when it happens, not when someone asks.
 */
#include "containers.h"

#include "clock.h"
#include "ipc_types.h"
#include "log.h"
#include "pods.h"
#include "thread.h"

#include <poll.h>
#include <sys/inotify.h>
#include <time.h>

#define EVENT_RING 4096
#define WAIT_MAX_MS 30000

typedef struct Event {
	uint64_t seq;
	uint8_t *data;
	size_t len;
} Event;

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cond;
static pthread_once_t ring_once = PTHREAD_ONCE_INIT;
static Event ring[EVENT_RING];
static uint64_t last_seq;

static void ring_init(void)
{
	crisp_cond_init_monotonic(&ring_cond);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void push(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *data = xmalloc(len ? len : 1);
	protobuf_c_message_pack(m, data);
	pthread_once(&ring_once, ring_init);
	pthread_mutex_lock(&ring_lock);
	Event *e = &ring[++last_seq % EVENT_RING];
	free(e->data);
	*e = (Event){ last_seq, data, len };
	pthread_cond_broadcast(&ring_cond);
	pthread_mutex_unlock(&ring_lock);
}

void sandboxd_emit_pod_event(Sandboxd *sd, const char *pod_id, Runtime__V1__ContainerEventType type)
{
	SandboxdPod p = { 0 };
	if (sandboxd_pod_get(sd, pod_id, &p, NULL) < 0)
		return;
	Runtime__V1__PodSandboxStatus s = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
	s.id = p.id;
	s.metadata = p.config->metadata;
	s.state = type == RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT
			  ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY
			  : sandboxd_pod_cri_state(&p);
	s.created_at = p.created_at;
	s.runtime_handler = p.handler;
	Runtime__V1__ContainerEventResponse e = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	e.container_id = p.id;
	e.container_event_type = type;
	e.created_at = now_ns();
	e.pod_sandbox_status = &s;
	push(&e.base);
	sandboxd_pod_done(&p);
}

void sandboxd_emit_container_event(Sandboxd *sd, const SandboxdContainer *c,
				   Runtime__V1__ContainerEventType type)
{
	SandboxdPod p = { 0 };
	bool have_pod = sandboxd_pod_get(sd, c->pod_id, &p, NULL) == 0;
	Runtime__V1__PodSandboxStatus ps = RUNTIME__V1__POD_SANDBOX_STATUS__INIT;
	if (have_pod) {
		ps.id = p.id;
		ps.metadata = p.config->metadata;
		ps.state = sandboxd_pod_cri_state(&p);
		ps.created_at = p.created_at;
		ps.runtime_handler = p.handler;
	}
	Runtime__V1__ImageSpec image = RUNTIME__V1__IMAGE_SPEC__INIT;
	image.image = c->image_ref;
	Runtime__V1__ContainerStatus cs = RUNTIME__V1__CONTAINER_STATUS__INIT;
	cs.id = c->id;
	cs.metadata = c->config->metadata;
	cs.state = type == RUNTIME__V1__CONTAINER_EVENT_TYPE__CONTAINER_DELETED_EVENT
			   ? RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED
			   : sandboxd_container_cri_state(c);
	cs.created_at = c->created_at;
	cs.started_at = c->started_at;
	cs.finished_at = c->finished_at;
	cs.exit_code = c->exit_code;
	cs.image = &image;
	cs.image_ref = c->image_id;
	cs.image_id = c->image_id;
	cs.reason = cs.state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED ? c->reason : "";
	cs.log_path = c->log_path;
	Runtime__V1__ContainerStatus *list[1] = { &cs };
	Runtime__V1__ContainerEventResponse e = RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
	e.container_id = c->id;
	e.container_event_type = type;
	e.created_at = now_ns();
	e.pod_sandbox_status = have_pod ? &ps : NULL;
	e.n_containers_statuses = 1;
	e.containers_statuses = list;
	push(&e.base);
	sandboxd_pod_done(&p);
}

int sandboxd_wait_events(CrispRequest *req, void *userdata _unused_, CrispError **err _unused_)
{
	const Crisp__WaitEventsRequest *q = (const void *)req->msg;
	uint32_t wait = q->max_wait_ms < WAIT_MAX_MS ? q->max_wait_ms : WAIT_MAX_MS;
	struct timespec until = crisp_monotonic_in_ms(wait);

	pthread_once(&ring_once, ring_init);
	pthread_mutex_lock(&ring_lock);
	/* 0, or a number from before a restart of sandboxd: from now on. */
	uint64_t after = q->after == 0 || q->after > last_seq ? last_seq : q->after;
	while (last_seq == after &&
	       pthread_cond_timedwait(&ring_cond, &ring_lock, &until) != ETIMEDOUT)
		;
	bool lost = last_seq - after > EVENT_RING;
	uint64_t first = lost ? last_seq - EVENT_RING + 1 : after + 1;
	size_t n = (size_t)(last_seq - first + 1);
	ProtobufCBinaryData *events = xcalloc(n + 1, sizeof(*events));
	for (size_t i = 0; i < n; i++) {
		const Event *e = &ring[(first + i) % EVENT_RING];
		events[i].data = xmalloc(e->len ? e->len : 1);
		memcpy(events[i].data, e->data, e->len);
		events[i].len = e->len;
	}
	uint64_t last = last_seq;
	pthread_mutex_unlock(&ring_lock);

	Crisp__WaitEventsReply a = CRISP__WAIT_EVENTS_REPLY__INIT;
	a.last = last;
	a.n_events = n;
	a.events = events;
	a.lost = lost;
	int r = crisp_reply(req, CRISP_MSG_SANDBOXD_WAIT_EVENTS_ANS, &a.base, NULL, 0);
	for (size_t i = 0; i < n; i++)
		free(events[i].data);
	free(events);
	return r;
}

/* --- the exit watcher --- */

static void *watch_exits(void *arg)
{
	Sandboxd *sd = arg;
	int fd = inotify_init1(IN_CLOEXEC);
	if (fd < 0 || inotify_add_watch(fd, sd->exits_dir, IN_CLOSE_WRITE | IN_MOVED_TO) < 0) {
		log_error("watching %s: %s; exits are noticed when asked about", sd->exits_dir,
			  strerror(errno));
		safe_close(fd);
		return NULL;
	}
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			break;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			if (!ev->len || !sandboxd_id_is_valid(ev->name))
				continue;
			SandboxdContainer c = { 0 };
			if (sandboxd_container_get(sd, ev->name, &c, NULL) < 0)
				continue;
			/*
			 * Under the pod's claim, like every handler: a container that
			 * ends the moment it starts is seen stopped only after Start
			 * has recorded it running.
			 */
			_cleanup_free_ char *pod = xstrdup(c.pod_id);
			sandboxd_container_done(&c);
			sandboxd_pod_claim(sd, pod);
			if (sandboxd_container_get(sd, ev->name, &c, NULL) == 0) {
				sandboxd_container_refresh(sd, &c);
				sandboxd_container_done(&c);
			}
			sandboxd_pod_release(sd, pod);
		}
	}
	close(fd);
	return NULL;
}

int sandboxd_events_start(Sandboxd *sd, CrispError **err)
{
	int r = crisp_thread_start_detached(watch_exits, sd);
	if (r != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, r,
					     "starting the exit watcher");
	return 0;
}
