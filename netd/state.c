/*
 * state.c - netd's start-up: its database, the pins dir, the CNI configs
 * and a watcher that reloads them, and reconciliation of pins with pods.
 *
 * At start a pin without a pod row is unpinned and removed (a crash between
 * pinning and recording, or a pod removed while netd was down); a pod whose
 * pin is gone is reported, and keeps its row so that teardown can still run
 * CNI DEL for it.
 */
#include "netd.h"

#include "clock.h"
#include "log.h"

#include <dirent.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "netns.h"

/* How long a caller waits for the watcher to load a change it has queued. */
#define SETTLE_MAX_MS 1000

const CrispDbMigration netd_migrations[] = {
	CRISP_DB_MIGRATION_META,
	{ "pods and their attached networks",
	  "CREATE TABLE pods ("
	  "  pod_id TEXT PRIMARY KEY NOT NULL,"
	  "  state TEXT NOT NULL CHECK (state IN ('created', 'attached')),"
	  "  name TEXT NOT NULL DEFAULT '',"
	  "  namespace TEXT NOT NULL DEFAULT '',"
	  "  uid TEXT NOT NULL DEFAULT '',"
	  "  created_at INTEGER NOT NULL);"
	  /* config and runtime as used at ADD, so DEL repeats them; result NULL until ADD ends. */
	  "CREATE TABLE attachments ("
	  "  pod_id TEXT NOT NULL REFERENCES pods(pod_id) ON DELETE CASCADE,"
	  "  idx INTEGER NOT NULL,"
	  "  network TEXT NOT NULL,"
	  "  ifname TEXT NOT NULL,"
	  "  cni_args TEXT NOT NULL,"
	  "  config TEXT NOT NULL,"
	  "  runtime TEXT NOT NULL,"
	  "  result TEXT,"
	  "  PRIMARY KEY (pod_id, idx));" },
};
const size_t netd_n_migrations = ELEMENTSOF(netd_migrations);

