/*
 * ipc_types.h - the message types of crisp's internal channels.
 *
 * Requests take even numbers and their answers the next odd number, so a
 * reader can tell the direction of any frame.  Every request may also be
 * answered with CRISP_MSG_ERROR.  Ranges: 0-15 protocol, 16-63 control and
 * health, 256+ one block of 256 per backend.  A type is never reused.
 */
#ifndef CRISP_IPC_TYPES_H
#define CRISP_IPC_TYPES_H

enum {
	/* Protocol: the handshake, and the generic failure answer. */
	CRISP_MSG_HELLO_SERVER = 1, /* Crisp__Hello, sent first by the serving side */
	CRISP_MSG_HELLO_CLIENT = 2, /* Crisp__Hello, the client's answer */
	CRISP_MSG_ERROR = 3,	    /* Crisp__ErrorReply, answers any request */

	/* Health, served by every daemon. */
	CRISP_MSG_HEALTH_REQ = 16, /* Crisp__HealthRequest */
	CRISP_MSG_HEALTH_ANS = 17, /* Crisp__HealthReply */

	/* Control channel between the supervisor and each daemon. */
	CRISP_MSG_CTL_SERVE_CHANNEL = 32,   /* Crisp__ServeChannel + 1 fd, supervisor -> backend */
	CRISP_MSG_CTL_BACKEND_CHANNEL = 34, /* Crisp__BackendChannel + 1 fd, supervisor -> criapi */
	CRISP_MSG_CTL_BACKEND_UP = 36,	    /* Crisp__BackendUp, criapi -> supervisor */
	CRISP_MSG_CTL_FRONT_SERVING = 38,   /* Crisp__FrontServing, criapi -> supervisor */

	/* A daemon and its spawn helper (common/spawn.h). */
	CRISP_MSG_SPAWN_REQ = 48, /* Crisp__SpawnRequest + 0..3 stdio fds */
	CRISP_MSG_SPAWN_ANS = 49, /* Crisp__SpawnReply */

	/* Per-backend verbs start here (imaged 256, sandboxd 512, netd 768, streamd 1024). */
	CRISP_MSG_IMAGED_BASE = 256,
	CRISP_MSG_SANDBOXD_BASE = 512,
	CRISP_MSG_NETD_BASE = 768,
	CRISP_MSG_STREAMD_BASE = 1024,

	/*
	 * CRI calls travel as their own request and response messages, with
	 * the types of common/cri_routes.c: imaged 256-287, sandboxd 512-575,
	 * streamd 1024-1055.  Internal verbs follow each block's CRI range.
	 */
	CRISP_MSG_IMAGED_PREPARE_REQ =
		CRISP_MSG_IMAGED_BASE + 32, /* PrepareContainerSnapshotRequest */
	CRISP_MSG_IMAGED_PREPARE_ANS =
		CRISP_MSG_IMAGED_BASE + 33, /* PrepareContainerSnapshotReply */
	CRISP_MSG_IMAGED_RELEASE_REQ =
		CRISP_MSG_IMAGED_BASE + 34, /* ReleaseContainerSnapshotRequest */
	CRISP_MSG_IMAGED_RELEASE_ANS =
		CRISP_MSG_IMAGED_BASE + 35, /* ReleaseContainerSnapshotReply */
	CRISP_MSG_IMAGED_LIST_CONTAINERS_REQ =
		CRISP_MSG_IMAGED_BASE + 36, /* ListContainerSnapshotsRequest */
	CRISP_MSG_IMAGED_LIST_CONTAINERS_ANS =
		CRISP_MSG_IMAGED_BASE + 37, /* ListContainerSnapshotsReply */

	CRISP_MSG_SANDBOXD_POD_RUN_REQ = CRISP_MSG_SANDBOXD_BASE + 64, /* PodRunRequest */
	CRISP_MSG_SANDBOXD_POD_RUN_ANS = CRISP_MSG_SANDBOXD_BASE + 65, /* PodRunReply */
	CRISP_MSG_SANDBOXD_POD_SET_NETWORK_REQ =
		CRISP_MSG_SANDBOXD_BASE + 66, /* PodSetNetworkRequest */
	CRISP_MSG_SANDBOXD_POD_SET_NETWORK_ANS =
		CRISP_MSG_SANDBOXD_BASE + 67, /* PodSetNetworkReply */

