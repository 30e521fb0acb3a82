"""`bakery bench --runs 1` on the example against the real stack: report structure, basic physics, clean machine.

The api image is benchmarked (about 3-4 minutes on 2 cores): api-amd64 builds natively, api-arm builds linux/arm64
and linux/arm/v7 together, its Go compile cross-compiled on the build platform and its CPU-bound
`RUN uname -m ... && seq 1 500000 | md5sum ...` step emulated by QEMU (about ten times slower there, seconds rather
than tenths, so emulated-vs-native stands well clear of timing noise). Physics is only compared within this one
run: warm scenarios against cold, emulated against native.

The copy of the example declares ``ARG BAKERY_TEST_ISOLATION=<random>`` in every stage: that changes no label and
no output, but every RUN step's cache key, so builds of the example running at the same time on a shared daemon
(other test sessions) cannot hand their in-flight or finished steps to this benchmark, as BuildKit would otherwise
do for identical steps (the same reason each test uses its own registry prefix).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import docker

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = ["cold", "no-cache", "registry-warm", "incremental", "local-warm"]
ROWS = [("api-amd64", "linux/amd64"), ("api-arm", "linux/arm64"), ("api-arm", "linux/arm/v7")]
UNAME = "RUN uname -m > /etc/build-arch && seq 1 500000 | md5sum > /etc/build-fingerprint"
BASES = ["127.0.0.1:5000/base/busybox:1.35", "127.0.0.1:5000/base/golang:1.19"]


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def local_images(prefix: str) -> list[str]:
    out = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    return sorted(i for i in out if i.startswith(prefix + "/"))


def registry_tags(prefix: str, image: str) -> list[str]:
    host, _, path = prefix.partition("/")
    resp = requests.get(f"http://{host}/v2/{path}/{image}/tags/list", timeout=30)
    return [] if resp.status_code == 404 else sorted(resp.json().get("tags") or [])


def present(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False).returncode == 0


def isolate(examples: Path, nonce: str) -> None:
    """Give every stage of the copied Dockerfiles a unique build arg (see the module docstring)."""
    for dockerfile in examples.rglob("Dockerfile"):
        lines = []
        for line in dockerfile.read_text().splitlines():
            lines.append(line)
            if line.startswith("FROM "):
                lines.append(f"ARG BAKERY_TEST_ISOLATION={nonce}")
        dockerfile.write_text("\n".join(lines) + "\n")


def run_cli(root: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bakery", *args], cwd=root, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def benched(tmp_path_factory: pytest.TempPathFactory, stack: str) -> dict[str, Any]:
    prefix = f"{stack}/t-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("bench") / "project"
    shutil.copytree(REPO / "examples", root / "examples")
    (root / "bakery.yaml").write_text((REPO / "bakery.yaml").read_text().replace("127.0.0.1:5000/acme", prefix))
    isolate(root / "examples", uuid.uuid4().hex)
    before = {"tree": tree(root), "bases": {b: present(b) for b in BASES}}
    proc = run_cli(root, "bench", "--runs", "1", "--image", "api")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-5000:]}"
    report = json.loads((root / "bake" / "bench" / "report.json").read_text())
    return {"root": root, "prefix": prefix, "proc": proc, "report": report, "before": before}


def row(report: dict[str, Any], target: str, platform: str, scenario: str) -> dict[str, Any]:
    return next(r for r in report["results"] if (r["target"], r["platform"], r["scenario"]) ==
                (target, platform, scenario))


def runs_of(report: dict[str, Any], target: str, scenario: str) -> list[dict[str, Any]]:
    return [r for r in report["runs"] if r["target"] == target and r["scenario"] == scenario]


def test_report_has_one_timed_row_per_target_platform_and_scenario(benched: dict[str, Any]) -> None:
    report = benched["report"]
    assert sorted((r["target"], r["platform"], r["scenario"]) for r in report["results"]) == \
        sorted((t, p, s) for t, p in ROWS for s in SCENARIOS)
    for r in report["results"]:
        assert r["n"] == 1 and len(r["runs"]) == 1 and r["runs"][0] > 0
        assert r["median"] == pytest.approx(r["runs"][0], abs=1e-3)
        assert r["failures"] == 0
    assert len(report["runs"]) == 2 * len(SCENARIOS) and all(r["ok"] for r in report["runs"])


def test_report_records_the_environment(benched: dict[str, Any]) -> None:
    env = benched["report"]["environment"]
    assert env["engine"] and env["buildx"].startswith("0.") and env["image_store"] == "containerd"
    assert env["native_platform"] == "linux/amd64" and env["cpus"] >= 1
    assert "buildkit" in env and env["builders"]["default"]["driver"] == "docker"
    assert env["qemu"]["linux/arm64"]["version"].startswith("qemu-aarch64 version")
    assert env["qemu"]["linux/arm/v7"]["version"].startswith("qemu-arm version")
    assert env["registry"]["url"] == "http://127.0.0.1:5000/v2/"


def test_warm_scenarios_are_faster_than_cold(benched: dict[str, Any]) -> None:
    report = benched["report"]
    for target, platform in (ROWS[0], ROWS[1]):
        cold = row(report, target, platform, "cold")["median"]
        assert row(report, target, platform, "registry-warm")["median"] < cold
        assert row(report, target, platform, "local-warm")["median"] < cold


def test_cached_steps_match_each_scenario(benched: dict[str, Any]) -> None:
    report = benched["report"]
    for target in ("api-amd64", "api-arm"):
        for scenario in ("cold", "no-cache"):
            (run,) = runs_of(report, target, scenario)
            assert run["summary"]["run_steps"] > 0 and run["summary"]["cached_run_steps"] == 0, (target, scenario)
        for scenario in ("registry-warm", "local-warm"):
            (run,) = runs_of(report, target, scenario)
            assert run["summary"]["run_steps"] > 0, (target, scenario)
            assert run["summary"]["cached_run_steps"] == run["summary"]["run_steps"], (target, scenario)
        # incremental: the touched late COPY rebuilds, every RUN before it comes from the registry cache
        (run,) = runs_of(report, target, "incremental")
        assert run["touched"] == {"step": "COPY test/ /app/test/", "path": "examples/services/api/test/.bakery-bench-touch"}
        touched = [s for s in run["steps"] if s["label"] == "COPY test/ /app/test/"]
        assert touched and not any(s["cached"] for s in touched)
        assert run["summary"]["cached_run_steps"] == run["summary"]["run_steps"] > 0


def test_emulated_platforms_are_slower_on_the_emulated_run_step(benched: dict[str, Any]) -> None:
    emulation = {(r["step"], r["platform"]): r for r in benched["report"]["emulation"]}
    for platform in ("linux/arm64", "linux/arm/v7"):
        entry = emulation[(UNAME, platform)]
        assert entry["n_native"] >= 2 and entry["n_emulated"] >= 2
        assert entry["emulated_seconds"] > entry["native_seconds"]
    # the Go compile is cross-compiled on the build platform: never counted as emulated
    assert not any(step.startswith("RUN GOOS=") for step, _ in emulation)


def test_markdown_and_chart_are_written(benched: dict[str, Any]) -> None:
    out = benched["root"] / "bake" / "bench"
    assert sorted(p.name for p in out.iterdir()) == ["chart.svg", "report.json", "report.md"]
    md = (out / "report.md").read_text()
    assert "| api-arm | linux/arm64, linux/arm/v7 | registry-warm | 1 |" in md
    root = ET.fromstring((out / "chart.svg").read_text())
    titles = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert sum(t.startswith("cold:") for t in titles) == 2
    assert "api-amd64" in benched["proc"].stdout and "wrote bake/bench/report.json" in benched["proc"].stdout


def test_the_machine_is_left_as_it_was(benched: dict[str, Any]) -> None:
    root, prefix, before = benched["root"], benched["prefix"], benched["before"]
    after = tree(root)
    reports = {k for k in after if k.startswith("bake/bench/")}
    assert reports == {"bake/bench/report.json", "bake/bench/report.md", "bake/bench/chart.svg"}
    assert {k: v for k, v in after.items() if k not in reports} == before["tree"]
    assert local_images(prefix) == []
    assert registry_tags(prefix, "api") == []
    for base, was in before["bases"].items():
        if was:
            assert present(base), f"{base} was not restored"


def test_a_regression_against_a_baseline_fails_the_run(benched: dict[str, Any], tmp_path: Path) -> None:
    root = benched["root"]
    baseline = {"environment": benched["report"]["environment"], "results": [
        {"target": "worker-amd64", "platform": "linux/amd64", "scenario": "local-warm", "runs": [0.01, 0.01, 0.01]}]}
    (tmp_path / "base.json").write_text(json.dumps(baseline))
    out = tmp_path / "out"
    proc = run_cli(root, "bench", "--image", "worker", "--group", "amd64", "--scenario", "local-warm", "--runs", "1",
                   "--baseline", str(tmp_path / "base.json"), "--fail-on-regression", "--out", str(out))
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert "regression(s) against" in proc.stderr.splitlines()[-1]
    report = json.loads((out / "report.json").read_text())
    assert report["comparison"]["regressions"][0]["target"] == "worker-amd64"
    assert sorted(p.name for p in out.iterdir()) == ["chart.svg", "report.json", "report.md"]
    assert local_images(benched["prefix"]) == [] and registry_tags(benched["prefix"], "worker") == []
