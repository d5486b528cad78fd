"""Validation at the door (docs/VALIDATION.md): criapi refuses a malformed CRI
request with INVALID_ARGUMENT and details that start with the proto field path
("config.metadata.name: must not be empty"), before any backend sees it, and
lets well-formed requests through.

Every case runs against one suite per module: a suite takes ~0.3 s to start
and there are a few hundred cases.  Requests go over the wire as raw bytes
(the helpers at the top build hostile encodings python protobuf would not).
"""
import copy
import os
import re
import subprocess
import tempfile

import grpc
import pytest
from google.protobuf.message import Message

from conftest import Suite

import api_pb2 as pb

ID = "0123456789abcdef" * 4
ID2 = "fedcba9876543210" * 4
INVALID = grpc.StatusCode.INVALID_ARGUMENT


# --- raw wire helpers ---------------------------------------------------------

def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64/enum values take ten bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def wire_varint(field, n):
    return varint(field << 3) + varint(n)


def wire_bytes(field, payload):
    if isinstance(payload, str):
        payload = payload.encode()
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def map_entry(field, key, value):
    """One map entry on the wire (key = 1, value = 2), as raw bytes."""
    return wire_bytes(field, wire_bytes(1, key) + wire_bytes(2, value))


# --- calling ------------------------------------------------------------------

METHODS = {}
for _svc in pb.DESCRIPTOR.services_by_name.values():
    for _m in _svc.methods:
        METHODS[_m.name] = (f"/{_svc.full_name}/{_m.name}", _m.input_type, _m.server_streaming)


class Cri:
    def __init__(self, suite):
        self.suite = suite
        self.channel = suite.channel()

    def call(self, method, req, timeout=5):
        """Sends req (a message or raw bytes); returns (code, details)."""
        path, _, streaming = METHODS[method]
        data = req if isinstance(req, bytes) else req.SerializeToString()
        raw = dict(request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            if streaming:
                for _ in self.channel.unary_stream(path, **raw)(data, timeout=timeout,
                                                                 wait_for_ready=True):
                    pass
            else:
                self.channel.unary_unary(path, **raw)(data, timeout=timeout, wait_for_ready=True)
            return grpc.StatusCode.OK, ""
        except grpc.RpcError as e:
            return e.code(), e.details() or ""


@pytest.fixture(scope="module")
def cri():
    # As conftest's suite_factory, for a whole module.
    s = Suite(tempfile.mkdtemp(prefix="crisp-test-")).start()
    c = Cri(s)
    try:
        yield c
    finally:
        c.channel.close()
        s.stop()
        assert not s.leftovers(), f"processes left behind: {s.leftovers()}"
        subprocess.run(["rm", "-rf", s.tmp], check=False)


def assert_invalid(cri, method, req, path, fragment=""):
    code, details = cri.call(method, req)
    assert code == INVALID, f"{method}: expected INVALID_ARGUMENT, got {code}: {details}"
    assert details.startswith(path), f"{method}: details do not start with {path!r}: {details}"
    assert fragment in details, f"{method}: {fragment!r} not in {details!r}"
    return details


# --- valid requests -----------------------------------------------------------

def pod_config():
    uid = "6f1b2c1e-8f4e-4b8a-9d65-0c1f9a1f2e3d"
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="web-0", namespace="default", uid=uid, attempt=1),
        hostname="web-0",
        log_directory=f"/var/log/pods/default_web-0_{uid}",
        dns_config=pb.DNSConfig(servers=["10.96.0.10", "fd00::a"],
                                searches=["default.svc.cluster.local", "cluster.local"],
                                options=["ndots:5", "edns0"]),
        port_mappings=[pb.PortMapping(protocol=pb.TCP, container_port=80, host_port=8080,
                                      host_ip="127.0.0.1"),
                       pb.PortMapping(protocol=pb.SCTP, container_port=65535)],
        labels={"app": "web", "io.kubernetes.pod.name": "web-0",
                "a" * 253 + "/" + "b" * 63: "x" * 4096},
        annotations={"kubernetes.io/config.seen": "2024-01-01T00:00:00Z",
                     "example.com/blob": "é\n\t{}" * 1000},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods/burstable/pod6f1b2c1e",
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(
                    network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD,
                    userns_options=pb.UserNamespace(
                        mode=pb.POD,
                        uids=[pb.IDMapping(host_id=65536, container_id=0, length=65536)],
                        gids=[pb.IDMapping(host_id=4294901760, container_id=0,
                                           length=65536)])),
                run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=1000),
                supplemental_groups=[0, 2000, 4294967294],
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault),
                apparmor=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                            localhost_ref="k8s-web")),
            sysctls={"net.ipv4.ip_unprivileged_port_start": "0",
                     "net.ipv4.ip_local_port_range": "1024\t65000",
                     "net/ipv4/conf/eth0.100/forwarding": "1"},
            overhead=pb.LinuxContainerResources(cpu_shares=2),
            resources=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=200000,
                                                 cpu_shares=262144,
                                                 memory_limit_in_bytes=1 << 30)))


