#!/usr/bin/python3
"""The measurements of bench/streaming.sh: exec round trips and port-forward
throughput through crisp-streamd, against the same work done without it.

  CRISP_BUILD_DIR=B /usr/bin/python3 bench/streaming_bench.py --work W
                         [--runs N] [--pf-runs M] [--mib S] [--warmup K]
                         [--log-level L]

W is an empty folder (streaming.sh makes it, mode 755, and removes it).

Setup, with bench/lifecycle_bench.py's pieces: the fixture images are built
and busybox is served from a docker-registry on 127.0.0.1; a suite is
started by tests/integration/conftest.py's Suite with a bridge + host-local
+ portmap conflist of its own (bridge crispbench3, 10.249.0.0/24); busybox
is pulled once.  One pod (its own network namespace) holds three busybox
containers:
  - `sleep 3600`, the container the execs run in;
  - a source: `/bin/busybox nc -ll -p 8081 -e /bin/busybox sh -c
    "/bin/busybox dd if=/dev/zero bs=65536 count=16*S 2>/dev/null"`, which
    sends S MiB of zeros to each connection and closes it;
  - a sink: the same on port 8082 with `dd of=/dev/null ... iflag=fullblock;
    echo ok`, which reads S MiB and answers "ok\\n".
(The fixture image links only a few applets, so busybox runs them itself.)

1. Exec of `echo hi` in the sleep container, N counted runs per path:
     - SPDY: the Exec call (its URL), then stream_client's RemoteCommandSpdy
       (v4.channel.k8s.io; connect, upgrade, then the error, stdout and
       stderr streams, each opened after the server replied to the one
       before, as kubectl does; no flow-control windows kept, as kubectl
       keeps none), until stdout holds "hi\\n" and the error stream's
       Status (exit code 0) has arrived;
     - WebSocket: the same with RemoteCommandWs (v4.channel.k8s.io: the
       upgrade alone opens every channel);
     - ExecSync of the same command through the CRI;
     - `runc --root <state>/runc exec <container id> echo hi`: runc on the
       very container, under the root crisp's runc handler uses.
2. Port-forward, M counted runs per path, each run one connection that moves
   S MiB, pod -> client (download, from the source) or client -> pod
   (upload, to the sink, until its "ok"):
     - direct: a TCP connection from the host to the pod's IP (the bridge's
       gateway address routes to it): the same servers without crisp;
     - SPDY: PortForwardSpdy with window_update="ignored", the way kubectl's
       SPDY library behaves (it keeps no windows).  Both SPDY paths use one
       session, opened in the first warmup run, as `kubectl port-forward`
       keeps one for all its connections; each run opens its own error +
       data stream pair.  The session's first transfer pays streamd's one
       wait for a client that keeps no windows (250 ms, docs/STREAMING.md);
       it is a warmup run, and its time is printed;
     - WebSocket: PortForwardWs (v4.channel.k8s.io, ?port=): a PortForward
       call and a session per run, since a WebSocket session carries one
       connection per port for its whole life.
   The client writes 32 KiB at a time on every path (SPDY frames and
   WebSocket messages of 32 KiB, io.Copy's buffer) and reads what comes.

The paths of a group take turns run by run, which one goes first rotating;
K warmup runs per path are not counted, the first one printed.  Then tables
of medians and p90s, and the CPU (user+sys from /proc, each process with
what it reaped) of crisp's daemons and of this script (the client, all its
threads) per exec and per MiB.  This script is Python: where it uses a whole
CPU during a transfer, the client, not streamd, sets the rate, and the
report says so.

Everything made here is removed at the end, also after a failure: the pod
(through the CRI), the port-forward sessions, the suite (SIGTERM to its pid,
then wait), the registry, the bridge, the iptables nat chains that appeared
and name this network or subnet, ip_forward as it was, the cpuacct cgroup.
"""
import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import time
import uuid

import lifecycle_bench as lb
from lifecycle_bench import Crisp, Network, api, ms_since, p90
from cni_helpers import nat_chains
import stream_client as sc

NET = Network("crispbench3", "10.249.0.0/24", "crisp-streaming-bench")
ECHO = ["echo", "hi"]
SOURCE_PORT, SINK_PORT = 8081, 8082
CHUNK = 32 << 10  # what the client writes at a time
MiB = 1 << 20

EXEC_ROWS = (("Exec call (the URL)", "Exec"),
             ("connect, upgrade, open streams", "connect"),
             ('then stdout "hi\\n"', "stdout"),
             ("then the exit status", "status"),
             ("total", "total"))


