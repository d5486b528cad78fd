/*
 * daemon.h - the server skeleton every backend daemon runs.
 *
 * A backend (imaged, sandboxd, netd, streamd) declares a table of handlers and
 * calls crisp_daemon_run().  The skeleton:
 *   - takes channels from the supervisor's control channel (--control-fd) or,
 *     under systemd socket activation, accepts them on the listening socket and
 *     checks the peer's uid with SO_PEERCRED;
 *   - greets each channel with the handshake and accepts only a matching
 *     client hello as the first message;
 *   - dispatches each request through the table: an unknown type, a type
 *     out of order, a payload that does not decode or a wrong number of fds
 *     is logged and the channel is closed; a handler's error becomes a typed
 *     CRISP_MSG_ERROR answer;
 *   - runs handlers flagged CRISP_HANDLER_ASYNC on a worker pool, so many
 *     requests can be in flight on one channel and a slow one blocks nothing;
 *   - answers CRISP_MSG_HEALTH_REQ itself.
 */
#ifndef CRISP_DAEMON_H
#define CRISP_DAEMON_H

#include "error.h"
#include "ipc.h"

#include <stdbool.h>
#include <sys/types.h>

typedef struct CrispChannel CrispChannel;

typedef struct CrispRequest {
	CrispChannel *channel;
	uint16_t type;
	uint64_t request_id;
	ProtobufCMessage *msg; /* owned by the skeleton; freed after the handler */
	int fds[CRISP_IPC_MAX_FDS];
	size_t n_fds;
	bool replied;
} CrispRequest;

/*
 * A handler answers with crisp_reply() and returns 0, or returns a negative
 * errno with *err set, and the skeleton sends the error answer.
 */
typedef int (*CrispHandlerFn)(CrispRequest *req, void *userdata, CrispError **err);

enum {
	CRISP_HANDLER_ASYNC = 1u << 0, /* run on a worker thread */
	/* n_fds is a maximum; the message says how many it carries, and the
	 * handler checks that against the count received. */
	CRISP_HANDLER_FDS_UP_TO = 1u << 1,
};

typedef struct CrispHandler {
	uint16_t type;
	const ProtobufCMessageDescriptor *desc;
	CrispHandlerFn fn;
	unsigned flags;
	unsigned n_fds; /* the request carries exactly this many fds (see FDS_UP_TO) */
} CrispHandler;

typedef struct CrispDaemonConfig {
	const char *name; /* "crisp-imaged" */
	const CrispHandler *handlers;
	size_t n_handlers;
	void *userdata;
	int control_fd;		/* from the supervisor, or -1 */
	int listen_fd;		/* systemd socket activation, or -1 */
	uid_t allowed_peer_uid; /* for listen_fd connections */
	unsigned n_workers;	/* 0: a default */
	/* Optional readiness report for health answers. */
	bool (*ready)(void *userdata, char **ret_message);
} CrispDaemonConfig;

/* Serves until the control channel closes or SIGTERM/SIGINT.  Returns an exit code. */
int crisp_daemon_run(const CrispDaemonConfig *cfg);

/* Answers a request; fds are duplicated into the message and stay the caller's. */
int crisp_reply(CrispRequest *req, uint16_t type, const ProtobufCMessage *msg, const int *fds,
		size_t n_fds);
int crisp_reply_error(CrispRequest *req, const CrispError *e);

/* Takes fd i of the request; the caller owns it. */
int crisp_request_take_fd(CrispRequest *req, size_t i);

/* Both sides of the handshake, usable on any channel fd. */
int crisp_handshake_server_hello(int fd, pthread_mutex_t *lock, const char *name);
/* Checks a received hello: protocol, version and, if expect_peer is set, the peer name. */
int crisp_handshake_check(const CrispIpcMessage *m, uint16_t expect_type, const char *expect_peer,
			  CrispError **err);

/* Maps between CrispErrorCode and the wire enum. */
int crisp_error_to_wire(CrispErrorCode code);
CrispErrorCode crisp_error_from_wire(int code);

#endif
