#!/usr/bin/python3
"""The measurements of bench/netd.sh: one pod's network set up and torn down
by crisp-netd, against the same plugins invoked directly.

  CRISP_BUILD_DIR=B /usr/bin/python3 bench/netd_bench.py --work W
                                                          [--pods N] [--warmup K]

W is an empty folder the crisp user can reach (mode 755); netd.sh makes it
and removes it.  Here:

  - crisp: crisp-netd alone, socket-activated as tests/integration/activated.py
    starts it, with a conf dir holding one bridge + host-local + portmap
    conflist (bridge crispbench0, 10.251.0.0/24, IPAM data under W).  Per pod,
    NetnsCreate, NetworkAttach and NetworkTeardown on its channel, each timed
    from before the request is sent until the answer is read.
  - direct: the same work without crisp: `ip netns add`, then the loopback
    plugin, bridge and portmap run as subprocesses with the CNI environment
    and the stdin netd would write (netd/cni_exec.c plugin_config), prevResult
    chained; teardown runs DEL in reverse with each network's ADD result and
    `ip netns del`.

The two paths share the conflist, the bridge and the IPAM folder, and take
turns pod by pod (which goes first alternates), so a slow stretch of a
shared machine hits both alike.  K warmup pods per path (default 2, the
first one creates the bridge) are not counted; then N pods (default 50).
The first warmup pod's requests and commands are printed in full.  Then
a table (median and p90 per step and per pod), the direct path's time per
command, and CPU per pod: netd's, its spawn helper's, the plugins', and
this script's own on each path.

Everything made here is removed at the end, also after a failure: pods
left, netd (stopped by its pid), pins, namespaces, the bridge, iptables nat
chains that appeared during the run and name this network or subnet, and
ip_forward as it was.
"""
import argparse
import contextlib
import json
import os
import resource
import secrets
import shlex
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.setdefault("CRISP_BUILD_DIR", os.path.join(TOP, "build-bench"))
sys.path[:0] = [os.path.join(TOP, "tests", "integration"), os.path.join(BUILD, "python")]

from activated import ActivatedDaemon  # noqa: E402
from cni_helpers import bridge_conflist  # noqa: E402
from conftest import BIN, children_of, comm_of  # noqa: E402
from google.protobuf import text_format  # noqa: E402

import internal_pb2 as ipb  # noqa: E402

NETNS, ATTACH, TEARDOWN = 772, 774, 776  # requests; common/ipc_types.h
CNI_BIN = "/usr/lib/cni"
BRIDGE = "crispbench0"
SUBNET = "10.251.0.0/24"
NETNS_PREFIX = "crispbench-"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
# What netd/spawn.c gives plugins: they run iptables, ip and friends.
PLUGIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# netd_loopback_network() in netd/cni_config.c: always the first network.
LOOPBACK = {"cniVersion": "1.0.0", "name": "cni-loopback", "plugins": [{"type": "loopback"}]}
STEPS = ("create", "attach", "teardown")
LABELS = {"create": "namespace (NetnsCreate | ip netns add)",
          "attach": "CNI ADD (NetworkAttach | 3 plugins)",
          "teardown": "CNI DEL + namespace removal",
          "total": "total per pod"}


def conflist(ipam_dir):
    return bridge_conflist(BRIDGE, SUBNET, ipam_dir, name="crisp-bench")


def cni_args(pod, i):
    return (f"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-{i};"
            f"K8S_POD_INFRA_CONTAINER_ID={pod};K8S_POD_UID=uid-{i}")


