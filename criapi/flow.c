/*
 * flow.c - steps across backends (see flow.h).
 */
#include "flow.h"

#include <stdio.h>
#include <sys/random.h>

#define UNDO_TIMEOUT_MS 60000

typedef struct StepCall {
	void *flow;
	CriapiFlowStep next;
} StepCall;

static void step_done(void *userdata, ProtobufCMessage *answer, int *fds _unused_,
		      size_t n_fds _unused_, CrispError *err)
{
	StepCall *s = userdata;
	void *flow = s->flow;
	CriapiFlowStep next = s->next;
	free(s);
	next(flow, answer, err);
	crisp_proto_free(answer);
}

void criapi_flow_call(void *flow, Crisp__Backend backend, uint16_t type,
		      const ProtobufCMessage *msg, const ProtobufCMessageDescriptor *ans_desc,
		      int64_t deadline_ms, CriapiFlowStep next)
{
	StepCall *s = xmalloc(sizeof(*s));
	*s = (StepCall){ flow, next };
	CrispError *err = NULL;
	if (crisp_ipc_client_call_async(criapi_backend(backend), type, msg, NULL, 0, type + 1,
					ans_desc, deadline_ms, step_done, s, &err) < 0) {
		free(s);
		next(flow, NULL, err);
		crisp_error_free(err);
	}
}

int64_t criapi_flow_undo_deadline(void)
{
	return crisp_now_ms() + UNDO_TIMEOUT_MS;
}

int criapi_flow_new_id(char ret[static 65], CrispError **err)
{
	uint8_t raw[32];
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "drawing an ID");
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(ret + 2 * i, 3, "%02x", raw[i]);
	return 0;
}

void criapi_flow_reply_empty(CriapiReply *reply, const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m = xmalloc(desc->sizeof_message);
	desc->message_init(m);
	CriapiResponse resp = { m, criapi_response_free_plain };
	criapi_reply_finish(reply, &resp, NULL);
}
