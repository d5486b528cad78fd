"""netd on its own channel: pods' network namespaces, CNI ADD and DEL with
Debian's plugins (bridge, host-local, portmap, loopback), readiness, the
config watcher, addresses and counters, port-forward dialing, restarts, a
failing plugin, concurrency, and the refusals a compromised front meets.

Traffic goes only to loopback and to pod addresses in namespaces the tests
made.  Each test uses its own bridge, subnet and IPAM folder, and removes
the bridge and any iptables chain it caused at the end.
"""
import json
import os
import secrets
import socket
import subprocess
import tempfile
import time

import pytest

from activated import ActivatedDaemon
from cni_helpers import bridge_conflist, nat_chains, remove_host_network_state
from conftest import wait_for

import internal_pb2 as ipb

STATUS, NETNS, ATTACH, TEARDOWN, PODNET, DIAL = 768, 772, 774, 776, 778, 780
CNI_BIN = "/usr/lib/cni"
BUSYBOX = "/bin/busybox"

pytestmark = pytest.mark.skipif(not os.path.exists(f"{CNI_BIN}/bridge"),
                                reason="containernetworking-plugins is not installed")

_counter = [0]


class Netd(ActivatedDaemon):
    def __init__(self, tmp):
        _counter[0] += 1
        self.n = (os.getpid() + _counter[0]) % 200 + 20
        self.bridge = f"crispt{self.n}"
        self.subnet = f"10.250.{self.n}.0/24"
        self.cni_dir = os.path.join(tmp, "cni")
        self.bin_dir = os.path.join(tmp, "bin")
        self.ipam_dir = os.path.join(tmp, "ipam")
        for d in (self.cni_dir, self.bin_dir, self.ipam_dir):
            os.makedirs(d)
        super().__init__("netd", tmp, "[cni]\n"
                         f"conf_dir = \"{self.cni_dir}\"\n"
                         f"bin_dirs = [\"{CNI_BIN}\", \"{self.bin_dir}\"]\n"
                         "plugin_timeout = 20\n")
        self.pins = os.path.join(self.state, "netns")

    def write_config(self, name="10-crisp-test.conflist", conf=None):
        path = os.path.join(self.cni_dir, name)
        with open(path + ".tmp", "w") as f:
            json.dump(conf or bridge_conflist(self.bridge, self.subnet, self.ipam_dir), f)
        os.rename(path + ".tmp", path)  # one inotify event, a complete file

    def status(self):
        return self.call(STATUS, ipb.NetworkStatusRequest(), ipb.NetworkStatusReply)

    def create(self, pod, ch=None):
        return self.call(NETNS, ipb.NetnsCreateRequest(pod_id=pod), ipb.NetnsCreateReply, ch)

    def attach(self, pod, ch=None, **kw):
        kw.setdefault("name", "web")
        kw.setdefault("namespace", "default")
        kw.setdefault("uid", "uid-" + pod[:8])
        return self.call(ATTACH, ipb.NetworkAttachRequest(pod_id=pod, **kw),
                         ipb.NetworkAttachReply, ch)

    def pod_up(self, ch=None, **kw):
        pod = secrets.token_hex(32)
        r = self.create(pod, ch)
        assert not isinstance(r, tuple), r
        r = self.attach(pod, ch, **kw)
        assert not isinstance(r, tuple), r
        return pod, r

    def teardown(self, pod, ch=None, keep_netns=False):
        return self.call(TEARDOWN, ipb.NetworkTeardownRequest(pod_id=pod, keep_netns=keep_netns),
                         ipb.NetworkTeardownReply, ch)

    def pod_network(self, pod, stats=False):
        return self.call(PODNET, ipb.PodNetworkRequest(pod_id=pod, stats=stats),
                         ipb.PodNetworkReply)

    def pin(self, pod):
        return os.path.join(self.pins, pod)

    def in_pod(self, pod, *cmd, **kw):
        return subprocess.run(["nsenter", f"--net={self.pin(pod)}", *cmd], capture_output=True,
                              text=True, timeout=30, **kw)

    def allocations(self):
        d = os.path.join(self.ipam_dir, "crisp-test")
        return sorted(n for n in os.listdir(d) if n[0].isdigit()) if os.path.isdir(d) else []


