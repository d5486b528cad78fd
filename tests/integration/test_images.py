"""ImageService end to end: the kubelet's calls through criapi to imaged,
against the local registries (plain, HTTPS with basic auth, a misbehaving
proxy), and what each leaves in imaged's store.

After every failed pull the store must hold exactly what it held before: no
blob, no snapshot directory, no database row.
"""
import base64
import concurrent.futures
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import time

import http.server
import threading

import grpc
import pytest

from conftest_registry import (  # noqa: F401  (fixtures are found by name)
    SECURE_PASSWORD, SECURE_USER, faulty_proxy, fixture_images, registry, registry_factory,
    registry_mod, secure_registry)

from test_registry_client import _TokenFront

import api_pb2 as api
import api_pb2_grpc


def suite_config(cni_dir, extra=""):
    return ("[crisp]\nlog_level = \"debug\"\n"
            f"[cni]\nconf_dir = \"{cni_dir}\"\n" + extra)


class Images:
    """A started suite and an ImageService stub, with views of imaged's store."""

    def __init__(self, suite):
        self.suite = suite
        self.channel = suite.channel()
        self.stub = api_pb2_grpc.ImageServiceStub(self.channel)
        self.dir = os.path.join(suite.root, "image")

    def pull(self, ref, auth=None, timeout=120):
        return self.stub.PullImage(api.PullImageRequest(image=api.ImageSpec(image=ref), auth=auth),
                                   timeout=timeout).image_ref

    def pull_error(self, ref, auth=None, timeout=120):
        with pytest.raises(grpc.RpcError) as e:
            self.pull(ref, auth, timeout)
        return e.value

    def list(self, filter_ref=None):
        f = api.ImageFilter(image=api.ImageSpec(image=filter_ref)) if filter_ref else None
        return list(self.stub.ListImages(api.ListImagesRequest(filter=f), timeout=30).images)

    def status(self, ref, verbose=False):
        return self.stub.ImageStatus(api.ImageStatusRequest(image=api.ImageSpec(image=ref),
                                                            verbose=verbose), timeout=30)

    def remove(self, ref):
        self.stub.RemoveImage(api.RemoveImageRequest(image=api.ImageSpec(image=ref)), timeout=60)

    def blobs(self):
        out = set()
        for algo in ("sha256", "sha512"):
            d = os.path.join(self.dir, "store", "blobs", algo)
            out.update(f"{algo}:{n}" for n in os.listdir(d)) if os.path.isdir(d) else None
        return out

    def snapshots(self):
        return sorted(os.listdir(os.path.join(self.dir, "store", "snapshots")))

    def rows(self, table):
        db = sqlite3.connect(f"file:{self.dir}/image.db?mode=ro", uri=True)
        try:
            return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        finally:
            db.close()

    def state(self):
        """Everything a failed pull must leave as it was."""
        return (self.blobs(), self.snapshots(), self.rows("images"), self.rows("snapshots"),
                self.rows("image_names"))


@pytest.fixture
def images(suite_factory):
    def start(extra_config=""):
        s = suite_factory()
        with open(s.config, "w") as f:
            f.write(suite_config(s.cni_dir, extra_config))
        s.start()
        return Images(s)
    return start


def expected_size(registry, name):
    m = registry.inspect(name, raw=True)
    return m["config"]["size"] + sum(layer["size"] for layer in m["layers"])


# --- pulls ---


@pytest.mark.parametrize("name", ["busybox", "layered"])
def test_pull_by_tag(images, registry, name):
    im = images()
    ref = registry.ref(name)
    image_id = im.pull(ref)
    manifest = registry.inspect(name, raw=True)
    assert image_id == manifest["config"]["digest"]
    _, _, repo_digest = registry.get_manifest(name)

    [img] = im.list()
    assert img.id == image_id
    assert list(img.repo_tags) == [ref]
    assert list(img.repo_digests) == [f"{registry.host}/{name}@{repo_digest}"]
    assert img.size == expected_size(registry, name)
    assert img.spec.image == image_id
    # The same image by every name a kubelet or a person may use.
    for by in (ref, image_id, image_id.split(":", 1)[1], img.repo_digests[0],
               f"{registry.host}/{name}"):
        assert im.status(by).image.id == image_id, by
    # One snapshot per layer, one blob per layer plus the config.
    assert len(im.snapshots()) == len(manifest["layers"])
    assert im.blobs() == {image_id, *(layer["digest"] for layer in manifest["layers"])}


