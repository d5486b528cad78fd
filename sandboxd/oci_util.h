/*
 * oci_util.h - pieces of OCI specs that pods and containers share.
 */
#ifndef CRISP_SANDBOXD_OCI_UTIL_H
#define CRISP_SANDBOXD_OCI_UTIL_H

#include <jansson.h>

/* The paths runc and CRI-O mask, and make read-only, by default. */
extern const char *const oci_masked_paths[];
extern const char *const oci_readonly_paths[];

/* A mount entry; options comma-separated. */
json_t *oci_mount(const char *dest, const char *type, const char *source, const char *options);
/* A NULL-terminated list of strings as a JSON array. */
json_t *oci_strv(const char *const *v);

#endif
