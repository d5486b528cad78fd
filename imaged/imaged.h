/*
 * imaged.h - crisp-imaged: registry pulls, content store, unpack, snapshots.
 */
#ifndef CRISP_IMAGED_H
#define CRISP_IMAGED_H

#include "daemon.h"
#include "sandbox.h"

/* Under <root>/image: image content, and containers' writable layers. */
#define IMAGED_STORE_DIR "store"
#define IMAGED_CONTAINERS_DIR "containers"

extern const CrispProfile imaged_profile;

/* ImageFsInfo (fsinfo.c). */
int imaged_image_fs_info(CrispRequest *req, void *userdata, CrispError **err);

#endif
