#!/usr/bin/python3
"""The measurements of bench/lifecycle.sh: one pod with one short container,
run and removed through crisp's CRI, step by step, against the same rootfs
run with `runc` (and `crun`, where it works) directly.

  CRISP_BUILD_DIR=B /usr/bin/python3 bench/lifecycle_bench.py --work W
                         [--runs N] [--warmup K] [--log-level L] [--no-crun]

W is an empty folder (lifecycle.sh makes it, mode 755, and removes it).

  1. The fixture images are built (tests/fixtures/build_images.py, without
     the hostile set) and busybox is pushed to a docker-registry on
     127.0.0.1 (tests/fixtures/registry.py), as conftest_registry.py does.
  2. A suite is started as tests/integration/conftest.py's Suite starts one
     (its Suite class: `crisp run --config F --root R --state S` under W,
     proxies at a closed port with loopback exempt), with a CNI conf dir
     holding one bridge + host-local + portmap conflist of its own (bridge
     crispbench1, 10.253.0.0/24, IPAM data under W) and bin_dirs =
     ["/usr/lib/cni"].  busybox is pulled once through the ImageService.
  3. crisp, per run: RunPodSandbox, CreateContainer (busybox, command
     ["/bin/true"]), StartContainer, then ContainerStatus every millisecond
     until it says EXITED ("start -> exited"), StopContainer (timeout 0),
     RemoveContainer, StopPodSandbox, RemovePodSandbox.  Each call is timed
     in this client, from before the call until its answer is read.  Once
     with the default runtime handler (runc), and, where crun works, once
     with crisp's built-in handler "crun" (the pod's runtime_handler).
  4. runc and crun, per run, on a bundle whose rootfs is busybox's layer
     unpacked from the same OCI layout, with `runc spec`'s config (args
     /bin/true, terminal false, its own new namespaces, none joined):
       - `R run --bundle B ID`: create, start, wait and delete in one command;
       - the split: `R create --bundle B --pid-file P ID`, `R start ID`, the
         wait for the process's end (a pidfd, no polling), `R delete ID`.
     Each runtime has its own --root under W and distinct IDs per run.

Why /bin/true: it is what the direct runs can run too, so "create, start,
exit, delete" is the same work on every path, and the container's own run
time is next to nothing.  StopContainer then finds the container exited and
only records it (the kubelet calls it for running containers; a SIGKILL
path would add the signal and the runtime's kill verb).

The paths take turns run by run (which goes first rotates), so a busy
stretch of a shared machine hits them all alike.  K warmup runs per path
(default 3) are not counted; the first one's requests and commands are
printed.  Then a table with the median and p90 per step, and CPU per run:
each daemon's with its spawn helper and what they reaped (from /proc), and
the whole suite's from a cpuacct cgroup of its own that the suite is moved
into once ready (conmon daemonizes and is reaped by init, so only the cgroup
sees its CPU).

Everything made here is removed at the end, also after a failure: pods
through the CRI, the suite (SIGTERM to its pid, then wait), the registry,
runc/crun containers under our --root, the bridge, iptables nat chains that
appeared during the run and name this network or subnet, ip_forward as it
was, the cpuacct cgroup, and the hugetlb cgroup mount if this script made
it.
"""
import argparse
import contextlib
import json
import os
import select
import shlex
import statistics
import subprocess
import sys
import time
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.setdefault("CRISP_BUILD_DIR", os.path.join(TOP, "build-bench"))
sys.path[:0] = [os.path.join(TOP, "tests", "integration"), os.path.join(TOP, "tests", "fixtures"),
                os.path.join(BUILD, "python")]

import build_images  # noqa: E402
import registry as registry_mod  # noqa: E402
from cni_helpers import bridge_conflist, nat_chains  # noqa: E402
from conftest import Suite, descendants_of  # noqa: E402
from google.protobuf import text_format  # noqa: E402

import api_pb2 as api  # noqa: E402
import api_pb2_grpc  # noqa: E402

PROG = os.path.basename(sys.argv[0])
CNI_BIN = "/usr/lib/cni"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
HUGETLB = "/sys/fs/cgroup/hugetlb"
POLL_S = 0.001  # between ContainerStatus calls while waiting for the exit

