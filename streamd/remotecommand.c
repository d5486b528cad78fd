/*
 * remotecommand.c - exec and attach over an upgraded connection, as the
 * Kubernetes remotecommand protocols define them.
 *
 * The session: over SPDY the client opens a stream per channel it wants
 * (the "streamtype" header: error, stdin, stdout, stderr, resize) and the
 * session waits for the ones the request needs; over WebSocket every
 * channel exists, and an empty message on the lowest channel we write
 * tells the client we are ready.  Then criapi has sandboxd start the
 * command (or connect to conmon), and the fds that come back are relayed:
 * stdin to the command, its stdout and stderr to the client, resize
 * messages ({"Width":w,"Height":h}) to the pty (exec) or to conmon's
 * control FIFO (attach).  At the end the error channel gets the outcome:
 * for v4 a JSON Status (Success, or a Failure with reason NonZeroExitCode
 * and the code as its cause), for older versions the error text alone.
 *
 * If the client goes away, every fd is closed: sandboxd sees its status
 * socket close and kills the command.
 */
#include "streamd.h"

#include "log.h"

#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#define STREAMS_TIMEOUT_MS 30000 /* for the client to open its streams */
#define WORK_TIMEOUT_MS 60000
#define STDIN_MAX (256u << 10) /* client bytes waiting for the command */
#define RESIZE_MAX 4096
#define READ_CHUNK (32u << 10)
#define ATTACH_PACKET 8193 /* conmon's: a pipe byte and up to 8 KiB */

enum {
	CH_STDIN = 0,
	CH_STDOUT = 1,
	CH_STDERR = 2,
	CH_ERROR = 3,
	CH_RESIZE = 4
};

typedef struct Output {
	int fd;
	int channel;
	bool eof;
} Output;

typedef struct Session {
	Conn *c;
	int version; /* 1 to 5 */
	bool exec, tty, want_stdin, want_stdout, want_stderr;
	char **cmd;
	size_t n_cmd;

	StreamWorkResult work;
	int status_fd;	    /* exec: the exit code arrives here */
	int stdin_fd;	    /* exec: pipe or pty master; attach: the socket */
	int pty_fd;	    /* exec with tty: the master, for resizes */
	int ctl_fd;	    /* attach with tty: conmon's control FIFO */
	bool attach_socket; /* output comes as conmon's packets */
	Output out[2];	    /* stdout/pty and stderr (exec), or the socket (attach) */
	size_t n_out;
	int exit_code;	   /* -1 until known */
	char *start_error; /* the runtime could not start the command: why */
	bool status_done;

	uint8_t *stdin_buf;
	size_t stdin_len;
	bool stdin_fin;
	char resize_buf[RESIZE_MAX];
	size_t resize_len;
} Session;

static int protocol_version(const char *p)
{
	if (strncmp(p, "v5.", 3) == 0)
		return 5;
	if (strncmp(p, "v4.", 3) == 0)
		return 4;
	if (strncmp(p, "v3.", 3) == 0)
		return 3;
	if (strncmp(p, "v2.", 3) == 0)
		return 2;
	return 1;
}

/* --- the outcome on the error channel --- */

static void write_status(Session *s, const char *reason, const char *message, int exit_code)
{
	Conn *c = s->c;
	if (!conn_can_send(c, CH_ERROR))
		return;
	if (s->version < 4) {
		if (message)
			conn_send(c, CH_ERROR, message, strlen(message));
		return;
	}
	json_t *st = json_pack("{s:{},s:s}", "metadata", "status", message ? "Failure" : "Success");
	if (message) {
		json_object_set_new(st, "message", json_string(message));
		json_object_set_new(st, "reason", json_string(reason));
		json_t *cause = json_object();
		if (exit_code >= 0) {
			char code[16];
			snprintf(code, sizeof(code), "%d", exit_code);
			json_object_set_new(cause, "reason", json_string("ExitCode"));
			json_object_set_new(cause, "message", json_string(code));
		} else {
			json_object_set_new(cause, "message", json_string(message));
			json_object_set_new(st, "code", json_integer(500));
		}
		json_object_set_new(st, "details", json_pack("{s:[o]}", "causes", cause));
	}
	_cleanup_free_ char *text = json_dumps(st, JSON_COMPACT);
	json_decref(st);
	conn_send(c, CH_ERROR, text, strlen(text));
}

