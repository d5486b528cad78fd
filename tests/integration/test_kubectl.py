"""kubectl itself against streamd: exec over SPDY and WebSocket, and
port-forward, the way a cluster routes them (kubectl -> API server ->
the runtime's streaming URL).

The API server here is a stand-in on loopback that knows one pod: it answers
kubectl's discovery and its GET of the pod, and for an exec or port-forward
request makes the CRI call the kubelet would (Exec with the request's query,
or PortForward), then relays the upgrade request to the returned URL and
splices the connection, as the API server's proxy does.  kubectl's own SPDY
library keeps no flow-control windows, which is what this checks above all.
"""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import wait_for
from conftest_registry import fixture_images, registry, registry_mod  # noqa: F401
from test_containers import containers  # noqa: F401  (the fixture)
from test_pods import pods  # noqa: F401
from test_streaming import Streaming

import api_pb2 as api

pytestmark = pytest.mark.skipif(not shutil.which("kubectl"),
                                reason="kubectl is not installed (scripts/install-deps.sh test)")

POD_PATH = "/api/v1/namespaces/default/pods/p"
RESOURCES = {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
    {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
     "verbs": ["get"], "shortNames": ["po"]},
    {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
     "verbs": ["create", "get"]},
    {"name": "pods/portforward", "singularName": "", "namespaced": True,
     "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}]}
POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "default"},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]},
       "status": {"phase": "Running"}}


def kubectl_minor():
    out = subprocess.run(["kubectl", "version", "--client", "-o", "json"],
                         capture_output=True, text=True, timeout=30).stdout
    return int("".join(ch for ch in json.loads(out)["clientVersion"]["minor"] if ch.isdigit()))


def read_head(sock):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head.decode("latin-1"), rest


def splice(a, b):
    """Copies both ways until both ends are done, passing half-closes on."""
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    t = threading.Thread(target=pump, args=(b, a), daemon=True)
    t.start()
    pump(a, b)
    t.join()


class ApiServer:
    """The stand-in API server (see the module's docstring)."""

    def __init__(self, streaming):
        self.s = streaming
        self.requests = []     # "GET /path", and "-> /exec/<token> <protocol headers>"
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def close(self):
        self.listener.close()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def answer(self, conn, status, obj):
        body = json.dumps(obj).encode()
        conn.sendall(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % (status.encode(), len(body)) + body)

    def handle(self, conn):
        with conn:
            while True:
                head, rest = read_head(conn)
                if head is None:
                    return
                line, *headers = head.split("\r\n")
                method, target, _ = line.split(" ", 2)
                url = urllib.parse.urlsplit(target)
                self.requests.append(f"{method} {url.path}")
                if url.path in ("/api", "/apis", "/api/v1", POD_PATH):
                    self.answer(conn, "200 OK", {
                        "/api": {"kind": "APIVersions", "versions": ["v1"]},
                        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
                        "/api/v1": RESOURCES, POD_PATH: POD}[url.path])
                elif url.path in (POD_PATH + "/exec", POD_PATH + "/portforward"):
                    return self.relay(conn, method, url, headers, rest)
                else:
                    self.answer(conn, "404 Not Found", {"kind": "Status", "code": 404})

    def relay(self, conn, method, url, headers, rest):
        q = urllib.parse.parse_qs(url.query)
        if url.path.endswith("/exec"):
            def flag(name):
                return q.get(name) == ["true"]
            target = self.s.c.rt.Exec(api.ExecRequest(
                container_id=self.s.cid, cmd=q["command"], stdin=flag("stdin"),
                stdout=flag("stdout"), stderr=flag("stderr"), tty=flag("tty")), timeout=10).url
        else:
            target = self.s.forward_url()
        t = urllib.parse.urlsplit(target)
        headers = [h for h in headers if not h.lower().startswith("host:")]
        self.requests.append(f"-> {t.path} " + " ".join(
            h for h in headers if "protocol" in h.lower()))
        with socket.create_connection((t.hostname, t.port), timeout=30) as up:
            up.settimeout(None)
            up.sendall(f"{method} {t.path} HTTP/1.1\r\nHost: {t.netloc}\r\n".encode() +
                       "".join(h + "\r\n" for h in headers).encode() + b"\r\n" + rest)
            splice(conn, up)


@pytest.fixture
def kube(containers, tmp_path):  # noqa: F811
    """(Streaming, ApiServer, the kubectl command prefix)."""
    s = Streaming(containers)
    server = ApiServer(s)
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: t, cluster: {{server: 'http://127.0.0.1:{server.port}'}}}}]\n"
        "users: [{name: t, user: {}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]\n"
        "current-context: t\n")
    # Its discovery cache stays in the test's folder, not in $HOME.
    cmd = ["kubectl", "--kubeconfig", str(config), "--cache-dir", str(tmp_path / "cache")]
    yield s, server, cmd
    server.close()


@pytest.mark.parametrize("websocket", [False, True])
def test_kubectl_exec(kube, websocket):
    s, server, kubectl = kube
    if websocket and kubectl_minor() < 30:
        pytest.skip("this kubectl speaks SPDY only")
    env = dict(os.environ, KUBECTL_REMOTE_COMMAND_WEBSOCKETS=str(websocket).lower())

    def run(*args, stdin=None):
        return subprocess.run([*kubectl, "exec", *args], env=env, input=stdin,
                              capture_output=True, timeout=60)
    # 8 MiB of output: kubectl never returns window, and must not stall at 64 KiB.
    r = run("p", "--", "/bin/busybox", "head", "-c", "8388608", "/dev/zero")
    assert r.returncode == 0 and len(r.stdout) == 8 << 20, r.stderr
    assert ("Sec-WebSocket-Protocol: v5.channel.k8s.io" in server.requests[-1]) == websocket
    # 6 MiB of stdin, and its end, reach the command.
    blob = os.urandom(6 << 20)
    r = run("-i", "p", "--", "/bin/busybox", "md5sum", stdin=blob)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.md5(blob).hexdigest()
    # The exit code comes back as kubectl's own.
    r = run("p", "--", "sh", "-c", "echo to stderr >&2; exit 7")
    assert r.returncode == 7 and b"to stderr" in r.stderr


def test_kubectl_port_forward(kube):
    s, server, kubectl = kube
    s.run(["/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/cat"])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()[1]
    forward = subprocess.Popen([*kubectl, "port-forward", "pod/p", f"{local}:8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def connected():
            try:
                return socket.create_connection(("127.0.0.1", local), timeout=10)
            except OSError:
                return None
        conn = wait_for(connected, 30, interval=0.2, what="kubectl to listen")
        blob = os.urandom(4 << 20)
        got = bytearray()

        def reader():
            while len(got) < len(blob):
                data = conn.recv(65536)
                if not data:
                    break
                got.extend(data)
        t = threading.Thread(target=reader)
        t.start()
        conn.sendall(blob)
        t.join(60)
        conn.close()
        assert bytes(got) == blob
        # kubectl's SPDY session ends up on streamd whatever it tried first.
        assert any("X-Stream-Protocol-Version: portforward.k8s.io" in r
                   for r in server.requests), server.requests
    finally:
        forward.terminate()
        forward.communicate(timeout=20)