class Crisp:
    """Pods through crisp-netd's channel, as criapi would send them."""

    def __init__(self, work):
        self.cni_dir = os.path.join(work, "cni")
        self.ipam_dir = os.path.join(work, "ipam")
        os.makedirs(self.cni_dir)
        os.makedirs(self.ipam_dir)
        with open(os.path.join(self.cni_dir, "10-crisp-bench.conflist"), "w") as f:
            json.dump(conflist(self.ipam_dir), f, indent=1)
        self.netd = ActivatedDaemon("netd", work, "[cni]\n"
                                    f"conf_dir = \"{self.cni_dir}\"\n"
                                    f"bin_dirs = [\"{CNI_BIN}\"]\n")
        self.pods = {}  # i -> pod ID, until torn down
        self.show = False

    def start(self):
        self.netd.start()
        print(f"$ {BIN}/crisp-netd --config {self.netd.conf} --root {self.netd.root} "
              f"--state {self.netd.state} --log-level debug   (pid {self.netd.proc.pid}, "
              "socket-activated, as tests/integration/activated.py starts it)")

    def call(self, type_, msg, reply_cls):
        if self.show:
            print(f"  request {type_}: {text_format.MessageToString(msg, as_one_line=True)}")
        r = self.netd.call(type_, msg, reply_cls)
        if isinstance(r, tuple):
            raise RuntimeError(f"crisp-netd answered {r[1]}: {r[2]}")
        return r

    def create(self, i):
        self.pods[i] = secrets.token_hex(32)
        self.call(NETNS, ipb.NetnsCreateRequest(pod_id=self.pods[i]), ipb.NetnsCreateReply)

    def attach(self, i):
        self.call(ATTACH, ipb.NetworkAttachRequest(pod_id=self.pods[i], name=f"web-{i}",
                                                   namespace="default", uid=f"uid-{i}"),
                  ipb.NetworkAttachReply)

    def teardown(self, i):
        self.call(TEARDOWN, ipb.NetworkTeardownRequest(pod_id=self.pods[i]),
                  ipb.NetworkTeardownReply)
        del self.pods[i]

    def cpu_ticks(self):
        """netd's own CPU, and its spawn helper's with the plugins it reaped."""
        netd = stat_ticks(self.netd.proc.pid)
        helper = [stat_ticks(p) for p in children_of(self.netd.proc.pid)
                  if comm_of(p) == "netd-spawn"]
        return (netd[0], sum(h[0] for h in helper), sum(h[1] for h in helper))

    def teardown_left(self):
        """Pods a failure left, while netd runs: their addresses and pins go too."""
        if self.netd.proc and self.netd.proc.poll() is None:
            for i in list(self.pods):
                self.teardown(i)

    def unpin_left(self):
        """Pins netd could not remove (it failed or was stopped early)."""
        pins = os.path.join(self.netd.state, "netns")
        for pod in os.listdir(pins) if os.path.isdir(pins) else []:
            subprocess.run(["umount", "-l", os.path.join(pins, pod)], capture_output=True)


class Direct:
    """The same pods with `ip netns` and the plugins run directly."""

    def __init__(self, ipam_dir):
        self.networks = [(LOOPBACK, "lo"), (conflist(ipam_dir), "eth0")]
        self.pods = {}  # i -> (pod ID, [ADD result per network]), until torn down
        self.show = False
        self.times = {}  # "ADD bridge", "ip netns add", ... -> ms of each run

    def run(self, label, argv, stdin=None, env=None):
        if self.show:
            envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
            print(f"  $ {envs}{' ' if envs else ''}{shlex.join(argv)}"
                  + (f" <<< {shlex.quote(stdin)}" if stdin else ""))
        t0 = time.perf_counter_ns()
        p = subprocess.run(argv, input=stdin, env=env, capture_output=True, text=True)
        self.times.setdefault(label, []).append((time.perf_counter_ns() - t0) / 1e6)
        if p.returncode:
            raise RuntimeError(f"{shlex.join(argv)} failed: {p.stdout}{p.stderr}")
        return p.stdout

    def plugin(self, command, i, net, ifname, plugin, prev):
        """One plugin run with what netd's plugin_config writes on its stdin."""
        pod = self.pods[i][0]
        conf = dict(plugin, name=net["name"], cniVersion=net["cniVersion"])
        if prev is not None:
            conf["prevResult"] = prev
        # Only the capabilities the plugin declares; a pod without host ports
        # still gives portmap an empty list, as netd does.
        runtime = {"portMappings": []}
        rc = {k: runtime[k] for k, on in plugin.get("capabilities", {}).items()
              if on is True and k in runtime}
        if rc:
            conf["runtimeConfig"] = rc
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": pod,
               "CNI_NETNS": f"/run/netns/{NETNS_PREFIX}{i}", "CNI_IFNAME": ifname,
               "CNI_ARGS": cni_args(pod, i), "CNI_PATH": CNI_BIN, "PATH": PLUGIN_PATH}
        out = self.run(f"{command} {plugin['type']}", [f"{CNI_BIN}/{plugin['type']}"],
                       json.dumps(conf, separators=(",", ":")), env)
        return json.loads(out) if command == "ADD" else None

    def create(self, i):
        self.pods[i] = (secrets.token_hex(32), [])
        self.run("ip netns add", ["ip", "netns", "add", f"{NETNS_PREFIX}{i}"])

    def attach(self, i):
        for net, ifname in self.networks:
            prev = None
            for p in net["plugins"]:
                prev = self.plugin("ADD", i, net, ifname, p, prev)
            self.pods[i][1].append(prev)

    def teardown(self, i):
        """As netd's teardown: networks in reverse, each plugin in reverse, with
        the network's ADD result as prevResult."""
        results = self.pods[i][1]
        for (net, ifname), result in reversed(list(zip(self.networks, results))):
            for p in reversed(net["plugins"]):
                self.plugin("DEL", i, net, ifname, p, result)
        self.run("ip netns del", ["ip", "netns", "del", f"{NETNS_PREFIX}{i}"])
        del self.pods[i]

    def stop(self):
        """Namespaces of pods a failure left; their veths go with them."""
        for i in list(self.pods):
            subprocess.run(["ip", "netns", "del", f"{NETNS_PREFIX}{i}"], capture_output=True)
        self.pods.clear()


