"""Containers through the CRI: an image pulled from the local registry, a
pod, and containers created from the image under conmon and runc, started,
stopped, and removed; logs in the CRI format; exit codes; what a failed
create leaves behind (nothing)."""
import json
import os
import subprocess
import time

import grpc
import pytest

from conftest import answer_or_none, wait_for
from conftest_registry import faulty_proxy, fixture_images, registry, registry_mod  # noqa: F401
from test_pods import pods  # noqa: F401  (the fixture)

import api_pb2 as api
import api_pb2_grpc


class Containers:
    def __init__(self, p, registry):
        self.p = p
        self.rt = p.rt
        self.img = api_pb2_grpc.ImageServiceStub(p.suite.channel())
        self.registry = registry
        self.logs = os.path.join(p.suite.tmp, "logs")

    def pull(self, name):
        ref = self.registry.ref(name)
        self.img.PullImage(api.PullImageRequest(image=api.ImageSpec(image=ref)), timeout=120)
        return ref

    def pod(self, name="web"):
        cfg = self.p.config(name=name)
        cfg.log_directory = os.path.join(self.logs, name)
        return self.p.run(cfg), cfg

    def create(self, pod, pod_cfg, image, name="app", command=None, **kw):
        cfg = api.ContainerConfig(metadata=api.ContainerMetadata(name=name),
                                  image=api.ImageSpec(image=image), log_path=f"{name}/0.log",
                                  command=command or [], **kw)
        return self.rt.CreateContainer(api.CreateContainerRequest(
            pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), timeout=60).container_id

    def status(self, cid):
        return self.rt.ContainerStatus(api.ContainerStatusRequest(container_id=cid),
                                       timeout=30).status

    def start(self, cid):
        self.rt.StartContainer(api.StartContainerRequest(container_id=cid), timeout=60)

    def stop(self, cid, timeout=2):
        self.rt.StopContainer(api.StopContainerRequest(container_id=cid, timeout=timeout),
                              timeout=60)

    def remove(self, cid):
        self.rt.RemoveContainer(api.RemoveContainerRequest(container_id=cid), timeout=60)

    def log(self, cid):
        path = self.status(cid).log_path
        return open(path).read() if os.path.exists(path) else ""

    def wait_exited(self, cid, timeout=20):
        wait_for(lambda: self.status(cid).state == api.CONTAINER_EXITED, timeout,
                 what=f"container {cid[:12]} to exit")
        return self.status(cid)

    def image_containers(self):
        return os.listdir(os.path.join(self.p.suite.root, "image", "containers"))


@pytest.fixture
def containers(pods, registry):  # noqa: F811
    return Containers(pods(), registry)


def test_container_lifecycle(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["/bin/sh", "-c", "echo hello from $(id -u); sleep 60"])
    st = c.status(cid)
    assert st.state == api.CONTAINER_CREATED and st.metadata.name == "app"
    assert st.log_path == os.path.join(c.logs, "web", "app", "0.log")
    assert [x.id for x in c.rt.ListContainers(api.ListContainersRequest(), timeout=30).containers] \
        == [cid]
    c.start(cid)
    assert c.status(cid).state == api.CONTAINER_RUNNING
    wait_for(lambda: "hello from 0" in c.log(cid), 10, what="the container's output")
    # conmon works in the bundle (it drops an "oom" file in its working directory).
    bundle = os.path.join(c.p.suite.state, "sandbox", "bundles", cid)
    with open(os.path.join(bundle, "conmon.pid")) as f:
        assert os.readlink(f"/proc/{int(f.read())}/cwd") == bundle
    # The CRI log format: time, stream, tag, message.
    line = [x for x in c.log(cid).splitlines() if "hello" in x][0]
    ts, stream, tag, msg = line.split(" ", 3)
    assert stream == "stdout" and tag == "F" and msg == "hello from 0" and "T" in ts
    c.stop(cid, timeout=1)
    st = c.status(cid)
    assert st.state == api.CONTAINER_EXITED and st.exit_code != 0 and st.reason == "Error"
    assert st.finished_at >= st.started_at > 0
    c.remove(cid)
    c.remove(cid)  # idempotent
    assert len(c.rt.ListContainers(api.ListContainersRequest(), timeout=30).containers) == 0
    assert c.image_containers() == []


