/*
 * options.h - the command line shared by every crisp process.
 *
 *   --config FILE     config file (default /etc/crisp/crisp.conf, plus drop-ins in FILE.d)
 *   --root DIR        persistent state (default /var/lib/crisp)
 *   --state DIR       runtime state (default /run/crisp)
 *   --listen URL      the CRI socket, unix://PATH (default unix://<state>/crisp.sock)
 *   --log-level L     debug, info, warning or error
 *   --control-fd N    (daemons) the supervisor's control channel
 *   --print-profile   (daemons) print the privilege profile and exit
 *
 * Flags win over the config files.  Each process derives its own paths from
 * root and state with the helpers below, never from a peer's message.
 */
#ifndef CRISP_OPTIONS_H
#define CRISP_OPTIONS_H

#include "config.h"
#include "error.h"

#define CRISP_DEFAULT_CONFIG "/etc/crisp/crisp.conf"

typedef struct CrispOptions {
	CrispConfig config;
	char *config_path;
	bool config_given; /* --config was on the command line */
	int control_fd;	   /* -1 when absent */
	bool show_help;
	bool show_version;
	bool print_profile; /* --print-profile: print the sandbox profile and exit */
	char **positional;  /* e.g. the supervisor's verb */
} CrispOptions;

/*
 * Parses argv, loads the config and applies the flags over it.  Unknown
 * options and bad values are errors naming the option.
 */
int crisp_options_parse(CrispOptions *o, int argc, char **argv, CrispError **err);
void crisp_options_done(CrispOptions *o);

/* "<state>/<name>" and "<root>/<name>"; malloc'd. */
char *crisp_state_path(const CrispConfig *c, const char *name);
char *crisp_root_path(const CrispConfig *c, const char *name);
/* The filesystem path of the CRI socket ("unix://" stripped). */
const char *crisp_listen_path(const CrispConfig *c);

/* Creates dir and its parents with mode (existing ones are left as they are). */
int crisp_mkdir_p(const char *dir, mode_t mode);

#endif