CRISP_STEPS = ("RunPodSandbox", "CreateContainer", "StartContainer", "start -> exited",
               "StopContainer", "RemoveContainer", "StopPodSandbox", "RemovePodSandbox")
# Rows of the summary: (label, crisp key, runtime key).
ROWS = (
    ("RunPodSandbox", "RunPodSandbox", None),
    ("CreateContainer | create", "CreateContainer", "create"),
    ("StartContainer | start", "StartContainer", "start"),
    ("start -> exited", "start -> exited", "start -> exited"),
    ("StopContainer (already exited)", "StopContainer", None),
    ("RemoveContainer | delete", "RemoveContainer", "delete"),
    ("StopPodSandbox", "StopPodSandbox", None),
    ("RemovePodSandbox", "RemovePodSandbox", None),
    ("container: create .. delete", "container", "split"),
    ("one command: `run`", None, "run"),
    ("total (pod and container)", "total", None),
)


def ms_since(t0):
    return (time.perf_counter_ns() - t0) / 1e6


def p90(values):
    return statistics.quantiles(values, n=10, method="inclusive")[-1]


def cpu_sample():
    """(idle + iowait, steal, total) of all CPUs, in ticks, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[3] + v[4], v[7], sum(v)


def shares(a, b):
    """Idle and steal between two cpu_sample()s, in % of all CPUs' time."""
    total = max(1, b[2] - a[2])
    return round(100 * (b[0] - a[0]) / total), round(100 * (b[1] - a[1]) / total)


def idle_pct(seconds=1.0):
    a = cpu_sample()
    time.sleep(seconds)
    return shares(a, cpu_sample())[0]


# --------------------------------------------------------------------------
# crisp through the CRI