/* The command as the kubelet words it in its messages (malloc'd). */
static char *command_text(const Session *s)
{
	char *cmd = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&cmd, &len);
	for (size_t i = 0; i < s->n_cmd; i++)
		fprintf(f, "%s%s", i ? " " : "", s->cmd[i]);
	fclose(f);
	return cmd;
}

static void write_outcome(Session *s)
{
	if (s->start_error) {
		_cleanup_free_ char *cmd = command_text(s);
		_cleanup_free_ char *msg =
			xasprintf("Internal error occurred: error executing "
				  "command [%s]: the runtime could not start it: %s",
				  cmd, s->start_error);
		write_status(s, "InternalError", msg, -1);
		return;
	}
	if (!s->exec || s->exit_code == 0) {
		write_status(s, NULL, NULL, 0);
		return;
	}
	if (s->exit_code < 0) {
		write_status(s, "InternalError",
			     "Internal error occurred: the command's exit code is unknown "
			     "(sandboxd, which ran it, restarted or failed)",
			     -1);
		return;
	}
	/* The message kubectl prints. */
	_cleanup_free_ char *cmd = command_text(s);
	_cleanup_free_ char *msg = xasprintf("command terminated with non-zero exit code: "
					     "error executing command [%s], exit code %d",
					     cmd, s->exit_code);
	write_status(s, "NonZeroExitCode", msg, s->exit_code);
}

/* --- opening the channels --- */

static int channel_of(const char *type)
{
	static const char *const names[] = { "stdin", "stdout", "stderr", "error", "resize" };
	for (int i = 0; type && i < 5; i++)
		if (strcmp(type, names[i]) == 0)
			return i;
	return -1;
}

static bool streams_complete(Session *s)
{
	Conn *c = s->c;
	return conn_has_channel(c, CH_ERROR) && (!s->want_stdin || conn_has_channel(c, CH_STDIN)) &&
	       (!s->want_stdout || conn_has_channel(c, CH_STDOUT)) &&
	       (!s->want_stderr || s->tty || conn_has_channel(c, CH_STDERR)) &&
	       (!s->tty || s->version < 3 || conn_has_channel(c, CH_RESIZE));
}

/* SPDY: accepts the client's streams until the request's set is there. */
static bool await_streams(Session *s)
{
	int64_t until = crisp_now_ms() + STREAMS_TIMEOUT_MS;
	while (!streams_complete(s)) {
		int64_t left = until - crisp_now_ms();
		if (left <= 0) {
			log_info("streaming session: the client did not open its streams in time");
			return false;
		}
		ConnEvent ev;
		conn_poll(s->c, NULL, 0, (int)left, &ev);
		if (ev.kind == CONN_EV_CLOSED)
			return false;
		if (ev.kind != CONN_EV_OPEN)
			continue;
		int ch = channel_of(ev.streamtype);
		if (ch < 0 || conn_has_channel(s->c, ch))
			conn_refuse_stream(s->c, ev.stream_id);
		else
			conn_accept_stream(s->c, ev.stream_id, ch);
	}
	return true;
}

/* --- relaying --- */

static void resize(Session *s, int width, int height)
{
	if (s->pty_fd >= 0) {
		struct winsize ws = { .ws_row = (unsigned short)height,
				      .ws_col = (unsigned short)width };
		(void)ioctl(s->pty_fd, TIOCSWINSZ, &ws);
	} else if (s->ctl_fd >= 0) {
		char line[64];
		int n = snprintf(line, sizeof(line), "1 %d %d\n", height, width);
		ssize_t _unused_ w = write(s->ctl_fd, line, (size_t)n);
	}
}

