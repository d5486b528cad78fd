/*
 * fuzz_proto_unpack.c - crisp_proto_unpack and its memory budget.
 *
 * The first input byte picks a message type: every internal message a daemon
 * unpacks, and the request of every CRI method criapi serves (taken from the
 * service descriptors, so a new method is fuzzed without touching this file).
 * The rest is the payload.  It is unpacked with the normal budget, then with
 * a tiny one so the refused-allocation paths of the budget allocator run on
 * every input, not only on the rare one that is large enough.
 *
 * Besides the sanitizers (ASan, LeakSanitizer for what the allocator frees),
 * the harness checks the contract: an unpack returns either a message or an
 * error, and a message it returns can be packed again.
 */
#include "ipc.h"
#include "api.pb-c.h"
#include "internal.pb-c.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TINY_BUDGET 4096u

static const ProtobufCMessageDescriptor *descs[128];
static size_t n_descs;

static void add(const ProtobufCMessageDescriptor *d)
{
	if (n_descs >= ELEMENTSOF(descs))
		abort(); /* grow the table */
	descs[n_descs++] = d;
}

static void add_service(const ProtobufCServiceDescriptor *s)
{
	for (unsigned i = 0; i < s->n_methods; i++)
		add(s->methods[i].input);
}

/* Append new types at the end: the first byte of every committed input is an
 * index into this table. */
static void init_table(void)
{
	add(&crisp__hello__descriptor);
	add(&crisp__error_reply__descriptor);
	add(&crisp__health_request__descriptor);
	add(&crisp__health_reply__descriptor);
	add(&crisp__serve_channel__descriptor);
	add(&crisp__backend_channel__descriptor);
	add(&crisp__backend_up__descriptor);
	add(&crisp__front_serving__descriptor);
	add(&crisp__spawn_request__descriptor);
	add(&crisp__spawn_reply__descriptor);
	add_service(&runtime__v1__runtime_service__descriptor);
	add_service(&runtime__v1__image_service__descriptor);
}

static void unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n,
		   size_t budget)
{
	CrispError *err = NULL;
	ProtobufCMessage *msg = budget ? crisp_proto_unpack_budget(desc, p, n, budget, &err)
				       : crisp_proto_unpack(desc, p, n, &err);
	if (!msg == !err || (err && !err->message))
		abort(); /* exactly one of message and error */
	if (msg) {
		/* Walks the whole decoded tree: a bad pointer from the allocator shows here. */
		size_t len;
		free(crisp_proto_pack(msg, &len));
	}
	crisp_proto_free(msg);
	crisp_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (n_descs == 0)
		init_table();
	if (size == 0)
		return 0;

	const ProtobufCMessageDescriptor *desc = descs[data[0] % n_descs];
	unpack(desc, data + 1, size - 1, 0);
	unpack(desc, data + 1, size - 1, TINY_BUDGET);
	return 0;
}
