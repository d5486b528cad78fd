"""The CRI front: every RPC reachable and routed, the calls criapi answers
itself, streams, limits, concurrency, and a backend dying under calls."""
import concurrent.futures
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import grpc
import pytest

from conftest import BUILD, answer_or_none, proc_status, wait_for

import api_pb2 as api
import api_pb2_grpc

CID = "a" * 64
CLOSED_PORT = 9  # discard: nothing listens on the machine's loopback there
PID = "b" * 64


def meta(name="web", ns="default", uid="5f1e0c7a-0000-4000-8000-000000000001"):
    return api.PodSandboxMetadata(name=name, namespace=ns, uid=uid, attempt=0)


def pod_config():
    return api.PodSandboxConfig(metadata=meta(), hostname="web", log_directory="/var/log/pods/x")


def container_config():
    return api.ContainerConfig(metadata=api.ContainerMetadata(name="app"),
                               image=api.ImageSpec(image="busybox:latest"),
                               command=["/bin/sh"], log_path="app/0.log")


# A valid request for every RPC, and which backend answers it.
UNARY = {
    ("RuntimeService", "Version"): (api.VersionRequest(version="v1"), "criapi"),
    ("RuntimeService", "Status"): (api.StatusRequest(), "criapi"),
    ("RuntimeService", "RuntimeConfig"): (api.RuntimeConfigRequest(), "criapi"),
    ("RuntimeService", "UpdateRuntimeConfig"): (api.UpdateRuntimeConfigRequest(), "criapi"),
    ("RuntimeService", "RunPodSandbox"): (api.RunPodSandboxRequest(config=pod_config()), "sandboxd"),
    ("RuntimeService", "StopPodSandbox"): (api.StopPodSandboxRequest(pod_sandbox_id=PID), "sandboxd"),
    ("RuntimeService", "RemovePodSandbox"): (api.RemovePodSandboxRequest(pod_sandbox_id=PID), "sandboxd"),
    ("RuntimeService", "PodSandboxStatus"): (api.PodSandboxStatusRequest(pod_sandbox_id=PID), "sandboxd"),
    ("RuntimeService", "ListPodSandbox"): (api.ListPodSandboxRequest(), "sandboxd"),
    ("RuntimeService", "CreateContainer"): (api.CreateContainerRequest(
        pod_sandbox_id=PID, config=container_config(), sandbox_config=pod_config()), "sandboxd"),
    ("RuntimeService", "StartContainer"): (api.StartContainerRequest(container_id=CID), "sandboxd"),
    ("RuntimeService", "StopContainer"): (api.StopContainerRequest(container_id=CID, timeout=5), "sandboxd"),
    ("RuntimeService", "RemoveContainer"): (api.RemoveContainerRequest(container_id=CID), "sandboxd"),
    ("RuntimeService", "ListContainers"): (api.ListContainersRequest(), "sandboxd"),
    ("RuntimeService", "ContainerStatus"): (api.ContainerStatusRequest(container_id=CID), "sandboxd"),
    ("RuntimeService", "UpdateContainerResources"): (api.UpdateContainerResourcesRequest(
        container_id=CID, linux=api.LinuxContainerResources(cpu_shares=512)), "sandboxd"),
    ("RuntimeService", "ReopenContainerLog"): (api.ReopenContainerLogRequest(container_id=CID), "sandboxd"),
    ("RuntimeService", "ExecSync"): (api.ExecSyncRequest(container_id=CID, cmd=["true"], timeout=5), "sandboxd"),
    ("RuntimeService", "Exec"): (api.ExecRequest(container_id=CID, cmd=["sh"], stdout=True), "streamd"),
    ("RuntimeService", "Attach"): (api.AttachRequest(container_id=CID, stdout=True), "streamd"),
    ("RuntimeService", "PortForward"): (api.PortForwardRequest(pod_sandbox_id=PID, port=[80]), "streamd"),
    ("RuntimeService", "ContainerStats"): (api.ContainerStatsRequest(container_id=CID), "sandboxd"),
    ("RuntimeService", "ListContainerStats"): (api.ListContainerStatsRequest(), "sandboxd"),
    ("RuntimeService", "PodSandboxStats"): (api.PodSandboxStatsRequest(pod_sandbox_id=PID), "sandboxd"),
    ("RuntimeService", "ListPodSandboxStats"): (api.ListPodSandboxStatsRequest(), "sandboxd"),
    ("RuntimeService", "CheckpointContainer"): (api.CheckpointContainerRequest(
        container_id=CID, location="/tmp/checkpoint.tar"), "sandboxd"),
    ("RuntimeService", "ListMetricDescriptors"): (api.ListMetricDescriptorsRequest(), "sandboxd"),
    ("RuntimeService", "ListPodSandboxMetrics"): (api.ListPodSandboxMetricsRequest(), "sandboxd"),
    ("RuntimeService", "UpdatePodSandboxResources"): (api.UpdatePodSandboxResourcesRequest(
        pod_sandbox_id=PID), "sandboxd"),
    ("ImageService", "ListImages"): (api.ListImagesRequest(), "imaged"),
    ("ImageService", "ImageStatus"): (api.ImageStatusRequest(image=api.ImageSpec(image="busybox")), "imaged"),
    ("ImageService", "PullImage"): (api.PullImageRequest(image=api.ImageSpec(image=f"127.0.0.1:{CLOSED_PORT}/busybox:1")), "imaged"),
    ("ImageService", "RemoveImage"): (api.RemoveImageRequest(image=api.ImageSpec(image="busybox")), "imaged"),
    ("ImageService", "ImageFsInfo"): (api.ImageFsInfoRequest(), "criapi"),
}

