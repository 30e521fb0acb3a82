"""Every config string reaches BuildKit exactly: checked against the real `docker buildx bake --print`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakery.build import bakefile
from bakery.build.generate import render_files
from bakery.capabilities import Capabilities
from bakery.config import validate

pytestmark = pytest.mark.stack

any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
arg_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


def installed() -> Capabilities:
    """The capabilities of the buildx these tests run on (stable: 0.13.1, current: 0.29.1)."""
    from bakery.docker import Docker
    from bakery.process import Runner
    return Docker(Runner()).capabilities()


CAPS = installed() if __import__("shutil").which("docker") else Capabilities((0, 13, 1))


def bake_print(path: Path) -> dict:
    proc = subprocess.run(["docker", "buildx", "bake", "-f", path.name, "--print", "default"], cwd=path.parent,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def project(root: Path, args: dict[str, str], labels: dict[str, str]):
    (root / "ctx").mkdir(exist_ok=True)
    (root / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    data = {"registry": "127.0.0.1:5000/esc", "platform_groups": {"amd64": ["linux/amd64"]},
            "images": {"app": {"context": "ctx", "args": args, "labels": labels}}}
    return validate(data, root, "bakery.yaml")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=st.dictionaries(arg_names, any_text, max_size=6),
       labels=st.dictionaries(any_text.filter(bool), any_text, max_size=4))
def test_buildkit_receives_exactly_the_configured_strings(tmp_path: Path, args: dict[str, str],
                                                          labels: dict[str, str]) -> None:
    cfg = project(tmp_path, args, labels)
    files = render_files(cfg, CAPS, ["json", "hcl"])
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        target = bake_print(path)["target"]["app-amd64"]
        # what bake evaluated, in the form this buildx prints it (0.23+ re-escapes ${ and %{)
        assert target.get("args", {}) == CAPS.printed("args", args), path.name
        assert target.get("labels", {}) == CAPS.printed("labels", labels), path.name


def test_json_and_hcl_files_are_read_the_same(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    from bakery.config import load
    import os
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        cfg = load(repo / "bakery.yaml")
    finally:
        os.chdir(cwd)
    files = render_files(cfg, CAPS, ["json", "hcl"])
    printed = []
    for path, text in files.items():
        out = tmp_path / path.name
        out.write_text(text)
        proc = subprocess.run(["docker", "buildx", "bake", "-f", str(out), "--print", "default"], cwd=repo,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr[-2000:]
        printed.append(json.loads(proc.stdout))
    assert printed[0] == printed[1]
    assert set(printed[0]["target"]) == set(bakefile.document(cfg)["target"])
