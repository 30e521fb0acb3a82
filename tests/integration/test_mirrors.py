"""``registry:`` as a list on the real stack: build --push publishes in the first registry and copies every index to
the others under the same tags; a mirror that cannot be reached fails the run after the first registry's index is
published, naming the mirror."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.faultproxy import Fault, FaultProxy
from tests.integration.seed import digest_at, free_port, private_registry
from tests.support.project import one_image

pytestmark = pytest.mark.stack
Cli = Callable[..., subprocess.CompletedProcess[str]]


def project(root: Path, registries: list[str]) -> Path:
    return one_image(root, registries, stamp=" ".join(registries),
                     groups={"amd64": ["linux/amd64"], "arm": ["linux/arm64"]})


def test_every_index_is_copied_to_each_mirror_under_the_same_tag(bakery_cli: Cli, tmp_path: Path,
                                                                  prefix: str) -> None:
    host, name = prefix.split("/", 1)
    with private_registry() as mirror:
        root = project(tmp_path, [prefix, f"{mirror.host}/copy"])
        built = bakery_cli(root, "build", "--push", "--tag", "v1", "--json")
        result = json.loads(built.stdout)
        assert result["images"]["app"]["mirrored"] == [f"{mirror.host}/copy/app:v1"]
        first = digest_at(host, f"{name}/app", "v1")
        assert first is not None and digest_at(mirror.host, "copy/app", "v1") == first
        assert digest_at(mirror.host, "copy/app", "v1-amd64") is None     # only the public index is mirrored


def test_a_mirror_that_loses_a_blob_during_the_copy_gets_the_copy_again(bakery_cli: Cli, tmp_path: Path,
                                                                         prefix: str) -> None:
    # registry 2.8 refuses the index when two platforms' uploads of one blob raced (buildx < 0.33): the first
    # PUT of the index answers what it answers then
    host, name = prefix.split("/", 1)
    with private_registry() as mirror, FaultProxy(mirror.host, [Fault("blob-unknown", method="PUT",
                                                                       path=r"/manifests/", limit=1)]) as proxy:
        root = project(tmp_path, [prefix, f"{proxy.host}/copy"])
        built = bakery_cli(root, "build", "--push", "--tag", "v1", "--json")
        assert json.loads(built.stdout)["images"]["app"]["mirrored"] == [f"{proxy.host}/copy/app:v1"]
        assert proxy.faults[0].injected == 1
        assert digest_at(mirror.host, "copy/app", "v1") == digest_at(host, f"{name}/app", "v1")


def test_an_unreachable_mirror_fails_the_run_after_the_first_registry_is_published(
        bakery_cli: Cli, tmp_path: Path, prefix: str) -> None:
    host, name = prefix.split("/", 1)
    gone = f"127.0.0.1:{free_port()}/copy"
    root = project(tmp_path, [prefix, gone])
    failed = bakery_cli(root, "build", "--push", "--tag", "v1", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert f"not mirrored to 1 of 1 mirror(s): {gone}/app" in failed.stderr.strip().splitlines()[-1]
    assert digest_at(host, f"{name}/app", "v1") is not None
    assert (root / "bake" / "results.json").exists()
