/*
 * streamd.h - crisp-streamd: the streaming server for exec, attach, port-forward.
 */
#ifndef CRISP_STREAMD_H
#define CRISP_STREAMD_H

#include "sandbox.h"

extern const CrispProfile streamd_profile;

#endif