def stat_ticks(pid):
    """(utime + stime, cutime + cstime) of pid, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def own_cpu_ms():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return (r.ru_utime + r.ru_stime) * 1000


def time_pod(path, i):
    """Each step of one pod, in ms, and this script's own CPU for the pod."""
    times = {}
    cpu0 = own_cpu_ms()
    for step in STEPS:
        t0 = time.perf_counter_ns()
        getattr(path, step)(i)
        times[step] = (time.perf_counter_ns() - t0) / 1e6
    times["total"] = sum(times.values())
    times["client_cpu"] = own_cpu_ms() - cpu0
    return times


def run_pods(paths, first, count, samples):
    """Pods first..first+count-1 on every path, alternating which goes first."""
    for i in range(first, first + count):
        order = paths if i % 2 == 0 else paths[::-1]
        for name, path in order:
            t = time_pod(path, i)
            if samples is not None:
                for k, v in t.items():
                    samples[name][k].append(v)


def p90(values):
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def report(samples, n):
    print(f"== summary: {n} pods per path, ms per pod (median / p90)")
    print(f"{'step':<42} {'crisp':>17} {'direct':>17} {'crisp - direct':>15}")
    for k in (*STEPS, "total"):
        c, d = samples["crisp"][k], samples["direct"][k]
        print(f"{LABELS[k]:<42} {statistics.median(c):7.2f} / {p90(c):7.2f} "
              f"{statistics.median(d):7.2f} / {p90(d):7.2f} "
              f"{statistics.median(c) - statistics.median(d):+15.2f}")


def report_commands(direct):
    """Where the direct path's time goes: the floor crisp cannot go under."""
    print("direct path, each command run (median / p90 ms, as subprocess.run took it):")
    for label, v in direct.times.items():
        print(f"  {label:<16} {statistics.median(v):7.2f} / {p90(v):7.2f}")


def report_cpu(samples, crisp_ticks, direct_s, n):
    """CPU per pod over the counted pods: what is worked, not waited."""
    hz = os.sysconf("SC_CLK_TCK")
    ms = [t * 1000 / hz / n for t in crisp_ticks]
    own = {name: sum(s["client_cpu"]) / n for name, s in samples.items()}
    print(f"CPU per pod, user+sys, ms (over all {n} counted pods; /proc ticks of 1/{hz} s):")
    print(f"  crisp:  netd {ms[0]:.2f}, its spawn helper {ms[1]:.2f}, "
          f"plugins (and what they ran) {ms[2]:.2f}, this script as the client {own['crisp']:.2f}")
    print(f"  direct: this script running them {own['direct']:.2f}, "
          f"ip and plugins (and what they ran) {direct_s * 1000 / n:.2f}")


