/*
 * flow.h - calls that take several backends in turn (rpc_pods.c,
 * rpc_containers.c): each step sends one request, and the backend's answer
 * (or failure) runs the next step on the channel's thread.
 */
#ifndef CRISP_CRIAPI_FLOW_H
#define CRISP_CRIAPI_FLOW_H

#include "criapi.h"

/* A step gets the answer (freed after it returns) or err (borrowed). */
typedef void (*CriapiFlowStep)(void *flow, ProtobufCMessage *answer, CrispError *err);

/*
 * Sends msg (type; the answer is type + 1) to backend; next runs exactly
 * once, with the answer or the failure, even when the send fails at once.
 */
void criapi_flow_call(void *flow, Crisp__Backend backend, uint16_t type,
		      const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *ans_desc,
		      int64_t deadline_ms, CriapiFlowStep next);

/* Undoing gets its own time, whatever was left of the caller's deadline. */
int64_t criapi_flow_undo_deadline(void);

/* 64 lowercase hex digits from getrandom(): a new pod or container ID. */
int criapi_flow_new_id(char ret[static 65], CrispError **err);

/* Answers with an empty response of desc's type. */
void criapi_flow_reply_empty(CriapiReply *reply, const ProtobufCMessageDescriptor *desc);

#endif
