#!/usr/bin/python3
"""The measurements of bench/pull.sh, against a suite that script started.

  /usr/bin/python3 bench/pull_bench.py --build B --socket S --root R --work W
                                       [--runs N] [--warmup W] [--cooldown SECONDS]

Builds a four-layer benchmark image in W (the busybox layer of
tests/fixtures/build_images.py and three layers of generated files), serves
it from a local docker-registry (tests/fixtures/registry.py, plain HTTP on
127.0.0.1), and times:

  1. crisp: CRI PullImage through the suite's socket S; each pull is cold:
     the image is removed by its ID between runs, and ListImages and the
     store under R must be empty again before the next one (then a pause
     of --cooldown seconds, for ext4 without a journal: see fresh_path());
  2. skopeo copy of the same reference into a new oci: layout, and into a
     new dir: directory (download and verify; no unpack);
  3. unpacking the image's four layer blobs, one new directory per layer,
     with GNU tar and with crisp's unpack code (B/bin/unpack_bench), each
     followed by a per-layer syncfs, which imaged does for every snapshot.

They run round-robin: W warmup rounds (default 1, not counted), then N
rounds (default 5).  Every command is printed, then every run with how idle
the machine was just before it, then a summary table.  Each run writes to
a new directory under W, kept until pull.sh removes W with the suite; the
registry (and its temporary folder) is stopped at the end.  Nothing here
leaves 127.0.0.1.
"""
import argparse
import itertools
import os
import random
import statistics
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "tests", "fixtures"))

import build_images as bi  # noqa: E402
import registry as registry_mod  # noqa: E402

IMAGE = "bench"
GENERATED_LAYERS = 3
FILES_PER_LAYER = 2000
DIRS_PER_LAYER = 40
SEED = 20261122  # fixed: the same image, byte for byte, on every run

# Same as the suite's: a proxy at a closed port, loopback exempt, so nothing
# the benchmark runs can reach another host.
PROXY_ENV = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
             "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
             "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1"}

# GNU tar as root already keeps owners and modes; the flags say so anyway and
# add what crisp does too: numeric owners (no name lookups) and xattrs.
TAR_FLAGS = ["--same-owner", "--same-permissions", "--numeric-owner", "--xattrs"]


# --------------------------------------------------------------------------
# The image


def text_corpus(rng, size=2 << 20):
    """Word salad from a small vocabulary: text that gzip shrinks about 2.2
    times, and cheap to slice file contents from."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(4096)]
    words = rng.choices(vocab, k=size // 6)
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    return "\n".join(lines).encode()[:size]


def file_size(rng):
    """1 KiB to 64 KiB, most of them small (70% under 8 KiB)."""
    r = rng.random()
    if r < 0.70:
        return rng.randint(1 << 10, 8 << 10)
    if r < 0.95:
        return rng.randint(8 << 10, 32 << 10)
    return rng.randint(32 << 10, 64 << 10)


def generated_layer(index, rng, corpus):
    """FILES_PER_LAYER files under srv/layer<index>/dNN/; one in eight is
    random bytes (like binaries and compressed assets), the rest text."""
    t = bi.TarBuilder()
    t.dir("srv")
    top = f"srv/layer{index}"
    t.dir(top)
    per_dir = FILES_PER_LAYER // DIRS_PER_LAYER
    for d in range(DIRS_PER_LAYER):
        t.dir(f"{top}/d{d:02}")
        for f in range(per_dir):
            size = file_size(rng)
            if rng.random() < 0.125:
                t.file(f"{top}/d{d:02}/f{f:03}.bin", rng.randbytes(size))
            else:
                off = rng.randrange(len(corpus) - size)
                t.file(f"{top}/d{d:02}/f{f:03}.txt", corpus[off:off + size])
    return t.getvalue()


def build_image(outdir):
    """Writes the OCI layout OUTDIR/bench; returns build_images' image info
    plus the uncompressed size of each layer."""
    rng = random.Random(SEED)
    corpus = text_corpus(rng)
    base, _ = bi.busybox_layer()
    tars = [base] + [generated_layer(i, rng, corpus) for i in range(1, GENERATED_LAYERS + 1)]
    arch = bi.native_arch()
    history = [bi.hist("crisp bench: busybox base layer")] + [
        bi.hist(f"crisp bench: {FILES_PER_LAYER} generated files") for _ in tars[1:]]
    layout = bi.OCILayout(os.path.join(outdir, IMAGE))
    desc, info = layout.add_image(
        [(tar, "gzip") for tar in tars],
        bi.image_config(arch, {"Env": ["PATH=" + bi.DEFAULT_PATH], "Cmd": ["/bin/sh"]},
                        history))
    layout.tag(desc, "latest")
    layout.finish()
    info.update(layout=layout.path, tar_sizes=[len(t) for t in tars])
    return info


def blob_path(info, layer):
    return os.path.join(info["layout"], "blobs", "sha256", layer["digest"].split(":", 1)[1])


# --------------------------------------------------------------------------
# Running and timing


class Series:
    """The wall times of one row of the summary."""

    def __init__(self, label, nbytes):
        self.label, self.nbytes = label, nbytes
        self.times = []
        self.idle = []

    def median(self):
        return statistics.median(self.times)

    def best(self):
        return min(self.times)


def show(cmd):
    print("$ " + " ".join(cmd), flush=True)


def run(cmd, env=None):
    """Runs CMD; returns its wall time in seconds and its stdout."""
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    elapsed = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"pull_bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return elapsed, p.stdout


_outputs = itertools.count(1)


def fresh_path(work, base):
    """A new path for one run's output, WORK/BASE-<n>.  Outputs are kept until
    pull.sh removes WORK: on ext4 without a journal (the development VMs'
    root) the kernel skips, one by one, every inode freed in the last minute
    when it allocates a new one, so removing a run's 6,000 files would make
    the next run's file creation slower (docs/PERFORMANCE.md)."""
    return os.path.join(work, f"{base}-{next(_outputs)}")