def check_clean(crisp):
    """Nothing of a pod may outlive its teardown: addresses, pins, namespaces."""
    ipam = os.path.join(crisp.ipam_dir, "crisp-bench")
    left = [n for n in os.listdir(ipam) if n[0].isdigit()] if os.path.isdir(ipam) else []
    pins = os.path.join(crisp.netd.state, "netns")
    left += os.listdir(pins) if os.path.isdir(pins) else []
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += [line for line in ns.splitlines() if line.startswith(NETNS_PREFIX)]
    if left:
        raise RuntimeError(f"left behind after teardown: {left}")
    if "seccomp: refused" in crisp.netd.log():
        raise RuntimeError("netd's seccomp filter refused a call; see its log")
    print("after teardown: no address allocated, no pin, no namespace left")


def nat_chains():
    out = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                         text=True, check=True).stdout
    return {line.split()[1] for line in out.splitlines() if line.startswith("-N ")}


def is_ours(chain):
    """portmap names the network in its rules' comments; the subnet is ours too.
    Chains of anything else running meanwhile (the integration tests' netd
    uses other networks) are not ours to remove."""
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S", chain], capture_output=True,
                           text=True).stdout
    return '"crisp-bench"' in rules or SUBNET.rsplit(".", 1)[0] + "." in rules


def remove_nat_chains(new_chains):
    """Ours as tests/integration/test_netd.py's fixture removes them: flush,
    unhook, delete.  portmap only touches iptables for host ports, which these
    pods have none of, so normally there is nothing to do."""
    chains = sorted(c for c in new_chains if is_ours(c))
    for chain in chains:
        subprocess.run(["iptables", "-w", "-t", "nat", "-F", chain], capture_output=True)
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True,
                           text=True).stdout.splitlines()
    for chain in chains:
        for line in rules:
            if f"-j {chain}" in line:
                subprocess.run(["iptables", "-w", "-t", "nat", "-D", *shlex.split(line)[1:]],
                               capture_output=True)
        subprocess.run(["iptables", "-w", "-t", "nat", "-X", chain], capture_output=True)
    print(f"iptables nat chains this run created (removed): {' '.join(chains) or 'none'}")
    others = sorted(set(new_chains) - set(chains))
    if others:
        print(f"new iptables nat chains of something else, left alone: {' '.join(others)}")


def host_cleanup(chains_before, ip_forward):
    """The host-wide things the bridge and portmap plugins change."""
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
    remove_nat_chains(nat_chains() - chains_before)
    with open(IP_FORWARD, "r+") as f:
        if f.read().strip() != ip_forward:
            f.seek(0)
            f.write(ip_forward)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    if args.pods < 2 or args.warmup < 1:
        ap.error("--pods must be at least 2 (for a p90), --warmup at least 1")

    chains_before = nat_chains()
    with open(IP_FORWARD) as f:
        ip_forward = f.read().strip()
    crisp = Crisp(args.work)
    direct = Direct(crisp.ipam_dir)
    paths = [("crisp", crisp), ("direct", direct)]
    # Run last to first, each even when one before it failed.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(host_cleanup, chains_before, ip_forward)
        cleanup.callback(crisp.unpin_left)
        cleanup.callback(crisp.netd.stop)
        cleanup.callback(crisp.teardown_left)
        cleanup.callback(direct.stop)

        crisp.start()
        print("conflist:", json.dumps(conflist(crisp.ipam_dir)))
        print("\n== the first warmup pod, as sent and run")
        crisp.show = direct.show = True
        run_pods(paths, 0, 1, None)
        crisp.show = direct.show = False
        run_pods(paths, 1, args.warmup - 1, None)

        direct.times.clear()
        samples = {name: {k: [] for k in (*STEPS, "total", "client_cpu")} for name, _ in paths}
        crisp_before, direct_before = crisp.cpu_ticks(), os.times()
        run_pods(paths, args.warmup, args.pods, samples)
        crisp_after, direct_after = crisp.cpu_ticks(), os.times()

        print()
        report(samples, args.pods)
        print()
        report_commands(direct)
        print()
        report_cpu(samples, [a - b for a, b in zip(crisp_after, crisp_before)],
                   (direct_after.children_user + direct_after.children_system)
                   - (direct_before.children_user + direct_before.children_system),
                   args.pods)
        check_clean(crisp)

if __name__ == "__main__":
    main()
