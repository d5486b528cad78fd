"""Checks the image-registry test fixtures themselves (no crisp build needed).

The images built by tests/fixtures/build_images.py and hostile_layers.py are
pushed to local registries on 127.0.0.1 (tests/fixtures/registry.py, fixtures
in conftest_registry.py); these tests read them back with skopeo inspect and
plain HTTP and check every property the imaged tests rely on: layer counts and
media types, whiteouts, opaque dirs, hard links, USER/ENV/ENTRYPOINT/CMD and the
rest of the config, the multi-platform index, zstd layers, the hostile entries,
auth and TLS of the secure registry, blob corruption and the faulty proxy.
"""
import gzip
import http.client
import io
import os
import socket
import ssl
import subprocess
import tarfile
import time

import pytest

from conftest_registry import (  # noqa: F401  (fixtures are found by name)
    TIMINGS, build_images, faulty_proxy, fixture_images, registry, registry_factory,
    registry_mod, secure_registry)

GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def layer_tar(reg, name, desc):
    blob = reg.get_blob(name, desc["digest"])
    assert registry_mod.blob_digest_ok(blob, desc["digest"])
    if desc["mediaType"] == GZIP:
        raw = gzip.decompress(blob)
    elif desc["mediaType"] == ZSTD:
        raw = subprocess.run(["zstd", "-d", "-q", "-c"], input=blob, check=True,
                             capture_output=True).stdout
    else:
        raw = blob
    return raw, tarfile.open(fileobj=io.BytesIO(raw))


def members(reg, name, desc):
    return {m.name.rstrip("/"): m for m in layer_tar(reg, name, desc)[1].getmembers()}


def test_build_is_deterministic(fixture_images, tmp_path):
    again = build_images.build_all(str(tmp_path))
    assert {n: i["digest"] for n, i in again["images"].items()} == \
           {n: i["digest"] for n, i in fixture_images["images"].items()}


def test_every_image_by_tag_and_digest(registry, fixture_images):
    for name, info in fixture_images["images"].items():
        raw = registry.inspect(name, "latest", raw=True)
        assert raw["mediaType"] == info["mediaType"], name
        _, ctype, digest = registry.get_manifest(name, "latest")
        assert digest == info["digest"], name
        assert ctype == info["mediaType"], name
        by_digest = registry.inspect(name, info["digest"], raw=True)
        assert by_digest == raw, name


def test_busybox(registry, fixture_images):
    info = fixture_images["images"]["busybox"]
    manifest = registry.inspect("busybox", raw=True)
    assert [d["mediaType"] for d in manifest["layers"]] == [GZIP]
    cfg = registry.inspect("busybox", config=True, raw=True)
    assert cfg["os"] == "linux" and cfg["architecture"] == fixture_images["arch"]
    assert cfg["config"]["Cmd"] == ["/bin/sh"]
    assert cfg["rootfs"]["diff_ids"] == [info["layers"][0]["diffID"]]

    raw, tar = layer_tar(registry, "busybox", manifest["layers"][0])
    import hashlib
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == info["layers"][0]["diffID"]
    m = {x.name.rstrip("/"): x for x in tar.getmembers()}
    with open("/bin/busybox", "rb") as f:
        assert tar.extractfile(m["bin/busybox"]).read() == f.read()
    assert m["bin/busybox"].mode == 0o755
    for applet in ("sh", "ls", "cat", "echo", "id", "sleep", "true", "false"):
        assert m["bin/" + applet].issym() and m["bin/" + applet].linkname == "busybox"
    passwd = tar.extractfile(m["etc/passwd"]).read().decode()
    assert "root:x:0:0:" in passwd and "app:x:1000:1000:" in passwd
    assert "app:x:1000:" in tar.extractfile(m["etc/group"]).read().decode()
    assert m["home/app"].uid == 1000 and m["tmp"].mode == 0o1777