class Crisp:
    """A suite whose CNI conf dir holds NET's conflist only."""

    def __init__(self, work, log_level, net):
        self.net = net
        self.work = os.path.join(work, "suite")
        os.makedirs(self.work)
        self.ipam = os.path.join(self.work, "ipam")
        self.logs = os.path.join(self.work, "logs")
        cni_dir = os.path.join(self.work, "cni")
        self.suite = Suite(self.work, config_text=(
            f"[crisp]\nlog_level = \"{log_level}\"\n"
            f"[cni]\nconf_dir = \"{cni_dir}\"\nbin_dirs = [\"{CNI_BIN}\"]\n"))
        self.conflist = bridge_conflist(net.bridge, net.subnet, self.ipam, name=net.name)
        with open(os.path.join(cni_dir, f"10-{net.name}.conflist"), "w") as f:
            json.dump(self.conflist, f, indent=1)
        self.rt = self.img = self.channel = None
        self.image = None
        self.account = CpuAccount(net.name)

    def start(self):
        self.suite.start()
        print(f"$ {shlex.join(self.suite.args)}   (pid {self.suite.proc.pid}, log_level "
              "in the config)")
        print("  conflist:", json.dumps(self.conflist, separators=(",", ":")))
        if self.account.enter(self.suite.proc.pid):
            print(f"  moved to the cpuacct cgroup {self.account.path} (for its CPU per run, "
                  "conmon's included)")
        self.channel = self.suite.channel()
        self.rt = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.img = api_pb2_grpc.ImageServiceStub(self.channel)

    def pull(self, ref):
        req = api.PullImageRequest(image=api.ImageSpec(image=ref))
        t0 = time.perf_counter_ns()
        self.image = self.img.PullImage(req, timeout=120).image_ref
        print(f"PullImage {ref}: {ms_since(t0):.1f} ms (once, not counted), image {self.image}")
        self.ref = ref

    def call(self, times, step, method, req, timeout=60, show=False):
        if show:
            print(f"  {step}: {text_format.MessageToString(req, as_one_line=True)}")
        t0 = time.perf_counter_ns()
        r = method(req, timeout=timeout)
        times[step] = ms_since(t0)
        return r

    def lifecycle(self, i, handler, show):
        """One pod (runtime handler HANDLER, "" for the default) with one
        /bin/true container, created and removed.  Returns {step: ms} and the
        number of ContainerStatus calls the wait for the exit took."""
        t = {}
        name = f"bench-{handler or 'default'}-{i}"
        pod_cfg = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name=name, namespace="default",
                                            uid=str(uuid.uuid4()), attempt=0),
            log_directory=os.path.join(self.logs, name),
            linux=api.LinuxPodSandboxConfig(security_context=api.LinuxSandboxSecurityContext(
                namespace_options=api.NamespaceOption(network=api.POD))))
        pod = self.call(t, "RunPodSandbox", self.rt.RunPodSandbox,
                        api.RunPodSandboxRequest(config=pod_cfg, runtime_handler=handler),
                        120, show).pod_sandbox_id
        cfg = api.ContainerConfig(metadata=api.ContainerMetadata(name="c"),
                                  image=api.ImageSpec(image=self.ref), command=["/bin/true"],
                                  log_path="c/0.log")
        cid = self.call(t, "CreateContainer", self.rt.CreateContainer,
                        api.CreateContainerRequest(pod_sandbox_id=pod, config=cfg,
                                                   sandbox_config=pod_cfg), show=show).container_id
        self.call(t, "StartContainer", self.rt.StartContainer,
                  api.StartContainerRequest(container_id=cid), show=show)
        t0 = time.perf_counter_ns()
        polls = 0
        while True:
            polls += 1
            t1 = time.perf_counter_ns()
            st = self.rt.ContainerStatus(api.ContainerStatusRequest(container_id=cid),
                                         timeout=30).status
            if st.state == api.CONTAINER_EXITED:
                break
            if ms_since(t0) > 30000:
                raise RuntimeError(f"container {cid} did not exit in 30 s")
            time.sleep(POLL_S)
        t["start -> exited"] = ms_since(t0)
        t["status"] = ms_since(t1)
        if st.exit_code != 0:
            raise RuntimeError(f"/bin/true exited {st.exit_code} ({st.reason}) in crisp")
        self.call(t, "StopContainer", self.rt.StopContainer,
                  api.StopContainerRequest(container_id=cid, timeout=0), show=show)
        self.call(t, "RemoveContainer", self.rt.RemoveContainer,
                  api.RemoveContainerRequest(container_id=cid), show=show)
        self.call(t, "StopPodSandbox", self.rt.StopPodSandbox,
                  api.StopPodSandboxRequest(pod_sandbox_id=pod), show=show)
        self.call(t, "RemovePodSandbox", self.rt.RemovePodSandbox,
                  api.RemovePodSandboxRequest(pod_sandbox_id=pod), show=show)
        t["container"] = sum(t[k] for k in CRISP_STEPS[1:6])
        t["total"] = sum(t[k] for k in CRISP_STEPS)
        return t, polls

    def cpu_ms(self):
        """{name: ms}: the supervisor and every process under it by name
        (the daemons, their spawn helpers), each with the children it
        reaped (runtime verbs, CNI plugins); "suite" is the whole cgroup (0
        without one).  One pass over /proc."""
        procs = {}  # pid -> (ppid, ticks, comm)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    head, rest = f.read().rsplit(")", 1)
            except (OSError, ValueError):
                continue
            fields = rest.split()
            procs[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]),
                                 head.split("(", 1)[1])
        kids = {}
        for pid, (ppid, _, _) in procs.items():
            kids.setdefault(ppid, []).append(pid)

        ms = 1000 / os.sysconf("SC_CLK_TCK")
        top = self.suite.proc.pid
        out = {"supervisor": procs.get(top, (0, 0, ""))[1] * ms}
        todo = list(kids.get(top, ()))
        while todo:  # by name: crisp-sandboxd, sandboxd-spawn, ...
            pid = todo.pop()
            out[procs[pid][2]] = out.get(procs[pid][2], 0) + procs[pid][1] * ms
            todo += kids.get(pid, ())
        out["suite"] = self.account.usage_ms()
        return out

    def check_clean(self):
        pods = self.rt.ListPodSandbox(api.ListPodSandboxRequest(), timeout=30).items
        ctrs = self.rt.ListContainers(api.ListContainersRequest(), timeout=30).containers
        st = self.suite.state
        runtimes = [(r, os.path.join(st, r)) for r in ("runc", "crun")]
        runc = [c for r, root in runtimes if os.path.isdir(root)
                for c in subprocess.run([r, "--root", root, "list", "-q"], capture_output=True,
                                        text=True).stdout.split()]
        pins = os.path.join(st, "netns")
        ipam = os.path.join(self.ipam, self.net.name)
        left = {"pods": [p.id for p in pods], "containers": [c.id for c in ctrs],
                "runc": runc, "pins": os.listdir(pins) if os.path.isdir(pins) else [],
                "ips": [n for n in os.listdir(ipam) if n[0].isdigit()]
                if os.path.isdir(ipam) else []}
        if any(left.values()):
            raise RuntimeError(f"left behind after the runs: {left}")
        if "seccomp: refused" in self.suite.read_log():
            raise RuntimeError("a daemon's seccomp filter refused a call; see its log")
        print("after the runs: no pod, container, runc/crun container, pin or address left")

    def stop(self):
        """Pods a failure left go through the CRI; then SIGTERM and wait."""
        if self.suite.proc is None:
            return
        self.suite.remove_pods()
        if self.channel is not None:
            self.channel.close()
        self.suite.stop()
        left = self.suite.leftovers()
        if left:
            print(f"{PROG}: processes of the suite still alive: {left}", file=sys.stderr)


