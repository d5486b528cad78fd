/*
 * cri_routes.h - which daemon answers which CRI call, and with which message type.
 *
 * The CRI request and response messages themselves travel on the internal
 * channels: the frame type says which call it is.  One table, shared by
 * criapi (to forward) and by the backends (to serve), so the two cannot
 * disagree.  A backend that does not implement a call yet still answers it,
 * with CRISP_ERR_UNIMPLEMENTED, which criapi turns into gRPC UNIMPLEMENTED.
 *
 * Message types are stable: a number once used is never given to another call.
 */
#ifndef CRISP_CRI_ROUTES_H
#define CRISP_CRI_ROUTES_H

#include "daemon.h"
#include "internal.pb-c.h"

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct CrispCriRoute {
	const char *service; /* "runtime.v1.RuntimeService" */
	const char *method;  /* "RunPodSandbox" */
	Crisp__Backend backend;
	uint16_t type; /* the request's frame type; the answer is type + 1 */
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *response;
} CrispCriRoute;

extern const CrispCriRoute crisp_cri_routes[];
extern const size_t crisp_cri_n_routes;

/* The route of a CRI method, or NULL when criapi answers it itself. */
const CrispCriRoute *crisp_cri_route_find(const char *service, const char *method);
const CrispCriRoute *crisp_cri_route_by_type(uint16_t type);

/*
 * Builds a backend's handler table: its own handlers plus, for every CRI
 * call routed to it that it does not handle yet, one that answers
 * "<daemon> does not implement <method> yet".  Free the result with free().
 */
CrispHandler *crisp_cri_backend_handlers(Crisp__Backend backend, const CrispHandler *own,
					 size_t n_own, size_t *ret_n);

#endif