@pytest.fixture
def netd():
    tmp = tempfile.mkdtemp(prefix="crisp-netd-")
    os.chmod(tmp, 0o755)  # the crisp user must reach the socket
    chains = nat_chains()
    d = Netd(tmp)
    try:
        yield d
        assert "seccomp: refused" not in d.log(), d.log()[-3000:]
    finally:
        # Pods a test left: their namespaces and allocations go with them.
        if d.proc and d.proc.poll() is None and os.path.isdir(d.pins):
            for pod in os.listdir(d.pins):
                d.teardown(pod)
        d.stop()
        for pod in os.listdir(d.pins) if os.path.isdir(d.pins) else []:
            subprocess.run(["umount", "-l", os.path.join(d.pins, pod)], capture_output=True)
        remove_host_network_state(d.bridge, chains)
        subprocess.run(["rm", "-rf", tmp], check=False)


def started(netd, config=True):
    if config:
        netd.write_config()
    return netd.start()


def test_readiness_follows_the_conf_dir(netd):
    started(netd, config=False)
    st = netd.status()
    assert not st.ready and st.reason == "NetworkPluginNotReady"
    assert netd.cni_dir in st.message
    # A change made before a call is seen by that call (no waiting for the
    # watcher), each of many times: an installer writes the config, and the
    # kubelet's next Status must report it.
    path = os.path.join(netd.cni_dir, "10-crisp-test.conflist")
    for _ in range(20):
        netd.write_config()
        st = netd.status()
        assert st.ready and list(st.networks) == ["crisp-test"], st
        os.unlink(path)
        assert not netd.status().ready
    # A plugin type with a path in it makes the file unusable, and says so.
    bad = bridge_conflist(netd.bridge, netd.subnet, netd.ipam_dir)
    bad["plugins"][0]["type"] = "../../../bin/sh"
    netd.write_config("20-bad.conflist", bad)
    st = netd.status()
    assert not st.ready and "plain file name" in st.message


def test_pods_get_addresses_and_reach_each_other(netd):
    started(netd)
    a, ra = netd.pod_up()
    b, rb = netd.pod_up()
    assert ra.interface == "eth0" and len(ra.ips) == 1
    assert ra.ips[0].startswith(f"10.250.{netd.n}.") and ra.ips[0] != rb.ips[0]
    # Both ways, inside the namespaces this test made.
    for src, dst in ((a, rb.ips[0]), (b, ra.ips[0])):
        p = netd.in_pod(src, BUSYBOX, "ping", "-c", "1", "-W", "3", dst)
        assert p.returncode == 0, p.stdout + p.stderr
    # Loopback is up in a new namespace.
    p = netd.in_pod(a, BUSYBOX, "ping", "-c", "1", "-W", "3", "127.0.0.1")
    assert p.returncode == 0, p.stdout + p.stderr
    # Addresses and counters.
    pn = netd.pod_network(a, stats=True)
    assert list(pn.ips) == list(ra.ips) and pn.netns_path == netd.pin(a)
    eth0 = [i for i in pn.interfaces if i.name == "eth0"]
    assert eth0 and eth0[0].rx_packets > 0 and eth0[0].tx_bytes > 0
    assert not [i for i in pn.interfaces if i.name == "lo"]
    # Teardown releases the addresses and the namespaces.
    assert len(netd.allocations()) == 2
    for pod in (a, b):
        assert not isinstance(netd.teardown(pod), tuple)
        assert not os.path.exists(netd.pin(pod))
    assert netd.allocations() == []
    # Idempotent.
    assert not isinstance(netd.teardown(a), tuple)