def container_config():
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name="web", attempt=3),
        image=pb.ImageSpec(image="localhost:1/library/nginx:1.25",
                           user_specified_image="nginx:1.25",
                           annotations={"example.com/platform": "linux/amd64"}),
        command=["nginx"], args=["-g", "daemon off;", "x" * (128 * 1024 - 1)],
        working_dir="/usr/share/nginx",
        envs=[pb.KeyValue(key="PATH", value="/usr/bin:/bin"), pb.KeyValue(key="EMPTY"),
              pb.KeyValue(key="my.var-1", value="multi\nline")],
        mounts=[pb.Mount(container_path="/etc/hosts", host_path="/var/lib/kubelet/pods/x/hosts",
                         readonly=True, recursive_read_only=True),
                pb.Mount(container_path="/data", image=pb.ImageSpec(image="localhost:1/data:1"),
                         image_sub_path="sub/dir", readonly=True),
                pb.Mount(container_path="/shared", host_path="/srv/shared",
                         propagation=pb.PROPAGATION_BIDIRECTIONAL,
                         uidMappings=[pb.IDMapping(host_id=0, container_id=0, length=65536)],
                         gidMappings=[pb.IDMapping(host_id=100000, container_id=0, length=1)])],
        devices=[pb.Device(container_path="/dev/fuse", host_path="/dev/fuse", permissions="rwm"),
                 pb.Device(host_path="/dev/null", permissions="")],
        labels={"io.kubernetes.container.name": "web"},
        annotations={"io.kubernetes.container.hash": "1234abcd", "example.com/json": '{"a":\n 1}'},
        log_path="web/3.log", stdin=True, stdin_once=True, tty=True,
        linux=pb.LinuxContainerConfig(
            resources=pb.LinuxContainerResources(
                cpu_period=100000, cpu_quota=-1, cpu_shares=2, oom_score_adj=-1000,
                cpuset_cpus="0-3,6", cpuset_mems="0", memory_swap_limit_in_bytes=-1,
                hugepage_limits=[pb.HugepageLimit(page_size="2MB"),
                                 pb.HugepageLimit(page_size="1GB", limit=1 << 30)],
                unified={"memory.high": "max", "cpu.max": "max 100000"}),
            security_context=pb.LinuxContainerSecurityContext(
                capabilities=pb.Capability(add_capabilities=["NET_BIND_SERVICE", "CAP_CHOWN"],
                                           drop_capabilities=["ALL"]),
                namespace_options=pb.NamespaceOption(network=pb.POD, pid=pb.TARGET, ipc=pb.NODE,
                                                     target_id=ID2),
                run_as_user=pb.Int64Value(value=0), run_as_group=pb.Int64Value(value=101),
                supplemental_groups=[101], masked_paths=["/proc/kcore"],
                readonly_paths=["/proc/sys"],
                seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost,
                                           localhost_ref="/var/lib/kubelet/seccomp/web.json"),
                apparmor=pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined))),
        CDI_devices=[pb.CDIDevice(name="nvidia.com/gpu=all"),
                     pb.CDIDevice(name="vendor.example/class-1=dev_0:a.b")],
        stop_signal=pb.SIGRTMAX)


def resources():
    return pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                      memory_limit_in_bytes=1 << 28)


def valid(method):
    """A well-formed request for each of the 41 CRI methods."""
    cfilter = dict(id="abc", pod_sandbox_id=ID, label_selector={"app": "web"})
    sfilter = dict(id="0", label_selector={"app": "web"})
    ckpt = "/var/lib/kubelet/checkpoints/checkpoint-web.tar"
    cidr = "10.244.0.0/24,fd00:10:244::/64"
    return {
        "Version": lambda: pb.VersionRequest(version="v1"),
        "RunPodSandbox": lambda: pb.RunPodSandboxRequest(config=pod_config()),
        "StopPodSandbox": lambda: pb.StopPodSandboxRequest(pod_sandbox_id=ID),
        "RemovePodSandbox": lambda: pb.RemovePodSandboxRequest(pod_sandbox_id=ID),
        "PodSandboxStatus": lambda: pb.PodSandboxStatusRequest(pod_sandbox_id=ID, verbose=True),
        "ListPodSandbox": lambda: pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
            state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY), **sfilter)),
        "StreamPodSandboxes": lambda: pb.StreamPodSandboxesRequest(
            filter=pb.PodSandboxFilter(**sfilter)),
        "CreateContainer": lambda: pb.CreateContainerRequest(
            pod_sandbox_id=ID, config=container_config(), sandbox_config=pod_config()),
        "StartContainer": lambda: pb.StartContainerRequest(container_id=ID),
        "StopContainer": lambda: pb.StopContainerRequest(container_id=ID, timeout=30),
        "RemoveContainer": lambda: pb.RemoveContainerRequest(container_id=ID),
        "ListContainers": lambda: pb.ListContainersRequest(filter=pb.ContainerFilter(
            state=pb.ContainerStateValue(state=pb.CONTAINER_UNKNOWN), **cfilter)),
        "StreamContainers": lambda: pb.StreamContainersRequest(
            filter=pb.ContainerFilter(**cfilter)),
        "ContainerStatus": lambda: pb.ContainerStatusRequest(container_id=ID, verbose=True),
        "UpdateContainerResources": lambda: pb.UpdateContainerResourcesRequest(
            container_id=ID, linux=resources(), annotations={"example.com/hint": "x"}),
        "ReopenContainerLog": lambda: pb.ReopenContainerLogRequest(container_id=ID),
        "ExecSync": lambda: pb.ExecSyncRequest(container_id=ID, cmd=["sh", "-c", "echo a\necho b"],
                                               timeout=0),
        "Exec": lambda: pb.ExecRequest(container_id=ID, cmd=["sh"], tty=True, stdin=True,
                                       stdout=True, audit_request_id="a1"),
        "Attach": lambda: pb.AttachRequest(container_id=ID, stdin=False, stdout=True, stderr=True),
        "PortForward": lambda: pb.PortForwardRequest(pod_sandbox_id=ID, port=[1, 80, 65535]),
        "ContainerStats": lambda: pb.ContainerStatsRequest(container_id=ID),
        "ListContainerStats": lambda: pb.ListContainerStatsRequest(
            filter=pb.ContainerStatsFilter(**cfilter)),
        "StreamContainerStats": lambda: pb.StreamContainerStatsRequest(
            filter=pb.ContainerStatsFilter(**cfilter)),
        "PodSandboxStats": lambda: pb.PodSandboxStatsRequest(pod_sandbox_id=ID),
        "ListPodSandboxStats": lambda: pb.ListPodSandboxStatsRequest(
            filter=pb.PodSandboxStatsFilter(**sfilter)),
        "StreamPodSandboxStats": lambda: pb.StreamPodSandboxStatsRequest(
            filter=pb.PodSandboxStatsFilter(**sfilter)),
        "UpdateRuntimeConfig": lambda: pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr=cidr))),
        "Status": lambda: pb.StatusRequest(verbose=False),
        "CheckpointContainer": lambda: pb.CheckpointContainerRequest(
            container_id=ID, location=ckpt, timeout=0),
        "GetContainerEvents": lambda: pb.GetEventsRequest(),
        "ListMetricDescriptors": lambda: pb.ListMetricDescriptorsRequest(),
        "ListPodSandboxMetrics": lambda: pb.ListPodSandboxMetricsRequest(),
        "StreamPodSandboxMetrics": lambda: pb.StreamPodSandboxMetricsRequest(),
        "RuntimeConfig": lambda: pb.RuntimeConfigRequest(),
        "UpdatePodSandboxResources": lambda: pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=ID, overhead=pb.LinuxContainerResources(cpu_shares=2),
            resources=resources()),
        "ListImages": lambda: pb.ListImagesRequest(
            filter=pb.ImageFilter(image=pb.ImageSpec(image="nginx"))),
        "StreamImages": lambda: pb.StreamImagesRequest(filter=pb.ImageFilter(image=pb.ImageSpec())),
        "ImageStatus": lambda: pb.ImageStatusRequest(image=pb.ImageSpec(image="nginx:1.25"),
                                                     verbose=True),
        "PullImage": lambda: pb.PullImageRequest(
            image=pb.ImageSpec(image="localhost:1/library/nginx:1.25",
                               annotations={"example.com/a": "b"}),
            auth=pb.AuthConfig(username="u", password="p\x01"), sandbox_config=pod_config()),
        "RemoveImage": lambda: pb.RemoveImageRequest(image=pb.ImageSpec(image="sha256:" + ID)),
        "ImageFsInfo": lambda: pb.ImageFsInfoRequest(),
    }[method]()


