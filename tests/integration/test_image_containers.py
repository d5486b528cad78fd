"""imaged's verbs for containers, spoken on its channel directly, as criapi
(or a compromised criapi) would: a writable snapshot prepared from an image
with the user resolved from the image's /etc/passwd and /etc/group; release;
collection that never takes what a container still uses; and refusals of IDs
imaged never issued and of names that try to be paths.

imaged runs alone here, started as systemd starts it (socket activation), so
the test holds the only channel.
"""
import os
import sqlite3
import subprocess
import tempfile

import pytest

from activated import ActivatedDaemon
from conftest_registry import fixture_images, registry, registry_mod  # noqa: F401

import api_pb2 as api
import internal_pb2

PULL, STATUS, REMOVE, LIST = 256 + 4, 256 + 2, 256 + 6, 256 + 0
PREPARE, RELEASE, LIST_CONTAINERS = 256 + 32, 256 + 34, 256 + 36
CID1, CID2 = "1" * 64, "2" * 64


class Imaged(ActivatedDaemon):
    def __init__(self, tmp):
        super().__init__("imaged", tmp)
        self.dir = os.path.join(self.root, "image")

    def pull(self, ref):
        r = self.call(PULL, api.PullImageRequest(image=api.ImageSpec(image=ref)),
                      api.PullImageResponse)
        assert not isinstance(r, tuple), r
        return r.image_ref

    def prepare(self, cid, image, **user):
        return self.call(PREPARE, internal_pb2.PrepareContainerSnapshotRequest(
            container_id=cid, image=image, **user), internal_pb2.PrepareContainerSnapshotReply)

    def release(self, cid):
        return self.call(RELEASE, internal_pb2.ReleaseContainerSnapshotRequest(container_id=cid),
                         internal_pb2.ReleaseContainerSnapshotReply)

    def remove(self, ref):
        r = self.call(REMOVE, api.RemoveImageRequest(image=api.ImageSpec(image=ref)),
                      api.RemoveImageResponse)
        assert not isinstance(r, tuple), r

    def containers(self):
        return sorted(os.listdir(os.path.join(self.dir, "containers")))

    def snapshots(self):
        return sorted(os.listdir(os.path.join(self.dir, "store", "snapshots")))

    def blobs(self):
        return sorted(os.listdir(os.path.join(self.dir, "store", "blobs", "sha256")))


@pytest.fixture
def imaged():
    tmp = tempfile.mkdtemp(prefix="crisp-imaged-")
    os.chmod(tmp, 0o755)  # the crisp user must reach the socket
    d = Imaged(tmp)
    try:
        yield d.start()
        assert "seccomp: refused" not in d.log(), d.log()[-3000:]
    finally:
        d.stop()
        subprocess.run(["rm", "-rf", tmp], check=False)


def test_prepare_and_release(imaged, registry):
    image_id = imaged.pull(registry.ref("layered"))
    n_layers = len(registry.inspect("layered", raw=True)["layers"])
    r = imaged.prepare(CID1, registry.ref("layered"))
    assert r.image_id == image_id
    # Paths are imaged's own: snapshots under its store, topmost layer first.
    assert len(r.lower_dirs) == n_layers
    snaps = os.path.join(imaged.dir, "store", "snapshots")
    for d in r.lower_dirs:
        assert os.path.dirname(d) == snaps and os.path.isdir(d)
    # Topmost first: the image's layers from the top down.  (Snapshot numbers
    # do not follow layer order: a pull unpacks several layers side by side.)
    db = sqlite3.connect(f"file:{imaged.dir}/image.db?mode=ro", uri=True)
    chain = [row[0] for row in db.execute(
        "SELECT snapshot_id FROM image_layers WHERE image_id = ? ORDER BY idx", (image_id,))]
    db.close()
    assert [int(os.path.basename(d)) for d in r.lower_dirs] == chain[::-1]
    [key] = imaged.containers()
    assert r.upper_dir == os.path.join(imaged.dir, "containers", key, "upper")
    assert r.work_dir == os.path.join(imaged.dir, "containers", key, "work")
    assert os.path.isdir(r.upper_dir) and os.path.isdir(r.work_dir)
    assert CID1 not in key  # the key is imaged's, not the caller's
    # The config as typed fields.
    c = r.config
    assert c.user == "app" and "FOO=bar" in c.env
    assert c.has_entrypoint and list(c.entrypoint) == ["/bin/sh", "-c"]
    assert c.has_cmd and list(c.cmd) == ["echo hello"]
    assert c.working_dir == "/work" and "8080/tcp" in c.exposed_ports
    assert "/var/lib/app" in c.volumes and c.labels["io.crisp.fixture"] == "layered"
    assert c.stop_signal == 2  # SIGINT
    # USER app, from the image's /etc/passwd.
    assert (r.uid, r.gid) == (1000, 1000)

    listed = imaged.call(LIST_CONTAINERS, internal_pb2.ListContainerSnapshotsRequest(),
                         internal_pb2.ListContainerSnapshotsReply)
    assert list(listed.container_ids) == [CID1]

    assert not isinstance(imaged.release(CID1), tuple)
    assert imaged.containers() == []
    # Released twice: imaged no longer holds it.
    assert imaged.release(CID1)[:2] == ("error", "ERROR_NOT_FOUND")


