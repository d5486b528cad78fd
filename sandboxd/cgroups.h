/*
 * cgroups.h - reading a container's or pod's cgroup counters, on cgroup v1,
 * hybrid and v2 hosts, for either cgroup driver.
 */
#ifndef CRISP_SANDBOXD_CGROUPS_H
#define CRISP_SANDBOXD_CGROUPS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct CgroupSample {
	bool ok; /* the cgroup was there */
	uint64_t cpu_ns;
	uint64_t mem_usage, mem_working_set, mem_rss, mem_limit; /* limit 0: none */
	uint64_t page_faults, major_page_faults;
	uint64_t pids;
} CgroupSample;

/*
 * cgroups_path as the OCI spec has it: "/parent/id" (cgroupfs) or
 * "slice:prefix:name" (systemd).  Missing files leave their counters 0.
 */
void sandboxd_cgroup_read(const char *cgroups_path, CgroupSample *ret);
/* Adds b's counters to a (a pod is the sum of its processes' cgroups). */
void sandboxd_cgroup_add(CgroupSample *a, const CgroupSample *b);

#endif