@pytest.mark.parametrize("script,code,reason", [("exit 3", 3, "Error"), ("true", 0, "Completed")])
def test_exit_codes(containers, script, code, reason):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["/bin/sh", "-c", script])
    c.start(cid)
    st = c.wait_exited(cid)
    assert (st.exit_code, st.reason) == (code, reason)


def test_image_user_and_config(containers):
    c = containers
    image = c.pull("layered")
    pod, pod_cfg = c.pod()
    # The image's USER app, WORKDIR /work, ENV FOO=bar and ENTRYPOINT sh -c.
    cid = c.create(pod, pod_cfg, image, args=["echo $(id -u):$(id -g) $(pwd) $FOO"])
    c.start(cid)
    c.wait_exited(cid)
    assert "1000:1000 /work bar" in c.log(cid)


def test_failed_create_leaves_nothing(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    with pytest.raises(grpc.RpcError) as e:
        c.create(pod, pod_cfg, image, command=["true"], mounts=[
            api.Mount(container_path="/data", host_path="/nonexistent/crisp-test")])
    assert "/nonexistent/crisp-test" in e.value.details()
    assert len(c.rt.ListContainers(api.ListContainersRequest(), timeout=30).containers) == 0
    assert c.image_containers() == []
    state = c.p.suite.state
    assert os.listdir(os.path.join(state, "sandbox", "containers")) == []


def test_remove_pod_takes_its_containers(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["sleep", "60"])
    c.start(cid)
    c.p.stop(pod)
    assert c.status(cid).state == api.CONTAINER_EXITED
    c.p.remove(pod)
    assert len(c.rt.ListContainers(api.ListContainersRequest(), timeout=30).containers) == 0
    assert c.image_containers() == []
    assert c.p.leftovers()["runc"] == []


def exec_sync(c, cid, cmd, timeout=10):
    return c.rt.ExecSync(api.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout),
                         timeout=timeout + 30)


def test_exec_sync(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["sleep", "60"],
                   envs=[api.KeyValue(key="GREETING", value="hi")])
    c.start(cid)
    r = exec_sync(c, cid, ["/bin/sh", "-c", "echo $GREETING out; echo err >&2; exit 7"])
    assert (r.stdout, r.stderr, r.exit_code) == (b"hi out\n", b"err\n", 7)
    # The timeout: the command is killed and the call says so.
    t0 = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        exec_sync(c, cid, ["sleep", "30"], timeout=1)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
    assert time.monotonic() - t0 < 15
    r = exec_sync(c, cid, ["/bin/sh", "-c", "ps -o comm | grep -c sleep"])
    assert r.stdout.strip() == b"1"  # the timed-out sleep is gone, the container's stays
    # Output beyond the cap is dropped, and the command is not blocked by it.
    r = exec_sync(c, cid, ["/bin/sh", "-c", "head -c 20000000 /dev/zero; echo done >&2"],
                  timeout=60)
    assert len(r.stdout) == 16 * 1024 * 1024 - 64 * 1024 and r.exit_code == 0
    # Not running: refused.
    c.stop(cid, timeout=1)
    with pytest.raises(grpc.RpcError) as e:
        exec_sync(c, cid, ["true"])
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_container_events(containers):
    c = containers
    image = c.pull("busybox")
    events = []
    stream = c.rt.GetContainerEvents(api.GetEventsRequest(), timeout=120)

    def collect():
        try:
            for e in stream:
                events.append(e)
        except grpc.RpcError:
            pass
    import threading
    t = threading.Thread(target=collect, daemon=True)
    t.start()
    time.sleep(0.5)  # subscribed
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["/bin/sh", "-c", "exit 4"])
    c.start(cid)
    c.wait_exited(cid)
    c.remove(cid)
    c.p.stop(pod)
    c.p.remove(pod)

    def seen(kind, who):
        return any(e.container_event_type == kind and e.container_id == who for e in events)
    wait_for(lambda: seen(api.CONTAINER_DELETED_EVENT, pod), 10, what="the pod's DELETED event")
    stream.cancel()
    for kind in (api.CONTAINER_CREATED_EVENT, api.CONTAINER_STARTED_EVENT,
                 api.CONTAINER_STOPPED_EVENT, api.CONTAINER_DELETED_EVENT):
        assert seen(kind, cid), (kind, events)
        assert seen(kind, pod), (kind, events)
    stopped = [e for e in events if e.container_id == cid and
               e.container_event_type == api.CONTAINER_STOPPED_EVENT][0]
    assert stopped.containers_statuses[0].exit_code == 4
    assert stopped.pod_sandbox_status.id == pod
    # In order, for the container.
    kinds = [e.container_event_type for e in events if e.container_id == cid]
    assert kinds == [api.CONTAINER_CREATED_EVENT, api.CONTAINER_STARTED_EVENT,
                     api.CONTAINER_STOPPED_EVENT, api.CONTAINER_DELETED_EVENT], kinds


