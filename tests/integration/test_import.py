"""Importing real bake and compose files: on the running stack's buildx, the targets bakery generates from
``images_from`` build the same thing as the original files (``--print`` of both, field by field), and hostile
values in an imported HCL file reach ``--print`` of the generated file unchanged."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bakery.build import bakefile
from bakery.capabilities import csv_entry
from bakery.config import load
from bakery.config.bake_import import ImportSpec, choose_selection, read_sources
from bakery.config.bake_map import REPLACED, selected
from bakery.docker import Docker
from bakery.errors import ConfigError
from bakery.process import Runner

from tests.conftest import STACK

pytestmark = pytest.mark.stack

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "import"
CASES = json.loads((CORPUS / "MANIFEST.json").read_text())["cases"]
GROUP = "amd64"
IGNORED = set(REPLACED) | {"description"}    # bakery replaces these; description changes no build


@pytest.fixture(scope="module", autouse=True)
def ssh_agent() -> Iterator[None]:
    """``--print`` of a target with ``ssh`` needs an agent socket to exist (never used: nothing is built)."""
    with tempfile.TemporaryDirectory() as tmp:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(os.path.join(tmp, "agent.sock"))
        old = os.environ.get("SSH_AUTH_SOCK")
        os.environ["SSH_AUTH_SOCK"] = os.path.join(tmp, "agent.sock")
        try:
            yield
        finally:
            sock.close()
            if old is None:
                os.environ.pop("SSH_AUTH_SOCK", None)
            else:
                os.environ["SSH_AUTH_SOCK"] = old


def bake_print(cwd: Path, files: Sequence[str], targets: Sequence[str]) -> dict[str, Any]:
    argv = ["docker", "buildx", "bake", *[a for f in files for a in ("-f", f)], "--print", *targets]
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SOURCE_DATE_EPOCH": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def project(root: Path, files: Sequence[str], targets: Sequence[str] = ()) -> Path:
    spec: dict[str, Any] = {"files": list(files)}
    if targets:
        spec["targets"] = list(targets)
    (root / "bakery.yaml").write_text(yaml.safe_dump({
        "registry": "127.0.0.1:5000/imp", "platform_groups": {GROUP: ["linux/amd64"]}, "images_from": spec}))
    return root / "bakery.yaml"


def generated_print(root: Path, cfg: Any) -> dict[str, Any]:
    doc = bakefile.document(cfg, Docker(Runner()).capabilities())
    (root / "gen.json").write_text(bakefile.to_json(doc))
    return bake_print(root, ["gen.json"], ["default"])


_NOW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z")


def _frozen(value: Any) -> Any:
    """``timestamp()`` results, which bakery freezes at import time, as one placeholder (the original file's
    ``--print`` ran a moment later)."""
    return json.loads(_NOW.sub("<timestamp()>", json.dumps(value)))


def differences(orig: Mapping[str, Any], gen: Mapping[str, Any], cwd: str) -> list[str]:
    """What a generated target builds differently from the original (bakery's replacements aside)."""
    problems = []
    for key in sorted((set(orig) | set(gen)) - IGNORED):
        want, got = _frozen(orig.get(key)), _frozen(gen.get(key))
        if key == "context":
            want = posixpath.normpath(posixpath.join(cwd, str(want)))
        elif key == "contexts":
            want = {k: (f"target:{v[7:].lower()}-{GROUP}" if v.startswith("target:") else v)
                    for k, v in (want or {}).items()}
        elif key == "attest":
            def kind(e: Any) -> Any:
                return (e if isinstance(e, Mapping) else csv_entry(e)).get("type")
            if not any(kind(e) == "provenance" for e in want or []):
                got = [e for e in got or [] if kind(e) != "provenance"] or None
        if want != got:
            problems.append(f"{key}: original {want!r}, generated {got!r}")
    return problems


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_imported_targets_build_what_the_original_builds(case: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / case["case"]
    shutil.copytree(CORPUS / case["case"], root)
    config = project(root, case["files"], case.get("targets", ()))
    error = (case.get("error") or {}).get(STACK) or (case.get("error") or {}).get("any")
    if error:
        with pytest.raises(ConfigError) as info:
            load(config, evaluator=Docker(Runner()))
        assert error in str(info.value) and "\n" not in str(info.value), str(info.value)
        assert any(Path(f).name in str(info.value) for f in case["files"]), str(info.value)
        assert not (root / "bake" / "import").exists() or not list((root / "bake" / "import").iterdir())
        return
    cfg = load(config, evaluator=Docker(Runner()))
    first = Path(case["files"][0])
    cwd = root / first.parent
    files = [os.path.relpath(root / f, cwd) for f in case["files"]]
    spec = ImportSpec(tuple(case["files"]), tuple(case.get("targets", ())))
    selection = choose_selection(spec, read_sources(spec, root))   # what a plain bake builds, or the images
    original = bake_print(cwd, files, selection)
    generated = generated_print(root, cfg)["target"]
    by_image = {t.lower(): t for t in original["target"]}
    assert cfg.images, "nothing imported"
    for image in cfg.images:
        orig = original["target"][by_image[image]]
        gen = generated[f"{image}-{GROUP}"]
        assert differences(orig, gen, first.parent.as_posix()) == [], image
    chosen = selected(original, selection)
    assert {t.lower() for t in chosen} - set(cfg.images) <= {t.lower() for t in chosen if _not_image(original, t)}


def _not_image(printed: Mapping[str, Any], target: str) -> bool:
    outputs = printed["target"][target].get("output") or []
    kinds = {(o.get("type") if isinstance(o, Mapping) else csv_entry(o).get("type", "local")) for o in outputs}
    return bool(kinds) and kinds <= {"local", "tar", "cacheonly"}


def test_second_load_is_served_from_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "diun"
    shutil.copytree(CORPUS / "diun", root)
    config = project(root, ["docker-bake.hcl"])
    first = load(config, evaluator=Docker(Runner()))
    assert len(list((root / "bake" / "import").glob("*.json"))) == 1

    class NoBake(Docker):
        def bake_print(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise AssertionError("evaluated twice")
    assert load(config, evaluator=NoBake(Runner())).images == first.images


# --------------------------------------------------------------------------- hostile values
any_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
arg_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def hcl_file(args: Mapping[str, str], labels: Mapping[str, str], annotations: Sequence[str]) -> str:
    """An HCL bake file holding the values literally (escaped for bake, as a careful author writes them)."""
    def s(v: str) -> str:
        return bakefile._hcl_string(bakefile.escape(v))
    body = "\n".join([
        'target "app" {', '  context = "ctx"',
        "  args = {" + ", ".join(f"{s(k)} = {s(v)}" for k, v in args.items()) + "}",
        "  labels = {" + ", ".join(f"{s(k)} = {s(v)}" for k, v in labels.items()) + "}",
        "  annotations = [" + ", ".join(s(a) for a in annotations) + "]", "}"])
    return 'group "default" { targets = ["app"] }\n' + body + "\n"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.dictionaries(arg_names, any_text, max_size=4),
       labels=st.dictionaries(any_text.filter(lambda k: bool(k) and "\r" not in k), any_text, max_size=3),
       annotations=st.lists(any_text.map(lambda v: f"manifest:org.example.note={v}"), max_size=2))
@example(args={"A": "${x}", "B": "%{y}", "C": "$${z}", "D": 'q"\\\n\t'}, labels={"k${x}": "v%%{w}"},
         annotations=["manifest:org.example.note=${b}%{c}"])
def test_values_in_an_imported_hcl_file_reach_print_unchanged(tmp_path: Path, args: dict[str, str],
                                                              labels: dict[str, str], annotations: list[str]) -> None:
    with tempfile.TemporaryDirectory(dir=tmp_path) as tmp:
        root = Path(tmp)
        (root / "ctx").mkdir()
        (root / "ctx" / "Dockerfile").write_text("FROM scratch\n")
        (root / "docker-bake.hcl").write_text(hcl_file(args, labels, annotations), encoding="utf-8")
        original = bake_print(root, ["docker-bake.hcl"], [])["target"]["app"]
        cfg = load(project(root, ["docker-bake.hcl"]), evaluator=Docker(Runner()))
        generated = generated_print(root, cfg)["target"][f"app-{GROUP}"]
        for key in ("args", "labels", "annotations"):
            assert generated.get(key) == original.get(key), key
