"""Pods through the CRI: RunPodSandbox (netd's namespace, sandboxd's infra
process under runc, CNI ADD), status and listing, stop and remove, and what
a failure leaves behind (nothing).  Pod traffic goes only to pod addresses
in namespaces these tests made, and to loopback.
"""
import json
import os
import socket
import subprocess
import uuid

import grpc
import pytest

from cni_helpers import bridge_conflist, nat_chains, remove_host_network_state
from conftest import proc_status, wait_for

import api_pb2 as api
import api_pb2_grpc

BUSYBOX = "/bin/busybox"
_counter = [0]

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/lib/cni/bridge"),
                                reason="containernetworking-plugins is not installed")


class Pods:
    def __init__(self, suite, net):
        self.suite = suite
        self.net = net
        self.rt = api_pb2_grpc.RuntimeServiceStub(suite.channel())

    def config(self, name="web", host_network=False, **kw):
        ns = api.NamespaceOption(network=api.NODE if host_network else api.POD)
        kw.setdefault("linux", api.LinuxPodSandboxConfig(
            security_context=api.LinuxSandboxSecurityContext(namespace_options=ns)))
        return api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, namespace="default",
                                            uid=str(uuid.uuid4()), attempt=0),
            log_directory="/tmp", **kw)

    def run(self, config=None, **kw):
        return self.rt.RunPodSandbox(api.RunPodSandboxRequest(config=config or self.config(**kw)),
                                     timeout=120).pod_sandbox_id

    def status(self, pod, verbose=False):
        return self.rt.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=pod,
                                                                    verbose=verbose), timeout=30)

    def pid(self, pod):
        return json.loads(self.status(pod, verbose=True).info["info"])["pid"]

    def stop(self, pod):
        self.rt.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=60)

    def remove(self, pod):
        self.rt.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=60)

    def list(self, **filter_kw):
        f = api.PodSandboxFilter(**filter_kw) if filter_kw else None
        return list(self.rt.ListPodSandbox(api.ListPodSandboxRequest(filter=f), timeout=30).items)

    def in_pod(self, pod, ns, *cmd):
        return subprocess.run(["nsenter", "-t", str(self.pid(pod)), f"-{ns}", *cmd],
                              capture_output=True, text=True, timeout=30)

    def leftovers(self):
        """What a pod could leave on the node."""
        st = self.suite.state
        runc = subprocess.run(["runc", "--root", os.path.join(st, "runc"), "list", "-q"],
                              capture_output=True, text=True).stdout.split()
        pins = os.listdir(os.path.join(st, "netns")) if os.path.isdir(os.path.join(st, "netns")) \
            else []
        bundles = os.listdir(os.path.join(st, "sandbox", "bundles"))
        ipam = os.path.join(self.net["ipam"], "crisp-test")
        ips = [n for n in os.listdir(ipam) if n[0].isdigit()] if os.path.isdir(ipam) else []
        return {"runc": runc, "pins": pins, "bundles": bundles, "ips": ips,
                "pods": [p.id for p in self.list()]}


@pytest.fixture
def pods(suite_factory):
    started = []

    def start(extra_plugins=(), extra_config=""):
        _counter[0] += 1
        n = (os.getpid() + _counter[0]) % 200 + 20
        s = suite_factory()
        net = {"bridge": f"crispp{n}", "subnet": f"10.252.{n}.0/24",
               "ipam": os.path.join(s.tmp, "ipam"), "bin": os.path.join(s.tmp, "bin"),
               "chains": nat_chains(), "n": n}
        os.makedirs(net["bin"])
        with open(os.path.join(s.cni_dir, "10-test.conflist"), "w") as f:
            json.dump(bridge_conflist(net["bridge"], net["subnet"], net["ipam"], extra_plugins), f)
        with open(s.config, "w") as f:
            f.write("[crisp]\nlog_level = \"debug\"\n"
                    f"[cni]\nconf_dir = \"{s.cni_dir}\"\n"
                    f"bin_dirs = [\"/usr/lib/cni\", \"{net['bin']}\"]\n" + extra_config)
        p = Pods(s, net)
        started.append(p)
        s.start()
        return p

    yield start
    for p in started:
        if p.suite.proc and p.suite.proc.poll() is None:
            for pod in p.list():
                p.remove(pod.id)
        remove_host_network_state(p.net["bridge"], p.net["chains"])