def test_every_cri_method_has_a_valid_example():
    assert len(METHODS) == 41
    for name, (_, input_type, _) in METHODS.items():
        assert valid(name).DESCRIPTOR is input_type, name


@pytest.mark.parametrize("method", sorted(METHODS))
def test_valid_request_is_let_through(cri, method):
    # Infinite streams (GetContainerEvents) and slow backends end with a deadline.
    code, details = cri.call(method, valid(method),
                             timeout=1 if method == "GetContainerEvents" else 3)
    assert code != INVALID, f"{method}: {details}"
    assert "no validation rules" not in details, details


# A request whose fields all may be empty is fine empty; every other one names what is missing.
EMPTY_IS_VALID = {"Version", "ListPodSandbox", "StreamPodSandboxes", "ListContainers",
                  "StreamContainers", "ListContainerStats", "StreamContainerStats",
                  "ListPodSandboxStats", "StreamPodSandboxStats", "UpdateRuntimeConfig", "Status",
                  "GetContainerEvents", "ListMetricDescriptors", "ListPodSandboxMetrics",
                  "StreamPodSandboxMetrics", "RuntimeConfig", "ListImages", "StreamImages",
                  "ImageFsInfo"}
EMPTY_FIRST_ERROR = {
    "RunPodSandbox": "config: must be set", "CreateContainer": "pod_sandbox_id: must not be empty",
    "ImageStatus": "image: must be set", "PullImage": "image: must be set",
    "RemoveImage": "image: must be set",
}


@pytest.mark.parametrize("method", sorted(set(METHODS) - EMPTY_IS_VALID))
def test_empty_request_names_the_missing_field(cri, method):
    fields = [f.name for f in METHODS[method][1].fields]
    expected = EMPTY_FIRST_ERROR.get(
        method, "container_id: must not be empty" if "container_id" in fields
        else "pod_sandbox_id: must not be empty")
    assert_invalid(cri, method, b"", expected)


# --- one case per rule ----------------------------------------------------------

CLEAR = object()


def S(path, value):
    """A mutation: set the field at a dotted path ("config.mounts[0].host_path") to value."""
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)

    def mutate(req):
        obj = req
        for p in parts[:-1]:
            obj = obj[int(p[1:-1])] if p.startswith("[") else getattr(obj, p)
        last = parts[-1]
        if value is CLEAR:
            obj.ClearField(last)
        elif isinstance(value, Message):
            getattr(obj, last).CopyFrom(value)
        elif isinstance(value, list):
            field = getattr(obj, last)
            del field[:]
            field.extend(value)
        elif isinstance(value, dict):
            field = getattr(obj, last)
            field.clear()
            field.update(value)
        else:
            setattr(obj, last, value)
    return mutate


def M(*mutations):
    def mutate(req):
        for m in mutations:
            m(req)
    return mutate


SC = "config.linux.security_context"
NS = SC + ".namespace_options"
RES = "config.linux.resources"
PCIDR = "runtime_config.network_config.pod_cidr"
PM = "config.port_mappings[0]"
OVERLONG = "x" * 254

