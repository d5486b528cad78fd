#!/usr/bin/python3
"""ListContainers with 1000 containers: latency and throughput, measured by
bench/cri_bench against a suite that holds 1000 real containers.

It starts a local registry with the busybox fixture image, a suite the way
the integration tests start one (tests/integration/conftest.py), pulls the
image, runs one pod and creates and starts 1000 containers running
/bin/true (they exit at once, so they cost rows and overlay mounts, not
processes), then runs cri_bench on ListContainers at concurrency 1 and 16.
Everything it made is removed at the end; it ends only what it started.

Usage (as root): /usr/bin/python3 bench/list_containers.py BUILD_DIR
  N (default 1000) containers; REQ1 (2000) and REQ16 (10000) calls.
"""
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build-bench"))
os.environ["CRISP_BUILD_DIR"] = BUILD
sys.path[:0] = [os.path.join(TOP, "tests", "integration"), os.path.join(TOP, "tests", "fixtures"),
                os.path.join(BUILD, "python")]

import build_images  # noqa: E402
import registry as registry_mod  # noqa: E402
from cni_helpers import bridge_conflist, nat_chains, remove_host_network_state  # noqa: E402
from conftest import Suite  # noqa: E402

import api_pb2 as api  # noqa: E402
import api_pb2_grpc  # noqa: E402

N = int(os.environ.get("N", "1000"))
REQ1 = int(os.environ.get("REQ1", "2000"))
REQ16 = int(os.environ.get("REQ16", "10000"))
BRIDGE = "crispbench2"
SUBNET = "10.254.0.0/24"


def cri_bench(sock, requests, concurrency):
    cmd = [os.path.join(BUILD, "bin", "cri_bench"), "--socket", sock, "--method",
           "/runtime.v1.RuntimeService/ListContainers", "--requests", str(requests),
           "--concurrency", str(concurrency), "--warmup", "100"]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main():
    tmp = tempfile.mkdtemp(prefix="crisp-list-bench-")
    chains = nat_chains()
    images = build_images.build_all(os.path.join(tmp, "images"), include_hostile=False)
    reg = registry_mod.Registry(name="list-bench-registry")
    suite = None
    try:
        reg.start()
        reg.push_images({"busybox": images["images"]["busybox"]})
        suite = Suite(os.path.join(tmp, "suite"))
        conf_dir = suite.cni_dir
        with open(os.path.join(conf_dir, "10-bench.conflist"), "w") as f:
            json.dump(bridge_conflist(BRIDGE, SUBNET, os.path.join(tmp, "ipam"),
                                      name="crisp-bench"), f)
        with open(suite.config, "w") as f:
            f.write(f"[crisp]\nlog_level = \"info\"\n[cni]\nconf_dir = \"{conf_dir}\"\n")
        os.makedirs(suite.tmp, exist_ok=True)
        suite.start()
        ch = suite.channel()
        rt = api_pb2_grpc.RuntimeServiceStub(ch)
        img = api_pb2_grpc.ImageServiceStub(ch)
        ref = reg.ref("busybox")
        img.PullImage(api.PullImageRequest(image=api.ImageSpec(image=ref)), timeout=120)
        pod_cfg = api.PodSandboxConfig(
            metadata=api.PodSandboxMetadata(name="bench", namespace="default",
                                            uid=str(uuid.uuid4())),
            log_directory=os.path.join(tmp, "logs"))
        pod = rt.RunPodSandbox(api.RunPodSandboxRequest(config=pod_cfg), timeout=120).pod_sandbox_id

        def make(i):
            cfg = api.ContainerConfig(metadata=api.ContainerMetadata(name=f"c{i}"),
                                      image=api.ImageSpec(image=ref), log_path=f"c{i}/0.log",
                                      command=["/bin/true"])
            cid = rt.CreateContainer(api.CreateContainerRequest(
                pod_sandbox_id=pod, config=cfg, sandbox_config=pod_cfg), timeout=120).container_id
            rt.StartContainer(api.StartContainerRequest(container_id=cid), timeout=120)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            list(pool.map(make, range(N)))
        print(f"created and started {N} containers in {time.monotonic() - t0:.1f} s")
        answer = rt.ListContainers(api.ListContainersRequest(), timeout=60)
        print(f"ListContainers: {len(answer.containers)} containers, "
              f"{answer.ByteSize()} bytes", flush=True)
        sock = suite.socket
        cri_bench(sock, REQ1, 1)
        cri_bench(sock, REQ16, 16)
        rt.StopPodSandbox(api.StopPodSandboxRequest(pod_sandbox_id=pod), timeout=300)
        rt.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod), timeout=600)
    finally:
        if suite:
            suite.remove_pods()
            suite.stop()
        reg.stop()
        remove_host_network_state(BRIDGE, chains)
        subprocess.run(["rm", "-rf", tmp], check=False)


if __name__ == "__main__":
    main()