def run_and_log(c, pod, pod_cfg, image, script, **kw):
    cid = c.create(pod, pod_cfg, image, name=kw.pop("name", "probe"),
                   command=["/bin/sh", "-c", script], **kw)
    c.start(cid)
    c.wait_exited(cid)
    return c.log(cid), cid


def security(**kw):
    return api.LinuxContainerConfig(security_context=api.LinuxContainerSecurityContext(**kw))


def test_security_context_seen_from_inside(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    # User and groups.
    log, _ = run_and_log(c, pod, pod_cfg, image, "id", name="user", linux=security(
        run_as_user=api.Int64Value(value=1234), run_as_group=api.Int64Value(value=4321),
        supplemental_groups=[555]))
    assert "uid=1234" in log and "gid=4321" in log and "555" in log
    # Capabilities: the defaults less one dropped plus one added; no_new_privs.
    log, _ = run_and_log(c, pod, pod_cfg, image, "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status",
                         name="caps", linux=security(
                             capabilities=api.Capability(add_capabilities=["NET_ADMIN"],
                                                         drop_capabilities=["CAP_CHOWN"]),
                             no_new_privs=True))
    eff = int([x for x in log.split() if len(x) == 16][0], 16)
    assert eff & (1 << 12)          # CAP_NET_ADMIN added
    assert not eff & (1 << 0)       # CAP_CHOWN dropped
    assert not eff & (1 << 21)      # CAP_SYS_ADMIN never by default
    assert "NoNewPrivs:\t1" in log.replace(" ", "\t") or "NoNewPrivs: 1" in log
    # A read-only root: writing fails.
    log, cid = run_and_log(c, pod, pod_cfg, image, "touch /probe && echo wrote || echo refused",
                           name="ro", linux=security(readonly_rootfs=True))
    assert "refused" in log and "wrote" not in log
    # Masked paths: /proc/keys reads as empty (it is /dev/null); /proc/sys is read-only.
    assert os.path.getsize("/proc/keys") == 0 and open("/proc/keys").read()  # not empty here
    log, _ = run_and_log(c, pod, pod_cfg, image,
                         "echo keys=$(wc -c < /proc/keys); "
                         "echo 1 > /proc/sys/kernel/panic && echo w || echo ro",
                         name="masks")
    assert "F keys=0" in log and "F ro" in log, log
    # Seccomp RuntimeDefault: the mode is filter, and unshare is refused.
    log, _ = run_and_log(c, pod, pod_cfg, image,
                         "grep Seccomp: /proc/self/status; unshare -U true && echo unshared || "
                         "echo refused", name="seccomp", linux=security(
                             seccomp=api.SecurityProfile(profile_type=api.SecurityProfile.RuntimeDefault)))
    assert "Seccomp:\t2" in log or "Seccomp: 2" in log
    assert "refused" in log


def test_privileged_refused_by_policy(pods, registry):  # noqa: F811
    p = pods(extra_config="[runtime]\nallow_privileged = false\n")
    c = Containers(p, registry)
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    with pytest.raises(grpc.RpcError) as e:
        c.create(pod, pod_cfg, image, command=["true"], linux=security(privileged=True))
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "allow_privileged" in e.value.details()
    assert c.image_containers() == []


@pytest.fixture
def crun_cgroups():
    """crun refuses hybrid cgroups while cgroup2 owns a controller (here
    hugetlb, ARCHITECTURE.md §10): give hugetlb a v1 hierarchy for the test."""
    unified = "/sys/fs/cgroup/unified/cgroup.controllers"
    owned = os.path.exists(unified) and open(unified).read().split()
    mounted = False
    if owned == ["hugetlb"] and not os.path.ismount("/sys/fs/cgroup/hugetlb"):
        os.makedirs("/sys/fs/cgroup/hugetlb", exist_ok=True)
        subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "cgroup",
                        "/sys/fs/cgroup/hugetlb"], check=True)
        mounted = True
    yield
    if mounted:
        subprocess.run(["umount", "/sys/fs/cgroup/hugetlb"], check=False)
        os.rmdir("/sys/fs/cgroup/hugetlb")


