"""Shared fixtures. Integration tests (``@pytest.mark.stack``) run against the real local stack started by
``make stack`` / ``.ci/stack.sh start``: dockerd with the containerd store, buildx, the registry on
127.0.0.1:5000 and QEMU. Nothing is mocked there; each test isolates itself under its own registry prefix."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
REGISTRY = os.environ.get("BAKERY_TEST_REGISTRY", "127.0.0.1:5000")
DOCKER = os.environ.get("BAKERY_TEST_DOCKER", "docker")


@pytest.fixture(scope="session")
def stack() -> str:
    """The registry address; fails (not skips) when the stack is down, so CI cannot pass without it."""
    if os.environ.get("BAKERY_SKIP_STACK") == "1":
        pytest.skip("BAKERY_SKIP_STACK=1")
    info = subprocess.run([DOCKER, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(f"docker engine not reachable ({info.stderr.strip()}); run `make stack`")
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"registry {REGISTRY} not reachable ({exc}); run `make stack`")
    return REGISTRY


@pytest.fixture
def prefix(stack: str) -> str:
    """A registry name prefix no other test uses: 127.0.0.1:5000/t-<random>."""
    return f"{stack}/t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def example_project(tmp_path: Path, prefix: str) -> Path:
    """A copy of the example services with a bakery.yaml pointing at this test's registry prefix."""
    root = tmp_path / "project"
    shutil.copytree(REPO / "examples", root / "examples")
    text = (REPO / "bakery.yaml").read_text().replace("127.0.0.1:5000/acme", prefix)
    (root / "bakery.yaml").write_text(text)
    return root


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def bakery_cli() -> Runner:
    """Run the real ``bakery`` console entry point in a directory: bakery_cli(cwd, "build", "--push", ...)."""
    def run(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "bakery", *args], cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **(env or {})}, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"bakery {' '.join(args)} exited {proc.returncode}\n"
                                 f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}")
        return proc
    return run


def docker(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {proc.stderr[-2000:]}")
    return proc


def pull_every_platform(ref: str, platforms: Sequence[str]) -> None:
    """``docker pull --platform P ref`` for each platform (fails on the first that cannot be pulled), then remove
    the local image again."""
    try:
        for platform in platforms:
            docker("pull", "--platform", platform, ref)
    finally:
        docker("image", "rm", ref, check=False)


def registry_manifest(ref_repo: str, ref: str) -> tuple[dict, str]:
    """(manifest json, digest) straight from the registry API, with every manifest media type accepted."""
    accept = ", ".join(["application/vnd.oci.image.index.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    host, _, repo = ref_repo.partition("/")
    resp = requests.get(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": accept}, timeout=30)
    resp.raise_for_status()
    return resp.json(), resp.headers["Docker-Content-Digest"]


def index_platforms(index: dict) -> list[str]:
    """Platforms of an index's image entries (attestation entries left out)."""
    out = []
    for m in index.get("manifests", []):
        if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        p = m["platform"]
        out.append("/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x))
    return out


def in_sequence(text: str, parts: Sequence[str]) -> bool:
    pos = 0
    for part in parts:
        pos = text.find(part, pos)
        if pos < 0:
            return False
    return True