/* Resize messages are JSON objects back to back, possibly split across frames. */
static void take_resize(Session *s, const uint8_t *data, size_t len)
{
	if (s->resize_len + len > sizeof(s->resize_buf)) {
		s->resize_len = 0; /* a client flooding garbage: start over */
		return;
	}
	memcpy(s->resize_buf + s->resize_len, data, len);
	s->resize_len += len;
	for (;;) {
		char *end = memchr(s->resize_buf, '}', s->resize_len);
		if (!end)
			return;
		size_t n = (size_t)(end - s->resize_buf) + 1;
		json_error_t jerr;
		json_t *o = json_loadb(s->resize_buf, n, 0, &jerr);
		json_int_t w = json_integer_value(json_object_get(o, "Width"));
		json_int_t h = json_integer_value(json_object_get(o, "Height"));
		if (o && w > 0 && h > 0 && w <= 65535 && h <= 65535)
			resize(s, (int)w, (int)h);
		json_decref(o);
		memmove(s->resize_buf, s->resize_buf + n, s->resize_len - n);
		s->resize_len -= n;
	}
}

static void take_stdin(Session *s, const uint8_t *data, size_t len)
{
	if (s->stdin_fd < 0 || s->stdin_fin) {
		conn_consumed(s->c, CH_STDIN, len); /* nowhere to go: dropped */
		return;
	}
	s->stdin_buf = xrealloc(s->stdin_buf, s->stdin_len + len);
	memcpy(s->stdin_buf + s->stdin_len, data, len);
	s->stdin_len += len;
}

static void close_stdin(Session *s)
{
	if (s->stdin_fd < 0)
		return;
	if (s->attach_socket)
		(void)shutdown(s->stdin_fd, SHUT_WR); /* conmon closes stdin for stdin_once */
	else if (s->stdin_fd != s->pty_fd)
		safe_close(s->stdin_fd);
	/* A tty's stdin ends with the session: closing the master would hang it up. */
	s->stdin_fd = -1;
}

static void flush_stdin(Session *s)
{
	while (s->stdin_len && s->stdin_fd >= 0) {
		ssize_t k = s->attach_socket ? send(s->stdin_fd, s->stdin_buf,
						    s->stdin_len < 8192 ? s->stdin_len : 8192,
						    MSG_NOSIGNAL | MSG_DONTWAIT)
					     : write(s->stdin_fd, s->stdin_buf, s->stdin_len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN)
			break;
		if (k <= 0) { /* the command closed its stdin: drop what is left */
			conn_consumed(s->c, CH_STDIN, s->stdin_len);
			s->stdin_len = 0;
			close_stdin(s);
			break;
		}
		memmove(s->stdin_buf, s->stdin_buf + k, s->stdin_len - (size_t)k);
		s->stdin_len -= (size_t)k;
		conn_consumed(s->c, CH_STDIN, (size_t)k);
	}
	if (!s->stdin_len && s->stdin_fin)
		close_stdin(s);
	conn_pause_input(s->c, s->stdin_len >= STDIN_MAX);
}

static void relay_output(Session *s, Output *o)
{
	uint8_t buf[READ_CHUNK];
	if (s->attach_socket) {
		ssize_t k = recv(o->fd, buf, ATTACH_PACKET, MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (k <= 0) {
			o->eof = true;
			return;
		}
		/* conmon's pipe numbers: 2 stdout, 3 stderr. */
		int ch = buf[0] == 3 ? CH_STDERR : CH_STDOUT;
		if (ch == CH_STDERR && !conn_has_channel(s->c, CH_STDERR))
			ch = CH_STDOUT;
		if (k > 1 && conn_can_send(s->c, ch))
			conn_send(s->c, ch, buf + 1, (size_t)k - 1);
		return;
	}
	size_t room = conn_can_send(s->c, o->channel) ? conn_room(s->c, o->channel) : sizeof(buf);
	if (room > sizeof(buf))
		room = sizeof(buf);
	ssize_t k = read(o->fd, buf, room);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k <= 0) { /* EOF, or EIO from a pty whose other side is gone */
		o->eof = true;
		return;
	}
	if (conn_can_send(s->c, o->channel))
		conn_send(s->c, o->channel, buf, (size_t)k);
}