def check(cond, what):
    if not cond:
        raise RuntimeError(what)


class Path:
    """A path of a comparison: run() does one run and returns {step: ms};
    run_once (what lifecycle_bench.run_all calls) adds "wall", the whole
    run's time, which the CPU shares are taken over."""

    show = False

    def run_once(self, i):
        t0 = time.perf_counter_ns()
        t = self.run(i)
        t["wall"] = ms_since(t0)
        return t


# --------------------------------------------------------------------------
# The pod


class Pod:
    """One pod, its sleep container and the two servers."""

    def __init__(self, crisp, mib):
        self.crisp = crisp
        rt = crisp.rt
        self.cfg = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name="streaming", namespace="default",
                                            uid=str(uuid.uuid4()), attempt=0),
            log_directory=os.path.join(crisp.logs, "streaming"),
            linux=api.LinuxPodSandboxConfig(security_context=api.LinuxSandboxSecurityContext(
                namespace_options=api.NamespaceOption(network=api.POD))))
        self.id = rt.RunPodSandbox(api.RunPodSandboxRequest(config=self.cfg),
                                   timeout=120).pod_sandbox_id
        self.ip = rt.PodSandboxStatus(api.PodSandboxStatusRequest(pod_sandbox_id=self.id),
                                      timeout=30).status.network.ip
        print(f"pod {self.id[:12]}, IP {self.ip} on {NET.bridge}")
        self.sleeper = self.run("sleep", ["sleep", "3600"])
        blocks = mib * MiB // 65536
        dd = f"/bin/busybox dd bs=65536 count={blocks}"
        self.run("source", self.nc(SOURCE_PORT, f"{dd} if=/dev/zero 2>/dev/null"))
        self.run("sink", self.nc(SINK_PORT, f"{dd} of=/dev/null iflag=fullblock 2>/dev/null; "
                                            "echo ok"))
        for port in (SOURCE_PORT, SINK_PORT):
            self.wait_listening(port)

    @staticmethod
    def nc(port, script):
        return ["/bin/busybox", "nc", "-ll", "-p", str(port), "-e", "/bin/busybox", "sh", "-c",
                script]

    def run(self, name, command):
        rt = self.crisp.rt
        cfg = api.ContainerConfig(metadata=api.ContainerMetadata(name=name),
                                  image=api.ImageSpec(image=self.crisp.ref), command=command,
                                  log_path=f"{name}/0.log")
        cid = rt.CreateContainer(api.CreateContainerRequest(
            pod_sandbox_id=self.id, config=cfg, sandbox_config=self.cfg), timeout=60).container_id
        rt.StartContainer(api.StartContainerRequest(container_id=cid), timeout=60)
        print(f"  container {name} {cid[:12]}: {' '.join(command)}")
        return cid

    def wait_listening(self, port, timeout=10):
        """A connection to the pod's IP, closed at once, succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection((self.ip, port), timeout=1).close()
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listens on {self.ip}:{port}: {e}") from None
                time.sleep(0.05)

    def remove(self):
        rt = self.crisp.rt
        rt.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=self.id), timeout=60)
        rt.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=self.id), timeout=60)
        self.id = None


# --------------------------------------------------------------------------
# Exec


class ExecStream(Path):
    """Exec through streamd over TRANSPORT ("spdy" or "ws")."""

    def __init__(self, crisp, cid, transport):
        self.crisp, self.cid, self.transport = crisp, cid, transport

    def open(self, url):
        if self.transport == "spdy":
            return sc.RemoteCommandSpdy(url, stdin=False, protocol=sc.V4,
                                        window_update="ignored")
        return sc.RemoteCommandWs(url, stdin=False, protocol=sc.V4)

    def status(self, rc):
        """The error channel's Status, read to its end (SPDY) or as the one
        message on channel 3 (WebSocket; it may have come with stdout)."""
        if self.transport == "spdy":
            return rc.error_stream.read_all(timeout=10)
        while not rc.output[sc.ERROR]:
            m = rc.conn.recv(timeout=10)
            if m is None:
                break
            if m[0] == sc.ERROR:
                rc.output[sc.ERROR] += m[1]
        return bytes(rc.output[sc.ERROR])

    def run(self, i):
        t = {}
        req = api.ExecRequest(container_id=self.cid, cmd=ECHO, stdout=True, stderr=True)
        url = self.crisp.call(t, "Exec", self.crisp.rt.Exec, req, 10, self.show).url
        t0 = time.perf_counter_ns()
        rc = self.open(url)
        try:
            t["connect"] = ms_since(t0)
            t0 = time.perf_counter_ns()
            out = rc.read_until(b"hi\n", timeout=10)
            t["stdout"] = ms_since(t0)
            t0 = time.perf_counter_ns()
            raw = self.status(rc)
            t["status"] = ms_since(t0)
        finally:
            rc.close()
        status, code = sc.parse_error_stream(raw, rc.protocol)
        check(out == b"hi\n" and code == 0, f"exec over {self.transport}: stdout {out!r}, "
                                            f"status {status!r}")
        if self.show:
            print(f"    {url} over {self.transport}, {rc.protocol}: stdout {out!r}, "
                  f"status {status}")
        t["total"] = t["Exec"] + t["connect"] + t["stdout"] + t["status"]
        return t


class ExecSync(Path):
    def __init__(self, crisp, cid):
        self.crisp, self.cid = crisp, cid

    def run(self, i):
        t = {}
        req = api.ExecSyncRequest(container_id=self.cid, cmd=ECHO, timeout=10)
        r = self.crisp.call(t, "total", self.crisp.rt.ExecSync, req, 30, self.show)
        check(r.stdout == b"hi\n" and r.exit_code == 0,
              f"ExecSync: stdout {r.stdout!r}, exit code {r.exit_code}")
        return t


class RuncExec(Path):
    """`runc exec` of the same container, under crisp's runc root."""

    def __init__(self, root, cid):
        self.argv = ["runc", "--root", root, "exec", cid, *ECHO]

    def run(self, i):
        if self.show:
            print(f"  $ {' '.join(self.argv)}")
        t0 = time.perf_counter_ns()
        p = subprocess.run(self.argv, stdin=subprocess.DEVNULL, capture_output=True)
        t = {"total": ms_since(t0)}
        check(p.returncode == 0 and p.stdout == b"hi\n",
              f"runc exec exited {p.returncode}: {p.stdout!r} {p.stderr!r}")
        return t


