"""sandboxd on its own channel, spoken to as a compromised front would:
IDs it never issued, paths outside the rules, node policy, steps out of
order.  Everything is refused with a typed error, and nothing is left."""
import os
import subprocess
import tempfile
import uuid

import pytest

from activated import ActivatedDaemon

import api_pb2 as api
import internal_pb2 as ipb

BASE = 512
POD_RUN, SET_NET, CREATE = BASE + 64, BASE + 66, BASE + 68
STOP_POD, REMOVE_POD, START = BASE + 2, BASE + 4, BASE + 12


def pod_config(host_network=True, **kw):
    ns = api.NamespaceOption(network=api.NODE if host_network else api.POD)
    kw.setdefault("linux", api.LinuxPodSandboxConfig(
        security_context=api.LinuxSandboxSecurityContext(namespace_options=ns)))
    return api.PodSandboxConfig(metadata=api.PodSandboxMetadata(
        name="p", namespace="default", uid=str(uuid.uuid4())), log_directory="/tmp", **kw)


@pytest.fixture
def sandboxd():
    tmp = tempfile.mkdtemp(prefix="crisp-sandboxd-")
    os.chmod(tmp, 0o755)
    d = ActivatedDaemon("sandboxd", tmp)
    try:
        yield d.start()
        assert "seccomp: refused" not in d.log(), d.log()[-3000:]
    finally:
        if d.proc and d.proc.poll() is None:
            for pod in os.listdir(os.path.join(tmp, "state", "sandbox", "bundles")):
                d.call(REMOVE_POD, api.RemovePodSandboxRequest(pod_sandbox_id=pod),
                       api.RemovePodSandboxResponse)
        d.stop()
        subprocess.run(["rm", "-rf", tmp], check=False)


def run_pod(d, pod_id, config):
    return d.call(POD_RUN, ipb.PodRunRequest(pod_id=pod_id,
                                             config=config.SerializeToString()),
                  ipb.PodRunReply)


def refused(r, code, text=""):
    assert isinstance(r, tuple) and r[1] == code and text in r[2], r


def test_pod_refusals(sandboxd):
    d = sandboxd
    good = "a" * 64
    refused(run_pod(d, "../../etc", pod_config()), "ERROR_INVALID")
    refused(d.call(POD_RUN, ipb.PodRunRequest(pod_id=good, config=b"\xff\xff\xff"),
                   ipb.PodRunReply), "ERROR_INVALID")
    # A network namespace netd never pinned.
    refused(run_pod(d, good, pod_config(host_network=False)), "ERROR_FAILED_PRECONDITION",
            "no network namespace")
    # Node policy, checked here whatever the front let through.
    for sysctls, code in (({"kernel.panic": "1"}, "ERROR_PERMISSION_DENIED"),
                          ({"net.ipv4.ip_local_port_range": "1024 2048"}, "ERROR_INVALID"),  # on the node's network
                          ({"kernel.shm_rmid_forced\nkernel.panic": "1"}, "ERROR_INVALID"),
                          ({"kernel.shm_rmid_forced": "1\nkernel.panic=1"}, "ERROR_INVALID")):
        refused(run_pod(d, good, pod_config(linux=api.LinuxPodSandboxConfig(
            sysctls=sysctls, security_context=api.LinuxSandboxSecurityContext(
                namespace_options=api.NamespaceOption(network=api.NODE))))), code)
    refused(run_pod(d, good, pod_config(hostname="a/../b")), "ERROR_INVALID")
    refused(run_pod(d, good, pod_config(linux=api.LinuxPodSandboxConfig(
        cgroup_parent="/../../escape", security_context=api.LinuxSandboxSecurityContext(
            namespace_options=api.NamespaceOption(network=api.NODE))))), "ERROR_INVALID")
    refused(run_pod(d, good, pod_config(dns_config=api.DNSConfig(
        servers=["1.1.1.1\nnameserver 6.6.6.6"]))), "ERROR_INVALID")
    # Steps out of order, and IDs never issued.
    refused(d.call(SET_NET, ipb.PodSetNetworkRequest(pod_id="b" * 64), ipb.PodSetNetworkReply),
            "ERROR_NOT_FOUND")
    refused(d.call(STOP_POD, api.StopPodSandboxRequest(pod_sandbox_id="c" * 64),
                   api.StopPodSandboxResponse), "ERROR_NOT_FOUND")
    refused(d.call(START, api.StartContainerRequest(container_id="d" * 64),
                   api.StartContainerResponse), "ERROR_NOT_FOUND")
    # Nothing was made.
    state = os.path.join(d.state, "sandbox")
    assert os.listdir(os.path.join(state, "bundles")) == []
    assert os.listdir(os.path.join(state, "pods")) == []


def test_container_refusals(sandboxd):
    d = sandboxd
    pod = "e" * 64
    assert not isinstance(run_pod(d, pod, pod_config()), tuple)
    assert not isinstance(d.call(SET_NET, ipb.PodSetNetworkRequest(pod_id=pod),
                                 ipb.PodSetNetworkReply), tuple)
    # Set twice: the pod is no longer being created.
    refused(d.call(SET_NET, ipb.PodSetNetworkRequest(pod_id=pod), ipb.PodSetNetworkReply),
            "ERROR_FAILED_PRECONDITION")
    image_dir = os.path.join(d.root, "image")
    config = api.ContainerConfig(metadata=api.ContainerMetadata(name="c"),
                                 image=api.ImageSpec(image="x"), log_path="c.log",
                                 command=["/bin/true"])
    good = ipb.PrepareContainerSnapshotReply(
        image_id="sha256:" + "0" * 64, lower_dirs=[f"{image_dir}/store/snapshots/1"],
        upper_dir=f"{image_dir}/containers/{'1' * 32}/upper",
        work_dir=f"{image_dir}/containers/{'1' * 32}/work", config=ipb.ImageRuntimeConfig())

    def create(snapshot, cfg=config, pod_id=pod, cid="f" * 64):
        return d.call(CREATE, ipb.ContainerCreateRequest(
            container_id=cid, pod_id=pod_id, config=cfg.SerializeToString(), snapshot=snapshot),
            ipb.ContainerCreateReply)

    refused(create(good, pod_id="9" * 64), "ERROR_NOT_FOUND")
    refused(create(good, cid="../x"), "ERROR_INVALID")
    for field, value in (("lower_dirs", ["/"]), ("lower_dirs", [f"{image_dir}/store/snapshots/../../.."]),
                         ("upper_dir", "/etc"), ("work_dir", "/tmp/work"),
                         ("upper_dir", f"{image_dir}/containers/{'1' * 32}/../upper")):
        bad = ipb.PrepareContainerSnapshotReply()
        bad.CopyFrom(good)
        if field == "lower_dirs":
            del bad.lower_dirs[:]
            bad.lower_dirs.extend(value)
        else:
            setattr(bad, field, value)
        refused(create(bad), "ERROR_INVALID", "imaged does not make")
    bad_log = api.ContainerConfig()
    bad_log.CopyFrom(config)
    bad_log.log_path = "../../../etc/cron.d/x"
    refused(create(good, cfg=bad_log), "ERROR_INVALID", "log_path")
    assert os.listdir(os.path.join(d.state, "sandbox", "containers")) == []
