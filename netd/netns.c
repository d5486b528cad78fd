/*
 * netns.c - pinned network namespaces (see netns.h).
 */
#include "netns.h"

#include "macros.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define DIAL_TIMEOUT_MS 10000

/* Brings "lo" up in the calling thread's namespace. */
static int loopback_up(CrispError **err)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct rtnl_link *lo = NULL, *change = NULL;
	int r = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (r == 0)
		r = rtnl_link_get_kernel(sk, 0, "lo", &lo);
	if (r == 0) {
		change = rtnl_link_alloc();
		rtnl_link_set_flags(change, IFF_UP);
		r = rtnl_link_change(sk, lo, change, 0);
	}
	rtnl_link_put(change);
	rtnl_link_put(lo);
	nl_socket_free(sk);
	if (r < 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "bringing up lo: %s",
				       nl_geterror(r));
	return 0;
}

typedef struct ThreadCall {
	int (*fn)(void *arg, CrispError **err);
	void *arg;
	int setns_fd; /* -1: unshare a new namespace instead */
	int r;
	CrispError *err;
} ThreadCall;

static void *thread_main(void *p)
{
	ThreadCall *c = p;
	int k = c->setns_fd >= 0 ? setns(c->setns_fd, CLONE_NEWNET) : unshare(CLONE_NEWNET);
	if (k < 0) {
		c->r = crisp_error_set_errno(&c->err, CRISP_ERR_INTERNAL, errno, "%s",
					     c->setns_fd >= 0 ? "entering a pod's network namespace"
							      : "creating a network namespace");
		return NULL;
	}
	c->r = c->fn(c->arg, &c->err);
	return NULL;
}

/* Runs fn on a new thread, in the namespace of setns_fd or in a new one. */
static int run_on_thread(int setns_fd, int (*fn)(void *arg, CrispError **err), void *arg,
			 CrispError **err)
{
	ThreadCall c = { .fn = fn, .arg = arg, .setns_fd = setns_fd };
	pthread_t t;
	int k = pthread_create(&t, NULL, thread_main, &c);
	if (k != 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, k, "starting a thread");
	pthread_join(t, NULL);
	if (c.r < 0)
		crisp_error_move(err, &c.err);
	return c.r;
}

typedef struct Pin {
	const char *path;
} Pin;

static int pin_new_namespace(void *arg, CrispError **err)
{
	const Pin *p = arg;
	int r = loopback_up(err);
	if (r < 0)
		return r;
	if (mount("/proc/thread-self/ns/net", p->path, NULL, MS_BIND, NULL) < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "pinning %s", p->path);
	return 0;
}

int netd_netns_create(const char *pins_dir, const char *name, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", pins_dir, name);
	int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
	if (fd < 0)
		return crisp_error_set_errno(
			err, errno == EEXIST ? CRISP_ERR_ALREADY_EXISTS : CRISP_ERR_INTERNAL, errno,
			"creating %s", path);
	close(fd);
	Pin p = { .path = path };
	int r = run_on_thread(-1, pin_new_namespace, &p, err);
	if (r < 0)
		(void)unlink(path);
	return r;
}

static bool is_nsfs(int fd)
{
	struct statfs sf;
	return fstatfs(fd, &sf) == 0 && sf.f_type == NSFS_MAGIC;
}

bool netd_netns_exists(const char *pins_dir, const char *name)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", pins_dir, name);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	return fd >= 0 && is_nsfs(fd);
}

int netd_netns_remove(const char *pins_dir, const char *name, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", pins_dir, name);
	/* Detached: a process still inside keeps the namespace, not the pin. */
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "unpinning %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "removing %s", path);
	return 0;
}

int netd_netns_run(const char *pins_dir, const char *name, int (*fn)(void *arg, CrispError **err),
		   void *arg, CrispError **err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", pins_dir, name);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || !is_nsfs(fd))
		return crisp_error_set(err, CRISP_ERR_NOT_FOUND, ENOENT,
				       "the network namespace %s is gone", path);
	return run_on_thread(fd, fn, arg, err);
}