# --------------------------------------------------------------------------
# Port-forward: one connection per run, through one of three transports


class Direct:
    """A TCP connection from the host to the pod's IP."""

    label = "direct TCP"

    def __init__(self, pod):
        self.ip = pod.ip

    def open(self, t, port, show):
        t0 = time.perf_counter_ns()
        s = socket.create_connection((self.ip, port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t["connect"] = ms_since(t0)
        if show:
            print(f"    connect({self.ip}:{port})")
        buf = memoryview(bytearray(256 << 10))

        def recv():
            return buf[:s.recv_into(buf)]
        return s.sendall, recv, s.close


class Spdy:
    """Stream pairs on one PortForward session over SPDY, for every path
    that uses this transport; the client keeps no flow-control windows
    (what kubectl's SPDY library does)."""

    label = "SPDY (no windows)"

    def __init__(self, crisp, pod):
        self.crisp, self.pod = crisp, pod
        self.pf = None

    def session(self, show):
        """The session, opened on first use; its setup is printed."""
        if self.pf is None:
            t = {}
            url = self.crisp.call(t, "PortForward", self.crisp.rt.PortForward,
                                  api.PortForwardRequest(pod_sandbox_id=self.pod.id), 10,
                                  show).url
            t0 = time.perf_counter_ns()
            self.pf = sc.PortForwardSpdy(url, window_update="ignored")
            print(f"    SPDY session {url}: PortForward call {t['PortForward']:.1f} ms, "
                  f"connect + upgrade {ms_since(t0):.1f} ms (once, for both directions)")
        return self.pf

    def open(self, t, port, show):
        pf = self.session(show)
        t0 = time.perf_counter_ns()
        data, _ = pf.connect(port)
        t["connect"] = ms_since(t0)

        def send(chunk):
            data.write(chunk, timeout=30)

        def recv():
            return data.read(timeout=30)

        def close():
            data.close_write()
            data.read_all(timeout=10)
        return send, recv, close

    def close(self):
        if self.pf is not None:
            self.pf.close()
            self.pf = None


class Ws:
    """A PortForward call and a WebSocket session per connection."""

    label = "WebSocket"

    def __init__(self, crisp, pod):
        self.crisp, self.pod = crisp, pod

    def open(self, t, port, show):
        url = self.crisp.call(t, "PortForward", self.crisp.rt.PortForward,
                              api.PortForwardRequest(pod_sandbox_id=self.pod.id, port=[port]),
                              10, show).url
        t0 = time.perf_counter_ns()
        pf = sc.PortForwardWs(url, ports=[port])
        t["connect"] = ms_since(t0)
        if show:
            print(f"    {url}?port={port}, {pf.protocol}")

        def send(chunk):
            pf.send(0, chunk)

        def recv():
            return pf.recv_data(0, timeout=30)
        return send, recv, pf.close


class Transfer(Path):
    """One connection per run that moves SIZE bytes one way."""

    def __init__(self, transport, direction, size):
        self.transport, self.direction, self.size = transport, direction, size
        if hasattr(transport, "crisp"):
            self.crisp = transport.crisp  # lifecycle_bench.cpu_of counts crisp's CPU too

    def run(self, i):
        t = {}
        port = SOURCE_PORT if self.direction == "download" else SINK_PORT
        send, recv, close = self.transport.open(t, port, self.show)
        try:
            t0 = time.perf_counter_ns()
            if self.direction == "download":
                got = 0
                while got < self.size:
                    chunk = recv()
                    if not chunk:
                        break
                    got += len(chunk)
                check(got == self.size, f"download: {got} of {self.size} bytes")
            else:
                zeros = bytes(CHUNK)
                for off in range(0, self.size, CHUNK):
                    send(zeros[:min(CHUNK, self.size - off)])
                tail = b""
                while not tail.endswith(b"ok\n"):
                    chunk = recv()
                    if not chunk:
                        break
                    tail += chunk
                check(tail == b"ok\n", f"upload: the sink answered {tail!r}")
            t["transfer"] = ms_since(t0)
        finally:
            t0 = time.perf_counter_ns()
            close()
            t["close"] = ms_since(t0)
        t["total"] = t.get("PortForward", 0) + t["connect"] + t["transfer"]
        if self.show:
            print(f"    {self.direction} of {self.size // MiB} MiB over "
                  f"{self.transport.label}: connect {t['connect']:.1f} ms, transfer "
                  f"{t['transfer']:.1f} ms ({self.size / MiB / t['transfer'] * 1000:.0f} MiB/s)")
        return t


# --------------------------------------------------------------------------
# Reports


def at_rest(crisp, seconds=2.0):
    """The suite's CPU while nothing is asked of it, per process, as text
    ("" when there is none worth a mention)."""
    a = crisp.cpu_ms()
    time.sleep(seconds)
    b = crisp.cpu_ms()
    busy = sorted(((k, (b[k] - a.get(k, 0)) / seconds) for k in b
                   if k not in ("suite", "supervisor")), key=lambda kv: -kv[1])
    busy = [(k, v) for k, v in busy if v > 0]
    text = ", ".join(f"{k} {v:.0f}" for k, v in busy)
    print(f"the suite at rest ({seconds:g} s, nothing asked of it), CPU in ms/s: "
          f"{text or 'none'}; all of it (its cgroup) "
          f"{(b['suite'] - a['suite']) / seconds:.0f}")
    if sum(v for _, v in busy) < 20:
        return ""
    print("  not at rest: that background is in every CPU figure of crisp's processes "
          "below, and it takes CPU from every path")
    return text


def rest_note(rest):
    if rest:
        print(f"  (crisp's figures include its background at rest, in ms/s: {rest})")


def row(label, cells):
    print(f"{label:<34}" + "".join(f" {c:>19}" for c in cells))


def report_exec(samples, paths, cpu, n, rest):
    print(f"== exec `{' '.join(ECHO)}`: {n} runs per path, ms (median / p90)")
    row("step", [name for name, _ in paths])
    for label, key in EXEC_ROWS:
        row(label, [lb.cell(samples, name, key).strip() for name, _ in paths])
    print("The total's median is over the per-run totals, not the sum of the step medians.")
    print(f"CPU per exec, user+sys, ms (over the {n} counted runs, /proc ticks; each "
          "process with what it reaped):")
    for name, path in paths:
        c = cpu[name]
        if hasattr(path, "crisp"):
            parts = [f"{k} {v / n:.2f}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])
                     if k not in ("this script", "children", "suite", "supervisor") and v > 0]
        else:
            parts = [f"runc and what it reaped {c['children'] / n:.2f}"]
        print(f"  {name}: {', '.join(parts) or 'nothing measurable in crisp'}; "
              f"this script {c['this script'] / n:.2f}")
    rest_note(rest)


def report_pf(samples, paths, cpu, n, size, rest):
    mib = size / MiB
    transports = []
    for (_, tr), _ in paths:
        if tr not in transports:
            transports.append(tr)
    print(f"== port-forward, {mib:g} MiB per connection, {n} connections per path: "
          "ms (median / p90), MiB/s (of the median run / of the p90 run)")
    row("", transports)
    for d in ("download", "upload"):
        for label, key in ((f"{d}: PortForward call", "PortForward"),
                           (f"{d}: connect", "connect"),
                           (f"{d}: transfer", "transfer"),
                           (f"{d}: close (not in the total)", "close")):
            row(label, [lb.cell(samples, (d, tr), key).strip() for tr in transports])
        times = [samples[(d, tr)]["transfer"] for tr in transports]
        row(f"{d}: MiB/s", [f"{mib * 1000 / statistics.median(v):7.1f} / "
                            f"{mib * 1000 / p90(v):7.1f}" for v in times])
    print(f"CPU per MiB moved, user+sys, ms (over the {n} counted connections, setup "
          "included), and the share of one CPU it kept busy over the runs' time:")
    for (d, tr), path in paths:
        c = cpu[(d, tr)]
        wall = sum(samples[(d, tr)]["wall"])
        total_mib = n * mib
        client = c["this script"]
        line = (f"  {d}, {tr}: this script (the client) {client / total_mib:.2f}, "
                f"{100 * client / wall:.0f}% busy")
        if hasattr(path, "crisp"):
            streamd = c.get("crisp-streamd", 0)
            line += (f"; crisp-streamd {streamd / total_mib:.2f}, {100 * streamd / wall:.0f}% "
                     f"busy; per connection: crisp-netd {c.get('crisp-netd', 0) / n:.1f}, "
                     f"crisp-criapi {c.get('crisp-criapi', 0) / n:.1f}")
        print(line)
        if client >= 0.85 * wall:
            print("    the client used most of a CPU: on this path it, not what it measures, "
                  "sets the rate")
    rest_note(rest)


# --------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=50, help="exec runs per path")
    ap.add_argument("--pf-runs", type=int, default=20, help="port-forward connections per path")
    ap.add_argument("--mib", type=int, default=64, help="MiB per port-forward connection")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args()
    if min(args.runs, args.pf_runs) < 2 or args.warmup < 1 or args.mib < 1:
        ap.error("--runs and --pf-runs must be at least 2 (for a p90), --warmup and --mib "
                 "at least 1")
    size = args.mib * MiB

    chains_before = nat_chains()
    with open(lb.IP_FORWARD) as f:
        ip_forward = f.read().strip()
    # Run last to first, each even when one before it failed.
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lb.host_cleanup, NET, chains_before, ip_forward)
        reg, _ = lb.serve_busybox(args.work, cleanup, "streaming-registry")
        crisp = Crisp(args.work, args.log_level, NET)
        cleanup.callback(crisp.account.remove)
        cleanup.callback(crisp.stop)
        crisp.start()
        crisp.pull(reg.ref("busybox"))
        pod = Pod(crisp, args.mib)
        cleanup.callback(lambda: pod.id and pod.remove())

        runc_root = os.path.join(crisp.suite.state, "runc")
        listed = subprocess.run(["runc", "--root", runc_root, "list", "-q"], capture_output=True,
                                text=True).stdout.split()
        check(pod.sleeper in listed, f"container {pod.sleeper} not under {runc_root}: {listed}")
        rest = at_rest(crisp)

        exec_paths = [("SPDY", ExecStream(crisp, pod.sleeper, "spdy")),
                      ("WebSocket", ExecStream(crisp, pod.sleeper, "ws")),
                      ("ExecSync", ExecSync(crisp, pod.sleeper)),
                      ("runc exec", RuncExec(runc_root, pod.sleeper))]
        lb.warm_up(exec_paths, args.warmup)
        samples, cpu = lb.measure(exec_paths, args.warmup, args.runs, "execs per path")
        print()
        report_exec(samples, exec_paths, cpu, args.runs, rest)

        transports = [Direct(pod), Spdy(crisp, pod), Ws(crisp, pod)]
        for tr in transports:
            if hasattr(tr, "close"):
                cleanup.callback(tr.close)
        pf_paths = [((d, tr.label), Transfer(tr, d, size))
                    for d in ("download", "upload") for tr in transports]
        lb.warm_up(pf_paths, args.warmup)
        samples, cpu = lb.measure(pf_paths, args.warmup, args.pf_runs,
                                  "connections per path")
        print()
        report_pf(samples, pf_paths, cpu, args.pf_runs, size, rest)

        for tr in transports:
            if hasattr(tr, "close"):
                tr.close()
        pod.remove()
        crisp.check_clean()


if __name__ == "__main__":
    main()
