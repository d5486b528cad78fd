/*
 * ipc.h - framing of crisp's internal channels.
 *
 * A channel is a SOCK_SEQPACKET socket.  A message is a header (type, flags,
 * total length, request id) and a protobuf-c payload.  A message larger than
 * one packet is sent as consecutive fragments, each with the same header and
 * CRISP_IPC_FLAG_MORE on all but the last; a sender holds the channel's send
 * lock for the whole message, so fragments of two messages never interleave.
 * The total length is capped at CRISP_IPC_MAX_MESSAGE on send and on receive.
 *
 * File descriptors travel with SCM_RIGHTS on the first fragment only, in an
 * order fixed by the message type.  The receiver checks cmsg level, type and
 * length, refuses MSG_CTRUNC and MSG_TRUNC, and receives with
 * MSG_CMSG_CLOEXEC.  Anything that breaks these rules is a protocol error:
 * the caller must close the channel.
 */
#ifndef CRISP_IPC_H
#define CRISP_IPC_H

#include "error.h"

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CRISP_IPC_PROTOCOL "crisp-internal"
#define CRISP_IPC_VERSION 1u

#define CRISP_IPC_MAX_MESSAGE (16u * 1024u * 1024u)
/* One packet, header included; stays well below the default socket buffer. */
#define CRISP_IPC_PACKET_SIZE (64u * 1024u)
#define CRISP_IPC_MAX_FDS 8u

#define CRISP_IPC_FLAG_MORE 0x0001u
#define CRISP_IPC_KNOWN_FLAGS (CRISP_IPC_FLAG_MORE)

typedef struct CrispIpcHeader {
	uint16_t type;
	uint16_t flags;
	uint32_t total_len; /* payload bytes of the whole message */
	uint64_t request_id;
} CrispIpcHeader;

_Static_assert(sizeof(CrispIpcHeader) == 16, "the IPC header is 16 bytes on the wire");

#define CRISP_IPC_FRAGMENT_PAYLOAD (CRISP_IPC_PACKET_SIZE - sizeof(CrispIpcHeader))

/* A received message.  Owns its payload and the fds still in fds[]. */
typedef struct CrispIpcMessage {
	uint16_t type;
	uint64_t request_id;
	uint8_t *payload;
	size_t len;
	int fds[CRISP_IPC_MAX_FDS];
	size_t n_fds;
} CrispIpcMessage;

void crisp_ipc_message_done(CrispIpcMessage *m);
/* Takes fd i out of the message (the caller owns it now); -1 if absent. */
int crisp_ipc_message_take_fd(CrispIpcMessage *m, size_t i);

/*
 * Sends one message.  payload may be NULL when len is 0.  fds are duplicated
 * by the kernel; the caller keeps its copies.  Thread-safe when every sender
 * passes the same lock (may be NULL for a single-threaded sender).
 * Returns 0, -EMSGSIZE over the cap, -EPIPE/-ECONNRESET when the peer is gone.
 */
int crisp_ipc_send_raw(int fd, pthread_mutex_t *lock, uint16_t type, uint64_t request_id,
		       const void *payload, size_t len, const int *fds, size_t n_fds);

/* Packs msg (may be NULL for an empty payload) and sends it. */
int crisp_ipc_send(int fd, pthread_mutex_t *lock, uint16_t type, uint64_t request_id,
		   const ProtobufCMessage *msg, const int *fds, size_t n_fds);

/*
 * Receives one whole message, blocking.  Returns 1 with *ret filled, 0 at a
 * clean end of stream (before any fragment), or a negative errno with err
 * naming the violation (-EPROTO for a framing violation, -EMSGSIZE over the cap).
 */
int crisp_ipc_recv(int fd, CrispIpcMessage *ret, CrispError **err);

/* Creates a CLOEXEC SOCK_SEQPACKET socketpair. */
int crisp_ipc_socketpair(int ret_fds[2]);

/*
 * Unpacks a payload with a memory budget: protobuf-c can expand crafted input
 * many times over, so allocations past the budget fail the unpack instead of
 * exhausting memory.  Free the result with crisp_proto_free().
 */
#define CRISP_PROTO_BUDGET_FACTOR 8u
#define CRISP_PROTO_BUDGET_MIN (256u * 1024u)
#define CRISP_PROTO_BUDGET_MAX (128u * 1024u * 1024u)

ProtobufCMessage *crisp_proto_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
				     size_t len, CrispError **err);
/* As crisp_proto_unpack with an explicit budget in bytes (for tests and criapi). */
ProtobufCMessage *crisp_proto_unpack_budget(const ProtobufCMessageDescriptor *desc,
					    const uint8_t *data, size_t len, size_t budget,
					    CrispError **err);
void crisp_proto_free(void *msg);
static inline void crisp_proto_freep(void *p)
{
	crisp_proto_free(*(void **)p);
}
#define _cleanup_proto_ _cleanup_(crisp_proto_freep)

/* Returns a malloc'd packed copy of msg and its length. */
uint8_t *crisp_proto_pack(const ProtobufCMessage *msg, size_t *ret_len);
/*
 * A deep copy of a message we hold (it was checked when it came in), to keep
 * after the original is freed.  Free it with protobuf_c_message_free_unpacked
 * (msg, NULL); a message that does not survive its own packing aborts.
 */
ProtobufCMessage *crisp_proto_copy(const ProtobufCMessage *msg);

#endif