CASES = [
    # RunPodSandbox: metadata
    ("RunPodSandbox", S("config", CLEAR), "config: must be set"),
    ("RunPodSandbox", S("config.metadata", CLEAR), "config.metadata: must be set"),
    ("RunPodSandbox", S("config.metadata.name", ""), "config.metadata.name: must not be empty"),
    ("RunPodSandbox", S("config.metadata.namespace", ""),
     "config.metadata.namespace: must not be empty"),
    ("RunPodSandbox", S("config.metadata.uid", ""), "config.metadata.uid: must not be empty"),
    ("RunPodSandbox", S("config.metadata.name", "a/b"), "config.metadata.name: \"a/b\" must not contain '/'"),
    ("RunPodSandbox", S("config.metadata.namespace", ".."), "config.metadata.namespace: must not be"),
    ("RunPodSandbox", S("config.metadata.name", "a\nb"), "config.metadata.name: \"a\\x0ab\" must not contain control"),
    ("RunPodSandbox", S("config.metadata.name", OVERLONG), "config.metadata.name: is 254 bytes, more than 253"),
    ("RunPodSandbox", S("config.metadata.namespace", OVERLONG), "config.metadata.namespace: is 254 bytes"),
    ("RunPodSandbox", S("config.metadata.uid", "u" * 129), "config.metadata.uid: is 129 bytes, more than 128"),
    # RunPodSandbox: host name, paths, ports, DNS
    ("RunPodSandbox", S("config.hostname", "web 0"), "config.hostname: \"web 0\" is not a host name"),
    ("RunPodSandbox", S("config.hostname", "h" * 65), "config.hostname:"),
    ("RunPodSandbox", S("config.log_directory", "var/log/pods/x"), "config.log_directory: \"var/log/pods/x\" is not an absolute path"),
    ("RunPodSandbox", S("config.log_directory", "/var/log/pods/../../etc"), "config.log_directory: \"/var/log/pods/../../etc\" must not contain \"..\""),
    ("RunPodSandbox", S(PM + ".container_port", 0), PM + ".container_port: 0 is outside 1..65535"),
    ("RunPodSandbox", S(PM + ".host_port", 65536), PM + ".host_port: 65536 is outside 0..65535"),
    ("RunPodSandbox", S(PM + ".host_port", -1), PM + ".host_port: -1 is outside"),
    ("RunPodSandbox", S(PM + ".host_ip", "1.2.3"), PM + ".host_ip: \"1.2.3\" is not an IPv4 or IPv6 address"),
    ("RunPodSandbox", S(PM + ".protocol", 7), PM + ".protocol: 7 is not a known Protocol value"),
    ("RunPodSandbox", S("config.dns_config.servers", ["8.8.8.8", "dns.google"]), "config.dns_config.servers[1]: \"dns.google\" is not an IPv4"),
    ("RunPodSandbox", S("config.dns_config.searches", ["a\nnameserver 1.1.1.1"]), "config.dns_config.searches[0]: \"a\\x0anameserver 1.1.1.1\" must not contain spaces or control"),
    ("RunPodSandbox", S("config.dns_config.options", [""]), "config.dns_config.options[0]: must not be empty"),
    ("RunPodSandbox", S("config.dns_config.searches", ["s"] * 33), "config.dns_config.searches: more than 32 entries"),
    # RunPodSandbox: labels, annotations
    ("RunPodSandbox", S("config.labels", {"a b": "x"}), "config.labels[\"a b\"]: key must be printable ASCII without spaces"),
    ("RunPodSandbox", S("config.labels", {"": "x"}), "config.labels[\"\"]: key must not be empty"),
    ("RunPodSandbox", S("config.labels", {"k" * 318: "x"}), "config.labels[\"" + "k" * 64 + "...\"]: key is 318 bytes, more than 317"),
    ("RunPodSandbox", S("config.labels", {"k": "v" * 4097}), "config.labels[\"k\"]: value is 4097 bytes, more than 4096"),
    ("RunPodSandbox", S("config.labels", {"é": "x"}), "config.labels[\"\\xc3\\xa9\"]: key must be printable ASCII"),
    ("RunPodSandbox", S("config.labels", {f"k{i}": "" for i in range(1025)}), "config.labels: more than 1024 entries"),
    ("RunPodSandbox", S("config.annotations", {"k": "v" * (256 * 1024 + 1)}), "config.annotations[\"k\"]: value is 262145 bytes, more than 262144"),
    ("RunPodSandbox", S("config.annotations", {f"k{i}": "v" * 200000 for i in range(3)}), "config.annotations: keys and values total 600006 bytes, more than 524288"),
    ("RunPodSandbox", S("config.annotations", {"a\tb": ""}), "config.annotations[\"a\\x09b\"]: key must be printable ASCII"),
    # RunPodSandbox: linux
    ("RunPodSandbox", S("config.linux.sysctls", {"net core": "1"}), "config.linux.sysctls[\"net core\"]: key is not a sysctl name"),
    ("RunPodSandbox", S("config.linux.sysctls", {"../../proc/x": "1"}), "config.linux.sysctls[\"../../proc/x\"]: key is not a sysctl name"),
    ("RunPodSandbox", S("config.linux.sysctls", {"net.core.somaxconn": "1\n2"}), "config.linux.sysctls[\"net.core.somaxconn\"]: value must not contain control"),
    ("RunPodSandbox", S("config.linux.cgroup_parent", "/kubepods/../../sys"), "config.linux.cgroup_parent: \"/kubepods/../../sys\" must not contain \"..\""),
    ("RunPodSandbox", S(NS + ".network", pb.CONTAINER), NS + ".network: CONTAINER is not valid here: only POD or NODE"),
    ("RunPodSandbox", S(NS + ".ipc", pb.TARGET), NS + ".ipc: TARGET is not valid here"),
    ("RunPodSandbox", M(S(NS + ".pid", pb.TARGET), S(NS + ".target_id", ID)), NS + ".pid: TARGET is only valid for a container"),
    ("RunPodSandbox", S(NS + ".pid", 4), NS + ".pid: 4 is not a known NamespaceMode value"),
    ("RunPodSandbox", S(NS + ".userns_options.mode", pb.CONTAINER), NS + ".userns_options.mode: CONTAINER is not valid here"),
    ("RunPodSandbox", S(NS + ".userns_options.mode", pb.NODE), NS + ".userns_options.uids: must be empty when mode is NODE"),
    ("RunPodSandbox", S(NS + ".userns_options.uids[0].length", 0), NS + ".userns_options.uids[0].length: must be at least 1"),
    ("RunPodSandbox", S(NS + ".userns_options.gids[0].host_id", 4294967295), NS + ".userns_options.gids[0]: host_id + length is past 2^32"),
    ("RunPodSandbox", S(NS + ".userns_options.uids", [pb.IDMapping(length=1)] * 341), NS + ".userns_options.uids: more than 340 entries"),
    ("RunPodSandbox", S(SC + ".run_as_user", CLEAR), SC + ".run_as_group: is only valid together with run_as_user"),
    ("RunPodSandbox", S(SC + ".run_as_user.value", -1), SC + ".run_as_user.value: -1 is outside 0..4294967294"),
    ("RunPodSandbox", S(SC + ".supplemental_groups", [1, 4294967295]), SC + ".supplemental_groups[1]: 4294967295 is outside"),
    ("RunPodSandbox", S(SC + ".supplemental_groups_policy", 2), SC + ".supplemental_groups_policy: 2 is not a known SupplementalGroupsPolicy value"),
    ("RunPodSandbox", S(SC + ".seccomp.profile_type", pb.SecurityProfile.Localhost), SC + ".seccomp.localhost_ref: must not be empty"),
    ("RunPodSandbox", S(SC + ".seccomp", pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref="profiles/a.json")), SC + ".seccomp.localhost_ref: \"profiles/a.json\" is not an absolute path"),
    ("RunPodSandbox", S(SC + ".apparmor.profile_type", pb.SecurityProfile.RuntimeDefault), SC + ".apparmor.localhost_ref: is only valid when profile_type is Localhost"),
    ("RunPodSandbox", S(SC + ".apparmor.profile_type", 3), SC + ".apparmor.profile_type: 3 is not a known ProfileType value"),
    ("RunPodSandbox", S("config.linux.resources.cpu_shares", 1), "config.linux.resources.cpu_shares: 1 is outside 2..262144"),
    ("RunPodSandbox", S("config.linux.overhead.oom_score_adj", 1001), "config.linux.overhead.oom_score_adj: 1001 is outside -1000..1000"),
    ("RunPodSandbox", S("runtime_handler", "kata/qemu"), "runtime_handler: \"kata/qemu\" is not a runtime handler name"),
    # CreateContainer
    ("CreateContainer", S("pod_sandbox_id", ""), "pod_sandbox_id: must not be empty"),
    ("CreateContainer", S("pod_sandbox_id", "xyz!"), "pod_sandbox_id: \"xyz!\" is not a pod sandbox ID (1 to 64 lowercase hex characters)"),
    ("CreateContainer", S("pod_sandbox_id", ID + "0"), "pod_sandbox_id: \"" + ID + "...\" is not a pod sandbox ID"),
    ("CreateContainer", S("config", CLEAR), "config: must be set"),
    ("CreateContainer", S("config.metadata", CLEAR), "config.metadata: must be set"),
    ("CreateContainer", S("config.metadata.name", ""), "config.metadata.name: must not be empty"),
    ("CreateContainer", S("config.metadata.name", "../web"), "config.metadata.name: \"../web\" must not contain '/'"),
    ("CreateContainer", S("config.image", CLEAR), "config.image: must be set"),
    ("CreateContainer", S("config.image.image", ""), "config.image.image: must not be empty"),
    ("CreateContainer", S("config.image.image", "nginx latest"), "config.image.image: \"nginx latest\" must be printable ASCII without spaces"),
    ("CreateContainer", S("config.image.image", "i" * 4097), "config.image.image: is 4097 bytes, more than 4096"),
    ("CreateContainer", S("config.image.annotations", {"": "x"}), "config.image.annotations[\"\"]: key must not be empty"),
    ("CreateContainer", S("sandbox_config", CLEAR), "sandbox_config: must be set"),
    ("CreateContainer", S("sandbox_config.metadata", CLEAR), "sandbox_config.metadata: must be set"),
    ("CreateContainer", S("sandbox_config.metadata.uid", ""), "sandbox_config.metadata.uid: must not be empty"),
    ("CreateContainer", S("config.log_path", "/var/log/x.log"), "config.log_path: \"/var/log/x.log\" must be a relative path"),
    ("CreateContainer", S("config.log_path", "../x.log"), "config.log_path: \"../x.log\" must not contain \"..\" components"),
    ("CreateContainer", S("config.log_path", "web/../../x.log"), "config.log_path: \"web/../../x.log\" must not contain \"..\""),
    ("CreateContainer", S("config.working_dir", "usr/src"), "config.working_dir: \"usr/src\" is not an absolute path"),
    ("CreateContainer", S("config.command", ["x" * (128 * 1024)]), "config.command[0]: is 131072 bytes, more than 131071"),
    ("CreateContainer", S("config.envs[0].key", ""), "config.envs[0].key: must not be empty"),
    ("CreateContainer", S("config.envs[1].key", "A=B"), "config.envs[1].key: \"A=B\" must not contain '='"),
    ("CreateContainer", S("config.envs[0].value", "v" * (128 * 1024 - 5)), "config.envs[0]: key=value is more than 131071 bytes"),
    ("CreateContainer", S("config.mounts[0].container_path", ""), "config.mounts[0].container_path: must not be empty"),
    ("CreateContainer", S("config.mounts[0].container_path", "etc/hosts"), "config.mounts[0].container_path: \"etc/hosts\" is not an absolute path"),
    ("CreateContainer", S("config.mounts[0].host_path", "hosts"), "config.mounts[0].host_path: \"hosts\" is not an absolute path"),
    ("CreateContainer", S("config.mounts[0].host_path", ""), "config.mounts[0].host_path: must not be empty"),
    ("CreateContainer", S("config.mounts[1].host_path", "/srv"), "config.mounts[1].host_path: must be empty when image is set"),
    ("CreateContainer", S("config.mounts[1].image_sub_path", "a/../../etc"), "config.mounts[1].image_sub_path: \"a/../../etc\" must not contain \"..\""),
    ("CreateContainer", S("config.mounts[1].image_sub_path", "/etc"), "config.mounts[1].image_sub_path: \"/etc\" must be a relative path"),
    ("CreateContainer", S("config.mounts[0].image_sub_path", "sub"), "config.mounts[0].image_sub_path: is only valid when image is set"),
    ("CreateContainer", S("config.mounts[0].readonly", False), "config.mounts[0].recursive_read_only: requires readonly"),
    ("CreateContainer", S("config.mounts[0].propagation", pb.PROPAGATION_HOST_TO_CONTAINER), "config.mounts[0].recursive_read_only: requires propagation PROPAGATION_PRIVATE"),
    ("CreateContainer", S("config.mounts[2].propagation", 9), "config.mounts[2].propagation: 9 is not a known MountPropagation value"),
    ("CreateContainer", S("config.mounts[2].uidMappings[0].length", 0), "config.mounts[2].uidMappings[0].length: must be at least 1"),
    ("CreateContainer", M(S("config.mounts[2].gidMappings[0].container_id", 4294967295), S("config.mounts[2].gidMappings[0].length", 2)), "config.mounts[2].gidMappings[0]: container_id + length is past 2^32"),
    ("CreateContainer", S("config.devices[0].permissions", "rwx"), "config.devices[0].permissions: \"rwx\" is not a combination of r, w and m"),
    ("CreateContainer", S("config.devices[0].permissions", "rr"), "config.devices[0].permissions:"),
    ("CreateContainer", S("config.devices[0].host_path", "dev/fuse"), "config.devices[0].host_path: \"dev/fuse\" is not an absolute path"),
    ("CreateContainer", S("config.devices[1].container_path", "null"), "config.devices[1].container_path: \"null\" is not an absolute path"),
    ("CreateContainer", S("config.labels", {"a b": "c"}), "config.labels[\"a b\"]: key must be printable ASCII"),
    ("CreateContainer", S("config.annotations", {"k" * 400: ""}), "config.annotations[\"" + "k" * 64 + "...\"]: key is 400 bytes"),
    ("CreateContainer", S(RES + ".cpu_period", 10), RES + ".cpu_period: 10 is outside 1000..1000000"),
    ("CreateContainer", S(RES + ".cpu_quota", 500), RES + ".cpu_quota: 500 is not valid"),
    ("CreateContainer", S(RES + ".cpu_quota", -2), RES + ".cpu_quota: -2 is not valid"),
    ("CreateContainer", S(RES + ".memory_limit_in_bytes", -5), RES + ".memory_limit_in_bytes: -5 is outside"),
    ("CreateContainer", S(RES + ".memory_swap_limit_in_bytes", -2), RES + ".memory_swap_limit_in_bytes: -2 is outside"),
    ("CreateContainer", S(RES + ".cpuset_cpus", "0-"), RES + ".cpuset_cpus: \"0-\" is not a cpuset list"),
    ("CreateContainer", S(RES + ".cpuset_mems", "3-1"), RES + ".cpuset_mems: \"3-1\" is not a cpuset list"),
    ("CreateContainer", S(RES + ".cpuset_cpus", "0,,1"), RES + ".cpuset_cpus: \"0,,1\" is not a cpuset list"),
    ("CreateContainer", S(RES + ".hugepage_limits[0].page_size", "2M"), RES + ".hugepage_limits[0].page_size: \"2M\" is not a page size"),
    ("CreateContainer", S(RES + ".unified", {"../cgroup.procs": "1"}), RES + ".unified[\"../cgroup.procs\"]: key must be a cgroup file name"),
    ("CreateContainer", S(RES + ".unified", {"memory.max": "1\n"}), RES + ".unified[\"memory.max\"]: value must not contain control"),
    ("CreateContainer", S(SC + ".capabilities.add_capabilities", ["CAP NET"]), SC + ".capabilities.add_capabilities[0]: \"CAP NET\" is not a capability name"),
    ("CreateContainer", S(SC + ".capabilities.drop_capabilities", [""]), SC + ".capabilities.drop_capabilities[0]: \"\" is not a capability name"),
    ("CreateContainer", S(NS + ".target_id", ""), NS + ".target_id: must not be empty when pid is TARGET"),
    ("CreateContainer", S(NS + ".target_id", "not-hex"), NS + ".target_id: \"not-hex\" is not a container ID"),
    ("CreateContainer", S(NS + ".pid", pb.CONTAINER), NS + ".target_id: is only valid when pid is TARGET"),
    ("CreateContainer", S(NS + ".network", pb.TARGET), NS + ".network: TARGET is not valid here"),
    ("CreateContainer", S(SC + ".run_as_username", "nginx"), SC + ".run_as_username: must be empty when run_as_user is set"),
    ("CreateContainer", S(SC + ".run_as_user", CLEAR), SC + ".run_as_group: needs run_as_user or run_as_username"),
    ("CreateContainer", S(SC + ".run_as_group.value", 1 << 40), SC + ".run_as_group.value: 1099511627776 is outside"),
    ("CreateContainer", S(SC + ".masked_paths", ["proc/kcore"]), SC + ".masked_paths[0]: \"proc/kcore\" is not an absolute path"),
    ("CreateContainer", S(SC + ".readonly_paths", [""]), SC + ".readonly_paths[0]: must not be empty"),
    ("CreateContainer", S(SC + ".seccomp.localhost_ref", ""), SC + ".seccomp.localhost_ref: must not be empty"),
    ("CreateContainer", S("config.CDI_devices[0].name", "gpu0"), "config.CDI_devices[0].name: \"gpu0\" is not a CDI device name"),
    ("CreateContainer", S("config.CDI_devices[0].name", "nvidia.com/gpu="), "config.CDI_devices[0].name:"),
    ("CreateContainer", S("config.stop_signal", 999), "config.stop_signal: 999 is not a known Signal value"),
    ("CreateContainer", S("config.stop_signal", -1), "config.stop_signal: -1 is not a known Signal value"),
    # Stop, Exec, Attach, PortForward, Checkpoint, resources, runtime config
    ("StopContainer", S("timeout", -1), "timeout: -1 is outside 0..2147483647"),
    ("StopContainer", S("timeout", 1 << 40), "timeout: 1099511627776 is outside"),
    ("ExecSync", S("cmd", []), "cmd: must not be empty"),
    ("ExecSync", S("cmd", ["", "x"]), "cmd[0]: must not be empty"),
    ("ExecSync", S("timeout", -5), "timeout: -5 is outside"),
    ("Exec", S("cmd", []), "cmd: must not be empty"),
    ("Exec", M(S("stdin", False), S("stdout", False), S("stderr", False)), "stdin, stdout, stderr: at least one must be true"),
    ("Exec", S("stderr", True), "stderr: must be false when tty is true"),
    ("Attach", M(S("stdout", False), S("stderr", False)), "stdin, stdout, stderr: at least one must be true"),
    ("Attach", S("tty", True), "stderr: must be false when tty is true"),
    ("PortForward", S("port", [80, 0]), "port[1]: 0 is outside 1..65535"),
    ("PortForward", S("port", [65536]), "port[0]: 65536 is outside 1..65535"),
    ("PortForward", S("port", [-80]), "port[0]: -80 is outside"),
    ("CheckpointContainer", S("location", ""), "location: must not be empty"),
    ("CheckpointContainer", S("location", "ckpt.tar"), "location: \"ckpt.tar\" is not an absolute path"),
    ("CheckpointContainer", S("location", "/var/lib/../../x.tar"), "location: \"/var/lib/../../x.tar\" must not contain \"..\""),
    ("CheckpointContainer", S("timeout", -1), "timeout: -1 is outside"),
    ("UpdateContainerResources", S("linux.oom_score_adj", -2000), "linux.oom_score_adj: -2000 is outside -1000..1000"),
    ("UpdateContainerResources", S("annotations", {"a b": "c"}), "annotations[\"a b\"]: key must be printable ASCII"),
    ("UpdatePodSandboxResources", S("resources.cpu_shares", 1), "resources.cpu_shares: 1 is outside 2..262144"),
    ("UpdatePodSandboxResources", S("overhead.cpuset_cpus", "a"), "overhead.cpuset_cpus: \"a\" is not a cpuset list"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0"), PCIDR + ": \"10.244.0.0\" is not a CIDR"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/33"), PCIDR + ": \"10.244.0.0/33\": the prefix length must be a number from 0 to 32"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/08"), PCIDR + ": \"10.244.0.0/08\": the prefix length"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/"), PCIDR + ": \"10.244.0.0/\": the prefix length"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/+8"), PCIDR + ": \"10.244.0.0/+8\": the prefix length"),
    ("UpdateRuntimeConfig", S(PCIDR, "fd00::/129"), PCIDR + ": \"fd00::/129\": the prefix length must be a number from 0 to 128"),
    ("UpdateRuntimeConfig", S(PCIDR, "300.1.0.0/16"), PCIDR + ": \"300.1.0.0/16\": \"300.1.0.0\" is not an IPv4 or IPv6 address"),
    ("UpdateRuntimeConfig", S(PCIDR, "010.1.0.0/16"), PCIDR + ": \"010.1.0.0/16\": \"010.1.0.0\" is not"),
    ("UpdateRuntimeConfig", S(PCIDR, "fe80::1%eth0/64"), PCIDR + ": \"fe80::1%eth0/64\":"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/24,"), PCIDR + ": \"10.244.0.0/24,\" has an empty entry"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/24, fd00::/64"), PCIDR + ": \" fd00::/64\": \" fd00::\" is not"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.244.0.0/24,10.245.0.0/24"), PCIDR + ": \"10.244.0.0/24,10.245.0.0/24\" has two CIDRs of the same family"),
    ("UpdateRuntimeConfig", S(PCIDR, "10.1.0.0/16,fd00::/64,10.2.0.0/16"), PCIDR + ": more than 2 CIDRs"),
    # List and Stream filters: an empty ID means no filter, a prefix is fine, anything else is not
    ("ListContainers", S("filter.id", "xyz!"), "filter.id: \"xyz!\" is not a container ID"),
    ("ListContainers", S("filter.pod_sandbox_id", "ABC"), "filter.pod_sandbox_id: \"ABC\" is not a pod sandbox ID"),
    ("ListContainers", S("filter.state.state", 42), "filter.state.state: 42 is not a known ContainerState value"),
    ("ListContainers", S("filter.label_selector", {f"k{i}": "v" for i in range(1025)}), "filter.label_selector: more than 1024 entries"),
    ("StreamContainers", S("filter.id", "g"), "filter.id: \"g\" is not a container ID"),
    ("ListPodSandbox", S("filter.id", ID + "a"), "filter.id: \"" + ID + "...\" is not a pod sandbox ID"),
    ("ListPodSandbox", S("filter.state.state", 2), "filter.state.state: 2 is not a known PodSandboxState value"),
    ("StreamPodSandboxes", S("filter.label_selector", {"a b": "c"}), "filter.label_selector[\"a b\"]: key must be printable ASCII"),
    ("ListContainerStats", S("filter.pod_sandbox_id", "x"), "filter.pod_sandbox_id: \"x\" is not a pod sandbox ID"),
    ("StreamContainerStats", S("filter.id", " "), "filter.id: \" \" is not a container ID"),
    ("ListPodSandboxStats", S("filter.id", "-1"), "filter.id: \"-1\" is not a pod sandbox ID"),
    ("StreamPodSandboxStats", S("filter.label_selector", {"k": "v" * 5000}), "filter.label_selector[\"k\"]: value is 5000 bytes"),
    # ImageService
    ("PullImage", S("image", CLEAR), "image: must be set"),
    ("PullImage", S("image.image", ""), "image.image: must not be empty"),
    ("PullImage", S("image.annotations", {"": "x"}), "image.annotations[\"\"]: key must not be empty"),
    ("PullImage", S("image.runtime_handler", "a b"), "image.runtime_handler: \"a b\" is not a runtime handler name"),
    ("PullImage", S("image.user_specified_image", "a\x7fb"), "image.user_specified_image: \"a\\x7fb\" must be printable ASCII"),
    ("PullImage", S("sandbox_config.metadata", CLEAR), "sandbox_config.metadata: must be set"),
    ("PullImage", S("sandbox_config.labels", {"x y": ""}), "sandbox_config.labels[\"x y\"]: key must be printable ASCII"),
    ("PullImage", S("auth.registry_token", "t" * (64 * 1024 + 1)), "auth.registry_token: is 65537 bytes, more than 65536"),
    ("ImageStatus", S("image", CLEAR), "image: must be set"),
    ("ImageStatus", S("image.image", ""), "image.image: must not be empty"),
    ("RemoveImage", S("image.image", ""), "image.image: must not be empty"),
    ("RemoveImage", S("image.image_ref", "sha256: x"), "image.image_ref: \"sha256: x\" must be printable ASCII"),
    ("ListImages", S("filter.image.image", "nginx latest"), "filter.image.image: \"nginx latest\" must be printable ASCII"),
    ("StreamImages", S("filter.image.runtime_handler", "r/h"), "filter.image.runtime_handler: \"r/h\" is not a runtime handler name"),
    ("Version", S("version", "v" * (64 * 1024 + 1)), "version: is 65537 bytes, more than 65536"),
]


