"""The registry client (imaged/registry.c) through tests/tools/crisp_fetch.

Every fetch runs with proxies pointing at a closed port and NO_PROXY covering
loopback, so it also checks that the client honours NO_PROXY.  Only
127.0.0.1 is ever contacted.
"""
import hashlib
import http.server
import json
import os
import platform
import shutil
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest_registry import (  # noqa: F401  (fixtures are found by name)
    SECURE_PASSWORD, SECURE_USER, faulty_proxy, fixture_images, registry, registry_factory,
    registry_mod, secure_registry)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CRISP_BUILD_DIR", os.path.join(TOP, "build-test"))
FETCH = os.path.join(BUILD, "bin", "crisp_fetch")

pytestmark = pytest.mark.skipif(not os.access(FETCH, os.X_OK), reason=f"{FETCH} not built")

ENV = dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9",
           http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
           NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")


def fetch(ref, outdir, *opts, timeout=60):
    p = subprocess.run([FETCH, *opts, ref, str(outdir)], capture_output=True, text=True,
                       env=ENV, timeout=timeout, stdin=subprocess.DEVNULL)
    if p.returncode:
        print(p.stderr)  # shown by pytest on failure, or with -s
    return p


def fetch_ok(ref, outdir, *opts):
    p = fetch(ref, outdir, *opts)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def check_blobs(outdir):
    """Every file under OUTDIR/blobs/sha256 is complete and verified; returns their names."""
    d = os.path.join(outdir, "blobs", "sha256")
    names = sorted(os.listdir(d)) if os.path.isdir(d) else []
    for n in names:
        with open(os.path.join(d, n), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == n, f"{n} is not verified content"
    return names


def check_summary(summary, outdir, registry, name):
    _, _, digest = registry.get_manifest(name)
    assert summary["repo_digest"] == digest
    names = check_blobs(outdir)
    want = [summary["config"], *summary["layers"]]
    assert sorted(d.split(":", 1)[1] for d in set(want)) == names
    return names


@pytest.mark.parametrize("name", ["busybox", "layered"])
def test_pull_by_tag(registry, tmp_path, name):
    s = fetch_ok(registry.ref(name), tmp_path)
    check_summary(s, tmp_path, registry, name)
    assert s["layers"]


@pytest.mark.parametrize("name", ["busybox", "layered"])
def test_pull_by_digest(registry, tmp_path, name):
    _, _, digest = registry.get_manifest(name)
    s = fetch_ok(registry.ref(name, digest), tmp_path)
    check_summary(s, tmp_path, registry, name)


def test_pull_by_wrong_digest_refused(registry, tmp_path):
    _, _, digest = registry.get_manifest("busybox")
    _, _, other = registry.get_manifest("layered")
    # layered's manifest does not exist under busybox: the registry says 404.
    p = fetch(registry.ref("busybox", other), tmp_path)
    assert p.returncode == 1
    assert check_blobs(tmp_path) == []


@pytest.mark.skipif(platform.machine() != "x86_64", reason="expects an amd64 host")
def test_multiarch_picks_amd64(registry, tmp_path):
    s = fetch_ok(registry.ref("multiarch"), tmp_path)
    _, _, index_digest = registry.get_manifest("multiarch")
    assert s["repo_digest"] == index_digest
    assert s["manifest_digest"] != index_digest
    assert s["platform"] == "linux/amd64"
    check_blobs(tmp_path)


def test_zstd(registry, tmp_path):
    s = fetch_ok(registry.ref("zstd"), tmp_path)
    check_summary(s, tmp_path, registry, "zstd")


def ca_dir(tmp_path, reg):
    d = tmp_path / "certs.d" / reg.host
    d.mkdir(parents=True)
    shutil.copy(reg.ca_cert, d / "ca.crt")
    return str(tmp_path / "certs.d")


def test_secure_without_credentials(secure_registry, tmp_path):
    p = fetch(secure_registry.ref("busybox"), tmp_path / "out",
              "--ca-dir", ca_dir(tmp_path, secure_registry))
    assert p.returncode == 1
    assert "authentication" in p.stderr
    assert check_blobs(tmp_path / "out") == []


def test_secure_wrong_password(secure_registry, tmp_path):
    p = fetch(secure_registry.ref("busybox"), tmp_path / "out",
              "--ca-dir", ca_dir(tmp_path, secure_registry),
              "--user", SECURE_USER, "--password", "wrong")
    assert p.returncode == 1
    assert "authentication" in p.stderr


def test_secure_with_credentials_and_ca(secure_registry, tmp_path):
    s = fetch_ok(secure_registry.ref("busybox"), tmp_path / "out",
                 "--ca-dir", ca_dir(tmp_path, secure_registry),
                 "--user", SECURE_USER, "--password", SECURE_PASSWORD)
    check_summary(s, tmp_path / "out", secure_registry, "busybox")


def test_secure_without_ca(secure_registry, tmp_path):
    p = fetch(secure_registry.ref("busybox"), tmp_path,
              "--user", SECURE_USER, "--password", SECURE_PASSWORD)
    assert p.returncode == 1
    assert "TLS" in p.stderr, p.stderr
    assert "certificate" in p.stderr, p.stderr


def test_corrupted_blob(registry, tmp_path):
    s = fetch_ok(registry.ref("layered"), tmp_path / "first")
    bad = s["layers"][-1]
    with registry.corrupted_blob(bad):
        p = fetch(registry.ref("layered"), tmp_path / "out")
    assert p.returncode == 1
    assert bad in p.stderr, p.stderr
    names = check_blobs(tmp_path / "out")
    assert bad.split(":", 1)[1] not in names
    assert not [n for n in os.listdir(tmp_path / "out" / "blobs" / "sha256") if ".tmp" in n]


def test_corrupting_proxy(faulty_proxy, tmp_path):
    faulty_proxy.configure("corrupt")
    p = fetch(faulty_proxy.ref("busybox"), tmp_path)
    assert p.returncode == 1
    assert "sha256:" in p.stderr
    assert check_blobs(tmp_path) == []


def test_truncated_download(faulty_proxy, tmp_path):
    faulty_proxy.configure("truncate")
    p = fetch(faulty_proxy.ref("layered"), tmp_path)
    assert p.returncode == 1
    assert check_blobs(tmp_path) == []
    assert os.listdir(tmp_path / "blobs" / "sha256") == []


def test_stall_progress_timeout(faulty_proxy, tmp_path):
    faulty_proxy.configure("stall", stall_after=10)
    t0 = time.monotonic()
    p = fetch(faulty_proxy.ref("busybox"), tmp_path, "--progress-timeout", "2", timeout=30)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1
    assert "no data from" in p.stderr and "2 s" in p.stderr, p.stderr
    assert elapsed < 6
    assert check_blobs(tmp_path) == []


def test_mirror_fallback(registry, faulty_proxy, tmp_path):
    dead = registry_mod.closed_port()
    s = fetch_ok(registry.ref("busybox"), tmp_path / "a",
                 "--mirror", f"{registry.host}=http://127.0.0.1:{dead}")
    check_summary(s, tmp_path / "a", registry, "busybox")
    # A working mirror is used first.
    s = fetch_ok(registry.ref("busybox"), tmp_path / "b",
                 "--mirror", f"{registry.host}=http://127.0.0.1:{dead}",
                 "--mirror", f"{registry.host}={faulty_proxy.url}")
    assert any("/manifests/" in r[1] for r in faulty_proxy.requests)
    check_blobs(tmp_path / "b")


def test_all_mirrors_fail(tmp_path):
    dead1, dead2 = registry_mod.closed_port(), registry_mod.closed_port()
    p = fetch(f"127.0.0.1:{dead2}/busybox:latest", tmp_path,
              "--mirror", f"127.0.0.1:{dead2}=http://127.0.0.1:{dead1}")
    assert p.returncode == 1
    assert str(dead1) in p.stderr and str(dead2) in p.stderr


class _BigManifest(http.server.BaseHTTPRequestHandler):
    chunked = False

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = b'{"schemaVersion": 2, "pad": "' + b"x" * (5 << 20) + b'"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        if not self.chunked:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass


@pytest.mark.parametrize("with_length", [True, False])
def test_manifest_too_large(tmp_path, with_length):
    handler = type("H", (_BigManifest,), {"chunked": not with_length})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        p = fetch(f"127.0.0.1:{srv.server_address[1]}/big:latest", tmp_path)
    finally:
        srv.shutdown()
        srv.server_close()
    assert p.returncode == 1
    assert "large" in p.stderr, p.stderr


class _TokenFront(http.server.BaseHTTPRequestHandler):
    """A registry front that wants a bearer token (from its own /token realm)
    and redirects blob downloads to "localhost" (another host for the client)."""
    protocol_version = "HTTP/1.1"
    upstream = None
    seen = None  # list of (path, authorization)

    def log_message(self, *a):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        authz = self.headers.get("Authorization")
        self.seen.append((self.path, authz))
        port = self.server.server_address[1]
        if self.path.startswith("/token?"):
            ok = "service=crisp-test" in self.path and "scope=repository%3Abusybox%3Apull" in self.path
            body = json.dumps({"token": "tok-123"} if ok else {}).encode()
            return self._send(200, body, [("Content-Type", "application/json")])
        if self.path.startswith("/storage/"):
            data = self.upstream.get_blob("busybox", self.path[len("/storage/"):])
            return self._send(200, data, [("Content-Type", "application/octet-stream")])
        if authz != "Bearer tok-123":
            return self._send(401, b"{}", [("WWW-Authenticate",
                                            f'Bearer realm="http://127.0.0.1:{port}/token",'
                                            'service="crisp-test",scope="repository:busybox:pull"')])
        if "/blobs/" in self.path:
            digest = self.path.rsplit("/", 1)[1]
            return self._send(307, b"", [("Location", f"http://localhost:{port}/storage/{digest}")])
        status, h, data = self.upstream.request("GET", self.path, headers={
            "Accept": self.headers.get("Accept", "")})
        self._send(status, data, [(k, v) for k, v in h.items()
                                  if k in ("content-type", "docker-content-digest")])

    def do_POST(self):
        """The OAuth2 refresh-token grant: an identity token buys an access token."""
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.seen.append((self.path, form))
        ok = (self.path == "/token" and form.get("grant_type") == ["refresh_token"]
              and form.get("refresh_token") == ["id-tok-9"]
              and form.get("service") == ["crisp-test"]
              and form.get("scope") == ["repository:busybox:pull"])
        body = json.dumps({"access_token": "tok-123"}).encode()
        self._send(200 if ok else 401, body if ok else b"{}",
                   [("Content-Type", "application/json")])


def test_bearer_token_and_redirect_drops_credentials(registry, tmp_path):
    seen = []
    handler = type("H", (_TokenFront,), {"upstream": registry, "seen": seen})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        s = fetch_ok(f"127.0.0.1:{srv.server_address[1]}/busybox:latest", tmp_path,
                     "--user", "someone", "--password", "secret")
    finally:
        srv.shutdown()
        srv.server_close()
    check_summary(s, tmp_path, registry, "busybox")
    token_requests = [a for p, a in seen if p.startswith("/token?")]
    assert token_requests and all(a and a.startswith("Basic ") for a in token_requests)
    storage = [a for p, a in seen if p.startswith("/storage/")]
    assert storage, seen
    assert all(a is None for a in storage), "credentials followed a redirect to another host"
    assert any(a == "Bearer tok-123" for p, a in seen if "/manifests/" in p)


def test_insecure_flag_plain_http(registry, tmp_path):
    s = fetch_ok(registry.ref("busybox"), tmp_path, "--insecure", registry.host)
    check_summary(s, tmp_path, registry, "busybox")
