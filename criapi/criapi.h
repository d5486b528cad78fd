/*
 * criapi.h - crisp-criapi: the CRI gRPC front.
 *
 * criapi is unprivileged and keeps no state of its own: it validates each
 * CRI request and forwards it to the backend that acts on it over the
 * internal channels.  server.c runs gRPC; backends.c holds the channels;
 * rpc_*.c implement the RPCs.
 */
#ifndef CRISP_CRIAPI_H
#define CRISP_CRIAPI_H

#include "api.pb-c.h"
#include "cri_routes.h"
#include "error.h"
#include "internal.pb-c.h"
#include "ipc_client.h"
#include "options.h"
#include "sandbox.h"

#include <grpc/grpc.h>

extern const CrispProfile criapi_profile;

/* gRPC status for a crisp error code. */
grpc_status_code criapi_status_from_error(CrispErrorCode code);

/* The effective configuration (read at start, before the sandbox). */
extern const CrispConfig *criapi_config;

/*
 * One CRI call as a handler sees it: the unpacked, validated request, the
 * caller's deadline (crisp_now_ms() clock; 0 for none) and, for calls
 * forwarded to a backend, their route.
 */
typedef struct CriapiReply CriapiReply;
typedef struct CriapiCall {
	const ProtobufCMessage *request;
	int64_t deadline_ms;
	const CrispCriRoute *route;
	CriapiReply *reply; /* unary calls: for answering later */
} CriapiCall;

/* A unary answer and how to release it (handlers build theirs with malloc). */
typedef struct CriapiResponse {
	ProtobufCMessage *msg;
	void (*free)(void *msg);
} CriapiResponse;

/* Frees a response built with malloc'd fields throughout. */
void criapi_response_free_plain(void *msg);

/*
 * A unary handler returns 0 with *ret filled, a negative errno with *err
 * set (its code becomes the gRPC status, its message the details), or
 * CRIAPI_ANSWER_LATER when it started work that will answer through
 * criapi_reply_finish(call->reply, ...) exactly once.  Answering later keeps
 * no worker thread waiting on a backend.
 */
#define CRIAPI_ANSWER_LATER 1
typedef int (*CriapiUnaryHandler)(const CriapiCall *call, CriapiResponse *ret, CrispError **err);

/* Answers a deferred call with resp (taken), or with err's status when resp is NULL. */
void criapi_reply_finish(CriapiReply *reply, CriapiResponse *resp, const CrispError *err);

/* A server stream (server.c).  Sending is thread-safe and never blocks. */
typedef struct CriapiStream CriapiStream;

/*
 * A stream handler sends with criapi_stream_send*() and returns 0 (the
 * stream ends with OK once everything queued is sent), a negative errno with
 * *err (it ends with that status), or CRIAPI_STREAM_DETACHED when it kept a
 * reference (criapi_stream_ref) to go on sending later and will end the
 * stream itself with criapi_stream_finish().
 */
#define CRIAPI_STREAM_DETACHED 1
typedef int (*CriapiStreamHandler)(const CriapiCall *call, CriapiStream *stream, CrispError **err);

/* Queues one message; -ECANCELED once the client is gone or the stream ended. */
int criapi_stream_send(CriapiStream *s, const ProtobufCMessage *msg);
int criapi_stream_send_raw(CriapiStream *s, const uint8_t *data, size_t len);
/* Ends the stream with a status, after what is queued (first call wins). */
void criapi_stream_finish(CriapiStream *s, grpc_status_code code, const char *details);
CriapiStream *criapi_stream_ref(CriapiStream *s);
void criapi_stream_unref(CriapiStream *s);
/* Called once, from the completion-queue thread, when the call ends for any reason. */
void criapi_stream_on_close(CriapiStream *s, void (*fn)(CriapiStream *s, void *userdata),
			    void *userdata);

/* How criapi answers one method (rpc.c). */
typedef struct CriapiMethod {
	CriapiUnaryHandler unary;   /* unary methods */
	CriapiStreamHandler stream; /* server-streaming methods */
	const CrispCriRoute *route; /* forwarded calls (also the List call behind a Stream* call) */
	bool on_cq_thread;	    /* never blocks: answered without a hop to a worker */
} CriapiMethod;

/*
 * Fills *ret for a method of the CRI services.  Returns false for a method
 * crisp does not know at all (it is then answered UNIMPLEMENTED).
 */