class CrispPath:
    """crisp with one runtime handler, as a path of the comparison."""

    def __init__(self, crisp, handler):
        self.crisp, self.handler = crisp, handler
        self.show = False
        self.polls = []  # ContainerStatus calls per wait for the exit

    def run_once(self, i):
        t, polls = self.crisp.lifecycle(i, self.handler, self.show)
        self.polls.append(polls)
        return t


class CpuAccount:
    """A cpuacct cgroup (v1) of its own that the suite is moved into once it
    is ready.  What it starts later inherits it: conmon, which daemonizes and
    is reaped by init, so no parent's counters ever see it, and the runc
    create conmon runs, until the container's process joins its own cgroup.
    Not made on a host without a cgroup v1 cpuacct hierarchy."""

    BASE = "/sys/fs/cgroup/cpuacct"

    def __init__(self, name):
        self.name = name
        self.path = None

    def enter(self, root_pid):
        if not os.path.exists(os.path.join(self.BASE, "cpuacct.usage")):
            return False
        self.path = os.path.join(self.BASE, f"{self.name}-{os.getpid()}")
        os.mkdir(self.path)
        for _ in range(2):  # a process forked while the first pass ran
            for pid in [root_pid, *descendants_of(root_pid)]:
                with contextlib.suppress(OSError), \
                        open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
        return True

    def usage_ms(self):
        if not self.path:
            return 0.0
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read()) / 1e6

    def remove(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError as e:
                print(f"{PROG}: {self.path} not removed: {e}", file=sys.stderr)
            self.path = None


# --------------------------------------------------------------------------
# runc and crun directly


class Oci:
    def __init__(self, name, binary, work, bundle):
        self.name, self.binary, self.bundle = name, binary, bundle
        self.root = os.path.join(work, f"{name}-root")
        self.pid_dir = os.path.join(work, f"{name}-pids")
        os.makedirs(self.pid_dir)
        self.err_path = os.path.join(work, f"{name}.stderr")
        self.live = set()  # IDs created and not yet deleted
        self.show = False

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]

    def cmd(self, times, step, *args):
        """Runs one runtime command, stdio not a pipe (a created container
        would hold it open); its time in ms goes into times[step]."""
        argv = self.argv(*args)
        if self.show:
            print(f"  $ {shlex.join(argv)}")
        with open(self.err_path, "w") as err:
            t0 = time.perf_counter_ns()
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=err)
            times[step] = ms_since(t0)
        if p.returncode:
            with open(self.err_path) as f:
                raise RuntimeError(f"{shlex.join(argv)} exited {p.returncode}: {f.read()}")

    def run_once(self, i):
        t = {}
        cid = f"crisp-lcb-{self.name}-run-{i}"
        self.live.add(cid)
        self.cmd(t, "run", "run", "--bundle", self.bundle, cid)
        self.live.discard(cid)  # `run` deletes the container once it ends

        cid = f"crisp-lcb-{self.name}-split-{i}"
        pid_file = os.path.join(self.pid_dir, cid)
        self.live.add(cid)
        self.cmd(t, "create", "create", "--bundle", self.bundle, "--pid-file", pid_file, cid)
        with open(pid_file) as f:
            pid = int(f.read())
        # Opened before the start, so the exit cannot be missed.
        pidfd = os.pidfd_open(pid)
        try:
            self.cmd(t, "start", "start", cid)
            t0 = time.perf_counter_ns()
            poll = select.poll()
            poll.register(pidfd, select.POLLIN)
            if not poll.poll(30000):
                raise RuntimeError(f"{self.name} container {cid} did not exit in 30 s")
            t["start -> exited"] = ms_since(t0)
        finally:
            os.close(pidfd)
        self.cmd(t, "delete", "delete", cid)
        self.live.discard(cid)
        os.unlink(pid_file)
        t["split"] = sum(t[k] for k in ("create", "start", "start -> exited", "delete"))
        return t

    def leftovers(self):
        out = subprocess.run(self.argv("list", "-q"), capture_output=True, text=True).stdout
        return out.split()

    def stop(self):
        """Containers a failure left, by the IDs this script gave them."""
        for cid in sorted(self.live | {c for c in self.leftovers()
                                        if c.startswith(f"crisp-lcb-{self.name}-")}):
            subprocess.run(self.argv("delete", "--force", cid), capture_output=True)
        self.live.clear()