def case_id(case):
    method, _, path = case
    return f"{method}-{path.split(':')[0]}-{abs(hash(path)) % 10000}"


@pytest.mark.parametrize("method,mutate,expected", CASES, ids=[case_id(c) for c in CASES])
def test_rule(cri, method, mutate, expected):
    req = valid(method)
    mutate(req)
    assert_invalid(cri, method, req, expected)


# IDs: every request that names one object by ID.
CONTAINER_ID_METHODS = ["StartContainer", "StopContainer", "RemoveContainer", "ContainerStatus",
                        "UpdateContainerResources", "ReopenContainerLog", "ExecSync", "Exec",
                        "Attach", "ContainerStats", "CheckpointContainer"]
POD_ID_METHODS = ["StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus", "PodSandboxStats",
                  "PortForward", "UpdatePodSandboxResources", "CreateContainer"]


def shown(value):
    """A value as messages quote it: cut after 64 bytes."""
    return value if len(value) <= 64 else value[:64] + "..."


@pytest.mark.parametrize("method", CONTAINER_ID_METHODS)
@pytest.mark.parametrize("bad", ["", "xyz!", "ABCDEF", "a" * 65, "../" + ID, "0x12"])
def test_container_id(cri, method, bad):
    req = valid(method)
    req.container_id = bad
    if bad:
        assert_invalid(cri, method, req,
                       f'container_id: "{shown(bad)}" is not a container ID '
                       "(1 to 64 lowercase hex characters)")
    else:
        assert_invalid(cri, method, req, "container_id: must not be empty")