def test_image_config_and_verbose_status(images, registry):
    im = images()
    image_id = im.pull(registry.ref("layered"))
    st = im.status(registry.ref("layered"), verbose=True)
    assert st.image.username == "app"
    assert not st.image.HasField("uid")
    info = json.loads(st.info["info"])
    assert info["id"] == image_id
    assert info["imageSpec"]["config"]["User"] == "app"
    assert info["imageSpec"]["config"]["WorkingDir"] == "/work"
    assert info["chainID"].startswith("sha256:")
    assert len(info["layers"]) == len(registry.inspect("layered", raw=True)["layers"])
    assert not im.status(registry.ref("layered")).info  # verbose only


def test_pull_by_digest(images, registry):
    im = images()
    _, _, digest = registry.get_manifest("busybox")
    ref = f"{registry.host}/busybox@{digest}"
    image_id = im.pull(ref)
    [img] = im.list()
    assert img.id == image_id
    assert list(img.repo_tags) == []
    assert list(img.repo_digests) == [ref]
    assert im.status(ref).image.id == image_id


def test_pull_wrong_digest(images, registry):
    im = images()
    _, _, other = registry.get_manifest("layered")
    before = im.state()
    e = im.pull_error(f"{registry.host}/busybox@{other}")
    assert e.code() == grpc.StatusCode.NOT_FOUND, e.details()
    assert im.state() == before


@pytest.mark.skipif(platform.machine() != "x86_64", reason="expects an amd64 host")
def test_multiarch_picks_host_platform(images, registry):
    im = images()
    image_id = im.pull(registry.ref("multiarch"))
    _, _, index_digest = registry.get_manifest("multiarch")
    [img] = im.list()
    assert list(img.repo_digests) == [f"{registry.host}/multiarch@{index_digest}"]
    info = json.loads(im.status(image_id, verbose=True).info["info"])
    assert info["imageSpec"]["architecture"] == "amd64"
    assert info["manifestDigest"] != index_digest


def test_zstd(images, registry):
    im = images()
    image_id = im.pull(registry.ref("zstd"))
    assert im.status(image_id).image.id == image_id


def test_invalid_reference(images):
    im = images()
    e = im.pull_error("UPPER/Case:tag")
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "UPPER/Case" in e.details()


def test_default_registry_name_normalization(images):
    """A familiar name means docker.io/library/...: with no such image pulled,
    every form is simply absent (and nothing is fetched to find that out)."""
    im = images()
    for ref in ("busybox", "library/busybox", "docker.io/library/busybox:latest"):
        assert not im.status(ref).HasField("image")


# --- registries: TLS, auth, mirrors ---


def certs_dir(tmp, reg):
    d = os.path.join(tmp, "certs.d", reg.host)
    os.makedirs(d)
    shutil.copy(reg.ca_cert, os.path.join(d, "ca.crt"))
    return os.path.join(tmp, "certs.d")


def secure_images(images, secure_registry, tmp_path, with_ca=True):
    extra = f"[image]\nregistry_certs_dir = \"{certs_dir(str(tmp_path), secure_registry)}\"\n" \
        if with_ca else ""
    return images(extra)


def test_auth_success(images, secure_registry, tmp_path):
    im = secure_images(images, secure_registry, tmp_path)
    ref = secure_registry.ref("busybox")
    image_id = im.pull(ref, api.AuthConfig(username=SECURE_USER, password=SECURE_PASSWORD))
    assert im.status(ref).image.id == image_id
    # The encoded form of the same credentials.
    im.remove(ref)
    token = base64.b64encode(f"{SECURE_USER}:{SECURE_PASSWORD}".encode()).decode()
    assert im.pull(ref, api.AuthConfig(auth=token)) == image_id


@pytest.mark.parametrize("password", [None, "wrong"])
def test_auth_failure(images, secure_registry, tmp_path, password):
    im = secure_images(images, secure_registry, tmp_path)
    auth = api.AuthConfig(username=SECURE_USER, password=password) if password else None
    before = im.state()
    e = im.pull_error(secure_registry.ref("busybox"), auth)
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.details()
    assert "authentication" in e.details()
    assert im.state() == before


def test_tls_without_ca(images, secure_registry, tmp_path):
    im = secure_images(images, secure_registry, tmp_path, with_ca=False)
    e = im.pull_error(secure_registry.ref("busybox"),
                      api.AuthConfig(username=SECURE_USER, password=SECURE_PASSWORD))
    assert "certificate" in e.details(), e.details()
    assert im.list() == []


