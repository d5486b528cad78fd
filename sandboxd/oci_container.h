/*
 * oci_container.h - the OCI spec of a container, from the CRI config, the
 * image's config (as imaged checked and typed it) and node policy.
 */
#ifndef CRISP_SANDBOXD_OCI_CONTAINER_H
#define CRISP_SANDBOXD_OCI_CONTAINER_H

#include "api.pb-c.h"
#include "internal.pb-c.h"
#include "pods.h"

#include <jansson.h>

typedef struct ContainerSpecInput {
	const char *container_id;
	const SandboxdPod *pod;
	const Crisp__PrepareContainerSnapshotReply *snapshot;
	const char *rootfs;	  /* the mounted overlay */
	const char *cgroups_path; /* in the driver's syntax */
	int target_pid;		  /* PID namespace mode TARGET: the target container's process */
} ContainerSpecInput;

/*
 * Builds the spec, or fails with a message naming the field: a missing host
 * path, a device that is not one, a privileged container where the node
 * forbids them, an unknown capability, an unreadable seccomp profile.
 */
int sandboxd_container_spec(Sandboxd *sd, const Runtime__V1__ContainerConfig *c,
			    const ContainerSpecInput *in, json_t **ret, CrispError **err);

/* The OCI LinuxResources of an update (cpu, memory, hugepages, unified), for `runc update`. */
json_t *sandboxd_update_resources(Sandboxd *sd, const Runtime__V1__LinuxContainerResources *r);

/* The signal the container stops with: the CRI config's, the image's, or SIGTERM. */
int sandboxd_container_stop_signal(const Runtime__V1__ContainerConfig *c,
				   const Crisp__ImageRuntimeConfig *image);

#endif
