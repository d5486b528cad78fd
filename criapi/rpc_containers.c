/*
 * rpc_containers.c - the container calls that take more than one backend:
 * CreateContainer and RemoveContainer.
 *
 * CreateContainer (ARCHITECTURE.md §5):
 *   1. criapi draws the container ID;
 *   2. imaged prepares the writable snapshot from the image and resolves
 *      the user, answering with the layer chain and the image's config;
 *   3. sandboxd builds the spec, mounts the root and creates the container
 *      under conmon.
 * When sandboxd fails, imaged releases the snapshot again.
 *
 * RemoveContainer removes the container in sandboxd, then releases its
 * snapshot in imaged (which may have none left: that is fine).  A request
 * may name a container by a unique ID prefix; sandboxd resolves it first.
 */
#include "criapi.h"

#include "flow.h"
#include "ipc_types.h"
#include "log.h"

#include <stdio.h>

typedef struct ContainerFlow {
	CriapiReply *reply;
	int64_t deadline_ms;
	char id[65];
	char *pod_id;
	uint8_t *config;
	size_t config_len;
	char *image;
	CrispError *failure;
} ContainerFlow;

static void flow_free(ContainerFlow *f)
{
	free(f->pod_id);
	free(f->config);
	free(f->image);
	crisp_error_free(f->failure);
	free(f);
}

static void finish(ContainerFlow *f, CriapiResponse *resp, const CrispError *err)
{
	criapi_reply_finish(f->reply, resp, err);
	flow_free(f);
}

/* --- CreateContainer --- */

static void released_after_failure(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	ContainerFlow *f = flow;
	if (err)
		log_warning("container %s: releasing its snapshot: %s", f->id, err->message);
	finish(f, NULL, f->failure);
}

static void created(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	ContainerFlow *f = flow;
	if (err) {
		crisp_error_set(&f->failure, err->code, EIO, "%s", err->message);
		Crisp__ReleaseContainerSnapshotRequest m =
			CRISP__RELEASE_CONTAINER_SNAPSHOT_REQUEST__INIT;
		m.container_id = f->id;
		criapi_flow_call(f, CRISP__BACKEND__BACKEND_IMAGED, CRISP_MSG_IMAGED_RELEASE_REQ,
				 &m.base, &crisp__release_container_snapshot_reply__descriptor,
				 criapi_flow_undo_deadline(), released_after_failure);
		return;
	}
	Runtime__V1__CreateContainerResponse *r = xmalloc(sizeof(*r));
	runtime__v1__create_container_response__init(r);
	r->container_id = xstrdup(f->id);
	CriapiResponse resp = { &r->base, criapi_response_free_plain };
	finish(f, &resp, NULL);
}

static void prepared(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	ContainerFlow *f = flow;
	if (err) {
		finish(f, NULL, err);
		return;
	}
	Crisp__ContainerCreateRequest m = CRISP__CONTAINER_CREATE_REQUEST__INIT;
	m.container_id = f->id;
	m.pod_id = f->pod_id;
	m.config.data = f->config;
	m.config.len = f->config_len;
	m.snapshot = (Crisp__PrepareContainerSnapshotReply *)answer;
	m.image_ref = f->image;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD,
			 CRISP_MSG_SANDBOXD_CONTAINER_CREATE_REQ, &m.base,
			 &crisp__container_create_reply__descriptor, f->deadline_ms, created);
}

