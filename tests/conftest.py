"""Shared fixtures. Integration tests (``@pytest.mark.stack``) run against a real local stack started by
``make stack`` / ``.ci/stack.sh start``: dockerd with the containerd store, buildx, the registry on
127.0.0.1:5000 and QEMU. Nothing is mocked there; each test isolates itself under its own registry prefix.

``BAKERY_STACK=stable|current`` (default stable) selects the stack (see docs/stack.md): ``current`` sets
``DOCKER_CONFIG`` to the current stack's client config dir at import, before any test, unless it is set already,
so every docker, buildx and bakery process a test starts uses Docker 28.5 and buildx 0.29. The benchmarks in
tests/bench import this module for the same selection."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
REGISTRY = os.environ.get("BAKERY_TEST_REGISTRY", "127.0.0.1:5000")
DOCKER = os.environ.get("BAKERY_TEST_DOCKER", "docker")
# the suite runs as CI runs, on any machine: outside CI a build writes its own cache scope (local-<user>, see
# bakery.config.variables.local_scope), and the tests that check the shared scope expect CI's; the tests of the
# local policy take CI out of the environment they give bakery
os.environ.setdefault("CI", "true")

# --------------------------------------------------------------------------- stack selection (the paths of .ci/stack.sh)
STACKS = ("stable", "current")
STACK = os.environ.get("BAKERY_STACK") or "stable"
if STACK not in STACKS:
    raise pytest.UsageError(f"BAKERY_STACK={STACK!r}: expected one of {', '.join(STACKS)}")
STACK_STATE = Path(os.environ.get("BAKERY_STACK_STATE", "/var/lib/bakery-stack"))
CURRENT_DOCKER_CONFIG = Path(os.environ.get("BAKERY_CURRENT_STATE", str(STACK_STATE / "current"))) / "docker-config"
if STACK == "current":
    os.environ.setdefault("DOCKER_CONFIG", str(CURRENT_DOCKER_CONFIG))


def _version(text: str) -> tuple[int, ...]:
    """(28, 5, 2) from "28.5.2+dfsg4" or "v0.29.1"; () when there is no number."""
    m = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    return tuple(int(x) for x in m.group(1).split(".")) if m else ()


def stack_matches(stack: str, engine: tuple[int, ...], buildx: tuple[int, ...]) -> bool:
    """Whether an engine and buildx version are those of ``stack``."""
    if stack == "current":
        return engine >= (27,) and buildx >= (0, 20)
    return engine[:1] == (26,) and buildx[:2] == (0, 13)


STACK_WANTS = {"stable": "Docker 26.x + buildx 0.13.x", "current": "Docker >= 27 + buildx >= 0.20"}


def docker_config_dir(directory: Path, auths: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """A DOCKER_CONFIG directory of a test's own (e.g. for registry credentials) that stays on the selected stack:
    ``auths`` plus the selected client config's ``currentContext``, its contexts (copied) and its ``cli-plugins``
    (linked: the current stack's buildx). Returns ``directory``."""
    source = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        base = json.loads((source / "config.json").read_text())
    except (OSError, ValueError):
        base = {}
    config: dict[str, Any] = {"auths": {host: dict(a) for host, a in (auths or {}).items()}}
    for key in ("currentContext", "cliPluginsExtraDirs"):
        if key in base:
            config[key] = base[key]
    (directory / "config.json").write_text(json.dumps(config))
    if (source / "contexts").is_dir() and not (directory / "contexts").exists():
        shutil.copytree(source / "contexts", directory / "contexts", symlinks=True)
    if (source / "cli-plugins").is_dir() and not (directory / "cli-plugins").exists():
        (directory / "cli-plugins").symlink_to((source / "cli-plugins").absolute(), target_is_directory=True)
    return directory


@pytest.fixture(scope="session")
def stack() -> str:
    """The registry address; fails (not skips) when the stack is down, or when the engine and buildx reached are
    not those of the stack BAKERY_STACK selects, so CI cannot pass without it (or on the wrong one)."""
    if os.environ.get("BAKERY_SKIP_STACK") == "1":
        pytest.skip("BAKERY_SKIP_STACK=1")
    info = subprocess.run([DOCKER, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True)
    if info.returncode != 0:
        pytest.fail(f"docker engine not reachable ({info.stderr.strip()}); run `make stack`")
    buildx = subprocess.run([DOCKER, "buildx", "version"], capture_output=True, text=True)
    words = buildx.stdout.split()
    engine_v, buildx_v = info.stdout.strip(), (words[1] if buildx.returncode == 0 and len(words) > 1 else "missing")
    if not stack_matches(STACK, _version(engine_v), _version(buildx_v)):
        pytest.fail(f"BAKERY_STACK={STACK} wants {STACK_WANTS[STACK]}, but the tests reach Docker {engine_v} + "
                    f"buildx {buildx_v} (DOCKER_CONFIG={os.environ.get('DOCKER_CONFIG', '(unset)')}, "
                    f"DOCKER_HOST={os.environ.get('DOCKER_HOST', '(unset)')}); "
                    f"run `make stack` and eval \"$(.ci/stack.sh env {STACK})\"")
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(f"registry {REGISTRY} not reachable ({exc}); run `make stack`")
    return REGISTRY


@pytest.fixture(autouse=True)
def _on_the_selected_stack(request: pytest.FixtureRequest) -> None:
    """Every ``stack``-marked test checks the stack it reaches, also when it asks for no ``stack`` fixture."""
    if request.node.get_closest_marker("stack") is not None:
        request.getfixturevalue("stack")


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