/* Events not yet taken by the watcher. */
static bool events_pending(Netd *nd)
{
	struct pollfd p = { .fd = nd->inotify_fd, .events = POLLIN };
	return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

/*
 * A caller that has just written a config (a CNI installer, then the
 * kubelet's next Status) must not see the networks from before it.  The
 * watcher marks itself reloading before it reads events, so a change is
 * always either still queued on the inotify fd or covered by the flag.
 */
NetdNetworks *netd_current_networks(Netd *nd)
{
	int64_t until = crisp_now_ms() + SETTLE_MAX_MS;
	for (;;) {
		bool queued = nd->watcher_started && events_pending(nd);
		pthread_mutex_lock(&nd->lock);
		int64_t left = until - crisp_now_ms();
		if ((!queued && !nd->reloading) || left <= 0)
			break;
		struct timespec ts = crisp_monotonic_in_ms(left < 20 ? left : 20);
		pthread_cond_timedwait(&nd->reloaded, &nd->lock, &ts);
		pthread_mutex_unlock(&nd->lock);
	}
	NetdNetworks *n = netd_networks_ref(nd->networks);
	pthread_mutex_unlock(&nd->lock);
	return n;
}

static void reload(Netd *nd)
{
	NetdNetworks *n =
		netd_networks_load(nd->config->cni_conf_dir, (size_t)nd->config->cni_max_networks);
	pthread_mutex_lock(&nd->lock);
	NetdNetworks *old = nd->networks;
	nd->networks = n;
	nd->reloading = false;
	pthread_cond_broadcast(&nd->reloaded);
	pthread_mutex_unlock(&nd->lock);
	if (n->n)
		log_info("CNI: %zu network%s from %s, first \"%s\"", n->n, n->n == 1 ? "" : "s",
			 nd->config->cni_conf_dir, netd_network_name(n->lists[0]));
	else
		log_info("CNI: %s", n->problem);
	netd_networks_unref(old);
}

/*
 * Reloads on every change in the conf dir.  The dir may not exist yet (a CNI
 * installer creates it later): until it does, it is looked for every second.
 */
static void *watch(void *arg)
{
	Netd *nd = arg;
	int wd = -1;
	for (;;) {
		if (wd < 0) {
			wd = inotify_add_watch(nd->inotify_fd, nd->config->cni_conf_dir,
					       IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
						       IN_CLOSE_WRITE | IN_DELETE_SELF |
						       IN_MOVE_SELF | IN_ONLYDIR);
			if (wd >= 0)
				reload(nd);
		}
		struct pollfd p[2] = { { .fd = nd->inotify_fd, .events = POLLIN },
				       { .fd = nd->stop_fd, .events = POLLIN } };
		int k = poll(p, 2, wd < 0 ? 1000 : -1);
		if (k < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		pthread_mutex_lock(&nd->lock);
		nd->reloading = true;
		pthread_mutex_unlock(&nd->lock);
		char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
		ssize_t n = read(nd->inotify_fd, buf, sizeof(buf));
		bool gone = false;
		for (char *q = buf; n > 0 && q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;
			gone = gone || (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED));
			q += sizeof(*ev) + ev->len;
		}
		if (gone) {
			inotify_rm_watch(nd->inotify_fd, wd);
			wd = -1;
		}
		reload(nd);
	}
	return NULL;
}

static int reconcile(Netd *nd, CrispError **err)
{
	DIR *d = opendir(nd->pins_dir);
	if (!d)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "listing %s",
					     nd->pins_dir);
	_cleanup_strv_free_ char **names = NULL;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			strv_push(&names, e->d_name);
	closedir(d);

	sqlite3_stmt *st = NULL;
	int r = crisp_db_prepare(nd->db, "SELECT 1 FROM pods WHERE pod_id = ?1", &st, err);
	for (char **n = names; r == 0 && n && *n; n++) {
		sqlite3_reset(st);
		crisp_db_bind_text(st, 1, *n);
		r = crisp_db_step(st, err);
		if (r > 0) {
			r = 0;
			continue;
		}
		if (r < 0)
			break;
		log_warning("removing the pin %s/%s, which no pod owns", nd->pins_dir, *n);
		r = netd_netns_remove(nd->pins_dir, *n, err);
	}
	sqlite3_finalize(st);
	if (r < 0)
		return r;

	r = crisp_db_prepare(nd->db, "SELECT pod_id FROM pods ORDER BY pod_id", &st, err);
	while (r == 0 && (r = crisp_db_step(st, err)) > 0) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		if (!netd_netns_exists(nd->pins_dir, id))
			log_warning("pod %s has lost its network namespace pin", id);
		r = 0;
	}
	sqlite3_finalize(st);
	return r;
}

int netd_setup(CrispBackend *b, CrispError **err)
{
	Netd *nd = xcalloc(1, sizeof(*nd));
	b->state = nd;
	nd->backend = b;
	nd->config = &b->opts.config;
	nd->db = b->db;
	nd->inotify_fd = nd->stop_fd = -1;
	pthread_mutex_init(&nd->lock, NULL);
	crisp_cond_init_monotonic(&nd->reloaded);
	crisp_inflight_init(&nd->busy);
	nd->pins_dir = crisp_state_path(nd->config, NETD_PINS_DIR);
	int r = crisp_mkdir_p(nd->pins_dir, 0700);
	if (r < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, -r, "creating %s",
					     nd->pins_dir);
	nd->networks =
		netd_networks_load(nd->config->cni_conf_dir, (size_t)nd->config->cni_max_networks);
	r = reconcile(nd, err);
	if (r < 0)
		return crisp_error_wrap(err, "reconciling %s with net.db", nd->pins_dir);

	nd->inotify_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	nd->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (nd->inotify_fd < 0 || nd->stop_fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno,
					     "watching the CNI config dir");
	r = pthread_create(&nd->watcher, NULL, watch, nd);
	if (r != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, r, "starting the watcher");
	nd->watcher_started = true;
	return 0;
}

void netd_teardown(CrispBackend *b)
{
	Netd *nd = b->state;
	if (!nd)
		return;
	if (nd->watcher_started) {
		uint64_t one = 1;
		if (write(nd->stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(nd->watcher, NULL);
	}
	safe_close(nd->inotify_fd);
	safe_close(nd->stop_fd);
	netd_networks_unref(nd->networks);
	pthread_cond_destroy(&nd->reloaded);
	crisp_inflight_done(&nd->busy);
	free(nd->pins_dir);
	free(nd);
	b->state = NULL;
}
