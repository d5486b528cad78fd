/*
 * imaged.h - crisp-imaged: registry pulls, content store, unpack, snapshots.
 */
#ifndef CRISP_IMAGED_H
#define CRISP_IMAGED_H

#include "sandbox.h"

extern const CrispProfile imaged_profile;

#endif