bool criapi_method_lookup(const char *service, const char *method, bool streaming,
			  CriapiMethod *ret);

/* --- rpc_runtime.c: calls criapi answers itself --- */

int criapi_rpc_version(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_status(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_runtime_config(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_update_runtime_config(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
/* The pod calls that take sandboxd and netd in turn (rpc_pods.c). */
int criapi_rpc_run_pod_sandbox(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_stop_pod_sandbox(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_remove_pod_sandbox(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
/* The container calls that take imaged and sandboxd in turn (rpc_containers.c). */
int criapi_rpc_create_container(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_remove_container(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
/* Pod stats: sandboxd's, with each pod's network counters from netd (rpc_stats.c). */
int criapi_rpc_pod_sandbox_stats(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_list_pod_sandbox_stats(const CriapiCall *call, CriapiResponse *ret,
				      CrispError **err);
int criapi_rpc_stream_pod_sandbox_stats(const CriapiCall *call, CriapiStream *stream,
					CrispError **err);
/* Sends a List answer as a Stream* call's chunks (its repeated field 1), as rpc.c does. */
void criapi_stream_send_list(CriapiStream *stream, const ProtobufCMessage *answer);

/* --- events.c --- */

/* GetContainerEvents: subscribes the stream to every container event. */
int criapi_events_subscribe(const CriapiCall *call, CriapiStream *stream, CrispError **err);
/* Sends an event to every subscriber. */
void criapi_events_publish(const ProtobufCMessage *event);
/* Ends every subscription with UNAVAILABLE (shutdown). */
void criapi_events_close_all(void);
/* Starts the thread that long-polls sandboxd's events into the hub. */
int criapi_events_start(CrispError **err);

/* --- rpc_streams.c --- */

/* Exec, Attach, PortForward: the container or pod is checked, streamd answers with the URL. */
int criapi_rpc_exec(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_attach(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
int criapi_rpc_port_forward(const CriapiCall *call, CriapiResponse *ret, CrispError **err);
/* Starts the thread that long-polls streamd for the work its sessions need done. */
int criapi_stream_work_start(CrispError **err);
void criapi_stream_work_stop(void);

/* --- validate.c --- */

/*
 * Checks a decoded CRI request before anything acts on it: required fields,
 * well-formed IDs, bounded names, labels and annotations, known enum values.
 * Returns 0, or -EINVAL with err (CRISP_ERR_INVALID) naming the field path,
 * e.g. "config.metadata.name: must not be empty".
 */
int criapi_validate_request(const ProtobufCMessage *req, CrispError **err);

/* --- backends.c --- */

/*
 * Starts the thread that takes backend channels from the supervisor
 * (control_fd), or, without one, dials <state_dir>/internal/<backend>.sock.
 */
int criapi_backends_start(int control_fd, const char *state_dir, CrispError **err);
/* Tells the supervisor the CRI socket is served. */
void criapi_backends_report_serving(const char *listen);
/* The client for a backend. */
CrispIpcClient *criapi_backend(Crisp__Backend b);
/*
 * One round of a long poll (criapi's loops on sandboxd's events and on
 * streamd's work): sends msg (type; the answer is type + 1), which the
 * backend holds for up to wait_ms, and returns the answer.  While the
 * backend is down it returns NULL after a pause, so the caller's loop can
 * simply go round again.
 */
ProtobufCMessage *criapi_backend_long_poll(Crisp__Backend b, uint16_t type,
					   const ProtobufCMessage *msg,
					   const ProtobufCMessageDescriptor *ans_desc, int wait_ms);
/* Fails every backend call in flight (shutdown): their answers would come too late. */
void criapi_backends_stop(void);

/* --- server.c --- */

typedef struct CriapiServer CriapiServer;

/*
 * Creates the gRPC server, registers every method of the CRI services and
 * starts serving connections accepted on listen_fd (which it owns).
 */
int criapi_server_start(int listen_fd, unsigned n_workers, CriapiServer **ret, CrispError **err);
/* Stops accepting, cancels open calls and streams, and waits for the workers. */
void criapi_server_stop(CriapiServer *s);

/* --- listen.c --- */

/*
 * Takes "<path>.lock", then replaces whatever is at path with a new socket
 * (mode 0660) listening.  Returns the listening fd; *ret_lock_fd holds the lock.
 */
int criapi_listen(const char *path, int *ret_lock_fd, CrispError **err);

#endif