def writeback():
    """Between runs, untimed: no run pays for the previous one's writeback."""
    os.sync()


def cpu_times():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return v[3] + v[4], sum(v)  # idle + iowait, total


def process_ticks():
    """{(pid, name): user+system ticks} of every process now."""
    ticks = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                line = f.read()
        except OSError:
            continue  # gone meanwhile
        name = line[line.index("(") + 1:line.rindex(")")]
        fields = line[line.rindex(")") + 2:].split()
        ticks[(pid, name)] = int(fields[11]) + int(fields[12])
    return ticks


def idle_pct(seconds=1.0):
    """How idle all CPUs were over the last SECONDS, and which process that
    lived through them used the most CPU (short-lived ones are missed):
    another busy process on a 2-vCPU machine moves every number here."""
    p0, (i0, t0) = process_ticks(), cpu_times()
    time.sleep(seconds)
    p1, (i1, t1) = process_ticks(), cpu_times()
    busiest = max(p1, key=lambda k: p1[k] - p0.get(k, p1[k]), default=None)
    share = (p1[busiest] - p0.get(busiest, p1[busiest])) / max(1, t1 - t0) if busiest else 0
    return round(100 * (i1 - i0) / max(1, t1 - t0)), f"{busiest[1]} {100 * share:.0f}%"


