"""Pytest fixtures for local image registries (imaged tests).

Import the fixtures you use into a test module, e.g.
    from conftest_registry import registry, secure_registry  # noqa: F401
(pytest finds fixtures among a module's globals).  Nothing here needs a crisp
build.  All registries listen on 127.0.0.1 only.

Fixtures:
  fixture_images   session: builds every image (tests/fixtures/build_images.py)
                   into a temp dir; the summary dict (summary["images"][name]
                   has tag, digest, mediaType, layout, config, layers, ...).
  registry         session: plain-HTTP registry.Registry with every image
                   (busybox, layered, zstd, multiarch, hostile/*) pushed as
                   NAME:latest; registry.images is the summary by name.
  secure_registry  session: HTTPS (self-signed CA: .ca_cert, .cert_dir) with
                   htpasswd basic auth (.username, .password); busybox pushed.
  registry_factory function: start(tls=False, auth=None, images=()) -> an extra
                   Registry (e.g. an empty mirror), stopped after the test.
  faulty_proxy     function: registry.FaultyProxy in front of `registry`, mode
                   "pass"; call .configure(mode, ...) to make it misbehave.

Every process is ended by its pid and every temp dir removed at the end.
"""
import os
import shutil
import sys
import tempfile
import time

import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")
if FIXTURES not in sys.path:
    sys.path.insert(0, FIXTURES)

import build_images  # noqa: E402
import registry as registry_mod  # noqa: E402

SECURE_USER = "crisp"
SECURE_PASSWORD = "crisp-test-password"

TIMINGS = {}


@pytest.fixture(scope="session")
def fixture_images():
    outdir = tempfile.mkdtemp(prefix="crisp-images-")
    try:
        t0 = time.monotonic()
        summary = build_images.build_all(outdir)
        TIMINGS["build"] = time.monotonic() - t0
        yield summary
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(fixture_images):
    reg = registry_mod.Registry(name="registry")
    try:
        t0 = time.monotonic()
        reg.start()
        reg.push_images(fixture_images["images"])
        TIMINGS["registry"] = time.monotonic() - t0
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def secure_registry(fixture_images):
    reg = registry_mod.Registry(tls=True, auth=(SECURE_USER, SECURE_PASSWORD),
                                name="secure-registry")
    try:
        t0 = time.monotonic()
        reg.start()
        reg.push_images({"busybox": fixture_images["images"]["busybox"]})
        TIMINGS["secure_registry"] = time.monotonic() - t0
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def registry_factory(fixture_images):
    started = []

    def start(tls=False, auth=None, images=()):
        reg = registry_mod.Registry(tls=tls, auth=auth, name="extra-registry")
        started.append(reg)
        reg.start()
        if images:
            reg.push_images({n: fixture_images["images"][n] for n in images})
        return reg

    try:
        yield start
    finally:
        for reg in started:
            reg.stop()


@pytest.fixture
def faulty_proxy(registry):
    proxy = registry_mod.FaultyProxy(registry).start()
    try:
        yield proxy
    finally:
        proxy.stop()