/* sandboxd's one packet: the exit code in decimal, or "error: " and why the command never ran. */
static void read_status(Session *s)
{
	char buf[4096];
	ssize_t k = recv(s->status_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (k > 0) {
		buf[k] = '\0';
		char *end;
		long code = strtol(buf, &end, 10);
		if (strncmp(buf, "error: ", 7) == 0)
			s->start_error = xstrdup(buf + 7);
		else
			s->exit_code =
				(end == buf || *end || code < 0 || code > 255) ? -1 : (int)code;
	}
	s->status_done = true;
}

static bool finished(Session *s)
{
	for (size_t i = 0; i < s->n_out; i++)
		if (!s->out[i].eof)
			return false;
	return !s->exec || s->status_done;
}

static void relay(Session *s)
{
	Conn *c = s->c;
	while (!finished(s)) {
		struct pollfd p[4];
		size_t n = 0;
		int out_index[2] = { -1, -1 }, stdin_index = -1, status_index = -1;
		for (size_t i = 0; i < s->n_out; i++) {
			Output *o = &s->out[i];
			if (o->eof)
				continue;
			/* Only while the client can take it: SPDY's windows hold the command back. */
			bool room = s->attach_socket ? conn_room(c, CH_STDOUT) >= ATTACH_PACKET ||
							       !conn_can_send(c, CH_STDOUT)
						     : conn_room(c, o->channel) > 0 ||
							       !conn_can_send(c, o->channel);
			if (!room)
				continue;
			out_index[i] = (int)n;
			p[n++] = (struct pollfd){ .fd = o->fd, .events = POLLIN };
		}
		if (s->stdin_len && s->stdin_fd >= 0) {
			stdin_index = (int)n;
			p[n++] = (struct pollfd){ .fd = s->stdin_fd, .events = POLLOUT };
		}
		if (s->exec && !s->status_done) {
			status_index = (int)n;
			p[n++] = (struct pollfd){ .fd = s->status_fd, .events = POLLIN };
		}
		ConnEvent ev;
		conn_poll(c, p, n, -1, &ev);
		switch (ev.kind) {
		case CONN_EV_CLOSED:
			return;
		case CONN_EV_OPEN:
			conn_refuse_stream(c, ev.stream_id); /* all were opened before */
			break;
		case CONN_EV_DATA:
			if (ev.channel == CH_STDIN)
				take_stdin(s, ev.data, ev.len);
			else if (ev.channel == CH_RESIZE)
				take_resize(s, ev.data, ev.len);
			else
				conn_consumed(c, ev.channel, ev.len);
			flush_stdin(s);
			break;
		case CONN_EV_FIN:
		case CONN_EV_RESET:
			if (ev.channel == CH_STDIN) {
				s->stdin_fin = true;
				flush_stdin(s);
			}
			break;
		default:
			break;
		}
		for (size_t i = 0; i < s->n_out; i++)
			if (out_index[i] >= 0 && p[out_index[i]].revents)
				relay_output(s, &s->out[i]);
		if (stdin_index >= 0 && p[stdin_index].revents)
			flush_stdin(s);
		if (status_index >= 0 && p[status_index].revents)
			read_status(s);
	}
	write_outcome(s);
}

/* Takes the fds criapi brought, in the order sandboxd's answer gives. */
static bool take_fds(Session *s)
{
	StreamWorkResult *w = &s->work;
	size_t i = 0;
	if (s->exec) {
		size_t want = 1 + (s->tty ? 1 : s->want_stdin + s->want_stdout + s->want_stderr);
		if (w->n_fds != want)
			return false;
		s->status_fd = w->fds[i++];
		if (s->tty) {
			s->pty_fd = w->fds[i];
			s->stdin_fd = s->want_stdin ? w->fds[i] : -1;
			s->out[s->n_out++] = (Output){ w->fds[i], CH_STDOUT, false };
			return true;
		}
		if (s->want_stdin)
			s->stdin_fd = w->fds[i++];
		if (s->want_stdout)
			s->out[s->n_out++] = (Output){ w->fds[i++], CH_STDOUT, false };
		if (s->want_stderr)
			s->out[s->n_out++] = (Output){ w->fds[i++], CH_STDERR, false };
		return true;
	}
	if (w->n_fds != 1 + (size_t)w->attach.tty)
		return false;
	s->attach_socket = true;
	s->stdin_fd = s->want_stdin ? w->fds[0] : -1;
	s->out[s->n_out++] = (Output){ w->fds[0], CH_STDOUT, false };
	if (w->attach.tty)
		s->ctl_fd = w->fds[1];
	return true;
}

void streamd_remotecommand_run(Conn *c, const SessionSetup *setup, StreamRequest *req)
{
	Session s = { .c = c,
		      .version = protocol_version(setup->subprotocol),
		      .status_fd = -1,
		      .stdin_fd = -1,
		      .pty_fd = -1,
		      .ctl_fd = -1,
		      .exit_code = -1 };
	Crisp__StreamWorkReply q = CRISP__STREAM_WORK_REPLY__INIT;
	if (req->exec) {
		const Runtime__V1__ExecRequest *e = req->exec;
		s.exec = true;
		s.tty = e->tty;
		s.want_stdin = e->stdin;
		s.want_stdout = e->stdout;
		s.want_stderr = e->stderr && !e->tty;
		s.cmd = e->cmd;
		s.n_cmd = e->n_cmd;
		q.kind = CRISP__STREAM_WORK_REPLY__KIND__EXEC;
		q.container_id = e->container_id;
		q.n_cmd = e->n_cmd;
		q.cmd = e->cmd;
	} else {
		const Runtime__V1__AttachRequest *a = req->attach;
		s.tty = a->tty;
		s.want_stdin = a->stdin;
		s.want_stdout = a->stdout;
		s.want_stderr = a->stderr && !a->tty;
		q.kind = CRISP__STREAM_WORK_REPLY__KIND__ATTACH;
		q.container_id = a->container_id;
	}
	q.tty = s.tty;
	q.stdin = s.want_stdin;
	q.stdout = s.want_stdout;
	q.stderr = s.want_stderr;

	if (setup->proto == CONN_SPDY && !await_streams(&s))
		goto out;
	if (setup->proto ==
	    CONN_WEBSOCKET) /* "ready": an empty message on the lowest channel we write */
		conn_send(c,
			  s.want_stdout	  ? CH_STDOUT
			  : s.want_stderr ? CH_STDERR
					  : CH_ERROR,
			  "", 0);

	_cleanup_error_ CrispError *err = NULL;
	if (streamd_work_run(&q, WORK_TIMEOUT_MS, &s.work, &err) < 0) {
		_cleanup_free_ char *msg =
			xasprintf("Internal error occurred: %s %s: %s",
				  s.exec ? "exec in" : "attach to", q.container_id, err->message);
		write_status(&s, "InternalError", msg, -1);
		goto out;
	}
	if (!take_fds(&s)) {
		write_status(&s, "InternalError",
			     "Internal error occurred: crisp handed over the wrong fds", -1);
		goto out;
	}
	relay(&s);
out:
	conn_finish(c);
	streamd_work_result_done(&s.work);
	free(s.stdin_buf);
	free(s.start_error);
	streamd_request_done(req);
}
