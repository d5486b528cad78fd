/*
 * runtime.c - running runc or crun verbs (see runtime.h).
 */
#include "runtime.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <sys/random.h>

char *sandboxd_runtime_last_error(Sandboxd *sd, const char *id)
{
	_cleanup_free_ char *path = xasprintf("%s/%s/runc.log", sd->bundles_dir, id);
	return sandboxd_runtime_log_error(path);
}

char *sandboxd_runtime_log_error(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char line[4096];
	char *msg = NULL;
	while (fgets(line, sizeof(line), f)) {
		json_t *j = json_loads(line, 0, NULL);
		const char *level = json_string_value(json_object_get(j, "level"));
		const char *m = json_string_value(json_object_get(j, "msg"));
		if (m && level && (strcmp(level, "error") == 0 || strcmp(level, "fatal") == 0)) {
			free(msg);
			msg = xstrdup(m);
		}
		json_decref(j);
	}
	fclose(f);
	return msg;
}

static int run(Sandboxd *sd, const char *handler, const char *id, char **args, size_t n_args,
	       CrispError **err)
{
	Crisp__SpawnRequest req = CRISP__SPAWN_REQUEST__INIT;
	req.kind = SANDBOXD_SPAWN_RUNTIME;
	req.id = (char *)id;
	req.n_args = n_args;
	req.args = args;
	req.wait = true;
	req.timeout_ms = SANDBOXD_RUNTIME_TIMEOUT_MS;
	Crisp__SpawnReply *reply = NULL;
	int r = crisp_spawn(&sd->backend->spawn, &req, NULL, 0, 0, &reply, err);
	if (r < 0)
		return crisp_error_wrap(err, "%s %s %s", handler, args[1], id);
	bool ok = reply->exited && reply->exit_code == 0 && !reply->timed_out;
	if (!ok) {
		_cleanup_free_ char *msg = sandboxd_runtime_last_error(sd, id);
		if (reply->timed_out)
			r = crisp_error_set(err, CRISP_ERR_DEADLINE, ETIMEDOUT,
					    "%s %s %s took longer than %d s", handler, args[1], id,
					    SANDBOXD_RUNTIME_TIMEOUT_MS / 1000);
		else
			r = crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "%s %s failed: %s",
					    handler, args[1],
					    msg ? msg : "no message in the runtime's log");
	}
	crisp_proto_free(reply);
	return r < 0 ? r : 0;
}

void sandboxd_runtime_token(char ret[static 17])
{
	uint8_t raw[8];
	if (getrandom(raw, sizeof(raw), 0) != sizeof(raw))
		abort(); /* the kernel's random source does not fail after boot */
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(ret + 2 * i, 3, "%02x", raw[i]);
}

int sandboxd_runtime(Sandboxd *sd, const char *handler, const char *id, const char *verb,
		     CrispError **err)
{
	char *args[2] = { (char *)handler, (char *)verb };
	return run(sd, handler, id, args, 2, err);
}

int sandboxd_runtime_kill(Sandboxd *sd, const char *handler, const char *id, int sig,
			  CrispError **err)
{
	char num[16];
	snprintf(num, sizeof(num), "%d", sig);
	char *args[3] = { (char *)handler, (char *)"kill", num };
	return run(sd, handler, id, args, 3, err);
}
