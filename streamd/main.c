/*
 * crisp-streamd - serves exec, attach and port-forward streams for crisp.
 */
#include "daemon.h"
#include "ipc_types.h"
#include "streamd.h"

static StreamdServer *server;

/* Exec, Attach, PortForward: the request is kept under a new token, whose URL is the answer. */
static int register_call(CrispRequest *req, StreamKind kind, const char *path,
			 const ProtobufCMessageDescriptor *answer, CrispError **err)
{
	char token[STREAMD_TOKEN_LEN + 1];
	int r = streamd_token_add(kind, req->msg, token, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *url =
		xasprintf("%s/%s/%s", streamd_http_base_url(server), path, token);
	/* ExecResponse, AttachResponse and PortForwardResponse are each just the url. */
	ProtobufCMessage *a = xcalloc(1, answer->sizeof_message);
	protobuf_c_message_init(answer, a);
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(answer, "url");
	*(char **)((uint8_t *)a + f->offset) = url;
	r = crisp_reply(req, req->type + 1, a, NULL, 0);
	free(a);
	return r;
}

static int on_exec(CrispRequest *req, void *userdata _unused_, CrispError **err)
{
	return register_call(req, STREAM_EXEC, "exec", &runtime__v1__exec_response__descriptor,
			     err);
}

static int on_attach(CrispRequest *req, void *userdata _unused_, CrispError **err)
{
	return register_call(req, STREAM_ATTACH, "attach",
			     &runtime__v1__attach_response__descriptor, err);
}

static int on_port_forward(CrispRequest *req, void *userdata _unused_, CrispError **err)
{
	return register_call(req, STREAM_PORT_FORWARD, "portforward",
			     &runtime__v1__port_forward_response__descriptor, err);
}

static StreamdTls tls;

/* The key is root's alone: read it before streamd becomes user crisp. */
static int read_tls(CrispBackend *b _unused_, CrispError **err)
{
	return streamd_http_read_tls(crisp_backend_config, &tls, err);
}

static int setup(CrispBackend *b _unused_, CrispError **err)
{
	return streamd_http_start(crisp_backend_config, &tls, &server, err);
}

static void teardown(CrispBackend *b _unused_)
{
	streamd_http_stop(server);
	server = NULL;
}

static const CrispHandler streamd_handlers[] = {
	{ CRISP_MSG_STREAMD_BASE + 0, &runtime__v1__exec_request__descriptor, on_exec, 0, 0 },
	{ CRISP_MSG_STREAMD_BASE + 2, &runtime__v1__attach_request__descriptor, on_attach, 0, 0 },
	{ CRISP_MSG_STREAMD_BASE + 4, &runtime__v1__port_forward_request__descriptor,
	  on_port_forward, 0, 0 },
	/* The long poll holds a worker for up to its wait. */
	{ CRISP_MSG_STREAMD_WORK_REQ, &crisp__stream_work_request__descriptor, streamd_work_wait,
	  CRISP_HANDLER_ASYNC, 0 },
	{ CRISP_MSG_STREAMD_WORK_DONE_REQ, &crisp__stream_work_done__descriptor, streamd_work_done,
	  CRISP_HANDLER_FDS_UP_TO, 4 },
};

int main(int argc, char **argv)
{
	/* No database and no directory: streamd keeps its tokens in memory. */
	static const CrispBackendSpec spec = {
		.name = "crisp-streamd",
		.backend = CRISP__BACKEND__BACKEND_STREAMD,
		.profile = &streamd_profile,
		.handlers = streamd_handlers,
		.n_handlers = ELEMENTSOF(streamd_handlers),
		.n_workers = 8,
		.before_sandbox = read_tls,
		.setup = setup,
		.teardown = teardown,
	};
	return crisp_backend_main(&spec, argc, argv);
}