@pytest.mark.parametrize("method", POD_ID_METHODS)
@pytest.mark.parametrize("bad", ["", "xyz!", "A", "f" * 65])
def test_pod_sandbox_id(cri, method, bad):
    req = valid(method)
    req.pod_sandbox_id = bad
    if bad:
        assert_invalid(cri, method, req,
                       f'pod_sandbox_id: "{shown(bad)}" is not a pod sandbox ID '
                       "(1 to 64 lowercase hex characters)")
    else:
        assert_invalid(cri, method, req, "pod_sandbox_id: must not be empty")


def test_long_values_are_cut_in_the_message(cri):
    req = valid("StartContainer")
    req.container_id = "z" * 10000
    details = assert_invalid(cri, "StartContainer", req, 'container_id: "' + "z" * 64 + '..."')
    assert len(details) < 300


VALID_EDGES = [
    ("StartContainer", S("container_id", "a")),  # a prefix
    ("ListContainers", S("filter", pb.ContainerFilter())),  # empty filter: no filter
    ("ListPodSandbox", S("filter.id", "")),
    ("RunPodSandbox", S("config.hostname", "")),
    ("RunPodSandbox", S("config.log_directory", "")),
    ("RunPodSandbox", S("config.metadata.name", "n" * 253)),
    ("RunPodSandbox", S("config.metadata.name", "日本語")),
    ("RunPodSandbox", S("config.labels", {f"k{i}": "" for i in range(1024)})),
    ("RunPodSandbox", S("config.annotations", {"k": "v" * (256 * 1024)})),
    ("RunPodSandbox", S("config.dns_config", CLEAR)),
    ("RunPodSandbox", S("config.linux", CLEAR)),
    ("RunPodSandbox", S(NS + ".userns_options", pb.UserNamespace(mode=pb.NODE))),
    ("CreateContainer", S("config.log_path", "")),
    ("CreateContainer", S("config.log_path", "web..log/..x/0.log")),
    ("CreateContainer", S("config.mounts[0].container_path", "/a/../b")),
    ("CreateContainer", S(RES + ".cpuset_cpus", "")),
    ("CreateContainer", S(SC + ".run_as_user", CLEAR), S(SC + ".run_as_username", "nginx")),
    ("ExecSync", S("cmd", ["sh", "-c", "printf '\\xff'", "ÿ"])),
    ("PortForward", S("port", [])),
    ("StopContainer", S("timeout", 0)),
    ("UpdateRuntimeConfig", S(PCIDR, "")),
    ("UpdateRuntimeConfig", S(PCIDR, "fd00::/0")),
    ("UpdateRuntimeConfig", S(PCIDR, "0.0.0.0/0")),
    ("UpdateRuntimeConfig", S("runtime_config", CLEAR)),
]