	CRISP_MSG_SANDBOXD_CONTAINER_CREATE_REQ =
		CRISP_MSG_SANDBOXD_BASE + 68, /* ContainerCreateRequest */
	CRISP_MSG_SANDBOXD_CONTAINER_CREATE_ANS =
		CRISP_MSG_SANDBOXD_BASE + 69, /* ContainerCreateReply */

	CRISP_MSG_SANDBOXD_WAIT_EVENTS_REQ = CRISP_MSG_SANDBOXD_BASE + 70, /* WaitEventsRequest */
	CRISP_MSG_SANDBOXD_WAIT_EVENTS_ANS = CRISP_MSG_SANDBOXD_BASE + 71, /* WaitEventsReply */

	CRISP_MSG_SANDBOXD_EXEC_START_REQ = CRISP_MSG_SANDBOXD_BASE + 72, /* ExecStartRequest */
	CRISP_MSG_SANDBOXD_EXEC_START_ANS =
		CRISP_MSG_SANDBOXD_BASE + 73, /* ExecStartReply + status + 1..3 stdio fds */
	CRISP_MSG_SANDBOXD_ATTACH_REQ = CRISP_MSG_SANDBOXD_BASE + 74, /* ContainerAttachRequest */
	CRISP_MSG_SANDBOXD_ATTACH_ANS =
		CRISP_MSG_SANDBOXD_BASE + 75, /* ContainerAttachReply + socket (+ ctl FIFO) */

	CRISP_MSG_NETD_STATUS_REQ = CRISP_MSG_NETD_BASE + 0,	   /* Crisp__NetworkStatusRequest */
	CRISP_MSG_NETD_STATUS_ANS = CRISP_MSG_NETD_BASE + 1,	   /* Crisp__NetworkStatusReply */
	CRISP_MSG_NETD_POD_CIDR_REQ = CRISP_MSG_NETD_BASE + 2,	   /* Crisp__PodCidrRequest */
	CRISP_MSG_NETD_POD_CIDR_ANS = CRISP_MSG_NETD_BASE + 3,	   /* Crisp__PodCidrReply */
	CRISP_MSG_NETD_NETNS_CREATE_REQ = CRISP_MSG_NETD_BASE + 4, /* NetnsCreateRequest */
	CRISP_MSG_NETD_NETNS_CREATE_ANS = CRISP_MSG_NETD_BASE + 5, /* NetnsCreateReply */
	CRISP_MSG_NETD_ATTACH_REQ = CRISP_MSG_NETD_BASE + 6,	   /* NetworkAttachRequest */
	CRISP_MSG_NETD_ATTACH_ANS = CRISP_MSG_NETD_BASE + 7,	   /* NetworkAttachReply */
	CRISP_MSG_NETD_TEARDOWN_REQ = CRISP_MSG_NETD_BASE + 8,	   /* NetworkTeardownRequest */
	CRISP_MSG_NETD_TEARDOWN_ANS = CRISP_MSG_NETD_BASE + 9,	   /* NetworkTeardownReply */
	CRISP_MSG_NETD_POD_NETWORK_REQ = CRISP_MSG_NETD_BASE + 10, /* PodNetworkRequest */
	CRISP_MSG_NETD_POD_NETWORK_ANS = CRISP_MSG_NETD_BASE + 11, /* PodNetworkReply */
	CRISP_MSG_NETD_DIAL_REQ = CRISP_MSG_NETD_BASE + 12,	   /* PortForwardDialRequest */
	CRISP_MSG_NETD_DIAL_ANS = CRISP_MSG_NETD_BASE + 13,	   /* PortForwardDialReply + 1 fd */

	CRISP_MSG_STREAMD_WORK_REQ = CRISP_MSG_STREAMD_BASE + 32,      /* StreamWorkRequest */
	CRISP_MSG_STREAMD_WORK_ANS = CRISP_MSG_STREAMD_BASE + 33,      /* StreamWorkReply */
	CRISP_MSG_STREAMD_WORK_DONE_REQ = CRISP_MSG_STREAMD_BASE + 34, /* StreamWorkDone + fds */
	CRISP_MSG_STREAMD_WORK_DONE_ANS = CRISP_MSG_STREAMD_BASE + 35, /* StreamWorkDoneReply */
};

#endif
