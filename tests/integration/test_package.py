"""The distribution a consumer installs: the wheel built from this tree goes into a clean venv (no system site
packages, only the runtime dependencies from the index) and runs in a scratch repository without this
repository's Makefile or tasks.py: init, generate, build --push and release."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bakery.version import __version__
from tests.integration.seed import tags_of
from tests.support.paths import REPO
from tests.support.project import committed, git

pytestmark = pytest.mark.stack
WHEELS = Path("/tmp/bakery-test-wheels")      # the runtime dependencies' wheels, kept between runs


def _run(*argv: str | Path, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _wheel(tmp: Path) -> Path:
    """The wheel, built offline from a copy of the tree (nothing written into the working tree)."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "bakery", src / "bakery", ignore=shutil.ignore_patterns("__pycache__"))
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", src)
    (wheel,) = (tmp / "dist").glob("*.whl")
    return wheel


def test_the_wheel_installs_into_a_clean_venv_and_adopts_a_scratch_repo(tmp_path: Path, prefix: str) -> None:
    wheel = _wheel(tmp_path)
    assert wheel.name == f"bakery_buildx-{__version__}-py3-none-any.whl"
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv)
    py, exe = venv / "bin" / "python", venv / "bin" / "bakery"
    pip = [py, "-m", "pip", "--disable-pip-version-check", "-q"]
    _run(*pip, "wheel", "-w", WHEELS, "--find-links", WHEELS, wheel)      # deps: from the cache, else the index
    _run(*pip, "install", "--no-index", "--find-links", WHEELS, wheel)
    assert _run(exe, "--version").stdout.strip() == f"bakery {__version__}"

    repo = tmp_path / "repo"
    for d in ("api", "worker"):
        (repo / d).mkdir(parents=True)
        (repo / d / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    assert "  init " in _run(exe, "--list", cwd=repo).stdout
    _run(exe, "init", "--registry", prefix, "--platforms", "linux/amd64", cwd=repo)
    assert (repo / "bake" / "bakery.schema.json").is_file()
    assert _run(exe, "generate", cwd=repo).stdout.strip() == "wrote bake/docker-bake.json"
    targets = json.loads((repo / "bake" / "docker-bake.json").read_text())["target"]
    assert set(targets) == {"api-amd64", "worker-amd64"}
    site = _run(py, "-c", "import bakery; print(bakery.__file__)", cwd=repo).stdout
    assert str(venv) in site and str(REPO) not in site

    # and it builds and releases there, from the installed package alone
    assert "api: " in _run(exe, "build", "--push", "--tag", "t", cwd=repo).stdout
    committed(repo)
    git(repo, "tag", "v1.0.0")
    report = json.loads(_run(exe, "release", "--json", cwd=repo).stdout)     # stdout: the report's document only
    assert report["version"] == "1.0.0" and set(report["images"]) == {"api", "worker"}
    host, name = prefix.split("/", 1)
    assert {"1.0.0", "1.0", "1", "latest"} <= set(tags_of(host, f"{name}/api"))
