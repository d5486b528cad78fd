/*
 * cgroups.c - cgroup counters (see cgroups.h).
 *
 * Where the files are: on a cgroup v2 host everything is under
 * /sys/fs/cgroup/<path>; on v1 and hybrid hosts (where runc uses the v1
 * controllers) each controller has its own tree.  Working set is usage less
 * inactive file pages, as the kubelet computes it.
 */
#include "cgroups.h"

#include "macros.h"

#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/statfs.h>

#define ROOT "/sys/fs/cgroup"

static bool unified(void)
{
	struct statfs sf;
	return statfs(ROOT, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* "a-b-c.slice" -> "a.slice/a-b.slice/a-b-c.slice", as systemd nests slices. */
static char *slice_path(const char *slice)
{
	if (strcmp(slice, "-.slice") == 0)
		return xstrdup("");
	size_t n = strlen(slice) - strlen(".slice");
	char *out = xstrdup("");
	for (size_t i = 0; i <= n; i++) {
		if (i == n || slice[i] == '-') {
			char *t = xasprintf("%s/%.*s.slice", out, (int)i, slice);
			free(out);
			out = t;
		}
	}
	return out;
}

/* The cgroup's path below a hierarchy's root, with a leading '/'. */
static char *relative(const char *cgroups_path)
{
	const char *c1 = strchr(cgroups_path, ':');
	if (cgroups_path[0] == '/' || !c1)
		return xstrdup(cgroups_path);
	const char *c2 = strchr(c1 + 1, ':');
	if (!c2)
		return xstrdup(cgroups_path);
	_cleanup_free_ char *slice = xstrndup(cgroups_path, (size_t)(c1 - cgroups_path));
	_cleanup_free_ char *prefix = xstrndup(c1 + 1, (size_t)(c2 - c1 - 1));
	_cleanup_free_ char *sp = slice_path(slice);
	return xasprintf("%s/%s-%s.scope", sp, prefix, c2 + 1);
}

static bool read_u64(const char *path, uint64_t *ret)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char buf[64] = "";
	bool ok = fgets(buf, sizeof(buf), f) != NULL;
	fclose(f);
	if (!ok || strncmp(buf, "max", 3) == 0)
		return false;
	*ret = strtoull(buf, NULL, 10);
	return true;
}

/* The value of key in a "key value" file such as memory.stat. */
static uint64_t stat_key(const char *path, const char *key)
{
	FILE *f = fopen(path, "re");
	char k[128];
	unsigned long long v;
	uint64_t out = 0;
	while (f && fscanf(f, "%127s %llu", k, &v) == 2)
		if (strcmp(k, key) == 0) {
			out = v;
			break;
		}
	if (f)
		fclose(f);
	return out;
}

void sandboxd_cgroup_read(const char *cgroups_path, CgroupSample *ret)
{
	*ret = (CgroupSample){ 0 };
	_cleanup_free_ char *rel = relative(cgroups_path);
	uint64_t v = 0;
	if (unified()) {
		_cleanup_free_ char *dir = xasprintf(ROOT "%s", rel);
		_cleanup_free_ char *cpu = xasprintf("%s/cpu.stat", dir);
		_cleanup_free_ char *cur = xasprintf("%s/memory.current", dir);
		_cleanup_free_ char *stat = xasprintf("%s/memory.stat", dir);
		_cleanup_free_ char *max = xasprintf("%s/memory.max", dir);
		_cleanup_free_ char *pids = xasprintf("%s/pids.current", dir);
		ret->ok = read_u64(cur, &ret->mem_usage);
		ret->cpu_ns = stat_key(cpu, "usage_usec") * 1000;
		uint64_t inactive = stat_key(stat, "inactive_file");
		ret->mem_working_set = ret->mem_usage > inactive ? ret->mem_usage - inactive : 0;
		ret->mem_rss = stat_key(stat, "anon");
		ret->page_faults = stat_key(stat, "pgfault");
		ret->major_page_faults = stat_key(stat, "pgmajfault");
		if (read_u64(max, &v))
			ret->mem_limit = v;
		read_u64(pids, &ret->pids);
		return;
	}
	_cleanup_free_ char *cpu = xasprintf(ROOT "/cpuacct%s/cpuacct.usage", rel);
	_cleanup_free_ char *usage = xasprintf(ROOT "/memory%s/memory.usage_in_bytes", rel);
	_cleanup_free_ char *stat = xasprintf(ROOT "/memory%s/memory.stat", rel);
	_cleanup_free_ char *limit = xasprintf(ROOT "/memory%s/memory.limit_in_bytes", rel);
	_cleanup_free_ char *pids = xasprintf(ROOT "/pids%s/pids.current", rel);
	ret->ok = read_u64(usage, &ret->mem_usage);
	read_u64(cpu, &ret->cpu_ns);
	uint64_t inactive = stat_key(stat, "total_inactive_file");
	ret->mem_working_set = ret->mem_usage > inactive ? ret->mem_usage - inactive : 0;
	ret->mem_rss = stat_key(stat, "total_rss");
	ret->page_faults = stat_key(stat, "total_pgfault");
	ret->major_page_faults = stat_key(stat, "total_pgmajfault");
	/* v1 says "no limit" with a huge number rather than "max". */
	if (read_u64(limit, &v) && v < (UINT64_C(1) << 62))
		ret->mem_limit = v;
	read_u64(pids, &ret->pids);
}

void sandboxd_cgroup_add(CgroupSample *a, const CgroupSample *b)
{
	if (!b->ok)
		return;
	a->ok = true;
	a->cpu_ns += b->cpu_ns;
	a->mem_usage += b->mem_usage;
	a->mem_working_set += b->mem_working_set;
	a->mem_rss += b->mem_rss;
	a->page_faults += b->page_faults;
	a->major_page_faults += b->major_page_faults;
	a->pids += b->pids;
}
