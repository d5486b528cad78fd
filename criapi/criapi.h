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
#include "error.h"
#include "internal.pb-c.h"
#include "ipc_client.h"
#include "options.h"
#include "sandbox.h"

#include <grpc/grpc.h>

extern const CrispProfile criapi_profile;

/* gRPC status for a crisp error code. */
grpc_status_code criapi_status_from_error(CrispErrorCode code);

/*
 * One CRI call as a handler sees it: the unpacked request, the caller's
 * deadline (crisp_now_ms() clock; 0 for none), and where the answer goes.
 * A handler returns 0 with *ret_response set, or a negative errno with
 * *err set (its code becomes the gRPC status, its message the details).
 */
typedef struct CriapiCall {
	const ProtobufCMessage *request;
	int64_t deadline_ms;
} CriapiCall;

typedef int (*CriapiHandler)(const CriapiCall *call, ProtobufCMessage **ret_response,
			     CrispError **err);

/* The handler for a method ("Version"), or NULL: the method answers UNIMPLEMENTED. */
CriapiHandler criapi_find_handler(const char *service, const char *method);

/* Frees a response built by a handler (plain malloc'd protobuf-c messages). */
void criapi_response_free(ProtobufCMessage *m);

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