def test_layered(registry, fixture_images):
    manifest = registry.inspect("layered", raw=True)
    assert manifest["mediaType"] == MANIFEST
    assert len(manifest["layers"]) >= 3
    assert all(d["mediaType"] == GZIP for d in manifest["layers"])
    # the base layer is byte-identical to busybox's
    bb = registry.inspect("busybox", raw=True)
    assert manifest["layers"][0]["digest"] == bb["layers"][0]["digest"]

    cfg = registry.inspect("layered", config=True, raw=True)["config"]
    assert cfg["User"] == "app"
    assert "FOO=bar" in cfg["Env"] and any(e.startswith("PATH=/") for e in cfg["Env"])
    assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["echo hello"]
    assert cfg["WorkingDir"] == "/work"
    assert "8080/tcp" in cfg["ExposedPorts"]
    assert "/var/lib/app" in cfg["Volumes"]
    assert cfg["Labels"]["io.crisp.fixture"] == "layered"
    assert cfg["StopSignal"] == "SIGINT"
    # skopeo's own view of the labels
    assert registry.inspect("layered")["Labels"]["io.crisp.fixture"] == "layered"

    base = members(registry, "layered", manifest["layers"][0])
    passwd = layer_tar(registry, "layered", manifest["layers"][0])[1]
    text = passwd.extractfile(base["etc/passwd"]).read().decode()
    assert "app:x:1000:1000:" in text  # USER app resolves to 1000

    l2 = members(registry, "layered", manifest["layers"][1])
    assert l2["data/hello-hardlink.txt"].islnk()
    assert l2["data/hello-hardlink.txt"].linkname == "data/hello.txt"
    assert "data/remove-me.txt" in l2 and "replace/old-a.txt" in l2 and "olddir" in l2

    l3 = members(registry, "layered", manifest["layers"][2])
    assert "data/.wh.remove-me.txt" in l3 and ".wh.olddir" in l3
    assert "replace/.wh..wh..opq" in l3 and "replace/new-c.txt" in l3
    assert all(l3[n].isfile() and l3[n].size == 0 for n in l3 if "/.wh." in "/" + n)


def test_zstd(registry, fixture_images):
    manifest = registry.inspect("zstd", raw=True)
    layered = registry.inspect("layered", raw=True)
    assert len(manifest["layers"]) == len(layered["layers"]) >= 3
    assert all(d["mediaType"] == ZSTD for d in manifest["layers"])
    assert registry.inspect("zstd", config=True, raw=True) == \
           registry.inspect("layered", config=True, raw=True)
    for z, g in zip(manifest["layers"], layered["layers"]):
        assert layer_tar(registry, "zstd", z)[0] == layer_tar(registry, "layered", g)[0]
    assert "replace/.wh..wh..opq" in members(registry, "zstd", manifest["layers"][2])


def test_multiarch(registry, fixture_images):
    index = registry.inspect("multiarch", raw=True)
    assert index["mediaType"] == INDEX
    plats = {(m["platform"]["os"], m["platform"]["architecture"]): m for m in index["manifests"]}
    assert set(plats) == {("linux", "amd64"), ("linux", "arm64")}
    for (_, arch), desc in plats.items():
        assert desc["mediaType"] == MANIFEST
        manifest = registry.inspect("multiarch", desc["digest"], raw=True)
        cfg = registry.inspect("multiarch", desc["digest"], config=True, raw=True)
        assert cfg["architecture"] == arch
        labels = cfg["config"]["Labels"]
        assert labels["io.crisp.fixture.arch"] == arch
        if arch != fixture_images["arch"]:
            assert labels["io.crisp.fixture.note"].startswith("FIXTURE DATA")
        marker_layer = layer_tar(registry, "multiarch", manifest["layers"][-1])[1]
        assert marker_layer.extractfile("etc/fixture-arch").read() == (arch + "\n").encode()
    # skopeo resolves the index to this machine's platform
    assert registry.inspect("multiarch")["Architecture"] == fixture_images["arch"]


