/*
 * supervisor.h - `crisp run`: starts, watches and restarts the daemons.
 */
#ifndef CRISP_SUPERVISOR_H
#define CRISP_SUPERVISOR_H

#include "options.h"

/* Runs the suite in the foreground until SIGTERM/SIGINT.  Returns an exit code. */
int supervisor_run(CrispOptions *opts);

#endif