def test_mirror_fallback(images, registry, faulty_proxy):
    dead = registry_mod.closed_port()
    im = images(f"[registry.hosts.\"{registry.host}\"]\n"
                f"mirrors = [\"http://127.0.0.1:{dead}\", \"{faulty_proxy.url}\"]\n")
    image_id = im.pull(registry.ref("busybox"))
    assert im.status(registry.ref("busybox")).image.id == image_id
    # The dead mirror was skipped; the working one served the pull.
    assert any("/manifests/" in r[1] for r in faulty_proxy.requests)
    assert any("/blobs/" in r[1] for r in faulty_proxy.requests)


@pytest.fixture
def token_front(registry):
    """A registry front that wants bearer tokens from its own realm."""
    seen = []
    handler = type("H", (_TokenFront,), {"upstream": registry, "seen": seen})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    srv.seen = seen
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def test_identity_and_registry_tokens(images, token_front):
    im = images()
    ref = f"127.0.0.1:{token_front.server_address[1]}/busybox:latest"
    # An identity token is exchanged at the realm for an access token.
    image_id = im.pull(ref, api.AuthConfig(identity_token="id-tok-9"))
    assert any(p == "/token" and isinstance(f, dict) for p, f in token_front.seen)
    im.remove(image_id)
    # A registry token is sent as it is: no token request at all.
    token_front.seen.clear()
    assert im.pull(ref, api.AuthConfig(registry_token="tok-123")) == image_id
    assert not [p for p, _ in token_front.seen if p.startswith("/token")]
    # A wrong identity token is refused by the realm.
    im.remove(image_id)
    e = im.pull_error(ref, api.AuthConfig(identity_token="stolen"))
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED and "identity token" in e.details()


# --- broken downloads ---


def test_corrupted_blob(images, registry):
    im = images()
    bad = registry.inspect("layered", raw=True)["layers"][-1]["digest"]
    before = im.state()
    with registry.corrupted_blob(bad):
        e = im.pull_error(registry.ref("layered"))
    assert bad in e.details(), e.details()
    assert im.state() == before


def test_truncated_download(images, faulty_proxy):
    im = images()
    faulty_proxy.configure("truncate")
    before = im.state()
    im.pull_error(faulty_proxy.ref("layered"))
    assert im.state() == before
    faulty_proxy.configure("pass")
    assert im.pull(faulty_proxy.ref("layered"))


def test_progress_timeout(images, faulty_proxy):
    im = images("[image]\npull_progress_timeout = 2\n")
    faulty_proxy.configure("stall", stall_after=10)
    before = im.state()
    e = im.pull_error(faulty_proxy.ref("busybox"), timeout=60)
    assert "no data from" in e.details() and "2 s" in e.details(), e.details()
    assert im.state() == before


def test_concurrent_pulls_share_downloads(images, faulty_proxy, registry):
    im = images()
    ref = faulty_proxy.ref("layered")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(lambda _: im.pull(ref), range(6)))
    assert len(set(ids)) == 1
    manifest = registry.inspect("layered", raw=True)
    blob_gets = [r[1] for r in faulty_proxy.requests if r[0] == "GET" and "/blobs/" in r[1]]
    wanted = {manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])}
    # Each blob crossed the wire once, whatever the number of pulls.
    assert sorted(blob_gets) == sorted(set(blob_gets)), blob_gets
    assert {p.rsplit("/", 1)[1] for p in blob_gets} == wanted
    assert len(im.snapshots()) == len(manifest["layers"])


# --- hostile layers ---


VICTIM = "/tmp/crisp-hostile-victim"
MUST_FAIL = {"dotdot", "hardlink-escape", "long-path", "many-entries"}


def tmp_hostile_names():
    return sorted(n for n in os.listdir("/tmp") if n.startswith("crisp-hostile-"))


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink-escape",
                                  "symlink-write-through", "hardlink-escape", "whiteout-escape",
                                  "many-entries", "long-path", "device-nodes"])