STREAMS = {
    ("RuntimeService", "StreamPodSandboxes"): (api.StreamPodSandboxesRequest(), "ListPodSandbox"),
    ("RuntimeService", "StreamContainers"): (api.StreamContainersRequest(), "ListContainers"),
    ("RuntimeService", "StreamContainerStats"): (api.StreamContainerStatsRequest(), "ListContainerStats"),
    ("RuntimeService", "StreamPodSandboxStats"): (api.StreamPodSandboxStatsRequest(), "ListPodSandboxStats"),
    ("RuntimeService", "StreamPodSandboxMetrics"): (api.StreamPodSandboxMetricsRequest(), "ListPodSandboxMetrics"),
    ("ImageService", "StreamImages"): (api.StreamImagesRequest(), "ListImages"),
}


# What the backends answer already, and how (the code and a part of the details).
IMPLEMENTED = {
    "ListImages": (grpc.StatusCode.OK, ""),
    "ImageStatus": (grpc.StatusCode.OK, ""),
    "RemoveImage": (grpc.StatusCode.OK, ""),
    "PullImage": (grpc.StatusCode.UNAVAILABLE, f"127.0.0.1:{CLOSED_PORT}"),
    # The suite has no CNI config: the pod is undone when netd cannot attach it.
    "RunPodSandbox": (grpc.StatusCode.FAILED_PRECONDITION, "no network config"),
    "StopPodSandbox": (grpc.StatusCode.NOT_FOUND, "no pod"),
    "RemovePodSandbox": (grpc.StatusCode.OK, ""),
    "PodSandboxStatus": (grpc.StatusCode.NOT_FOUND, "no pod"),
    "ListPodSandbox": (grpc.StatusCode.OK, ""),
    "CreateContainer": (grpc.StatusCode.NOT_FOUND, "is not present"),
    "StartContainer": (grpc.StatusCode.NOT_FOUND, "no container"),
    "StopContainer": (grpc.StatusCode.NOT_FOUND, "no container"),
    "ContainerStatus": (grpc.StatusCode.NOT_FOUND, "no container"),
    "RemoveContainer": (grpc.StatusCode.OK, ""),
    "ListContainers": (grpc.StatusCode.OK, ""),
    "ExecSync": (grpc.StatusCode.NOT_FOUND, "no container"),
    # Streaming calls check the container (pod) in sandboxd before streamd gives a URL.
    "Exec": (grpc.StatusCode.NOT_FOUND, "no container"),
    "Attach": (grpc.StatusCode.NOT_FOUND, "no container"),
    "PortForward": (grpc.StatusCode.NOT_FOUND, "no pod"),
    "ContainerStats": (grpc.StatusCode.NOT_FOUND, "no container"),
    "ListContainerStats": (grpc.StatusCode.OK, ""),
    "PodSandboxStats": (grpc.StatusCode.NOT_FOUND, "no pod"),
    "ListPodSandboxStats": (grpc.StatusCode.OK, ""),
    "UpdateContainerResources": (grpc.StatusCode.NOT_FOUND, "no container"),
    "ReopenContainerLog": (grpc.StatusCode.NOT_FOUND, "no container"),
    "ListMetricDescriptors": (grpc.StatusCode.OK, ""),
    "ListPodSandboxMetrics": (grpc.StatusCode.OK, ""),
    "UpdatePodSandboxResources": (grpc.StatusCode.NOT_FOUND, "no pod"),
}