@pytest.mark.parametrize("edge", VALID_EDGES, ids=lambda e: e[0])
def test_valid_edge_is_let_through(cri, edge):
    method, *mutations = edge
    req = valid(method)
    for m in mutations:
        m(req)
    code, details = cri.call(method, req, timeout=3)
    assert code != INVALID, f"{method}: {details}"


# --- hostile encodings ----------------------------------------------------------

def run_pod_with_config_bytes(extra):
    """RunPodSandboxRequest bytes: the valid config with raw fields appended to it."""
    return wire_bytes(1, pod_config().SerializeToString() + extra)


def test_invalid_utf8_in_a_string(cri):
    assert_invalid(cri, "Version", wire_bytes(1, b"v1\xff"),
                   "version: is not valid UTF-8 (byte 0xff at offset 2)")


@pytest.mark.parametrize("bad,offset", [
    (b"\xc0\xaf", 0),          # overlong '/'
    (b"ab\xed\xa0\x80", 2),    # a UTF-16 surrogate
    (b"\xf4\x90\x80\x80", 0),  # above U+10FFFF
    (b"abc\xe2\x82", 3),       # cut short
    (b"\x80", 0),              # a lone continuation byte
])
def test_invalid_utf8_in_nested_strings(cri, bad, offset):
    meta = wire_bytes(1, bad) + wire_bytes(2, "uid") + wire_bytes(3, "ns")
    config = wire_bytes(1, meta)
    assert_invalid(cri, "RunPodSandbox", wire_bytes(1, config),
                   f"config.metadata.name: is not valid UTF-8 (byte 0x{bad[offset]:02x} "
                   f"at offset {offset})")


