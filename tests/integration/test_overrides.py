"""buildx-style overrides on the real stack: ``--build-arg`` and ``--set`` reach the image, take part in the skip's
input digest, and what bakery builds on cannot be overridden; ``--provenance``/``--sbom`` reach bake's command."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.test_tags import labels_of
from tests.support.project import one_image

pytestmark = pytest.mark.stack
Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def root(tmp_path: Path, prefix: str) -> Path:
    return one_image(tmp_path / "repo", prefix, 'ARG X=unset\nRUN echo "$X" > /x\nLABEL x=$X\n')


def test_build_args_and_sets_reach_the_image_and_the_skip_sees_them(bakery_cli: Cli, root: Path,
                                                                      prefix: str) -> None:
    host, name = prefix.split("/", 1)
    args = ("build", "--push", "--tag", "t", "--build-arg", "X=hello", "--set", "*.labels.team=core")
    bakery_cli(root, *args)
    labels = labels_of(host, f"{name}/app", "t")
    assert (labels["x"], labels["team"]) == ("hello", "core")
    again = bakery_cli(root, *args)
    assert "app-amd64: unchanged since" in again.stdout                 # same overrides: the same inputs
    other = bakery_cli(root, "build", "--push", "--tag", "t", "--build-arg", "X=bye", "--set", "*.labels.team=core")
    assert "unchanged since" not in other.stdout
    assert labels_of(host, f"{name}/app", "t")["x"] == "bye"


def test_provenance_and_sbom_are_handed_to_bake(bakery_cli: Cli, root: Path) -> None:
    dry = bakery_cli(root, "build", "--dry-run", "--provenance", "mode=max", "--sbom", "false", "--set",
                     "app-*.args.X=1")
    assert "--set 'app-*.args.X=1' --provenance mode=max --sbom false app-amd64" in dry.stderr   # shell-quoted echo


@pytest.mark.parametrize(("flag", "message"), [
    (("--set", "*.platform=linux/arm64"), "platform cannot be overridden: platforms come from platform_groups"),
    (("--set", "worker-*.args.X=1"), "'worker-*' matches none of the targets built (app-amd64)"),
    (("--set", "args.X"), "expected PATTERN.KEY=VALUE"),
    (("--build-arg", "X"), "--build-arg 'X': expected NAME=VALUE"),
])
def test_an_override_that_cannot_be_used_is_one_line_and_nothing_is_built(bakery_cli: Cli, root: Path,
                                                                           flag: tuple[str, str], message: str) -> None:
    failed = bakery_cli(root, "build", "--push", "--tag", "t", *flag, check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith("bakery: ") and message in failed.stderr
    assert not (root / "bake" / "results.json").exists()


def test_builder_puts_every_group_on_an_existing_builder_and_an_unknown_one_is_one_line(bakery_cli: Cli,
                                                                                          root: Path) -> None:
    built = bakery_cli(root, "build", "--builder", "default", "--tag", "b")
    assert "app-amd64" in built.stdout
    failed = bakery_cli(root, "build", "--builder", "nope", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1] == \
        "bakery: --builder nope: no such buildx builder (`docker buildx ls` lists them)"