def stub(ch, service):
    return getattr(api_pb2_grpc, f"{service}Stub")(ch)


def test_the_contract_has_41_rpcs():
    n = sum(len(api.DESCRIPTOR.services_by_name[s].methods)
            for s in ("RuntimeService", "ImageService"))
    assert n == 41
    assert len(UNARY) + len(STREAMS) + 1 == 41  # + GetContainerEvents


@pytest.mark.parametrize("service,method", sorted(UNARY))
def test_every_unary_rpc_is_routed(suite, service, method):
    request, backend = UNARY[(service, method)]
    with suite.channel() as ch:
        call = getattr(stub(ch, service), method)
        try:
            call(request, timeout=10)
            code, details = grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            code, details = e.code(), e.details()
    if backend == "criapi":
        assert code == grpc.StatusCode.OK, details
    elif method in IMPLEMENTED:
        want_code, want_details = IMPLEMENTED[method]
        assert code == want_code, (code, details)
        assert want_details in details, details
    else:
        # Until the backend implements it, the backend itself says so.
        assert code == grpc.StatusCode.UNIMPLEMENTED, (code, details)
        assert details == f"crisp-{backend} does not implement {method} yet"


@pytest.mark.parametrize("service,method", sorted(STREAMS))
def test_every_stream_rpc_runs_its_list_call(suite, service, method):
    request, list_method = STREAMS[(service, method)]
    if list_method in IMPLEMENTED:
        with suite.channel() as ch:
            chunks = list(getattr(stub(ch, service), method)(request, timeout=10))
        assert all(not c.ListFields() for c in chunks)  # nothing to list yet
        return
    with suite.channel() as ch:
        with pytest.raises(grpc.RpcError) as e:
            list(getattr(stub(ch, service), method)(request, timeout=10))
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert f"does not implement {list_method} yet" in e.value.details()


def test_status_reports_runtime_and_network(suite):
    with suite.channel() as ch:
        rs = stub(ch, "RuntimeService")
        st = rs.Status(api.StatusRequest(), timeout=10)
        cond = {c.type: c for c in st.status.conditions}
        assert cond["RuntimeReady"].status is True
        net = cond["NetworkReady"]
        assert net.status is False and net.reason == "NetworkPluginNotReady"
        assert suite.cni_dir in net.message
        assert {h.name for h in st.runtime_handlers} >= {"runc", "crun"}
        assert not st.info

        # A broken config is named; a usable one makes the network ready.
        with open(os.path.join(suite.cni_dir, "05-broken.conflist"), "w") as f:
            f.write('{"cniVersion": "1.0.0", "name": "x", "plugins": [{}]}')
        net = {c.type: c for c in rs.Status(api.StatusRequest(), timeout=10).status.conditions}
        assert net["NetworkReady"].status is False
        assert "05-broken.conflist: plugin 0 has no \"type\"" in net["NetworkReady"].message
        with open(os.path.join(suite.cni_dir, "10-test.conflist"), "w") as f:
            json.dump({"cniVersion": "1.0.0", "name": "testnet",
                       "plugins": [{"type": "bridge"}, {"type": "portmap"}]}, f)
        net = {c.type: c for c in rs.Status(api.StatusRequest(), timeout=10).status.conditions}
        assert net["NetworkReady"].status is True and net["NetworkReady"].reason == ""

        verbose = rs.Status(api.StatusRequest(verbose=True), timeout=10)
        config = json.loads(verbose.info["config"])
        assert config["crisp"]["root"] == suite.root
        assert config["cni"]["conf_dir"] == suite.cni_dir


def test_status_while_a_backend_is_down(suite):
    pid = suite.pid_of("crisp-sandboxd")
    os.kill(pid, signal.SIGSTOP)  # it stops answering, as a hung daemon would
    try:
        with suite.channel() as ch:
            t0 = time.monotonic()
            st = stub(ch, "RuntimeService").Status(api.StatusRequest(), timeout=10)
            assert time.monotonic() - t0 < 5
        cond = {c.type: c for c in st.status.conditions}
        assert cond["RuntimeReady"].status is False
        assert cond["RuntimeReady"].reason == "BackendNotReady"
        assert "crisp-sandboxd" in cond["RuntimeReady"].message
    finally:
        os.kill(pid, signal.SIGCONT)