def test_crun_lifecycle(pods, registry, crun_cgroups):  # noqa: F811
    p = pods()
    c = Containers(p, registry)
    image = c.pull("busybox")
    cfg = p.config(name="crun-pod")
    cfg.log_directory = os.path.join(c.logs, "crun")
    pod = p.rt.RunPodSandbox(api.RunPodSandboxRequest(config=cfg, runtime_handler="crun"),
                             timeout=120).pod_sandbox_id
    assert p.status(pod).status.runtime_handler == "crun"
    cid = c.create(pod, cfg, image, command=["/bin/sh", "-c", "echo via crun; exit 5"])
    c.start(cid)
    st = c.wait_exited(cid)
    assert st.exit_code == 5 and "via crun" in c.log(cid)
    c.remove(cid)
    p.stop(pod)
    p.remove(pod)


def test_stats(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, labels={"app": "burner"}, command=[
        "/bin/sh", "-c", "dd if=/dev/zero of=/tmp/fill bs=1M count=3 2>/dev/null; "
        "while :; do :; done"])
    c.start(cid)
    time.sleep(1.0)
    first = c.rt.ContainerStats(api.ContainerStatsRequest(container_id=cid), timeout=30).stats
    time.sleep(1.0)
    st = c.rt.ContainerStats(api.ContainerStatsRequest(container_id=cid), timeout=30).stats
    assert st.attributes.id == cid and st.attributes.labels["app"] == "burner"
    assert st.cpu.usage_core_nano_seconds.value > first.cpu.usage_core_nano_seconds.value
    assert st.cpu.usage_nano_cores.value > 200_000_000  # a busy loop: most of a core
    assert st.memory.working_set_bytes.value > 0 and st.memory.usage_bytes.value > 0
    assert st.writable_layer.used_bytes.value >= 3 << 20  # the file it wrote
    assert st.writable_layer.inodes_used.value >= 2
    listed = c.rt.ListContainerStats(api.ListContainerStatsRequest(
        filter=api.ContainerStatsFilter(label_selector={"app": "burner"})), timeout=30).stats
    assert [s.attributes.id for s in listed] == [cid]
    ps = c.rt.PodSandboxStats(api.PodSandboxStatsRequest(pod_sandbox_id=pod), timeout=30).stats
    assert ps.attributes.id == pod and ps.linux.process.process_count.value >= 2
    assert [x.attributes.id for x in ps.linux.containers] == [cid]
    assert ps.linux.cpu.usage_core_nano_seconds.value >= st.cpu.usage_core_nano_seconds.value
    lps = c.rt.ListPodSandboxStats(api.ListPodSandboxStatsRequest(), timeout=30).stats
    assert [x.attributes.id for x in lps] == [pod]
    # Network counters come from netd: traffic to another pod this test made.
    other, _ = c.pod(name="other")
    ip = c.p.status(other).status.network.ip
    r = c.p.in_pod(pod, "n", "/bin/busybox", "ping", "-c", "2", "-W", "3", ip)
    assert r.returncode == 0, r.stdout + r.stderr
    ps = c.rt.PodSandboxStats(api.PodSandboxStatsRequest(pod_sandbox_id=pod), timeout=30).stats
    net = ps.linux.network.default_interface
    assert net.name == "eth0" and net.tx_bytes.value > 0 and net.rx_bytes.value > 0
    lps = c.rt.ListPodSandboxStats(api.ListPodSandboxStatsRequest(), timeout=30).stats
    assert {x.attributes.id for x in lps} == {pod, other}
    assert all(x.linux.network.default_interface.name == "eth0" for x in lps)
    # The stream sends what the list does.
    streamed = [s for chunk in c.rt.StreamPodSandboxStats(api.StreamPodSandboxStatsRequest(),
                                                         timeout=30) for s in chunk.pod_sandbox_stats]
    assert {x.attributes.id for x in streamed} == {pod, other}
    assert all(x.linux.network.default_interface.name == "eth0" for x in streamed)
    c.stop(cid, timeout=1)


