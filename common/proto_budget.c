/*
 * proto_budget.c - protobuf-c unpacking under a memory budget.
 *
 * Each allocation carries a small header that points at its budget, so the
 * message can be freed later without the caller keeping the allocator: the
 * budget lives as long as any allocation charged to it.
 */
#include "ipc.h"

typedef struct Budget {
	size_t limit;
	size_t used;
	size_t live;
	bool orphaned; /* the unpack returned; free the budget with its last allocation */
	/* An allocation was refused.  Test fix: after a failed unpack protobuf-c has
	 * already released the partial allocations, so `used` no longer shows that
	 * the budget ran out; remember it here instead. */
	bool refused;
} Budget;

typedef struct AllocHeader {
	Budget *budget;
	size_t size;
} AllocHeader;

_Static_assert(sizeof(AllocHeader) % 16 == 0, "allocations stay 16-byte aligned");

static void *budget_alloc(void *data, size_t size)
{
	Budget *b = data;

	if (size > b->limit - b->used) {
		b->refused = true;
		return NULL;
	}
	AllocHeader *h = malloc(sizeof(*h) + size);
	if (!h)
		return NULL;
	h->budget = b;
	h->size = size;
	b->used += size;
	b->live++;
	return h + 1;
}

static void budget_release(void *data _unused_, void *p)
{
	if (!p)
		return;
	AllocHeader *h = (AllocHeader *)p - 1;
	Budget *b = h->budget;
	b->used -= h->size;
	b->live--;
	free(h);
	if (b->live == 0 && b->orphaned)
		free(b);
}

/* Frees through the headers; needs no budget of its own. */
static ProtobufCAllocator release_allocator = {
	.alloc = NULL,
	.free = budget_release,
	.allocator_data = NULL,
};

ProtobufCMessage *crisp_proto_unpack_budget(const ProtobufCMessageDescriptor *desc,
					    const uint8_t *data, size_t len, size_t budget,
					    CrispError **err)
{
	Budget *b = xcalloc(1, sizeof(*b));
	b->limit = budget;
	ProtobufCAllocator alloc = {
		.alloc = budget_alloc,
		.free = budget_release,
		.allocator_data = b,
	};

	ProtobufCMessage *msg = protobuf_c_message_unpack(desc, &alloc, len, data);
	if (!msg) {
		bool over = b->refused;
		free(b); /* protobuf-c released every partial allocation */
		if (over)
			crisp_error_set(err, CRISP_ERR_RESOURCE_EXHAUSTED, ENOMEM,
					"%s: decoding would need more than %zu bytes", desc->name,
					budget);
		else
			crisp_error_set(err, CRISP_ERR_INVALID, EBADMSG, "%s: malformed message",
					desc->name);
		return NULL;
	}
	if (b->live == 0)
		free(b);
	else
		b->orphaned = true;
	return msg;
}

ProtobufCMessage *crisp_proto_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
				     size_t len, CrispError **err)
{
	size_t budget = len * CRISP_PROTO_BUDGET_FACTOR;
	if (budget < CRISP_PROTO_BUDGET_MIN)
		budget = CRISP_PROTO_BUDGET_MIN;
	if (budget > CRISP_PROTO_BUDGET_MAX)
		budget = CRISP_PROTO_BUDGET_MAX;
	return crisp_proto_unpack_budget(desc, data, len, budget, err);
}

void crisp_proto_free(void *msg)
{
	if (msg)
		protobuf_c_message_free_unpacked(msg, &release_allocator);
}

uint8_t *crisp_proto_pack(const ProtobufCMessage *msg, size_t *ret_len)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *buf = xmalloc(len);
	protobuf_c_message_pack(msg, buf);
	*ret_len = len;
	return buf;
}

ProtobufCMessage *crisp_proto_copy(const ProtobufCMessage *msg)
{
	size_t len;
	_cleanup_free_ uint8_t *buf = crisp_proto_pack(msg, &len);
	ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
	if (!copy)
		abort(); /* packed here, from a message that was valid */
	return copy;
}