def test_runtime_config_gives_the_cgroup_driver(suite_factory):
    s = suite_factory(config_text="[runtime]\ncgroup_driver = \"systemd\"\n").start()
    with s.channel() as ch:
        r = stub(ch, "RuntimeService").RuntimeConfig(api.RuntimeConfigRequest(), timeout=10)
    assert r.linux.cgroup_driver == api.SYSTEMD


def test_runtime_config_default_is_cgroupfs(suite):
    with suite.channel() as ch:
        r = stub(ch, "RuntimeService").RuntimeConfig(api.RuntimeConfigRequest(), timeout=10)
    assert r.linux.cgroup_driver == api.CGROUPFS


def test_update_runtime_config_hands_the_pod_cidr_to_netd(suite):
    req = api.UpdateRuntimeConfigRequest(runtime_config=api.RuntimeConfig(
        network_config=api.NetworkConfig(pod_cidr="10.88.0.0/16,fd00:88::/64")))
    with suite.channel() as ch:
        stub(ch, "RuntimeService").UpdateRuntimeConfig(req, timeout=10)
    db = sqlite3.connect(os.path.join(suite.root, "net", "net.db"))
    (value,) = db.execute("SELECT value FROM meta WHERE key = 'pod_cidr'").fetchone()
    db.close()
    assert value == "10.88.0.0/16,fd00:88::/64"


def test_image_fs_info_measures_the_store(suite):
    with suite.channel() as ch:
        isvc = stub(ch, "ImageService")
        info = isvc.ImageFsInfo(api.ImageFsInfoRequest(), timeout=10)
        (img,) = info.image_filesystems
        (ctr,) = info.container_filesystems
        assert img.fs_id.mountpoint == os.path.join(suite.root, "image", "store")
        assert ctr.fs_id.mountpoint == os.path.join(suite.root, "image", "containers")
        assert img.inodes_used.value >= 1 and img.timestamp > 0
        with open(os.path.join(img.fs_id.mountpoint, "blob"), "wb") as f:
            f.write(os.urandom(1 << 20))
        os.link(os.path.join(img.fs_id.mountpoint, "blob"),
                os.path.join(img.fs_id.mountpoint, "blob-link"))
        after = isvc.ImageFsInfo(api.ImageFsInfoRequest(), timeout=10).image_filesystems[0]
        assert after.used_bytes.value >= img.used_bytes.value + (1 << 20)
        assert after.used_bytes.value < img.used_bytes.value + (2 << 20)  # the link counts once
        assert after.inodes_used.value == img.inodes_used.value + 1


def test_500_concurrent_version_calls(suite):
    with suite.channel() as ch:
        rs = stub(ch, "RuntimeService")
        futures = [rs.Version.future(api.VersionRequest(), timeout=30) for _ in range(500)]
        results = [f.result() for f in futures]
    assert all(r.runtime_name == "crisp" for r in results)


def test_slow_call_does_not_block_others(suite):
    """A call stuck in a hung backend leaves every other call free."""
    pid = suite.pid_of("crisp-imaged")
    os.kill(pid, signal.SIGSTOP)
    try:
        with suite.channel() as ch:
            isvc = stub(ch, "ImageService")
            stuck = [isvc.ImageFsInfo.future(api.ImageFsInfoRequest(), timeout=20)
                     for _ in range(40)]
            rs = stub(ch, "RuntimeService")
            t0 = time.monotonic()
            for _ in range(50):
                rs.Version(api.VersionRequest(), timeout=5)
            assert time.monotonic() - t0 < 5
            assert not any(f.done() for f in stuck)
            os.kill(pid, signal.SIGCONT)
            for f in stuck:
                f.result()
    finally:
        os.kill(pid, signal.SIGCONT)


def test_deadline_reaches_the_backend(suite):
    pid = suite.pid_of("crisp-imaged")
    os.kill(pid, signal.SIGSTOP)
    try:
        with suite.channel() as ch:
            t0 = time.monotonic()
            with pytest.raises(grpc.RpcError) as e:
                stub(ch, "ImageService").ImageFsInfo(api.ImageFsInfoRequest(), timeout=1)
            assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.monotonic() - t0 < 3
    finally:
        os.kill(pid, signal.SIGCONT)


