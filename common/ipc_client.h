/*
 * ipc_client.h - the calling side of an internal channel.
 *
 * One client per peer (criapi has one per backend; a daemon has one for its
 * spawn helper).  Many threads may call at once: each call gets a fresh
 * request id, and a reader thread hands every answer to the call waiting for
 * it, so a slow request never holds up a fast one.  When the channel dies,
 * every call in flight fails with CRISP_ERR_UNAVAILABLE; attaching a new
 * channel (after the peer restarted) makes later calls work again.
 */
#ifndef CRISP_IPC_CLIENT_H
#define CRISP_IPC_CLIENT_H

#include "clock.h"
#include "error.h"
#include "ipc.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct CrispIpcClient CrispIpcClient;

/* expect_peer: the name the server must give in its hello (e.g. "crisp-imaged"). */
CrispIpcClient *crisp_ipc_client_new(const char *expect_peer);
/* Fails every call in flight with UNAVAILABLE and refuses new channels; the client stays valid. */
void crisp_ipc_client_shutdown(CrispIpcClient *c);
void crisp_ipc_client_free(CrispIpcClient *c);

/*
 * Takes ownership of fd, a connected channel: waits up to timeout_ms for the
 * server's hello, checks it, answers with ours and starts reading.  Once
 * the new channel is up it replaces the previous one, whose calls in flight
 * fail with CRISP_ERR_UNAVAILABLE.  On failure fd is closed and the previous
 * channel stays as it was.
 */
int crisp_ipc_client_attach(CrispIpcClient *c, int fd, int timeout_ms, CrispError **err);

/* True while a channel is attached and alive. */
bool crisp_ipc_client_is_up(CrispIpcClient *c);

/*
 * Sends req (type `type`, with n_fds fds) and waits for its answer until
 * deadline_ms (crisp_now_ms() based; 0 waits forever).  An answer of type
 * ans_type is unpacked with ans_desc into *ret (free with crisp_proto_free);
 * a CRISP_MSG_ERROR answer becomes *err with the peer's code and message.
 * Fds that came with the answer go to ret_fds (up to CRISP_IPC_MAX_FDS,
 * count in *ret_n_fds); when ret_fds is NULL an answer with fds is refused.
 */
int crisp_ipc_client_call(CrispIpcClient *c, uint16_t type, const ProtobufCMessage *req,
			  const int *fds, size_t n_fds, uint16_t ans_type,
			  const ProtobufCMessageDescriptor *ans_desc, int64_t deadline_ms,
			  ProtobufCMessage **ret, int *ret_fds, size_t *ret_n_fds,
			  CrispError **err);

/*
 * Receives an asynchronous call's outcome: either answer (owned by the
 * callback; free with crisp_proto_free) with its fds (owned too), or err
 * (borrowed) when the peer failed the call, the channel died or the
 * deadline passed.  It runs on the client's reader or deadline thread, or
 * on the thread that failed the call: inside crisp_ipc_client_call_async
 * itself when the send fails, or inside attach, shutdown or free.  So it
 * must not block, nor take a lock its caller may hold.
 */
typedef void (*CrispIpcCallback)(void *userdata, ProtobufCMessage *answer, int *fds, size_t n_fds,
				 CrispError *err);

/*
 * As crisp_ipc_client_call, but returns at once: no thread waits for the
 * answer.  Returns 0 when callback will be called exactly once, or a
 * negative errno with *err when the call could not start (callback is then
 * never called).
 */
int crisp_ipc_client_call_async(CrispIpcClient *c, uint16_t type, const ProtobufCMessage *req,
				const int *fds, size_t n_fds, uint16_t ans_type,
				const ProtobufCMessageDescriptor *ans_desc, int64_t deadline_ms,
				CrispIpcCallback callback, void *userdata, CrispError **err);

#endif
