/*
 * crisp - the supervisor of the crisp container runtime.
 */
#include "log.h"
#include "options.h"
#include "supervisor.h"
#include "version.h"

#include <stdio.h>

static void usage(void)
{
	printf("Usage: crisp run [--config FILE] [--root DIR] [--state DIR] [--listen "
	       "unix://PATH]\n"
	       "                 [--log-level LEVEL]\n"
	       "       crisp --version | --help\n\n"
	       "crisp serves the Kubernetes CRI v1 API (RuntimeService and ImageService)\n"
	       "through a suite of privilege-separated daemons.\n\n"
	       "  run               start every daemon and serve in the foreground; stop on\n"
	       "                    SIGTERM or SIGINT\n"
	       "  --config FILE     config file (default %s, plus FILE.d/*.conf)\n"
	       "  --root DIR        persistent state (default /var/lib/crisp)\n"
	       "  --state DIR       runtime state (default /run/crisp)\n"
	       "  --listen URL      CRI socket (default unix://<state>/crisp.sock)\n"
	       "  --log-level L     debug, info, warning or error (default info)\n"
	       "  --version         print the version\n",
	       CRISP_DEFAULT_CONFIG);
}

int main(int argc, char **argv)
{
	_cleanup_error_ CrispError *err = NULL;
	CrispOptions opts;

	log_init("crisp");
	if (crisp_options_parse(&opts, argc, argv, &err) < 0) {
		log_error("%s", err->message);
		crisp_options_done(&opts);
		return 2;
	}
	if (opts.show_help) {
		usage();
		crisp_options_done(&opts);
		return 0;
	}
	if (opts.show_version) {
		printf("crisp %s\nCRI API v1\n", CRISP_VERSION);
		crisp_options_done(&opts);
		return 0;
	}
	if (strv_length(opts.positional) != 1 || strcmp(opts.positional[0], "run") != 0) {
		log_error("expected the command \"run\" (see crisp --help)");
		crisp_options_done(&opts);
		return 2;
	}
	int code = supervisor_run(&opts);
	crisp_options_done(&opts);
	return code;
}