def serve_in_pod(netd, pod, port, reply, bind="0.0.0.0"):
    """A one-shot TCP server inside the pod's namespace; returns its process."""
    code = ("import socket,sys\n"
            f"s=socket.socket(socket.AF_INET6 if ':' in '{bind}' else socket.AF_INET)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            f"s.bind(('{bind}', {port})); s.listen(1); print('ready', flush=True)\n"
            f"c,_=s.accept(); c.sendall(b'{reply}'); c.close()\n")
    p = subprocess.Popen(["nsenter", f"--net={netd.pin(pod)}", "/usr/bin/python3", "-c", code],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def test_host_port_answers_on_loopback(netd):
    started(netd)
    host_port = 20000 + netd.n
    pod, _ = netd.pod_up(port_mappings=[ipb.PortMapping(protocol="tcp", container_port=8080,
                                                        host_port=host_port)])
    server = serve_in_pod(netd, pod, 8080, "hello from the pod")
    try:
        with socket.create_connection(("127.0.0.1", host_port), timeout=5) as c:
            assert c.recv(100) == b"hello from the pod"
    finally:
        server.kill()
        server.wait()
    assert not isinstance(netd.teardown(pod), tuple)


def test_port_forward_dial(netd):
    started(netd)
    pod, _ = netd.pod_up()
    for bind in ("127.0.0.1", "::1"):
        server = serve_in_pod(netd, pod, 9090, f"via {bind}", bind=bind)
        fds = []
        r = netd.call(DIAL, ipb.PortForwardDialRequest(pod_id=pod, port=9090),
                      ipb.PortForwardDialReply, received_fds=fds)
        assert not isinstance(r, tuple), r
        assert len(fds) == 1
        with socket.socket(fileno=fds[0]) as s:
            s.settimeout(5)
            assert s.recv(100) == f"via {bind}".encode()
        server.wait(10)
    # Nothing listens: a clear refusal.
    r = netd.call(DIAL, ipb.PortForwardDialRequest(pod_id=pod, port=9091), ipb.PortForwardDialReply)
    assert r[:2] == ("error", "ERROR_UNAVAILABLE") and "9091" in r[2], r


def test_capability_args_reach_plugins(netd):
    """The pod's DNS, port mappings and cgroup reach the plugins that ask for them."""
    log = os.path.join(netd.tmp, "seen.json")
    spy = os.path.join(netd.bin_dir, "crisp-spy")
    with open(spy, "w") as f:
        f.write("#!/bin/sh\n"
                f"cat > {log}.$CNI_COMMAND\n"
                "echo \"$CNI_ARGS\" > " + log + ".args\n"
                "if [ \"$CNI_COMMAND\" = ADD ]; then\n"
                "  /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[\"prevResult\"]))' "
                f"{log}.ADD\nfi\n")
    os.chmod(spy, 0o755)
    netd.write_config(conf=bridge_conflist(netd.bridge, netd.subnet, netd.ipam_dir, [
        {"type": "crisp-spy", "capabilities": {"dns": True, "portMappings": True,
                                               "cgroupPath": True}}]))
    netd.start()
    pod, r = netd.pod_up(name="web-0", namespace="shop", uid="1234-abcd",
                         dns_servers=["10.96.0.10"], dns_searches=["shop.svc.cluster.local"],
                         dns_options=["ndots:5"], cgroup_parent="/kubepods/pod1234",
                         port_mappings=[ipb.PortMapping(container_port=80, host_port=18081)])
    seen = json.load(open(log + ".ADD"))
    rc = seen["runtimeConfig"]
    assert rc["dns"] == {"servers": ["10.96.0.10"], "searches": ["shop.svc.cluster.local"],
                         "options": ["ndots:5"]}
    assert rc["cgroupPath"] == "/kubepods/pod1234"
    assert rc["portMappings"] == [{"hostPort": 18081, "containerPort": 80, "protocol": "tcp",
                                   "hostIP": ""}]
    assert seen["prevResult"]["ips"][0]["address"].startswith(r.ips[0] + "/")
    args = open(log + ".args").read()
    assert "K8S_POD_NAME=web-0" in args and "K8S_POD_NAMESPACE=shop" in args
    assert f"K8S_POD_INFRA_CONTAINER_ID={pod}" in args
    assert not isinstance(netd.teardown(pod), tuple)
    assert json.load(open(log + ".DEL"))["runtimeConfig"]["cgroupPath"] == "/kubepods/pod1234"


def test_del_after_the_config_is_gone(netd):
    started(netd)
    pod, _ = netd.pod_up()
    assert len(netd.allocations()) == 1
    os.unlink(os.path.join(netd.cni_dir, "10-crisp-test.conflist"))
    wait_for(lambda: not netd.status().ready, 10, what="the watcher")
    assert not isinstance(netd.teardown(pod), tuple)
    assert netd.allocations() == []
    assert not os.path.exists(netd.pin(pod))


def test_restart_keeps_pods_networking(netd):
    started(netd)
    a, ra = netd.pod_up()
    b, rb = netd.pod_up()
    netd.stop()
    # A pin left by a crash between pinning and recording goes at start-up.
    stray = "e" * 64
    open(os.path.join(netd.pins, stray), "w").close()
    netd.start()
    assert not os.path.exists(os.path.join(netd.pins, stray))
    p = netd.in_pod(a, BUSYBOX, "ping", "-c", "1", "-W", "3", rb.ips[0])
    assert p.returncode == 0, p.stdout + p.stderr
    assert list(netd.pod_network(a).ips) == list(ra.ips)
    for pod in (a, b):
        assert not isinstance(netd.teardown(pod), tuple)
    assert netd.allocations() == []


def test_failing_plugin_leaves_nothing(netd):
    fail = os.path.join(netd.bin_dir, "crisp-fail")
    with open(fail, "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\n"
                "[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
                "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,"
                "\"msg\":\"crisp-fail says no\",\"details\":\"on purpose\"}'\nexit 1\n")
    os.chmod(fail, 0o755)
    netd.write_config(conf=bridge_conflist(netd.bridge, netd.subnet, netd.ipam_dir,
                                           [{"type": "crisp-fail"}]))
    netd.start()
    pod = secrets.token_hex(32)
    assert not isinstance(netd.create(pod), tuple)
    r = netd.attach(pod)
    assert r[0] == "error" and "crisp-fail says no: on purpose" in r[2], r
    assert "crisp-fail" in r[2]
    # The bridge plugin's address went back to the pool.
    assert netd.allocations() == []
    # The namespace goes with the teardown RunPodSandbox does on failure.
    assert not isinstance(netd.teardown(pod), tuple)
    assert not os.path.exists(netd.pin(pod))


def pipelined(netd, type_, msgs, reply_cls):
    """Sends every request before reading any answer, as criapi does with
    concurrent CRI calls on its one channel; the answers, in request order."""
    ch = netd.ch
    ids = []
    for m in msgs:
        rid = ch.next_id
        ch.next_id += 1
        ch.send(type_, m.SerializeToString(), rid)
        ids.append(rid)
    answers = {}
    while len(answers) < len(ids):
        a = ch.recv(timeout=120)
        assert a is not None, netd.log()[-3000:]
        t, rid, payload = a
        assert t == type_ + 1, (t, payload)
        answers[rid] = reply_cls.FromString(payload)
    return [answers[r] for r in ids]


def test_twenty_pods_at_once(netd):
    started(netd)
    pods = [secrets.token_hex(32) for _ in range(20)]
    pipelined(netd, NETNS, [ipb.NetnsCreateRequest(pod_id=p) for p in pods], ipb.NetnsCreateReply)
    t0 = time.monotonic()
    replies = pipelined(netd, ATTACH, [ipb.NetworkAttachRequest(
        pod_id=p, name=f"web-{i}", namespace="default", uid=f"uid-{i}")
        for i, p in enumerate(pods)], ipb.NetworkAttachReply)
    print(f"20 concurrent attaches took {time.monotonic() - t0:.2f} s")
    ips = [r.ips[0] for r in replies]
    assert len(set(ips)) == 20
    assert len(netd.allocations()) == 20
    pipelined(netd, TEARDOWN, [ipb.NetworkTeardownRequest(pod_id=p) for p in pods],
              ipb.NetworkTeardownReply)
    assert netd.allocations() == [] and os.listdir(netd.pins) == []


def test_refusals(netd):
    started(netd)
    never = "d" * 64
    # Namespaces netd never made.
    assert netd.attach(never)[:2] == ("error", "ERROR_NOT_FOUND")
    assert netd.pod_network(never)[:2] == ("error", "ERROR_NOT_FOUND")
    r = netd.call(DIAL, ipb.PortForwardDialRequest(pod_id=never, port=80), ipb.PortForwardDialReply)
    assert r[:2] == ("error", "ERROR_NOT_FOUND")
    # IDs that try to be paths.
    for bad in ("../../etc", "", "D" * 64, "d" * 63, "/" + "d" * 63):
        for r in (netd.create(bad), netd.attach(bad), netd.teardown(bad), netd.pod_network(bad)):
            assert r[:2] == ("error", "ERROR_INVALID"), (bad, r)
    # Pod metadata that would add CNI_ARGS keys.
    pod = secrets.token_hex(32)
    assert not isinstance(netd.create(pod), tuple)
    r = netd.attach(pod, name="web;K8S_POD_NAMESPACE=kube-system")
    assert r[:2] == ("error", "ERROR_INVALID"), r
    r = netd.attach(pod, port_mappings=[ipb.PortMapping(protocol="icmp", container_port=1,
                                                        host_port=1)])
    assert r[:2] == ("error", "ERROR_INVALID"), r
    # Made once only.
    assert netd.create(pod)[:2] == ("error", "ERROR_ALREADY_EXISTS")
    assert not isinstance(netd.teardown(pod), tuple)
    assert os.listdir(netd.pins) == []


def test_check_finds_a_broken_pod_network(netd):
    started(netd)
    pod, _ = netd.pod_up()
    ok = netd.call(PODNET, ipb.PodNetworkRequest(pod_id=pod, check=True), ipb.PodNetworkReply)
    assert not isinstance(ok, tuple), ok
    # Someone removes the pod's interface: the bridge plugin's CHECK says so.
    p = netd.in_pod(pod, "ip", "link", "del", "eth0")
    assert p.returncode == 0, p.stderr
    r = netd.call(PODNET, ipb.PodNetworkRequest(pod_id=pod, check=True), ipb.PodNetworkReply)
    assert r[0] == "error" and "CHECK" in r[2] and "bridge" in r[2], r
    assert not isinstance(netd.teardown(pod), tuple)
    assert netd.allocations() == []