HOSTILE_CHECKS = {
    "dotdot": lambda m: any(n.startswith("../") for n in m) and ".." in m,
    "absolute": lambda m: any(n.startswith("/") for n in m),
    "symlink-escape": lambda m: m["abs-etc"].issym() and m["abs-etc"].linkname == "/etc"
    and m["stolen-passwd"].islnk(),
    "symlink-write-through": lambda m: m["wt-abs"].issym()
    and "wt-abs/crisp-hostile-wt-abs" in m and m["victim"].isfile(),
    "hardlink-escape": lambda m: m["hl-passwd"].linkname == "/etc/passwd"
    and m["hl-rel"].linkname.startswith("../"),
    "whiteout-escape": lambda m: "sub/.wh..." in m and ".wh.." in m,
    "many-entries": None,  # counted by count_ustar_entries
    "long-path": lambda m: max(len(n) for n in m) > 4096
    and any(len(os.path.basename(n)) > 255 for n in m)
    and len(m["long-symlink"].linkname) > 4096,
    "device-nodes": lambda m: m["dev/null"].ischr() and m["dev/sda"].isblk()
    and m["fifo"].isfifo(),
}


def count_ustar_entries(raw):
    """Counts tar headers by walking the stream (plain ustar entries only)."""
    n = off = 0
    while off + 512 <= len(raw) and raw[off:off + 512] != bytes(512):
        size = int(raw[off + 124:off + 136].rstrip(b"\0 ") or b"0", 8)
        off += 512 + (size + 511) // 512 * 512
        n += 1
    return n


def test_hostile_images(registry, fixture_images):
    hostile = {n: i for n, i in fixture_images["images"].items() if n.startswith("hostile/")}
    assert {n.split("/", 1)[1] for n in hostile} == set(HOSTILE_CHECKS)
    for name, info in hostile.items():
        manifest = registry.inspect(name, raw=True)
        assert len(manifest["layers"]) == 1, name
        raw, tar = layer_tar(registry, name, manifest["layers"][0])
        if info["hostile"]["kind"] == "many-entries":  # too many for tarfile to be quick
            assert count_ustar_entries(raw) == info["hostile"]["entries"] >= 100000
            continue
        # tarfile strips nothing when reading names; a repeated name keeps its last entry
        m = {x.name.rstrip("/") or x.name: x for x in tar.getmembers()}
        assert HOSTILE_CHECKS[info["hostile"]["kind"]](m), name
        for p in info["hostile"]["escapes"]:
            assert p.startswith("/tmp/crisp-hostile-")


def test_secure_registry_auth(secure_registry):
    reg = secure_registry
    assert reg.url.startswith("https://127.0.0.1:")
    status, headers, _ = reg.request("GET", "/v2/", auth=False)
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    status, _, _ = reg.request("GET", "/v2/busybox/manifests/latest", auth=False)
    assert status == 401
    bad = reg.auth_header(password="wrong")
    assert reg.request("GET", "/v2/", headers=bad, auth=False)[0] == 401
    assert reg.request("GET", "/v2/")[0] == 200

    anon = reg.skopeo("inspect", "--no-creds", f"--cert-dir={reg.cert_dir}", "--raw",
                      reg.docker_ref("busybox"), check=False)
    assert anon.returncode != 0
    assert "unauthorized" in anon.stderr.lower() or "authentication required" in anon.stderr
    wrong = reg.skopeo("inspect", f"--creds={reg.username}:wrong", f"--cert-dir={reg.cert_dir}",
                       "--raw", reg.docker_ref("busybox"), check=False)
    assert wrong.returncode != 0
    assert reg.inspect("busybox", raw=True)["mediaType"] == MANIFEST


def test_secure_registry_tls_needs_ca(secure_registry, tmp_path):
    reg = secure_registry
    # Python: the CA verifies, the default trust store does not.
    with pytest.raises(ssl.SSLCertVerificationError):
        conn = http.client.HTTPSConnection("127.0.0.1", reg.port, timeout=5,
                                           context=ssl.create_default_context())
        conn.request("GET", "/v2/")
    # skopeo: with an empty cert dir (no CA) verification fails.
    empty = tmp_path / "no-ca"
    empty.mkdir()
    p = reg.skopeo("inspect", f"--cert-dir={empty}", f"--creds={reg.username}:{reg.password}",
                   "--raw", reg.docker_ref("busybox"), check=False)
    assert p.returncode != 0 and ("x509" in p.stderr or "certificate" in p.stderr)