def test_pod_lifecycle(pods):
    p = pods()
    cfg = p.config(hostname="web-host", dns_config=api.DNSConfig(
        servers=["10.96.0.10"], searches=["default.svc.cluster.local"], options=["ndots:5"]),
        labels={"app": "web"}, annotations={"note": "x"})
    pod = p.run(cfg)
    st = p.status(pod).status
    assert st.state == api.SANDBOX_READY
    assert st.network.ip.startswith(f"10.252.{p.net['n']}.")
    assert st.metadata.name == "web" and st.labels["app"] == "web"
    assert st.annotations["note"] == "x"
    # The infra process: crisp-pause, unprivileged, without capabilities.
    pid = p.pid(pod)
    status = proc_status(pid)
    assert status["Uid"].split()[0] == "65535"
    assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"] == "1"
    # The pod's files, as the pod sees them.
    resolv = open(f"/proc/{pid}/root/etc/resolv.conf").read()
    assert "nameserver 10.96.0.10" in resolv and "options ndots:5" in resolv
    assert "search default.svc.cluster.local" in resolv
    assert p.in_pod(pod, "u", "hostname").stdout.strip() == "web-host"
    # Listing with filters.
    assert [x.id for x in p.list()] == [pod]
    assert [x.id for x in p.list(id=pod[:12])] == [pod]
    assert p.list(label_selector={"app": "other"}) == []
    assert [x.id for x in p.list(state=api.PodSandboxStateValue(state=api.SANDBOX_READY))] == [pod]
    # Stop: the infra process and the network go; the pod stays listed.
    p.stop(pod)
    assert p.status(pod).status.state == api.SANDBOX_NOTREADY
    assert not os.path.exists(f"/proc/{pid}/status") or \
        proc_status(pid).get("State", "").startswith("Z")
    p.stop(pod)  # again: fine
    # Remove: nothing stays.
    p.remove(pod[:16])
    p.remove(pod)  # idempotent
    assert p.leftovers() == {"runc": [], "pins": [], "bundles": [], "ips": [], "pods": []}
    with pytest.raises(grpc.RpcError) as e:
        p.stop(pod)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_pods_reach_each_other(pods):
    p = pods()
    a, b = p.run(name="a"), p.run(name="b")
    ip_b = p.status(b).status.network.ip
    r = p.in_pod(a, "n", BUSYBOX, "ping", "-c", "1", "-W", "3", ip_b)
    assert r.returncode == 0, r.stdout + r.stderr


def test_host_port(pods):
    p = pods()
    host_port = 21000 + p.net["n"]
    pod = p.run(port_mappings=[api.PortMapping(protocol=api.TCP, container_port=8080,
                                               host_port=host_port)])
    code = ("import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('0.0.0.0', 8080)); s.listen(1); print('ready', flush=True)\n"
            "c,_=s.accept(); c.sendall(b'from the pod'); c.close()\n")
    server = subprocess.Popen(["nsenter", "-t", str(p.pid(pod)), "-n", "/usr/bin/python3", "-c",
                               code], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        with socket.create_connection(("127.0.0.1", host_port), timeout=5) as c:
            assert c.recv(100) == b"from the pod"
    finally:
        server.kill()
        server.wait()


def test_host_network_pod(pods):
    p = pods()
    pod = p.run(host_network=True)
    st = p.status(pod).status
    assert st.state == api.SANDBOX_READY and st.network.ip == ""
    assert os.readlink(f"/proc/{p.pid(pod)}/ns/net") == os.readlink("/proc/self/ns/net")
    assert p.leftovers()["pins"] == []


def test_failing_plugin_fails_run_and_leaves_nothing(pods, tmp_path):
    fail = {"type": "crisp-fail"}
    p = pods(extra_plugins=[fail])
    with open(os.path.join(p.net["bin"], "crisp-fail"), "w") as f:
        f.write("#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n"
                "echo '{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"no network today\"}'\n"
                "exit 1\n")
    os.chmod(os.path.join(p.net["bin"], "crisp-fail"), 0o755)
    with pytest.raises(grpc.RpcError) as e:
        p.run()
    assert "no network today" in e.value.details(), e.value.details()
    assert p.leftovers() == {"runc": [], "pins": [], "bundles": [], "ips": [], "pods": []}


def test_twenty_pods_at_once(pods):
    import concurrent.futures
    p = pods()
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(lambda i: p.run(name=f"pod-{i}"), range(20)))
    ips = {p.status(i).status.network.ip for i in ids}
    assert len(ips) == 20 and all(ip.startswith(f"10.252.{p.net['n']}.") for ip in ips)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        list(pool.map(lambda i: (p.stop(i), p.remove(i)), ids))
    assert p.leftovers() == {"runc": [], "pins": [], "bundles": [], "ips": [], "pods": []}


def test_refusals(pods):
    p = pods()
    cfg = p.config()
    p.run(cfg)
    # The same name again.
    with pytest.raises(grpc.RpcError) as e:
        p.run(cfg)
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "taken by pod" in e.value.details()
    # A sysctl this node does not allow, and one that would reach the node.
    for sysctls, code in (({"kernel.panic": "1"}, grpc.StatusCode.PERMISSION_DENIED),
                          ({"net.ipv4.ip_forward\nkernel.panic": "1"},
                           grpc.StatusCode.INVALID_ARGUMENT)):
        linux = api.LinuxPodSandboxConfig(sysctls=sysctls)
        with pytest.raises(grpc.RpcError) as e:
            p.run(p.config(name="s", linux=linux))
        assert e.value.code() in (code, grpc.StatusCode.INVALID_ARGUMENT), e.value.details()
    assert len(p.leftovers()["pins"]) == 1 and len(p.list()) == 1


def test_netd_restart_keeps_pods_networking(pods):
    p = pods()
    a, b = p.run(name="a"), p.run(name="b")
    ip_b = p.status(b).status.network.ip
    old = p.suite.pid_of("crisp-netd")
    os.kill(old, 9)
    wait_for(lambda: p.suite.daemon_pids().get("crisp-netd") not in (None, old), 20,
             what="netd to be restarted")
    r = p.in_pod(a, "n", BUSYBOX, "ping", "-c", "1", "-W", "3", ip_b)
    assert r.returncode == 0, r.stdout + r.stderr
    # Teardown goes through the restarted netd (after its channel is back).
    def network_ready():
        conds = p.rt.Status(api.StatusRequest(), timeout=10).status.conditions
        return {c.type: c.status for c in conds}.get("NetworkReady")
    wait_for(network_ready, 20, what="NetworkReady again")
    for pod in (a, b):
        p.stop(pod)
        p.remove(pod)
    assert p.leftovers() == {"runc": [], "pins": [], "bundles": [], "ips": [], "pods": []}
