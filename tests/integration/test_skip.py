"""Build only what changed, on the real stack: two images (own contexts) in two platform groups, on a base image
of the test's own (a copy of base/busybox:1.35 under the test prefix). After one build, each test changes one
input, builds under a new tag, and checks exactly which targets bake built; it then puts the input back (the
recorded results still match it). The base is re-pushed with new content in the last test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import docker, pull_every_platform, registry_manifest

pytestmark = pytest.mark.stack

TARGETS = {"a-amd64", "a-arm", "b-amd64", "b-arm"}
PLATFORMS = ["linux/amd64", "linux/arm64"]


def build(root: Path, tag: str, *extra: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run ``bakery build --push``; the targets that were built (not reported unchanged)."""
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", tag, *extra], cwd=root,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    unchanged = set(re.findall(r"^([\w-]+): unchanged since \S+ \(inputs sha256:[0-9a-f]{64}\), not built$",
                               proc.stdout, re.M))
    results = json.loads((root / "bake" / "results.json").read_text())
    assert {n for n, t in results["targets"].items() if "unchanged_since" in t} == unchanged
    return TARGETS - unchanged, proc


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, stack: str) -> tuple[Path, str]:
    prefix = f"{stack}/t-{uuid.uuid4().hex[:10]}"
    base = f"{prefix}/base/busybox:1"
    docker("buildx", "imagetools", "create", "-t", base, f"{stack}/base/busybox:1.35")
    root = tmp_path_factory.mktemp("skip") / "project"
    for image in ("a", "b"):
        ctx = root / image
        ctx.mkdir(parents=True)
        (ctx / "Dockerfile").write_text(f"FROM {base}\nARG NOTE=none\nCOPY . /app/\n"
                                        'CMD ["cat", "/app/file"]\n')
        (ctx / "file").write_text(f"{image} 1\n")
        (ctx / ".dockerignore").write_text("ignored.txt\n")
        (ctx / "ignored.txt").write_text("0\n")
    (root / "bakery.yaml").write_text(json.dumps({
        "registry": prefix, "platform_groups": {"amd64": ["linux/amd64"], "arm": ["linux/arm64"]},
        "images": {"a": {"context": "a"}, "b": {"context": "b"}}}, indent=2))
    built, _ = build(root, "v1")
    assert built == TARGETS
    return root, prefix


def test_nothing_changed_nothing_is_built_and_the_index_is_the_same(project: tuple[Path, str]) -> None:
    root, prefix = project
    built, proc = build(root, "same")
    assert built == set() and not re.search(r"^#\d+ ", proc.stderr, re.M)    # no bake ran
    for image in ("a", "b"):
        old, _ = registry_manifest(f"{prefix}/{image}", "v1")
        new, _ = registry_manifest(f"{prefix}/{image}", "same")
        assert new["manifests"] == old["manifests"]          # the same platform manifests, byte for byte
        for group in ("amd64", "arm"):
            assert registry_manifest(f"{prefix}/{image}", f"same-{group}")[1] == \
                registry_manifest(f"{prefix}/{image}", f"v1-{group}")[1]
        ref = f"{prefix}/{image}:same"
        pull_every_platform(ref, PLATFORMS)
        for platform in PLATFORMS:
            out = docker("run", "--rm", "--pull", "always", "--platform", platform, ref).stdout
            assert out == f"{image} 1\n"


def test_one_changed_file_builds_only_that_images_targets(project: tuple[Path, str]) -> None:
    root, _ = project
    (root / "a" / "file").write_text("a 2\n")
    try:
        built, _ = build(root, "file")
        assert built == {"a-amd64", "a-arm"}
    finally:
        (root / "a" / "file").write_text("a 1\n")


def test_a_dockerignored_file_builds_nothing(project: tuple[Path, str]) -> None:
    root, _ = project
    (root / "b" / "ignored.txt").write_text("changed\n")
    built, _ = build(root, "ignored")
    assert built == set()


def test_a_build_arg_or_a_label_builds_that_target(project: tuple[Path, str]) -> None:
    root, _ = project
    original = (root / "bakery.yaml").read_text()
    doc = json.loads(original)
    doc["images"]["b"]["args"] = {"NOTE": "changed"}
    doc["images"]["a"]["labels"] = {"team": "x"}
    (root / "bakery.yaml").write_text(json.dumps(doc))
    try:
        built, _ = build(root, "args")
        assert built == TARGETS
        doc["images"]["a"].pop("labels")
        (root / "bakery.yaml").write_text(json.dumps(doc))
        built, _ = build(root, "args2")
        assert built == set()                   # b's new arg was recorded by the previous build; a is back
    finally:
        (root / "bakery.yaml").write_text(original)


def test_no_skip_builds_everything_and_dry_run_says_why(project: tuple[Path, str]) -> None:
    root, _ = project
    built, _ = build(root, "forced", "--no-skip")
    assert built == TARGETS
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", "dry", "--dry-run"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^would skip a-amd64: unchanged since \S+ \(inputs sha256:[0-9a-f]{64}\), not built$",
                     proc.stdout, re.M)


def test_a_base_re_pushed_under_the_same_tag_rebuilds_everything_on_it(project: tuple[Path, str],
                                                                        tmp_path: Path) -> None:
    root, prefix = project
    (tmp_path / "Dockerfile").write_text("FROM 127.0.0.1:5000/base/busybox:1.35\nCOPY marker /marker\n")
    (tmp_path / "marker").write_text("new base\n")
    docker("buildx", "build", "--platform", ",".join(PLATFORMS), "--provenance=false", "--push",
           "-t", f"{prefix}/base/busybox:1", str(tmp_path), timeout=600)
    built, _ = build(root, "rebased")
    assert built == TARGETS
    out = docker("run", "--rm", "--pull", "always", "--platform", "linux/arm64", "--entrypoint", "cat",
                 f"{prefix}/a:rebased", "/marker").stdout
    assert out == "new base\n"
