"""``build --print`` (bakery.build.print_): one ``docker buildx bake --print`` with the files, flags and variables a
build would hand to bake, and bake's JSON as it printed it."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from bakery.build import print_
from bakery.build.build import BuildRequest
from bakery.config import Config, validate
from bakery.docker import Docker
from bakery.errors import BakeryError, CommandError
from bakery.process import Result, Runner

PRINTED = '{\n  "target": {"app-amd64": {"context": "app"}}\n}\n'


class Bake(Runner):
    """Answers ``buildx version`` and ``bake --print``; records each print's argv, env and the files it named."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(out=io.StringIO())
        self.code = code
        self.argv: list[str] = []
        self.env: dict[str, str] = {}
        self.files: dict[str, str] = {}

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            check: bool = True, input: str | None = None, timeout: float | None = None,
            action: bool = False) -> Result:
        argv = list(argv)
        if argv[1:3] == ["buildx", "version"]:
            return Result(argv, 0, "github.com/docker/buildx v0.29.1 abc\n", "")
        self.argv, self.env = argv, dict(env or {})
        self.files = {f: (Path(cwd or ".") / f).read_text() for f in argv[argv.index("bake") + 1:]
                      if f.endswith(".json")}
        if self.code:
            failed = Result(argv, self.code, "", "#1 reading\nERROR: failed to parse bake/x.json\n")
            if check:
                raise CommandError(argv, self.code, failed.stderr)
            return failed
        return Result(argv, 0, PRINTED, "")


def config(tmp_path: Path) -> Config:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bake").mkdir()
    (tmp_path / "bake" / "docker-bake.override.json").write_text('{"target": {}}\n')
    data = {"registry": "127.0.0.1:5000/acme", "platform_groups": {"amd64": ["linux/amd64"]},
            "images": {"app": {"context": "app"}}}
    return validate(data, tmp_path, "bakery.yaml")


REQUEST = BuildRequest(tag="v1", push=True, check=False, sets=("*.labels.x=1",), build_args=("A=b",),
                       provenance="mode=max", sbom="false", overlay={"target": {"app-amd64": {"labels": {"l": "v"}}}})


def test_bake_is_given_the_builds_files_flags_and_variables_with_print(tmp_path: Path) -> None:
    runner = Bake()
    print_.definition(config(tmp_path), Docker(runner), REQUEST, io.StringIO())
    overlay = next(f for f in runner.files if ".overlay-" in f)
    assert runner.argv == ["docker", "buildx", "bake", "-f", "bake/docker-bake.json",
                           "-f", "bake/docker-bake.override.json", "-f", overlay, "--print", "--push",
                           "--set", "*.labels.x=1", "--set", "*.args.A=b", "--provenance", "mode=max",
                           "--sbom", "false", "app-amd64"]
    assert runner.env["BAKERY_TAG"] == "v1" and runner.env["BAKERY_REGISTRY"] == "127.0.0.1:5000/acme"


def test_the_run_overlay_is_handed_to_bake_and_removed_after(tmp_path: Path) -> None:
    runner = Bake()
    print_.definition(config(tmp_path), Docker(runner), REQUEST, io.StringIO())
    overlay = next(f for f in runner.files if ".overlay-" in f)
    assert json.loads(runner.files[overlay]) == {"target": {"app-amd64": {"labels": {"l": "v"}}}}
    assert not (tmp_path / overlay).exists()


def test_bakes_json_is_returned_as_it_printed_it(tmp_path: Path) -> None:
    assert print_.definition(config(tmp_path), Docker(Bake()), REQUEST, io.StringIO()) == PRINTED


def test_the_generated_file_is_written_first(tmp_path: Path) -> None:
    runner = Bake()
    print_.definition(config(tmp_path), Docker(runner), REQUEST, io.StringIO())
    assert "app-amd64" in json.loads(runner.files["bake/docker-bake.json"])["target"]


def test_a_definition_bake_rejects_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        print_.definition(config(tmp_path), Docker(Bake(code=1)), REQUEST, io.StringIO())
    assert str(info.value) == "docker buildx bake --print rejected the definition: ERROR: failed to parse bake/x.json"


def test_an_override_that_cannot_be_used_is_refused_before_bake_runs(tmp_path: Path) -> None:
    runner = Bake()
    bad = BuildRequest(check=False, sets=("*.platform=linux/arm64",))
    with pytest.raises(BakeryError, match="platform cannot be overridden"):
        print_.definition(config(tmp_path), Docker(runner), bad, io.StringIO())
    assert runner.argv == []