int criapi_rpc_create_container(const CriapiCall *call, CriapiResponse *ret _unused_,
				CrispError **err)
{
	const Runtime__V1__CreateContainerRequest *q = (const void *)call->request;
	const Runtime__V1__ContainerConfig *c = q->config;
	if (!c || !c->image || !c->image->image || !*c->image->image)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "config.image is missing");
	ContainerFlow *f = xcalloc(1, sizeof(*f));
	if (criapi_flow_new_id(f->id, err) < 0) {
		flow_free(f);
		return -EIO;
	}
	f->reply = call->reply;
	f->deadline_ms = call->deadline_ms;
	f->pod_id = xstrdup(q->pod_sandbox_id);
	f->image = xstrdup(c->image->image);
	/* Our own copy: the request is gone when this handler returns. */
	f->config_len = protobuf_c_message_get_packed_size(&c->base);
	f->config = xmalloc(f->config_len + 1);
	protobuf_c_message_pack(&c->base, f->config);

	Crisp__PrepareContainerSnapshotRequest m = CRISP__PREPARE_CONTAINER_SNAPSHOT_REQUEST__INIT;
	m.container_id = f->id;
	m.image = f->image;
	const Runtime__V1__LinuxContainerSecurityContext *sc =
		c->linux ? c->linux->security_context : NULL;
	if (sc && sc->run_as_user) {
		m.has_run_as_user = true;
		m.run_as_user = sc->run_as_user->value;
	}
	if (sc && sc->run_as_username)
		m.run_as_username = sc->run_as_username;
	if (sc && sc->run_as_group) {
		m.has_run_as_group = true;
		m.run_as_group = sc->run_as_group->value;
	}
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_IMAGED, CRISP_MSG_IMAGED_PREPARE_REQ, &m.base,
			 &crisp__prepare_container_snapshot_reply__descriptor, f->deadline_ms,
			 prepared);
	return CRIAPI_ANSWER_LATER;
}

/* --- RemoveContainer --- */

static void snapshot_released(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	ContainerFlow *f = flow;
	/* NOT_FOUND: the snapshot went with an earlier, interrupted removal. */
	if (err && err->code != CRISP_ERR_NOT_FOUND) {
		finish(f, NULL, err);
		return;
	}
	criapi_flow_reply_empty(f->reply, &runtime__v1__remove_container_response__descriptor);
	flow_free(f);
}

static void container_removed(void *flow, ProtobufCMessage *answer _unused_, CrispError *err)
{
	ContainerFlow *f = flow;
	if (err) {
		finish(f, NULL, err);
		return;
	}
	Crisp__ReleaseContainerSnapshotRequest m = CRISP__RELEASE_CONTAINER_SNAPSHOT_REQUEST__INIT;
	m.container_id = f->id;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_IMAGED, CRISP_MSG_IMAGED_RELEASE_REQ, &m.base,
			 &crisp__release_container_snapshot_reply__descriptor, f->deadline_ms,
			 snapshot_released);
}

static void remove_in_sandboxd(ContainerFlow *f)
{
	Runtime__V1__RemoveContainerRequest m = RUNTIME__V1__REMOVE_CONTAINER_REQUEST__INIT;
	m.container_id = f->id;
	criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 16, &m.base,
			 &runtime__v1__remove_container_response__descriptor, f->deadline_ms,
			 container_removed);
}

static void container_resolved(void *flow, ProtobufCMessage *answer, CrispError *err)
{
	ContainerFlow *f = flow;
	if (err && err->code == CRISP_ERR_NOT_FOUND) {
		snapshot_released(f, NULL, NULL); /* removed already */
		return;
	}
	if (err) {
		finish(f, NULL, err);
		return;
	}
	const Runtime__V1__ContainerStatusResponse *a = (const void *)answer;
	snprintf(f->id, sizeof(f->id), "%s", a->status ? a->status->id : "");
	remove_in_sandboxd(f);
}

int criapi_rpc_remove_container(const CriapiCall *call, CriapiResponse *ret _unused_,
				CrispError **err)
{
	const Runtime__V1__RemoveContainerRequest *q = (const void *)call->request;
	if (!q->container_id || !*q->container_id)
		return crisp_error_set(err, CRISP_ERR_INVALID, EINVAL, "container_id is empty");
	ContainerFlow *f = xcalloc(1, sizeof(*f));
	f->reply = call->reply;
	f->deadline_ms = call->deadline_ms;
	snprintf(f->id, sizeof(f->id), "%s", q->container_id);
	if (strlen(q->container_id) == 64) {
		remove_in_sandboxd(f);
	} else {
		/* A prefix: sandboxd knows which container it names; imaged needs the whole ID. */
		Runtime__V1__ContainerStatusRequest m = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
		m.container_id = q->container_id;
		criapi_flow_call(f, CRISP__BACKEND__BACKEND_SANDBOXD, CRISP_MSG_SANDBOXD_BASE + 20,
				 &m.base, &runtime__v1__container_status_response__descriptor,
				 f->deadline_ms, container_resolved);
	}
	return CRIAPI_ANSWER_LATER;
}
