/*
 * backend.c - privileged start-up, then the sandbox, then the server loop.
 */
#include "backend.h"

#include "log.h"
#include "version.h"

#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

const CrispConfig *crisp_backend_config;

static void usage(const char *name)
{
	printf("Usage: %s [--config FILE] [--root DIR] [--state DIR] [--log-level LEVEL]\n"
	       "          [--control-fd N]\n\n"
	       "A crisp backend daemon. It is started by `crisp run` (which passes\n"
	       "--control-fd) or by systemd socket activation; it is not meant to be\n"
	       "run by hand.\n",
	       name);
}

int crisp_backend_main(const CrispBackendSpec *spec, int argc, char **argv)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispBackend b = { 0 };
	CrispSandboxUser user = { 0 }, peer = { 0 };
	int listen_fd = -1, r;

	log_init(spec->name);
	/* Before any thread exists (the spawn helper's client starts one): every
	 * thread must inherit the mask, so these signals reach only the signalfd. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	r = crisp_options_parse(&b.opts, argc, argv, &err);
	if (r < 0) {
		log_error("%s", err->message);
		return 2;
	}
	if (b.opts.show_help) {
		usage(spec->name);
		return 0;
	}
	if (b.opts.show_version) {
		printf("%s %s\n", spec->name, CRISP_VERSION);
		return 0;
	}
	if (b.opts.print_profile) {
		sandbox_print_profile(spec->profile);
		return 0;
	}

	/* systemd passes the backend's listening socket; otherwise the supervisor's channel. */
	int n = sd_listen_fds(1);
	if (n > 1) {
		log_error("expected one listening socket from systemd, got %d", n);
		return 1;
	}
	if (n == 1)
		listen_fd = SD_LISTEN_FDS_START;
	if (listen_fd < 0 && b.opts.control_fd < 0) {
		log_error("no channel: run me from `crisp run` or a systemd socket unit");
		return 2;
	}
	/* Only the unprivileged front, which runs as the configured user, may connect. */
	if (listen_fd >= 0 && sandbox_lookup_user(b.opts.config.user, &peer, &err) < 0) {
		log_error("%s", err->message);
		return 1;
	}
	if (spec->profile->unprivileged &&
	    sandbox_lookup_user(b.opts.config.user, &user, &err) < 0) {
		log_error("%s", err->message);
		return 1;
	}

	if (spec->root_subdir) {
		b.dir = crisp_root_path(&b.opts.config, spec->root_subdir);
		r = crisp_mkdir_p(b.dir, 0700);
		if (r < 0) {
			log_error("creating %s: %s", b.dir, strerror(-r));
			return 1;
		}
		for (const char *const *s = spec->subdirs; s && *s; s++) {
			_cleanup_free_ char *sub = xasprintf("%s/%s", b.dir, *s);
			r = crisp_mkdir_p(sub, 0700);
			if (r < 0) {
				log_error("creating %s: %s", sub, strerror(-r));
				return 1;
			}
		}
	}
	if (spec->db_name) {
		_cleanup_free_ char *path = xasprintf("%s/%s", b.dir, spec->db_name);
		r = crisp_db_open(path, spec->migrations, spec->n_migrations, &b.db, &err);
		if (r == 0)
			r = crisp_db_meta_set(b.db, "last_started_by", CRISP_VERSION, &err);
		if (r < 0) {
			log_error("%s", err->message);
			return 1;
		}
	}
	crisp_backend_config = &b.opts.config;
	/* Forked before the sandbox: programs it starts must not inherit our filter. */
	if (spec->spawn_builder) {
		r = crisp_spawn_helper_start(spec->name, spec->spawn_builder, &b.spawn, &err);
		if (r < 0) {
			log_error("%s", err->message);
			return 1;
		}
	}

	if (spec->before_sandbox) {
		r = spec->before_sandbox(&b, &err);
		if (r < 0) {
			log_error("%s", err->message);
			return 1;
		}
	}

	r = sandbox_enter(spec->profile, spec->profile->unprivileged ? &user : NULL, &err);
	if (r < 0) {
		log_error("%s", err->message);
		return 1;
	}

	if (spec->setup) {
		r = spec->setup(&b, &err);
		if (r < 0) {
			log_error("%s", err->message);
			return 1;
		}
	}

	size_t n_handlers;
	_cleanup_free_ CrispHandler *handlers = crisp_cri_backend_handlers(
		spec->backend, spec->handlers, spec->n_handlers, &n_handlers);
	CrispDaemonConfig cfg = {
		.name = spec->name,
		.handlers = handlers,
		.n_handlers = n_handlers,
		.userdata = &b,
		.control_fd = b.opts.control_fd,
		.listen_fd = listen_fd,
		.allowed_peer_uid = peer.uid,
		.n_workers = spec->n_workers,
	};
	int code = crisp_daemon_run(&cfg);

	if (spec->teardown)
		spec->teardown(&b);

	crisp_spawn_helper_stop(&b.spawn);
	crisp_db_close(b.db);
	free(b.dir);
	crisp_options_done(&b.opts);
	return code;
}