def test_invalid_utf8_in_a_map_value_and_a_repeated_string(cri):
    assert_invalid(cri, "RunPodSandbox", run_pod_with_config_bytes(map_entry(7, "k", b"\xfe")),
                   'config.annotations["k"]: value is not valid UTF-8')
    req = wire_bytes(1, ID) + wire_bytes(2, "sh") + wire_bytes(2, b"-c\xff")
    assert_invalid(cri, "ExecSync", req, "cmd[1]: is not valid UTF-8")


def test_unknown_enum_values_on_the_wire(cri):
    # ContainerConfig.stop_signal = 2^31-1 and a negative Mount.propagation, as raw varints.
    base = valid("CreateContainer")
    # A second occurrence of config on the wire merges into the first.
    req = base.SerializeToString() + wire_bytes(2, wire_varint(18, 2 ** 31 - 1))
    assert_invalid(cri, "CreateContainer", req,
                   "config.stop_signal: 2147483647 is not a known Signal value")
    mount = wire_bytes(1, "/x") + wire_bytes(2, "/y") + wire_varint(5, -7)
    assert_invalid(cri, "CreateContainer", base.SerializeToString() + wire_bytes(2, wire_bytes(7, mount)),
                   "config.mounts[3].propagation: -7 is not a known MountPropagation value")


def test_duplicate_map_keys(cri):
    req = run_pod_with_config_bytes(map_entry(6, "dup", "1") + map_entry(6, "dup", "2"))
    assert_invalid(cri, "RunPodSandbox", req, 'config.labels["dup"]: key appears more than once')
    req = wire_bytes(1, ID) + map_entry(4, "h", "1") + map_entry(4, "h", "1")
    assert_invalid(cri, "UpdateContainerResources", req,
                   'annotations["h"]: key appears more than once')


def test_map_with_empty_entries(cri):
    assert_invalid(cri, "RunPodSandbox", run_pod_with_config_bytes(wire_bytes(6, b"")),
                   'config.labels[""]: key must not be empty')
    assert_invalid(cri, "RunPodSandbox", run_pod_with_config_bytes(wire_bytes(6, b"") * 2000),
                   "config.labels: more than 1024 entries")


def test_map_with_100k_empty_entries(cri):
    # ~200 KB on the wire that would decode into 100k entries: refused, quickly, by the
    # decoding budget or by the entry limit, and criapi keeps serving.
    req = run_pod_with_config_bytes(wire_bytes(6, b"") * 100000)
    code, details = cri.call("RunPodSandbox", req)
    assert code in (INVALID, grpc.StatusCode.RESOURCE_EXHAUSTED), (code, details)
    assert "config.labels: more than 1024 entries" in details or \
        "runtime.v1.RunPodSandboxRequest: decoding would need more than" in details, details
    code, details = cri.call("Version", valid("Version"))
    assert code == grpc.StatusCode.OK, details


def test_deep_nesting_of_unknown_fields_is_not_parsed(cri):
    # CRI requests have no recursive field; unknown fields are kept as bytes, not walked.
    blob = b""
    for _ in range(3000):
        blob = wire_bytes(99, blob)
    code, details = cri.call("Version", wire_bytes(1, "v1") + blob)
    assert code == grpc.StatusCode.OK, details


def test_malformed_wire_is_not_a_validation_question(cri):
    code, details = cri.call("StartContainer", b"\x0a\x40" + b"a" * 10)  # length past the end
    assert code == INVALID, details
    assert "malformed" in details, details
