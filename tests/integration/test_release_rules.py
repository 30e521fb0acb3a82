"""``bakery release`` with bakery.yaml's ``tags:`` rules and ``registry:`` as a list, on the real stack: the tag set
is what the rules give the version tag (a floating tag a newer release has stays where it is), and the published
index is copied to the second registry under exactly that set. One tiny busybox image, one platform group."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bakery.oci.registry import Registry
from tests.fixtures.release.projects import new_prefix
from tests.integration.seed import Seeder, digest_at, tags_of
from tests.support.project import committed, git, one_image

pytestmark = pytest.mark.stack
Cli = Callable[..., subprocess.CompletedProcess[str]]
RULES = ["type=ref,event=branch", "type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}",
         "type=semver,pattern={{major}}", "type=sha", "type=raw,value=stable"]


def test_a_release_takes_its_tags_from_the_rules_and_copies_them_to_every_registry(
        bakery_cli: Cli, tmp_path: Path, prefix: str, stack: str) -> None:
    mirror = new_prefix(stack)
    root = committed(one_image(tmp_path / "repo", [prefix, mirror], tags={"rules": RULES},
                               release={"smoke": {"start_seconds": 2}}))
    git(root, "tag", "v1.2.3")
    sha = git(root, "rev-parse", "HEAD")[:7]
    host, first = prefix.split("/", 1)
    second = mirror.split("/", 1)[1]
    Seeder(Registry(host, insecure=True), f"{first}/app").image(tag="2.0.0")     # a newer release holds latest
    wanted = ["1.2.3", "1.2", "1", "stable", f"sha-{sha}"]

    planned = bakery_cli(root, "release", "--dry-run").stdout
    assert f"  tag set from bakery.yaml tags: (rules applied to refs/tags/v1.2.3 at {sha})\n" in planned
    assert f"  app: {prefix}/app: {' '.join(wanted)}\n" in planned
    assert "  app: latest stays where it is (2.0.0 is already released)\n" in planned
    assert f"would copy {prefix}/app@<index digest> to {', '.join(f'{mirror}/app:{t}' for t in wanted)} " in planned

    released = bakery_cli(root, "release").stdout
    assert "== mirror\n" in released
    digest = digest_at(host, f"{first}/app", "1.2.3")
    assert digest is not None and {digest_at(host, f"{first}/app", t) for t in wanted} == {digest}
    assert "latest" not in tags_of(host, f"{first}/app")
    assert tags_of(host, f"{second}/app") == sorted(wanted)                     # exactly the set, nothing else
    assert {digest_at(host, f"{second}/app", t) for t in wanted} == {digest}
    report = json.loads((root / "bake" / "release-1.2.3.json").read_text())
    assert report["tags_from"] == f"bakery.yaml tags: (rules applied to refs/tags/v1.2.3 at {sha})"
    assert report["images"]["app"]["tags"] == wanted
    assert report["images"]["app"]["mirrored"] == [f"{mirror}/app:{t}" for t in wanted]
    assert report["mirror_error"] is None