def test_user_resolution(imaged, registry):
    imaged.pull(registry.ref("layered"))
    ref = registry.ref("layered")
    r = imaged.prepare(CID1, ref, run_as_username="root")
    assert (r.uid, r.gid) == (0, 0)
    r = imaged.prepare(CID2, ref, has_run_as_user=True, run_as_user=1000)
    assert (r.uid, r.gid) == (1000, 1000)
    r = imaged.prepare("3" * 64, ref, has_run_as_user=True, run_as_user=4242,
                       has_run_as_group=True, run_as_group=77)
    assert (r.uid, r.gid) == (4242, 77)
    # A name the image does not know fails, and leaves nothing behind.
    before = imaged.containers()
    r = imaged.prepare("4" * 64, ref, run_as_username="nobody-here")
    assert r[:2] == ("error", "ERROR_NOT_FOUND") and "nobody-here" in r[2], r
    assert imaged.containers() == before
    r = imaged.prepare("4" * 64, ref, has_run_as_group=True, run_as_group=5)
    assert r[:2] == ("error", "ERROR_INVALID"), r


def test_refusals(imaged, registry):
    """What a compromised front might send: nothing is made and nothing is found."""
    imaged.pull(registry.ref("busybox"))
    victim = tempfile.mkdtemp(prefix="crisp-victim-")
    try:
        for cid in ("../../" + "a" * 58, "A" * 64, "", "a" * 63, "a" * 65, victim,
                    "a" * 63 + "/"):
            r = imaged.prepare(cid, registry.ref("busybox"))
            assert r[:2] == ("error", "ERROR_INVALID"), (cid, r)
            r = imaged.release(cid)
            assert r[:2] == ("error", "ERROR_INVALID"), (cid, r)
        for image in ("/etc/passwd", "../../../etc", victim, "sha256:" + "0" * 64,
                      "unknown.test/never:pulled"):
            r = imaged.prepare(CID1, image)
            assert r[0] == "error" and r[1] in ("ERROR_INVALID", "ERROR_NOT_FOUND"), (image, r)
        # An ID imaged never issued.
        assert imaged.release("f" * 64)[:2] == ("error", "ERROR_NOT_FOUND")
        assert imaged.containers() == []
        assert os.listdir(victim) == []
        # Names that try to be paths or IDs in CRI calls, too.
        for ref in ("../../../etc/passwd", "/etc/passwd", "sha256:../../x"):
            r = imaged.call(STATUS, api.ImageStatusRequest(image=api.ImageSpec(image=ref)),
                            api.ImageStatusResponse)
            assert isinstance(r, tuple) and r[1] == "ERROR_INVALID", (ref, r)
        # A duplicate container.
        assert not isinstance(imaged.prepare(CID1, registry.ref("busybox")), tuple)
        r = imaged.prepare(CID1, registry.ref("busybox"))
        assert r[:2] == ("error", "ERROR_ALREADY_EXISTS"), r
    finally:
        os.rmdir(victim)


def test_collection_keeps_what_containers_use(imaged, registry):
    ref = registry.ref("busybox")
    image_id = imaged.pull(ref)
    r = imaged.prepare(CID1, ref)
    snaps, blobs = imaged.snapshots(), imaged.blobs()
    imaged.remove(image_id)
    # The image is gone, and so are its blobs; the container's layers stay.
    listed = imaged.call(LIST, api.ListImagesRequest(), api.ListImagesResponse)
    assert list(listed.images) == []
    assert imaged.snapshots() == snaps
    for d in r.lower_dirs:
        assert os.path.isdir(os.path.join(d, "bin"))
    assert imaged.blobs() == []
    assert blobs
    # A new container needs the image again.
    assert imaged.prepare(CID2, ref)[:2] == ("error", "ERROR_NOT_FOUND")
    # Released, nothing holds the layers any more.
    imaged.release(CID1)
    assert imaged.snapshots() == [] and imaged.containers() == []


def test_restart_reconciles(imaged, registry):
    ref = registry.ref("busybox")
    imaged.pull(ref)
    imaged.prepare(CID1, ref)
    snaps, keys = imaged.snapshots(), imaged.containers()
    # What a crash (or someone else) could leave in imaged's folders.
    store = os.path.join(imaged.dir, "store")
    os.makedirs(os.path.join(store, "snapshots", "9999", "etc"))
    os.makedirs(os.path.join(store, "snapshots", "not-a-snapshot"))
    os.makedirs(os.path.join(imaged.dir, "containers", "f" * 32, "upper"))
    open(os.path.join(store, "blobs", "sha256", "ab" * 32 + ".tmp-0123"), "w").write("partial")
    open(os.path.join(store, "blobs", "sha256", "cd" * 32), "w").write("unreferenced")
    imaged.stop()
    imaged.start()
    assert imaged.snapshots() == snaps
    assert imaged.containers() == keys
    assert not [b for b in imaged.blobs() if b.startswith(("ab", "cd"))]
    assert "which no snapshot owns" in imaged.log()
    # What was kept still works.
    assert not isinstance(imaged.release(CID1), tuple)