/* --- statistics --- */

typedef struct StatsCall {
	NetdLinkStats *v;
	size_t n;
} StatsCall;

static void collect_link(struct nl_object *obj, void *arg)
{
	StatsCall *c = arg;
	struct rtnl_link *l = (struct rtnl_link *)obj;
	if (rtnl_link_get_flags(l) & IFF_LOOPBACK)
		return;
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	NetdLinkStats *s = &c->v[c->n++];
	*s = (NetdLinkStats){
		.rx_bytes = rtnl_link_get_stat(l, RTNL_LINK_RX_BYTES),
		.rx_packets = rtnl_link_get_stat(l, RTNL_LINK_RX_PACKETS),
		.rx_errors = rtnl_link_get_stat(l, RTNL_LINK_RX_ERRORS),
		.tx_bytes = rtnl_link_get_stat(l, RTNL_LINK_TX_BYTES),
		.tx_packets = rtnl_link_get_stat(l, RTNL_LINK_TX_PACKETS),
		.tx_errors = rtnl_link_get_stat(l, RTNL_LINK_TX_ERRORS),
	};
	snprintf(s->name, sizeof(s->name), "%s",
		 rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "");
}

static int read_stats(void *arg, CrispError **err)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	int r = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
	if (r == 0)
		r = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (r == 0)
		nl_cache_foreach(cache, collect_link, arg);
	nl_cache_free(cache);
	nl_socket_free(sk);
	if (r < 0)
		return crisp_error_set(err, CRISP_ERR_INTERNAL, EIO, "reading interfaces: %s",
				       nl_geterror(r));
	return 0;
}

int netd_netns_link_stats(const char *pins_dir, const char *name, NetdLinkStats **ret,
			  size_t *ret_n, CrispError **err)
{
	StatsCall c = { 0 };
	int r = netd_netns_run(pins_dir, name, read_stats, &c, err);
	if (r < 0) {
		free(c.v);
		return r;
	}
	*ret = c.v;
	*ret_n = c.n;
	return 0;
}

/* --- port-forward --- */

typedef struct DialCall {
	int port;
	int fd;
} DialCall;

static int connect_with_timeout(int family, int port, CrispError **err)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		in6->sin6_addr = in6addr_loopback;
		len = sizeof(*in6);
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return crisp_error_set_errno(err, CRISP_ERR_INTERNAL, errno, "socket");
	int k = connect(fd, (struct sockaddr *)&ss, len);
	if (k < 0 && errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		k = poll(&pfd, 1, DIAL_TIMEOUT_MS);
		int soerr = ETIMEDOUT;
		socklen_t sl = sizeof(soerr);
		if (k == 1)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		errno = soerr;
		k = soerr ? -1 : 0;
	}
	if (k < 0) {
		int e = errno;
		close(fd);
		return crisp_error_set_errno(err, CRISP_ERR_UNAVAILABLE, e,
					     "connecting to localhost:%d in the pod", port);
	}
	/* The relay wants a blocking socket. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

static int dial(void *arg, CrispError **err)
{
	DialCall *c = arg;
	CrispError *v4 = NULL;
	int fd = connect_with_timeout(AF_INET, c->port, &v4);
	if (fd < 0) {
		/* A server listening on ::1 only is still "localhost". */
		fd = connect_with_timeout(AF_INET6, c->port, NULL);
		if (fd < 0) {
			crisp_error_move(err, &v4);
			return -ECONNREFUSED;
		}
		crisp_error_free(v4);
	}
	c->fd = fd;
	return 0;
}

int netd_netns_dial(const char *pins_dir, const char *name, int port, int *ret_fd, CrispError **err)
{
	DialCall c = { .port = port, .fd = -1 };
	int r = netd_netns_run(pins_dir, name, dial, &c, err);
	if (r < 0)
		return r;
	*ret_fd = c.fd;
	return 0;
}
