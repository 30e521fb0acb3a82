"""bakery.clean.local: the steps of ``clean --local``, read from a scripted ``docker buildx ls``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bakery.clean import local
from bakery.config import load
from bakery.docker import Docker
from bakery.doctor.provision import created_builders, record_created, state_file
from bakery.errors import BakeryError
from bakery.process import Result

PROJECT = """
registry: 127.0.0.1:5000/acme
platform_groups:
  amd64: [linux/amd64]
images:
  api: {context: api}
"""


class Scripted:
    """A Runner that answers ``buildx ls`` and records every command it is asked to run."""

    def __init__(self, builders: Sequence[dict[str, str]]) -> None:
        self.ls = "\n".join(json.dumps(b) for b in builders) + "\nnot json\n"
        self.ran: list[tuple[list[str], dict[str, str]]] = []

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, **_: Any) -> Result:
        self.ran.append((list(argv), dict(env or {})))
        out = self.ls if list(argv[1:3]) == ["buildx", "ls"] else "Total: 1GB\n"
        return Result(list(argv), 0, out, "")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    record_created("bakery-old", "docker-container")          # made by `setup`, so clean --local may remove it
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text(PROJECT)
    return load(tmp_path / "bakery.yaml")


def test_steps_prune_the_builders_in_use_remove_stale_ones_and_prune_dangling_images(config: Any) -> None:
    runner = Scripted([{"Name": "default", "Driver": "docker"}, {"Name": "bakery-old", "Driver": "docker-container"},
                       {"Name": "bakery-ctx", "Driver": "docker"}, {"Name": "mine", "Driver": "docker-container"}])
    docker = Docker(runner)  # type: ignore[arg-type]
    steps = local.local_steps(docker, config, keep_storage="10gb", filters=["until=24h"],
                              image_filters=["until=1h"])
    assert [(s.what, s.argv) for s in steps] == [
        ("prune the build cache of builder default",
         ("docker", "buildx", "prune", "--force", "--keep-storage", "10gb", "--filter", "until=24h")),
        ("remove stale builder bakery-old (driver docker-container, not in bakery.yaml)",
         ("docker", "buildx", "rm", "bakery-old")),
        ("remove dangling images", ("docker", "image", "prune", "--force", "--filter", "until=1h")),
    ]
    assert [argv for argv, _ in runner.ran] == [["docker", "buildx", "ls", "--format", "json"]]   # reads only
    done = local.run_local(docker, steps)
    assert [d["summary"] for d in done] == ["Total: 1GB"] * 3


def test_bad_flags_are_refused_before_docker_is_asked(config: Any) -> None:
    runner = Scripted([])
    with pytest.raises(BakeryError, match="--image-filter 'x': expected KEY=VALUE"):
        local.local_steps(Docker(runner), config, image_filters=["x"])  # type: ignore[arg-type]
    assert runner.ran == []


def test_only_builders_bakery_recorded_creating_are_removed_and_the_record_follows(config: Any, tmp_path: Path) -> None:
    runner = Scripted([{"Name": "bakery-old", "Driver": "docker-container"},
                       {"Name": "bakery-someone-elses", "Driver": "docker-container"}])
    docker = Docker(runner)  # type: ignore[arg-type]
    steps = local.local_steps(docker, config)
    assert [s.argv for s in steps if "rm" in s.argv] == [("docker", "buildx", "rm", "bakery-old")]
    assert state_file() == tmp_path / "state" / "bakery" / "builders.json"
    local.run_local(docker, steps)
    assert created_builders() == {}
    assert local.local_steps(docker, config, created=["bakery-someone-elses"])[-2].argv == \
        ("docker", "buildx", "rm", "bakery-someone-elses")