def test_sandboxd_restart_recovery(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    keep = c.create(pod, pod_cfg, image, name="keep", command=["sleep", "60"])
    gone = c.create(pod, pod_cfg, image, name="gone", command=["sleep", "60"])
    c.start(keep)
    c.start(gone)
    suite = c.p.suite

    def restart_sandboxd(while_down=None):
        old = suite.pid_of("crisp-sandboxd")
        os.kill(old, 9)
        if while_down:
            while_down()
        wait_for(lambda: suite.daemon_pids().get("crisp-sandboxd") not in (None, old), 20,
                 what="sandboxd to be restarted")
        wait_for(lambda: answer_or_none(lambda: c.status(keep)), 20, what="sandboxd to answer")

    # The second container ends while sandboxd is away.
    gone_pid = json.loads(c.rt.ContainerStatus(api.ContainerStatusRequest(
        container_id=gone, verbose=True), timeout=30).info["info"])["pid"]
    restart_sandboxd(lambda: os.kill(gone_pid, 9))
    assert c.status(keep).state == api.CONTAINER_RUNNING
    st = c.wait_exited(gone)
    assert st.exit_code == 137 and st.reason == "Error"
    # Everything still works on the container that kept running.
    r = exec_sync(c, keep, ["echo", "still here"])
    assert r.stdout == b"still here\n"
    c.stop(keep, timeout=1)
    assert c.status(keep).state == api.CONTAINER_EXITED
    assert c.p.status(pod).status.state == api.SANDBOX_READY


def cgroup_file(c, pod, cid, name):
    """A file of the container's cgroup (cgroupfs driver, default parent /crisp)."""
    for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory"):
        path = f"{base}/crisp/{cid}/{name}"
        if os.path.exists(path):
            return open(path).read().strip()
    raise AssertionError(f"no {name} for {cid}")


def test_resources_and_update(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    res = api.LinuxContainerResources(cpu_shares=512, cpu_quota=50000, cpu_period=100000,
                                      memory_limit_in_bytes=64 << 20)
    cid = c.create(pod, pod_cfg, image, command=["sleep", "60"],
                   linux=api.LinuxContainerConfig(resources=res))
    c.start(cid)
    assert cgroup_file(c, pod, cid, "cpu.shares") == "512"
    assert cgroup_file(c, pod, cid, "cpu.cfs_quota_us") == "50000"
    assert cgroup_file(c, pod, cid, "memory.limit_in_bytes") == str(64 << 20)
    c.rt.UpdateContainerResources(api.UpdateContainerResourcesRequest(
        container_id=cid, linux=api.LinuxContainerResources(
            cpu_shares=256, cpu_quota=20000, cpu_period=100000,
            memory_limit_in_bytes=32 << 20)), timeout=60)
    assert cgroup_file(c, pod, cid, "cpu.shares") == "256"
    assert cgroup_file(c, pod, cid, "memory.limit_in_bytes") == str(32 << 20)
    assert c.status(cid).resources.linux.memory_limit_in_bytes == 32 << 20


def test_oom_killed(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=[
        "/bin/sh", "-c", "x=a; while :; do x=$x$x; done"],
        linux=api.LinuxContainerConfig(resources=api.LinuxContainerResources(
            memory_limit_in_bytes=16 << 20, memory_swap_limit_in_bytes=16 << 20)))
    c.start(cid)
    st = c.wait_exited(cid, timeout=60)
    assert st.reason == "OOMKilled" and st.exit_code == 137, (st.reason, st.exit_code)


def test_reopen_log(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=[
        "/bin/sh", "-c", "while :; do echo tick; sleep 0.1; done"])
    c.start(cid)
    path = c.status(cid).log_path
    wait_for(lambda: "tick" in c.log(cid), 10, what="output")
    os.rename(path, path + ".1")  # what the kubelet's rotation does
    c.rt.ReopenContainerLog(api.ReopenContainerLogRequest(container_id=cid), timeout=30)
    wait_for(lambda: os.path.exists(path) and "tick" in open(path).read(), 10,
             what="a fresh log file")
    c.stop(cid, timeout=1)
    with pytest.raises(grpc.RpcError) as e:
        c.rt.ReopenContainerLog(api.ReopenContainerLogRequest(container_id=cid), timeout=30)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_metrics_and_pod_resources(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["sleep", "60"])
    c.start(cid)
    names = {d.name for d in c.rt.ListMetricDescriptors(api.ListMetricDescriptorsRequest(),
                                                        timeout=30).descriptors}
    assert {"container_memory_working_set_bytes", "container_cpu_usage_seconds_total"} <= names
    pm = c.rt.ListPodSandboxMetrics(api.ListPodSandboxMetricsRequest(), timeout=30).pod_metrics
    assert [p.pod_sandbox_id for p in pm] == [pod]
    [cm] = pm[0].container_metrics
    m = {x.name: x for x in cm.metrics}
    assert cm.container_id == cid
    assert m["container_memory_working_set_bytes"].value.value > 0
    assert m["container_processes"].value.value == 1
    assert list(m["container_processes"].label_values) == ["app", "web",
                                                           "default"]
    # Pod-level resources after the kubelet's resize: recorded, and stats still work.
    c.rt.UpdatePodSandboxResources(api.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=pod, resources=api.LinuxContainerResources(cpu_shares=1024)), timeout=30)
    with pytest.raises(grpc.RpcError) as e:
        c.rt.UpdatePodSandboxResources(api.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id="0" * 64), timeout=30)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_stop_escalates_to_sigkill(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=[
        "/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
    c.start(cid)
    wait_for(lambda: "ready" in c.log(cid), 10, what="the trap to be set")
    t0 = time.monotonic()
    c.stop(cid, timeout=2)
    took = time.monotonic() - t0
    st = c.status(cid)
    assert st.state == api.CONTAINER_EXITED and st.exit_code == 137
    assert 1.5 < took < 15, took  # waited the grace period, then SIGKILL


def test_duplicate_container_name(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    first = c.create(pod, pod_cfg, image, name="same", command=["true"])
    with pytest.raises(grpc.RpcError) as e:
        c.create(pod, pod_cfg, image, name="same", command=["true"])
    assert e.value.code() == grpc.StatusCode.ALREADY_EXISTS and first in e.value.details()
    assert len(c.image_containers()) == 1  # the refused one's snapshot went back
    c.remove(first)
    c.create(pod, pod_cfg, image, name="same", command=["true"])  # free again


def test_suite_restart_keeps_containers(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    cid = c.create(pod, pod_cfg, image, command=["sleep", "120"])
    c.start(cid)
    pid = json.loads(c.rt.ContainerStatus(api.ContainerStatusRequest(
        container_id=cid, verbose=True), timeout=30).info["info"])["pid"]
    c.p.suite.stop()
    assert os.path.exists(f"/proc/{pid}")  # the container outlived crisp
    c.p.suite.start()
    c.rt = api_pb2_grpc.RuntimeServiceStub(c.p.suite.channel())
    c.p.rt = c.rt
    assert c.status(cid).state == api.CONTAINER_RUNNING
    assert exec_sync(c, cid, ["echo", "back"]).stdout == b"back\n"
    assert c.p.status(pod).status.state == api.SANDBOX_READY


def test_thousand_containers_listed_while_slow_work_runs(containers, faulty_proxy):  # noqa: F811
    """ListContainers answers with 1000 containers while a pull and a slow stop
    are in flight: neither holds anything a listing needs."""
    import concurrent.futures
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()

    def make(i):
        cid = c.create(pod, pod_cfg, image, name=f"c{i}", command=["/bin/true"])
        c.start(cid)
        return cid
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(make, range(1000)))
    slow = c.create(pod, pod_cfg, image, name="slow", command=[
        "/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"])
    c.start(slow)
    wait_for(lambda: "ready" in c.log(slow), 10, what="the trap to be set")
    faulty_proxy.configure("stall", stall_after=10)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        stopping = pool.submit(c.stop, slow, 20)
        pulling = pool.submit(lambda: pytest.raises(grpc.RpcError, c.img.PullImage,
                                                    api.PullImageRequest(image=api.ImageSpec(
                                                        image=faulty_proxy.ref("layered"))),
                                                    timeout=30))
        time.sleep(1)
        listed = c.rt.ListContainers(api.ListContainersRequest(), timeout=30).containers
        assert not stopping.done() and not pulling.done()
        assert {x.id for x in listed} == set(ids) | {slow}
        faulty_proxy.configure("pass")
        stopping.result()
    # Removing the pod takes them all, and their snapshots.
    c.p.stop(pod)
    c.p.remove(pod)
    assert c.image_containers() == []


def test_pid_namespace_modes(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()

    def ns(mode, target=""):
        return api.LinuxContainerConfig(security_context=api.LinuxContainerSecurityContext(
            namespace_options=api.NamespaceOption(pid=mode, target_id=target)))
    own = c.create(pod, pod_cfg, image, name="own", command=["sleep", "60"],
                   linux=ns(api.CONTAINER))
    c.start(own)
    # TARGET: the other container's PID namespace, where its sleep is PID 1.
    log, _ = run_and_log(c, pod, pod_cfg, image, "tr '\\0' ' ' < /proc/1/cmdline",
                         name="target", linux=ns(api.TARGET, own))
    assert "sleep 60" in log, log
    # POD (the default): the pod's, where the infra process is PID 1.
    log, _ = run_and_log(c, pod, pod_cfg, image, "tr '\\0' ' ' < /proc/1/cmdline", name="pod")
    assert "/pause" in log, log
    with pytest.raises(grpc.RpcError) as e:
        c.create(pod, pod_cfg, image, name="bad", command=["true"], linux=ns(api.TARGET, "f" * 64))
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_tty_and_stdin(containers):
    c = containers
    image = c.pull("busybox")
    pod, pod_cfg = c.pod()
    log, _ = run_and_log(c, pod, pod_cfg, image, "tty; echo done", name="tty", tty=True)
    assert "/dev/pts/" in log and "done" in log, log
    # With stdin kept open and nobody attached, the process still runs and exits.
    log, _ = run_and_log(c, pod, pod_cfg, image, "echo with-stdin", name="stdin", stdin=True,
                         stdin_once=True)
    assert "with-stdin" in log, log