def make_bundle(work, image):
    """busybox's layer unpacked from the fixture layout, and `runc spec`'s
    config with /bin/true, no terminal."""
    bundle = os.path.join(work, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs)
    for layer in image["layers"]:
        blob = os.path.join(image["layout"], "blobs", *layer["digest"].split(":", 1))
        subprocess.run(["tar", "--numeric-owner", "-xzf", blob, "-C", rootfs], check=True)
    subprocess.run(["runc", "spec", "--bundle", bundle], check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["process"]["args"] = ["/bin/true"]
    spec["process"]["terminal"] = False
    with open(path, "w") as f:
        json.dump(spec, f, indent=1)
    ns = [n["type"] for n in spec["linux"]["namespaces"]]
    print(f"bundle: {bundle} (rootfs: the busybox layer {image['layers'][0]['digest'][:19]}..., "
          f"untarred; `runc spec` with args [/bin/true], terminal false, readonly root "
          f"{spec['root'].get('readonly')}, new namespaces {','.join(ns)}, none joined)")
    return bundle


@contextlib.contextmanager
def crun_cgroups():
    """As tests/integration/test_containers.py's crun_cgroups fixture: crun
    refuses hybrid cgroups while cgroup2 owns a controller (here hugetlb), so
    give hugetlb a v1 hierarchy, and take it away after if we made it."""
    unified = "/sys/fs/cgroup/unified/cgroup.controllers"
    owned = os.path.exists(unified) and open(unified).read().split()
    mounted = False
    if owned == ["hugetlb"] and not os.path.ismount(HUGETLB):
        os.makedirs(HUGETLB, exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup", HUGETLB], check=True)
        mounted = True
        print(f"mounted the hugetlb cgroup v1 hierarchy on {HUGETLB} for crun (removed at the end)")
    try:
        yield
    finally:
        if mounted:
            subprocess.run(["umount", HUGETLB], check=False)
            with contextlib.suppress(OSError):
                os.rmdir(HUGETLB)


def crun_works(oci):
    """One `crun run` of the bundle: crun is compared only if this succeeds."""
    t = {}
    cid = f"crisp-lcb-{oci.name}-probe"
    oci.live.add(cid)
    try:
        oci.cmd(t, "run", "run", "--bundle", oci.bundle, cid)
    except RuntimeError as e:
        print(f"crun is not compared: {e}")
        return False
    finally:
        oci.stop()
    return True


# --------------------------------------------------------------------------
# Host state the bridge and portmap plugins leave


class Network:
    """A bridge network of the benchmark's own: the bridge, the subnet and
    the network's name (the conflist's, which portmap's rules name)."""

    def __init__(self, bridge, subnet, name):
        self.bridge, self.subnet, self.name = bridge, subnet, name


NET = Network("crispbench1", "10.253.0.0/24", "crisp-lifecycle-bench")


def is_ours(chain, net):
    """portmap names the network in its rules' comments; the subnet is ours
    too.  Chains of anything else running meanwhile are not ours to remove."""
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S", chain], capture_output=True,
                           text=True).stdout
    return f'"{net.name}"' in rules or net.subnet.rsplit(".", 1)[0] + "." in rules


def host_cleanup(net, chains_before, ip_forward):
    subprocess.run(["ip", "link", "del", net.bridge], capture_output=True)
    chains = sorted(c for c in nat_chains() - chains_before if is_ours(c, net))
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
    print(f"removed: bridge {net.bridge}; iptables nat chains of this network: "
          f"{' '.join(chains) or 'none (no host ports)'}")
    with open(IP_FORWARD, "r+") as f:
        if f.read().strip() != ip_forward:
            f.seek(0)
            f.write(ip_forward)


# --------------------------------------------------------------------------
# Runs and the report


def cpu_ms():
    """This script's CPU and its reaped children's, user+sys, in ms."""
    t = os.times()
    return (t.user + t.system) * 1000, (t.children_user + t.children_system) * 1000


def cpu_of(path, before):
    """{what: ms of CPU so far} for what runs on PATH's behalf (with a .crisp,
    crisp's processes too).  The /proc scan for crisp's processes is left out
    of this script's own CPU: done first before a run, last after it."""
    crisp = getattr(path, "crisp", None)
    out = crisp.cpu_ms() if crisp and before else {}
    out["this script"], out["children"] = cpu_ms()
    if crisp and not before:
        out.update(crisp.cpu_ms())
    return out


def run_all(paths, first, count, samples, cpu=None):
    """Runs first..first+count-1 on every path; which goes first rotates.
    cpu[name][what] adds up the CPU each run of the path took (cpu_of)."""
    for i in range(first, first + count):
        k = i % len(paths)
        for name, path in paths[k:] + paths[:k]:
            c0 = cpu_of(path, True) if cpu is not None else None
            t = path.run_once(i)
            if cpu is not None:
                acc = cpu.setdefault(name, {})
                for what, v in cpu_of(path, False).items():
                    acc[what] = acc.get(what, 0) + v - c0.get(what, 0)
            if samples is not None:
                for key, v in t.items():
                    samples[name].setdefault(key, []).append(v)


def warm_up(paths, warmup):
    """WARMUP runs per path, not counted; the first one shows what it sends
    and runs (each path's .show)."""
    print("\n== the first warmup run of each path, as sent and run")
    for _, p in paths:
        p.show = True
    run_all(paths, 0, 1, None)
    for _, p in paths:
        p.show = False
    run_all(paths, 1, warmup - 1, None)


def measure(paths, first, runs, what="runs per path"):
    """RUNS counted runs per path from run FIRST on, with how idle the
    machine was before, during and after them.  Returns (samples, cpu) as
    run_all fills them."""
    idle = idle_pct()
    print(f"\n== {runs} counted {what} (machine {idle}% idle over the second before)")
    samples = {name: {} for name, _ in paths}
    cpu = {}
    m0 = cpu_sample()
    t0 = time.monotonic()
    run_all(paths, first, runs, samples, cpu)
    elapsed = time.monotonic() - t0
    idle, steal = shares(m0, cpu_sample())
    print(f"done in {elapsed:.1f} s; during them the machine was {idle}% idle and "
          f"{steal}% stolen (time the host ran something else on our vCPUs: a busy "
          f"host slows every path); {idle_pct()}% idle over the second after")
    return samples, cpu


def serve_busybox(work, cleanup, name):
    """The fixture images built under WORK, and busybox pushed to a
    docker-registry on 127.0.0.1 that CLEANUP (an ExitStack) stops.
    Returns (registry, busybox's image summary)."""
    images = os.path.join(work, "images")
    t0 = time.monotonic()
    summary = build_images.build_all(images, include_hostile=False)
    busybox = summary["images"]["busybox"]
    print(f"fixture images built in {time.monotonic() - t0:.1f} s "
          f"(tests/fixtures/build_images.py, into {images})")
    reg = registry_mod.Registry(workdir=os.path.join(work, "registry"), name=name)
    cleanup.callback(reg.stop)
    reg.start()
    reg.push_images({"busybox": busybox})
    print(f"$ {registry_mod.REGISTRY_BIN} serve {reg.workdir}/config.yml   "
          f"(pid {reg.pid}, {reg.url}; busybox pushed)")
    return reg, busybox


def cell(samples, name, key):
    v = samples.get(name, {}).get(key) if key else None
    if not v:
        return f"{'-':>17}"
    return f"{statistics.median(v):7.1f} / {p90(v):7.1f}"


def report(samples, paths, n):
    print(f"== summary: {n} runs per path, ms (median / p90)")
    head = f"{'step':<34}"
    for name, _ in paths:
        head += f" {name:>17}"
    print(head)
    for label, ck, ok in ROWS:
        line = f"{label:<34}"
        for name, path in paths:
            line += f" {cell(samples, name, ck if isinstance(path, CrispPath) else ok)}"
        print(line)
    print("Each row's median is over that row's own samples: a sum row is the median of "
          "the per-run sums, not the sum of the medians.")


def report_cpu(n, cpu, paths):
    hz = os.sysconf("SC_CLK_TCK")
    print(f"CPU per run, user+sys, ms (over all {n} counted runs; /proc ticks of 1/{hz} s; "
          "the cgroup's counter in ns):")
    for name, path in paths:
        c = {k: v / n for k, v in cpu[name].items()}
        if not isinstance(path, CrispPath):
            print(f"  {name}: the commands this script ran and what they reaped "
                  f"{c['children']:.1f} (two containers: `run` and the split, whose container "
                  f"process init reaps, uncounted); this script {c['this script']:.1f}")
            continue
        daemons = {k: v for k, v in c.items() if k not in ("this script", "children", "suite")}
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(daemons.items(), key=lambda kv: -kv[1]))
        known = sum(daemons.values())
        print(f"  {name}: each process of the suite with what it reaped (the spawn helpers: "
              f"runtime verbs, CNI plugins): {parts}; sum {known:.1f}")
        if path.crisp.account.path:
            print(f"  {' ' * len(name)}  everything the suite ran (its cgroup) {c['suite']:.1f}, "
                  f"so conmon and the create it runs about {c['suite'] - known:.1f}; this script "
                  f"(the gRPC client) {c['this script']:.1f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--no-crun", action="store_true")
    args = ap.parse_args()
    if args.runs < 2 or args.warmup < 1:
        ap.error("--runs must be at least 2 (for a p90), --warmup at least 1")

    chains_before = nat_chains()
    with open(IP_FORWARD) as f:
        ip_forward = f.read().strip()
    # Run last to first, each even when one before it failed.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(host_cleanup, NET, chains_before, ip_forward)
        reg, busybox = serve_busybox(args.work, cleanup, "lifecycle-registry")

        crisp = Crisp(args.work, args.log_level, NET)
        cleanup.callback(crisp.account.remove)
        cleanup.callback(crisp.stop)
        crisp.start()
        crisp.pull(reg.ref("busybox"))

        bundle = make_bundle(args.work, busybox)
        paths = [("crisp (runc)", CrispPath(crisp, ""))]
        runc = Oci("runc", "runc", args.work, bundle)
        cleanup.callback(runc.stop)
        oci = [("runc", runc)]
        if not args.no_crun:
            cleanup.enter_context(crun_cgroups())
            crun = Oci("crun", "crun", args.work, bundle)
            cleanup.callback(crun.stop)
            if crun_works(crun):
                # crisp's built-in handler "crun" ([runtimes.crun], /usr/bin/crun).
                paths.append(("crisp (crun)", CrispPath(crisp, "crun")))
                oci.append(("crun", crun))
        paths += oci

        warm_up(paths, args.warmup)
        for _, p in paths:
            if isinstance(p, CrispPath):
                p.polls.clear()
        samples, cpu = measure(paths, args.warmup, args.runs)

        print()
        report(samples, paths, args.runs)
        print(f"crisp's start -> exited: ContainerStatus every {POLL_S * 1000:.0f} ms after "
              "the previous answer until it says EXITED:")
        for name, p in paths:
            if isinstance(p, CrispPath):
                status = samples[name]["status"]
                print(f"  {name}: calls per wait median {statistics.median(p.polls):.0f}, max "
                      f"{max(p.polls)}; the last call (the EXITED answer) took "
                      f"{statistics.median(status):.1f} / {p90(status):.1f} ms")
        print()
        report_cpu(args.runs, cpu, paths)
        crisp.check_clean()
        for name, p in oci:
            if p.leftovers():
                raise RuntimeError(f"{name} containers left: {p.leftovers()}")
        print(f"{', '.join(n for n, _ in oci)}: no container left under our --root")


if __name__ == "__main__":
    main()