def creation_probe(work, n=2000):
    """Microseconds to create one empty file in a fresh directory under WORK.
    Unpacking is mostly file creation, whose cost on ext4 depends on where
    the directory sits and on how many inodes near it were freed lately:
    this shows which case a run measured."""
    d = fresh_path(work, "probe")
    os.mkdir(d)
    t0 = time.monotonic()
    for i in range(n):
        os.close(os.open(os.path.join(d, str(i)), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elapsed = time.monotonic() - t0
    writeback()
    return elapsed * 1e6 / n


# --------------------------------------------------------------------------
# The measurements.  Each one prints its commands with describe() and runs
# once per round with once(), which returns ([(series, seconds)], note).


class CrispImages:
    """CRI ImageService calls on the suite's socket."""

    def __init__(self, build, socket, root):
        sys.path.insert(0, os.path.join(build, "python"))
        import grpc
        import api_pb2
        import api_pb2_grpc
        self.api = api_pb2
        # A unix socket needs no proxy; say so, whatever the environment holds.
        self.channel = grpc.insecure_channel(f"unix://{socket}",
                                             options=[("grpc.enable_http_proxy", 0)])
        self.stub = api_pb2_grpc.ImageServiceStub(self.channel)
        self.store = os.path.join(root, "image", "store")

    def pull(self, ref):
        req = self.api.PullImageRequest(image=self.api.ImageSpec(image=ref))
        return self.stub.PullImage(req, timeout=600).image_ref

    def remove(self, image_id):
        req = self.api.RemoveImageRequest(image=self.api.ImageSpec(image=image_id))
        self.stub.RemoveImage(req, timeout=120)

    def check_empty(self):
        """The next pull must start cold: no image, no blob, no snapshot."""
        images = self.stub.ListImages(self.api.ListImagesRequest(), timeout=30).images
        left = [os.path.join(d, n) for d in (os.path.join(self.store, "blobs", "sha256"),
                                             os.path.join(self.store, "snapshots"))
                if os.path.isdir(d) for n in os.listdir(d)]
        if images or left:
            sys.exit(f"pull_bench: the store is not empty after RemoveImage: "
                     f"{[i.id for i in images]} {left}")


class CrispPull:
    name = "crisp PullImage"

    def __init__(self, crisp, ref, nbytes, cooldown):
        self.crisp, self.ref, self.cooldown = crisp, ref, cooldown
        self.series = Series("crisp PullImage over CRI (cold)", nbytes)

    def describe(self):
        print(f"crisp: ImageService/PullImage {{image: \"{self.ref}\"}} on the suite's socket; "
              "then, untimed, RemoveImage by the returned ID, and ListImages and the store "
              f"must be empty; then a {self.cooldown:g} s pause")
        self.crisp.check_empty()

    def once(self):
        t0 = time.monotonic()
        image_id = self.crisp.pull(self.ref)
        elapsed = time.monotonic() - t0
        self.crisp.remove(image_id)
        self.crisp.check_empty()
        writeback()
        # The removal freed 6,000 inodes; see fresh_path().
        time.sleep(self.cooldown)
        return [(self.series, elapsed)], image_id[:19] + "..."


class SkopeoCopy:
    def __init__(self, reg, transport, work, nbytes):
        self.name = f"skopeo copy to {transport}:"
        self.series = Series(f"skopeo copy to {transport}: (no unpack)", nbytes)
        self.env = dict(registry_mod.skopeo_env(reg.workdir), **PROXY_ENV)
        self.work, self.transport = work, transport
        self.src = reg.docker_ref(IMAGE)

    def command(self, dest):
        suffix = ":latest" if self.transport == "oci" else ""
        return ["skopeo", "--insecure-policy", "copy", "--quiet", "--src-tls-verify=false",
                self.src, f"{self.transport}:{dest}{suffix}"]

    def describe(self):
        print("skopeo, into a new directory each run:")
        show(self.command(os.path.join(self.work, f"skopeo-{self.transport}-<n>")))

    def once(self):
        elapsed, _ = run(self.command(fresh_path(self.work, f"skopeo-{self.transport}")),
                         self.env)
        writeback()
        return [(self.series, elapsed)], ""


class TarUnpack:
    name = "GNU tar -xzf"

    def __init__(self, blobs, work, nbytes):
        self.blobs, self.work = blobs, work
        self.unpack = Series("GNU tar -xzf, 4 layers", nbytes)
        self.synced = Series("GNU tar -xzf, 4 layers, + sync -f each", nbytes)

    def describe(self):
        dest = os.path.join(self.work, "tar-<n>/<i>")
        print("GNU tar, each layer blob i into a new directory, then syncfs on it:")
        show(["tar", "-xzf", "BLOB", "-C", dest, *TAR_FLAGS])
        show(["sync", "-f", dest])

    def once(self):
        t_unpack = t_sync = 0.0
        dest = fresh_path(self.work, "tar")
        for n, (blob, _) in enumerate(self.blobs):
            d = os.path.join(dest, str(n))
            os.makedirs(d)
            t_unpack += run(["tar", "-xzf", blob, "-C", d, *TAR_FLAGS])[0]
            t_sync += run(["sync", "-f", d])[0]
        writeback()
        return ([(self.unpack, t_unpack), (self.synced, t_unpack + t_sync)],
                f"tar {t_unpack:.3f} s + sync {t_sync:.3f} s")


class CrispUnpack:
    name = "crisp_unpack_layer"

    def __init__(self, tool, blobs, work, nbytes):
        self.tool, self.blobs, self.work = tool, blobs, work
        self.unpack = Series("crisp_unpack_layer, 4 layers", nbytes)
        self.synced = Series("crisp_unpack_layer, 4 layers, + syncfs each", nbytes)

    def describe(self):
        print("crisp's unpack code (imaged/unpack.c), each layer i into a new directory "
              "<dest>/<i>, then syncfs on it; the times are the tool's own:")
        dest = os.path.join(self.work, "crisp-unpack-<n>")
        show([self.tool, dest] + [f"{blob} {diff_id}" for blob, diff_id in self.blobs])

    def once(self):
        dest = fresh_path(self.work, "crisp-unpack")
        _, out = run([self.tool, dest] + [a for pair in self.blobs for a in pair])
        result = dict(kv.split("=", 1) for kv in out.splitlines()[-1].split()[1:])
        t_unpack, t_sync = float(result["unpack_s"]), float(result["syncfs_s"])
        writeback()
        return ([(self.unpack, t_unpack), (self.synced, t_unpack + t_sync)],
                f"unpack {t_unpack:.3f} s + syncfs {t_sync:.3f} s")


def run_rounds(measurements, runs, warmup):
    """Round-robin, so a slow stretch of the machine hits every measurement
    alike; the first WARMUP rounds are not counted."""
    for rnd in range(warmup + runs):
        what = "warmup, not counted" if rnd < warmup else f"run {rnd - warmup + 1} of {runs}"
        print(f"== round {rnd + 1} ({what})", flush=True)
        for m in measurements:
            idle, busiest = idle_pct()
            results, note = m.once()
            if idle < 90:
                note += f"  (busiest before, share of all CPUs: {busiest})"
            if rnd >= warmup:
                for series, seconds in results:
                    series.times.append(seconds)
                    series.idle.append(idle)
            print(f"  {m.name:24} {results[-1][1]:7.3f} s  {idle:3}% idle before  {note}",
                  flush=True)


# --------------------------------------------------------------------------


def print_image(info, reg):
    layers = info["layers"]
    print(f"== image {reg.ref(IMAGE)}: {len(layers)} gzip layers")
    for layer, tar_size in zip(layers, info["tar_sizes"]):
        print(f"  {layer['digest'][:19]}...  {layer['size'] / 1e6:6.2f} MB gzip, "
              f"{tar_size / 1e6:6.2f} MB tar")
    print(f"  total: {sum(x['size'] for x in layers) / 1e6:.2f} MB gzip, "
          f"{sum(info['tar_sizes']) / 1e6:.2f} MB tar, "
          f"{GENERATED_LAYERS * FILES_PER_LAYER} generated files of 1-64 KiB", flush=True)


def print_summary(rows, runs):
    print(f"== summary ({runs} runs each; MB = 10^6 bytes of the gzip blobs for pulls, of the "
          "tar streams for unpacking; MB/s of the median and of the best run)")
    print(f"{'what':44} {'median s':>9} {'min s':>7} {'MB/s':>7} {'best':>7} {'idle%':>6}")
    for s in rows:
        print(f"{s.label:44} {s.median():9.3f} {s.best():7.3f} "
              f"{s.nbytes / 1e6 / s.median():7.1f} {s.nbytes / 1e6 / s.best():7.1f} "
              f"{min(s.idle):6}")
    print("(idle%: the lowest share of idle CPU in the second before any of its runs)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--cooldown", type=float, default=0,
                    help="seconds to wait after each RemoveImage (see fresh_path())")
    args = ap.parse_args()

    t0 = time.monotonic()
    info = build_image(args.work)
    print(f"(image built in {time.monotonic() - t0:.1f} s)")
    print(f"file creation probe: {creation_probe(args.work):.0f} us per empty file "
          f"(2,000 in a fresh directory under {args.work})")
    blobs = [(blob_path(info, layer), layer["diffID"]) for layer in info["layers"]]
    gzip_bytes = info["config"]["size"] + sum(layer["size"] for layer in info["layers"])
    tar_bytes = sum(info["tar_sizes"])

    reg = registry_mod.Registry(name="pull-bench")
    try:
        reg.start()
        reg.push(info["layout"], IMAGE)
        print(f"== registry: {registry_mod.REGISTRY_BIN} on {reg.host} (pid {reg.pid}), "
              "plain HTTP, its storage in the same temporary folder")
        print_image(info, reg)
        # Warm, for tar and crisp alike: the blobs come from the page cache.
        for blob, _ in blobs:
            with open(blob, "rb") as f:
                while f.read(1 << 20):
                    pass

        crisp = CrispImages(args.build, args.socket, args.root)
        measurements = [
            CrispPull(crisp, reg.ref(IMAGE), gzip_bytes, args.cooldown),
            SkopeoCopy(reg, "oci", args.work, gzip_bytes),
            SkopeoCopy(reg, "dir", args.work, gzip_bytes),
            TarUnpack(blobs, args.work, tar_bytes),
            CrispUnpack(os.path.join(args.build, "bin", "unpack_bench"), blobs, args.work,
                        tar_bytes),
        ]
        print("== commands")
        for m in measurements:
            m.describe()
        run_rounds(measurements, args.runs, args.warmup)
        crisp.channel.close()
    finally:
        reg.stop()
    rows = []
    for m in measurements:
        rows.extend([m.series] if hasattr(m, "series") else [m.unpack, m.synced])
    print()
    print_summary(rows, args.runs)


if __name__ == "__main__":
    main()