def test_backend_killed_during_calls(suite):
    pid = suite.pid_of("crisp-imaged")
    os.kill(pid, signal.SIGSTOP)
    with suite.channel() as ch:
        isvc = stub(ch, "ImageService")
        in_flight = [isvc.ImageFsInfo.future(api.ImageFsInfoRequest(), timeout=20)
                     for _ in range(20)]
        time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        for f in in_flight:
            with pytest.raises(grpc.RpcError) as e:
                f.result()
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "crisp-imaged" in e.value.details()

        wait_for(lambda: answer_or_none(
            lambda: isvc.ImageFsInfo(api.ImageFsInfoRequest(), timeout=2)), 5, interval=0.05, what="ImageFsInfo after imaged restarted")


def _rss_kib(pid, field):
    return int(proc_status(pid)[field].split()[0])


@pytest.mark.parametrize("size", [16 * 1024 * 1024 + 1, 20 * 1024 * 1024])
def test_request_over_16_mib_is_refused(suite, size):
    with suite.channel() as ch:
        call = ch.unary_unary("/runtime.v1.RuntimeService/ListContainers",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
        # Field 1 (filter) as one length-delimited blob: valid wire, just too big.
        body = b"x" * (size - 5)
        payload = b"\x0a" + _varint(len(body)) + body
        with pytest.raises(grpc.RpcError) as e:
            call(payload[:size], timeout=30)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num, payload):
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


@pytest.mark.parametrize("shape", ["empty_map_entries", "empty_repeated_strings"])
def test_hostile_expansion_is_bounded(suite, shape):
    """16 MiB of tiny entries would unpack to hundreds of MiB; the budget stops it."""
    pid = suite.pid_of("crisp-criapi")
    before = _rss_kib(pid, "VmRSS")
    if shape == "empty_map_entries":
        # ListContainersRequest.filter(1).label_selector(4): ~8 million empty entries.
        entry = _field(4, b"")
        inner = entry * ((15 * 1024 * 1024) // len(entry))
        payload = _field(1, inner)
        path = "/runtime.v1.RuntimeService/ListContainers"
    else:
        # ExecSyncRequest.cmd(2): ~8 million empty strings.
        entry = _field(2, b"")
        payload = _field(1, CID.encode()) + entry * ((15 * 1024 * 1024) // len(entry))
        path = "/runtime.v1.RuntimeService/ExecSync"
    with suite.channel() as ch:
        call = ch.unary_unary(path, request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            call(payload, timeout=60)
    assert e.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED,
                              grpc.StatusCode.INVALID_ARGUMENT), e.value.details()
    peak = _rss_kib(pid, "VmHWM")
    # A small multiple of the 16 MiB limit: the request, its copy, and the budget cap.
    assert peak - before < 200 * 1024, (before, peak)
    with suite.channel() as ch:
        stub(ch, "RuntimeService").Version(api.VersionRequest(), timeout=5)


def test_shutdown_with_open_streams(suite):
    received = {}

    def watch(i):
        with suite.channel() as ch:
            try:
                for _ in stub(ch, "RuntimeService").GetContainerEvents(api.GetEventsRequest(),
                                                                      timeout=60):
                    pass
                received[i] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                received[i] = e.code()

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    time.sleep(1)
    assert not received  # the subscriptions stay open
    t0 = time.monotonic()
    assert suite.stop() == 0
    assert time.monotonic() - t0 < 10
    for t in threads:
        t.join(10)
    assert set(received.values()) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert len(received) == 5


def test_closed_subscriptions_are_released(suite):
    """Subscribers that go away leave no connection behind in criapi.

    They run in a child process that exits afterwards: Python's gRPC may keep
    a cancelled call's connection open for a while after its channel is
    closed, so counting while the client lives measured the client, not
    criapi.  (gRPC closes a dead connection's fd even while a call on it is
    still referenced: this checks connections, not the hub's bookkeeping.)"""
    pid = suite.pid_of("crisp-criapi")

    def fds():
        return len(os.listdir(f"/proc/{pid}/fd"))
    before = fds()
    script = (
        "import sys, grpc, api_pb2 as api, api_pb2_grpc as g\n"
        "for _ in range(50):\n"
        "    ch = grpc.insecure_channel('unix://' + sys.argv[1])\n"
        "    it = g.RuntimeServiceStub(ch).GetContainerEvents(api.GetEventsRequest(), timeout=5)\n"
        "    it.cancel()\n"
        "    ch.close()\n")
    env = dict(os.environ, PYTHONPATH=os.path.join(BUILD, "python"))
    r = subprocess.run(["/usr/bin/python3", "-c", script, suite.socket], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    # 50 subscriptions held on to would be 50 connections or more.
    wait_for(lambda: fds() <= before + 2, 10, interval=0.1,
             what=f"criapi's fds to come back to {before}")
