"""Importing bake and compose files (``images_from``): buildx evaluates, bakery maps. These tests pass recorded
``docker buildx bake --print`` output (0.13.1 and 0.29.1 forms) through a fake evaluator; the real thing is
tests/integration/test_import.py."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bakery.build import bakefile
from bakery.capabilities import Capabilities, entry_text, ssh_entry
from bakery.config import load
from bakery.config.bake_import import ImportSpec, import_images, parse_spec, report
from bakery.errors import CommandError, ConfigError

HCL = '''
variable "TAG" { default = "dev" }
group "default" { targets = ["app", "db"] }
target "_common" { args = { BASE = "x" } }
target "app" {
  inherits = ["_common"]
  context = "app"
  dockerfile = "Dockerfile.prod"
  target = "runtime"
  args = { VERSION = "${TAG}", LIT = "$${HOME}" }
  platforms = ["linux/amd64"]
  tags = ["r/app:${TAG}"]
}
target "db" { context = "db" }
'''
# what buildx 0.13.1 prints for HCL (`docker buildx bake --print`)
PRINTED_013 = {
    "group": {"default": {"targets": ["app", "db"]}},
    "target": {
        "app": {"context": "app", "dockerfile": "Dockerfile.prod", "target": "runtime",
                "args": {"BASE": "x", "LIT": "${HOME}", "VERSION": "dev"}, "tags": ["r/app:dev"],
                "platforms": ["linux/amd64"]},
        "db": {"context": "db", "dockerfile": "Dockerfile"},
    },
}


class Recorded:
    """An evaluator that answers with recorded ``--print`` output and remembers what it was asked."""

    def __init__(self, printed: Mapping[str, Any] | Exception, version: tuple[int, int, int] = (0, 13, 1)) -> None:
        self.printed = printed
        self.version = version
        self.calls: list[tuple[list[str], list[str], Path]] = []

    def buildx_version(self) -> tuple[int, int, int]:
        return self.version

    def bake_print(self, files: Sequence[Path], targets: Sequence[str], env: Mapping[str, str],
                   cwd: Path) -> dict[str, Any]:
        self.calls.append(([str(f) for f in files], list(targets), cwd))
        assert env == {"SOURCE_DATE_EPOCH": ""}
        if isinstance(self.printed, Exception):
            raise self.printed
        return dict(self.printed)


def tree(root: Path, *dirs: str, dockerfile: str = "Dockerfile") -> None:
    for d in dirs:
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / dockerfile).write_text("FROM scratch\n")


def test_the_selection_is_evaluated_once_and_mapped(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text(HCL)
    tree(tmp_path, "app", dockerfile="Dockerfile.prod")
    tree(tmp_path, "db")
    ev = Recorded(PRINTED_013)
    got = import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, ev)
    assert ev.calls == [(["docker-bake.hcl"], [], tmp_path)]   # plain bake's default, where a plain bake runs
    assert got.images == {
        "app": {"context": "app", "dockerfile": "Dockerfile.prod", "target": "runtime",
                "args": {"BASE": "x", "LIT": "${HOME}", "VERSION": "dev"}},
        "db": {"context": "db", "dockerfile": "Dockerfile"},
    }
    assert got.where == {"app": "docker-bake.hcl:5", "db": "docker-bake.hcl:14"}
    assert got.replaced == {"app": ("tags", "platforms")}


def test_images_from_expands_per_platform_group_and_bakery_yaml_wins(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, "app", dockerfile="Dockerfile.prod")
    tree(tmp_path, "db", "db2")
    (tmp_path / "docker-bake.hcl").write_text(HCL)
    (tmp_path / "bakery.yaml").write_text(
        "registry: 127.0.0.1:5000/imp\nplatform_groups: {amd64: [linux/amd64], arm: [linux/arm64]}\n"
        "images_from: docker-bake.hcl\nimages:\n  db: {context: db2}\n")
    cfg = load(tmp_path / "bakery.yaml", evaluator=Recorded(PRINTED_013))
    assert cfg.images["app"].platform_groups == ("amd64", "arm")
    assert cfg.images["app"].args["LIT"] == "${HOME}"
    assert cfg.images["db"].context == "db2"


# what buildx 0.29.1 prints: object entries, `$${` re-escaped in args/labels/annotations/dockerfile-inline only
PRINTED_029 = {
    "group": {"default": {"targets": ["app"]}},
    "target": {
        "app": {"context": ".", "dockerfile": "Dockerfile", "dockerfile-inline": "FROM a$${x}",
                "args": {"K": "v$${x}"}, "labels": {"l": "%%{y}", "gone": None},
                "annotations": ["manifest:a=$${x}"], "contexts": {"base": "target:Base", "img": "docker-image://a"},
                "secret": [{"id": "a,b", "src": "/etc/hostname"}, {"id": "e", "env": "HOME"}],
                "ssh": [{"id": "default"}, {"id": "k", "paths": ["/a", "/b"]}],
                "attest": [{"type": "sbom"}], "network": "host",
                "cache-from": [{"type": "registry", "ref": "r/x:c"}], "output": [{"type": "image"}]},
        "Base": {"context": ".", "dockerfile": "Dockerfile", "output": [{"type": "cacheonly"}]},
    },
}


def test_the_029_form_is_read_back_to_what_the_file_says(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('group "default" { targets = ["app"] }\ntarget "app" {}\n'
                                              'target "Base" {}\n')
    tree(tmp_path, ".")
    got = import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, Recorded(PRINTED_029, (0, 29, 1)))
    app = got.images["app"]
    assert app["args"] == {"K": "v${x}"} and app["labels"] == {"l": "%{y}"}
    assert app["bake"] == {
        "dockerfile-inline": "FROM a${x}", "annotations": ["manifest:a=${x}"],
        "contexts": {"base": "target:base", "img": "docker-image://a"},
        "secret": ['"id=a,b",src=/etc/hostname', "id=e,env=HOME"], "ssh": ["default", "k=/a,/b"],
        "network": "host", "attest": ["type=sbom"]}
    assert list(got.images) == ["app", "base"]          # a linked target is imported, after the selection
    assert got.replaced["app"] == ("cache-from", "output")


def test_entry_forms_round_trip() -> None:
    caps = Capabilities((0, 29, 1))
    for key, text in (("secret", '"id=a,b",src=/x'), ("attest", "type=sbom,generator=img"), ("ssh", "k=/a,/b"),
                      ("ssh", "default")):
        obj = caps.printed(key, [text])[0]
        assert entry_text(key, obj) == text
    assert ssh_entry("default") == {"id": "default"}
    assert caps.unprinted("args", {"a": "$$${x}"}) == {"a": "$${x}"}
    assert caps.unprinted("contexts", {"a": "$${x}"}) == {"a": "$${x}"}   # not re-escaped by print


def test_a_target_context_points_at_the_same_platform_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, ".")
    (tmp_path / "docker-bake.hcl").write_text('target "app" {}\ntarget "Base" {}\ngroup "default" {}\n')
    (tmp_path / "bakery.yaml").write_text("registry: r.example/x\nplatform_groups: {amd64: [linux/amd64], "
                                          "arm: [linux/arm64]}\nimages_from: docker-bake.hcl\n")
    cfg = load(tmp_path / "bakery.yaml", evaluator=Recorded(PRINTED_029, (0, 29, 1)))
    doc = bakefile.document(cfg, Capabilities((0, 29, 1)))
    assert doc["target"]["app-arm"]["contexts"] == {"base": "target:base-arm", "img": "docker-image://a"}
    assert doc["target"]["app-arm"]["attest"] == ["type=provenance,mode=min", "type=sbom"]
    assert doc["target"]["app-arm"]["dockerfile-inline"] == "FROM a$${x}"   # escaped again for bake


def test_compose_contexts_are_relative_to_the_compose_file(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yaml").write_text("services:\n  web:\n    build: ./web\n  redis:\n"
                                                      "    image: redis:7\n")
    tree(tmp_path, "deploy/web")
    printed = {"group": {"default": {"targets": ["web"]}},
               "target": {"web": {"context": "web", "dockerfile": "Dockerfile"}}}
    ev = Recorded(printed)
    got = import_images(ImportSpec(("deploy/compose.yaml",)), tmp_path, ev)
    assert ev.calls[0][2] == tmp_path / "deploy"
    assert got.images == {"web": {"context": "deploy/web", "dockerfile": "Dockerfile"}}
    assert got.where == {"web": "deploy/compose.yaml:2"}


def test_without_a_default_group_every_target_but_the_bases_is_selected(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text(
        'target "docker-metadata-action" {}\ntarget "image" { inherits = ["docker-metadata-action"] }\n'
        'target "image-local" { inherits = ["image"] }\n')
    tree(tmp_path, ".")
    printed = {"target": {n: {"context": ".", "dockerfile": "Dockerfile"} for n in ("image", "image-local")}}
    ev = Recorded(printed)
    got = import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, ev)
    assert ev.calls[0][1] == ["image-local"]     # image is inherited, docker-metadata-action too
    assert list(got.images) == ["image-local"]


def test_outputs_that_are_not_images_are_skipped_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('group "default" { targets = ["bin", "img"] }\n'
                                              'target "bin" {}\ntarget "img" {}\n')
    tree(tmp_path, ".")
    printed = {"group": {"default": {"targets": ["bin", "img"]}},
               "target": {"bin": {"context": ".", "output": ["type=local,dest=out"]},
                          "img": {"context": ".", "output": ["type=docker"]}}}
    got = import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, Recorded(printed))
    assert list(got.images) == ["img"]
    out = io.StringIO()
    report(got, out)
    assert out.getvalue() == "images_from: skipped 1 target(s) that build no image: bin (-v says why)\n"
    out = io.StringIO()
    report(got, out, verbose=True)
    assert "docker-bake.hcl:2: target bin skipped: its output is not an image (type=local)" in out.getvalue()
    assert "frozen" in out.getvalue()


@pytest.mark.parametrize("printed, message", [
    ({"target": {"default": {"context": "."}}}, r"docker-bake.hcl:1: target.default: an image cannot be named"),
    ({"target": {"_base": {"context": "."}}}, r"target._base: '_base' cannot be an image name"),
    ({"target": {"A": {"context": "."}, "a": {"context": "."}}}, r"becomes image 'a', as target 'A' does"),
    ({"target": {"x": {"context": "nope"}}}, r"target.x.context: directory 'nope' does not exist"),
])
def test_bad_names_and_paths_are_one_line_naming_the_file(tmp_path: Path, printed: dict[str, Any],
                                                          message: str) -> None:
    (tmp_path / "docker-bake.hcl").write_text('target "default" {}\n')
    tree(tmp_path, ".")
    with pytest.raises(ConfigError, match=message) as info:
        import_images(ImportSpec(("docker-bake.hcl",), ("x",)), tmp_path, Recorded(printed))
    assert "\n" not in str(info.value)


def test_an_imported_name_colliding_with_a_generated_target_names_both(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tree(tmp_path, ".")
    (tmp_path / "docker-bake.hcl").write_text('target "cpu-amd64" {}\n')
    (tmp_path / "bakery.yaml").write_text("registry: r.example/x\nplatform_groups: {amd64: [linux/amd64]}\n"
                                          "images_from: docker-bake.hcl\nimages:\n  cpu: {context: .}\n")
    printed = {"target": {"cpu-amd64": {"context": "."}}}
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "bakery.yaml", evaluator=Recorded(printed))
    assert str(info.value) == ("docker-bake.hcl:1: images.cpu-amd64: 'cpu-amd64' is produced twice: by image "
                               "cpu-amd64 (docker-bake.hcl:1) (its bake group) and by image cpu in group amd64; "
                               "select fewer targets or rename one")


def test_a_file_buildx_rejects_is_one_line_and_nothing_is_cached(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('target "app" { context = \n')
    stderr = "#1 [internal] load local bake definitions\nERROR: docker-bake.hcl:1,27-2,1: Invalid expression\n"
    ev = Recorded(CommandError(["docker"], 1, stderr))
    with pytest.raises(ConfigError) as info:
        import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, ev, cache_dir=tmp_path / "cache")
    assert str(info.value) == ("docker-bake.hcl: images_from: buildx 0.13.1 cannot evaluate it: "
                               "docker-bake.hcl:1,27-2,1: Invalid expression")
    assert not (tmp_path / "cache").exists()


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^nope.hcl: images_from: file not found$"):
        import_images(ImportSpec(("nope.hcl",)), tmp_path, Recorded(PRINTED_013))


def test_the_result_is_cached_by_digest_and_buildx_version(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text(HCL)
    tree(tmp_path, "app", dockerfile="Dockerfile.prod")
    tree(tmp_path, "db")
    ev = Recorded(PRINTED_013)
    spec = ImportSpec(("docker-bake.hcl",))
    first = import_images(spec, tmp_path, ev, env={}, cache_dir=tmp_path / "cache")
    again = import_images(spec, tmp_path, ev, env={}, cache_dir=tmp_path / "cache")
    assert len(ev.calls) == 1 and again.cached and again.images == first.images and again.where == first.where
    import_images(spec, tmp_path, ev, env={"TAG": "1.0"}, cache_dir=tmp_path / "cache")   # a variable it reads
    assert len(ev.calls) == 2
    import_images(spec, tmp_path, ev, env={"UNRELATED": "1"}, cache_dir=tmp_path / "cache")
    assert len(ev.calls) == 2
    ev.version = (0, 29, 1)
    import_images(spec, tmp_path, ev, env={}, cache_dir=tmp_path / "cache")
    assert len(ev.calls) == 3
    (tmp_path / "docker-bake.hcl").write_text(HCL + "# changed\n")
    import_images(spec, tmp_path, ev, env={}, cache_dir=tmp_path / "cache")
    assert len(ev.calls) == 4


def test_a_file_calling_timestamp_is_never_cached(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('variable "NOW" { default = timestamp() }\n' + HCL)
    tree(tmp_path, "app", dockerfile="Dockerfile.prod")
    tree(tmp_path, "db")
    ev = Recorded(PRINTED_013)
    for _ in range(2):
        import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, ev, cache_dir=tmp_path / "cache")
    assert len(ev.calls) == 2


def test_images_from_forms() -> None:
    assert parse_spec("a.hcl", "y").files == ("a.hcl",)
    assert parse_spec(["a.hcl", "b.json"], "y").files == ("a.hcl", "b.json")
    spec = parse_spec({"files": "a.hcl", "targets": ["x"], "groups": ["g"]}, "y")
    assert (spec.files, spec.targets, spec.groups, spec.selection) == (("a.hcl",), ("x",), ("g",), ("x", "g"))
    with pytest.raises(ConfigError, match=r"^bakery.yaml:3: images_from.target: unknown key 'target'"):
        parse_spec({"files": "a.hcl", "target": ["x"]}, "bakery.yaml:3")
    with pytest.raises(ConfigError, match=r"images_from.files: is required"):
        parse_spec({"targets": ["x"]}, "y")
    with pytest.raises(ConfigError, match=r"images_from: expected a file name or a list of them, got 3"):
        parse_spec(3, "y")


def test_a_file_python_hcl2_cannot_parse_still_names_its_lines(tmp_path: Path) -> None:
    # a newer HCL construct python-hcl2 may not read; buildx is the judge, the block headers still give lines
    (tmp_path / "docker-bake.hcl").write_text('group "default" { targets = ["app"] }\n\ntarget "app" {\n'
                                              '  args = { for k, v in {a = 1} : k => v ... }\n}\n')
    tree(tmp_path, ".")
    printed = {"group": {"default": {"targets": ["app"]}}, "target": {"app": {"context": "."}}}
    got = import_images(ImportSpec(("docker-bake.hcl",)), tmp_path, Recorded(printed))
    assert got.where == {"app": "docker-bake.hcl:3"}