def test_hostile_layer(images, registry, fixture_images, kind):
    im = images()
    info = fixture_images["images"][f"hostile/{kind}"]["hostile"]
    with open(VICTIM, "w") as f:
        f.write("original victim content\n")
    try:
        outside = tmp_hostile_names()
        passwd = open("/etc/passwd", "rb").read()
        before = im.state()
        try:
            image_id = im.pull(registry.ref(f"hostile/{kind}"), timeout=300)
            failed = None
        except grpc.RpcError as e:
            image_id, failed = None, e
        # Nothing outside the store changed, whatever the outcome.
        assert open(VICTIM).read() == "original victim content\n"
        assert tmp_hostile_names() == outside
        for p in info["escapes"]:
            assert not os.path.lexists(p), p
        assert open("/etc/passwd", "rb").read() == passwd
        if kind in MUST_FAIL:
            assert failed is not None, f"{kind} was accepted"
        if failed is not None:
            assert "layer entry" in failed.details() or "entries" in failed.details(), \
                failed.details()
            assert im.state() == before  # and nothing inside stayed behind
        else:
            assert im.status(image_id).image.id == image_id
    finally:
        os.unlink(VICTIM)


# --- removal and collection ---


def test_remove_semantics(images, registry_factory, fixture_images):
    reg = registry_factory(images=("busybox",))
    layout = fixture_images["images"]["busybox"]["layout"]
    reg.push(layout, "busybox", tag="second")
    im = images()
    a, b = reg.ref("busybox"), reg.ref("busybox", "second")
    image_id = im.pull(a)
    assert im.pull(b) == image_id
    [img] = im.list()
    assert sorted(img.repo_tags) == sorted([a, b])

    # A tag removes only that tag while another remains.
    im.remove(a)
    [img] = im.list()
    assert list(img.repo_tags) == [b]
    assert not im.status(a).HasField("image")
    assert im.status(b).image.id == image_id
    assert im.snapshots()

    # The last tag takes the image, and collection takes its content.
    im.remove(b)
    assert im.list() == []
    assert im.snapshots() == [] and im.blobs() == set()
    assert im.rows("snapshots") == 0
    # Idempotent.
    im.remove(b)
    im.remove(image_id)

    # By ID, and by repo digest: the whole image.
    image_id = im.pull(a)
    im.pull(b)
    im.remove(image_id)
    assert im.list() == [] and im.blobs() == set()
    im.pull(a)
    [img] = im.list()
    im.remove(img.repo_digests[0])
    assert im.list() == [] and im.blobs() == set()


def test_remove_keeps_shared_layers(images, registry):
    im = images()
    bb = im.pull(registry.ref("busybox"))
    im.pull(registry.ref("layered"))  # its base layer is busybox's
    base = registry.inspect("busybox", raw=True)["layers"][0]["digest"]
    im.remove(bb)
    assert base in im.blobs()
    [img] = im.list()
    assert img.id != bb
    assert len(im.snapshots()) == len(registry.inspect("layered", raw=True)["layers"])


def test_image_fs_info_counts_the_store(images, registry):
    im = images()
    empty = im.stub.ImageFsInfo(api.ImageFsInfoRequest(), timeout=30)
    im.pull(registry.ref("layered"))
    full = im.stub.ImageFsInfo(api.ImageFsInfoRequest(), timeout=30)
    grew = full.image_filesystems[0].used_bytes.value - empty.image_filesystems[0].used_bytes.value
    assert grew >= expected_size(registry, "layered")
    assert full.image_filesystems[0].inodes_used.value > empty.image_filesystems[0].inodes_used.value


# --- crashes ---


def test_imaged_killed_mid_pull(images, faulty_proxy):
    im = images()
    faulty_proxy.configure("stall", stall_after=10)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(im.pull_error, faulty_proxy.ref("layered"), None, 60)
        # Wait until imaged is inside the download.
        deadline = time.monotonic() + 20
        while not any("/blobs/" in r[1] for r in faulty_proxy.requests):
            assert time.monotonic() < deadline, "the pull never reached a blob"
            time.sleep(0.05)
        time.sleep(0.3)
        old = im.suite.pid_of("crisp-imaged")
        os.kill(old, 9)
        e = fut.result()
    assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL,
                        grpc.StatusCode.CANCELLED), e
    deadline = time.monotonic() + 20
    while im.suite.daemon_pids().get("crisp-imaged") in (None, old):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    faulty_proxy.configure("pass")
    image_id = None
    for _ in range(100):  # the front reconnects to the new imaged
        try:
            image_id = im.pull(faulty_proxy.ref("layered"))
            break
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            time.sleep(0.1)
    assert image_id
    # No temporary file and no unfinished snapshot survived the crash.
    assert not [b for b in im.blobs() if ".tmp" in b]
    assert im.rows("snapshots") == len(im.snapshots())
    db = sqlite3.connect(f"file:{im.dir}/image.db?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM snapshots WHERE state != 'ready'").fetchone()[0] == 0
    db.close()