def test_corrupt_blob(registry, fixture_images):
    layer = fixture_images["images"]["layered"]["layers"][1]
    good = registry.get_blob("layered", layer["digest"])
    with registry.corrupted_blob(layer["digest"]):
        bad = registry.get_blob("layered", layer["digest"])
        assert len(bad) == len(good) and bad != good
        assert not registry_mod.blob_digest_ok(bad, layer["digest"])
    assert registry.get_blob("layered", layer["digest"]) == good
    registry.corrupt_blob(layer["digest"], mode="garbage")
    try:
        assert len(registry.get_blob("layered", layer["digest"])) != len(good)
    finally:
        registry.restore_blob(layer["digest"])
    assert registry_mod.blob_digest_ok(registry.get_blob("layered", layer["digest"]),
                                       layer["digest"])


def _proxy_get(proxy, path, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": registry_mod.ACCEPT_MANIFESTS})
        r = conn.getresponse()
        return r.status, int(r.getheader("Content-Length", "-1")), r.read()
    finally:
        conn.close()


def test_faulty_proxy(faulty_proxy, registry, fixture_images):
    info = fixture_images["images"]["busybox"]
    layer = info["layers"][0]
    path = f"/v2/busybox/blobs/{layer['digest']}"

    status, length, data = _proxy_get(faulty_proxy, path)
    assert status == 200 and length == layer["size"] and len(data) == layer["size"]
    assert _proxy_get(faulty_proxy, "/v2/busybox/manifests/latest")[0] == 200

    faulty_proxy.configure("truncate", truncate_at=1000)
    with pytest.raises(http.client.IncompleteRead) as e:
        _proxy_get(faulty_proxy, path)
    assert len(e.value.partial) == 1000
    assert _proxy_get(faulty_proxy, "/v2/busybox/manifests/latest")[0] == 200  # blobs only

    faulty_proxy.configure("stall", stall_after=100)
    t0 = time.monotonic()
    with pytest.raises((socket.timeout, TimeoutError)):
        _proxy_get(faulty_proxy, path, timeout=0.5)
    assert time.monotonic() - t0 < 5

    faulty_proxy.configure("corrupt")
    status, _, data = _proxy_get(faulty_proxy, path)
    assert status == 200 and len(data) == layer["size"]
    assert not registry_mod.blob_digest_ok(data, layer["digest"])

    rate = layer["size"] * 2  # about half a second
    faulty_proxy.configure("slow", rate=rate, digests={layer["digest"]})
    t0 = time.monotonic()
    status, _, data = _proxy_get(faulty_proxy, path, timeout=30)
    assert registry_mod.blob_digest_ok(data, layer["digest"])
    assert time.monotonic() - t0 > 0.4

    faulty_proxy.configure("error", status=503, applies_to="all")
    assert _proxy_get(faulty_proxy, "/v2/busybox/manifests/latest")[0] == 503
    assert _proxy_get(faulty_proxy, "/v2/")[0] == 200
    assert any(r[3] == "error" for r in faulty_proxy.requests)

    # skopeo through the proxy (the registry seen as a mirror)
    faulty_proxy.configure("pass")
    p = registry.skopeo("inspect", "--tls-verify=false", "--raw",
                        "docker://" + faulty_proxy.ref("busybox"))
    assert '"layers"' in p.stdout


def test_registry_factory_and_cleanup(registry_factory, fixture_images):
    mirror = registry_factory()  # an empty mirror
    assert mirror.request("GET", "/v2/busybox/manifests/latest")[0] == 404
    reg = registry_factory(images=("busybox",))
    assert reg.get_manifest("busybox")[2] == fixture_images["images"]["busybox"]["digest"]
    pid, workdir = reg.pid, reg.workdir
    reg.stop()
    assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert not os.path.exists(workdir)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", registry_mod.closed_port()), timeout=2)


def test_timings_reported(registry, secure_registry):
    # building + pushing everything stays fast
    assert TIMINGS.get("build", 0) + TIMINGS.get("registry", 0) < 30, TIMINGS
    print("fixture timings:", {k: round(v, 2) for k, v in TIMINGS.items()})
