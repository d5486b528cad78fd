/*
 * crisp-criapi - the CRI gRPC front of crisp.
 *
 * Privileged start-up is only: parse options, create the CRI socket (or take
 * it from systemd) and look up the user.  Then the profile is entered, and
 * only after that gRPC starts its threads.
 */
#include "criapi.h"

#include "log.h"
#include "version.h"

#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#define CRIAPI_WORKERS 16

const CrispConfig *criapi_config;

int main(int argc, char **argv)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispOptions opts;
	CrispSandboxUser user;
	int lock_fd = -1, listen_fd;
	sigset_t mask;

	log_init("crisp-criapi");
	if (crisp_options_parse(&opts, argc, argv, &err) < 0) {
		log_error("%s", err->message);
		return 2;
	}
	if (opts.print_profile) {
		sandbox_print_profile(&criapi_profile);
		return 0;
	}
	if (opts.show_help || opts.show_version) {
		printf("crisp-criapi %s: the CRI front of crisp, started by `crisp run`.\n",
		       CRISP_VERSION);
		return 0;
	}
	criapi_config = &opts.config;
	if (sandbox_lookup_user(opts.config.user, &user, &err) < 0) {
		log_error("%s", err->message);
		return 1;
	}

	if (sd_listen_fds(1) == 1) {
		listen_fd = SD_LISTEN_FDS_START;
	} else {
		listen_fd = criapi_listen(crisp_listen_path(&opts.config), &lock_fd, &err);
		if (listen_fd < 0) {
			log_error("%s", err->message);
			return 1;
		}
	}

	/* Signals go to sigwaitinfo below; every thread started later inherits the mask. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);

	if (sandbox_enter(&criapi_profile, &user, &err) < 0) {
		log_error("%s", err->message);
		return 1;
	}

	if (criapi_backends_start(opts.control_fd, opts.config.state, &err) < 0 ||
	    criapi_events_start(&err) < 0 || criapi_stream_work_start(&err) < 0) {
		log_error("%s", err->message);
		return 1;
	}

	grpc_init();
	CriapiServer *server = NULL;
	if (criapi_server_start(listen_fd, CRIAPI_WORKERS, &server, &err) < 0) {
		log_error("%s", err->message);
		return 1;
	}
	criapi_backends_report_serving(opts.config.listen);
	sd_notify(0, "READY=1");
	log_info("serving CRI on %s", opts.config.listen);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&mask, &si);
		if (sig == SIGUSR2) {
			sandbox_run_probes();
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("stopping on signal %d", sig);
			break;
		}
	}

	criapi_stream_work_stop();
	criapi_server_stop(server);
	grpc_shutdown();
	safe_close(lock_fd);
	crisp_options_done(&opts);
	log_info("stopped");
	return 0;
}
