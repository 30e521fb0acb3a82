"""Tests for the ``bench`` task's own parts: flags, the live display and the summary table (no docker needed)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO
from bakery.bench.scenarios import PlannedRun
from bakery.bench.tasks import LiveProgress, RegressionError, summary_table



def project(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    shutil.copy(REPO / "bakery.yaml", tmp_path / "bakery.yaml")
    return tmp_path


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bakery", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_help_lists_every_flag(tmp_path: Path) -> None:
    out = cli(project(tmp_path), "bench", "--help").stdout
    for flag in ("--image", "--group", "--scenario", "--runs", "--baseline", "--fail-on-regression", "--out",
                 "--seed"):
        assert flag in out


def test_fail_on_regression_needs_a_baseline(tmp_path: Path) -> None:
    proc = cli(project(tmp_path), "bench", "--fail-on-regression")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "bakery: --fail-on-regression needs --baseline FILE"


def test_a_missing_baseline_fails_before_anything_runs(tmp_path: Path) -> None:
    proc = cli(project(tmp_path), "bench", "--baseline", "nope.json")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "bakery: --baseline nope.json: no such file"
    assert not (tmp_path / "bake").exists()


def test_bad_numbers_are_one_line_errors(tmp_path: Path) -> None:
    root = project(tmp_path)
    proc = cli(root, "bench", "--seed", "abc")
    assert (proc.returncode, proc.stderr.strip()) == (1, "bakery: --seed must be an integer, got 'abc'")
    proc = cli(root, "bench", "--runs", "0")
    assert (proc.returncode, proc.stderr.strip()) == (1, "bakery: --runs must be at least 1, got 0")


def test_regressions_exit_with_their_own_code() -> None:
    assert RegressionError("x").exit_code == 3


def record(ok: bool = True) -> dict:
    return {"round": 1, "scenario": "cold", "target": "api-arm", "ok": ok, "wall": 12.3456, "error": "boom",
            "summary": {"cached_steps": 0, "steps": 20}}


def test_progress_without_a_terminal_prints_one_line_per_event() -> None:
    out = io.StringIO()
    progress = LiveProgress(out, tty=False)
    progress.phase("priming api-arm")
    progress.run_started(1, 2, PlannedRun(1, 1, "cold", "api-arm"))
    progress.statuses([{"vertexes": [{"digest": "a", "name": "RUN x", "started": "t"}]}])
    progress.run_finished(1, 2, record())
    progress.run_finished(2, 2, record(ok=False))
    progress.close()
    assert out.getvalue().splitlines() == [
        "bench: priming api-arm",
        "[1/2] round 1 cold          api-arm              12.35s  steps 0/20 cached",
        "[2/2] round 1 cold          api-arm            FAILED: boom"]


def test_progress_on_a_terminal_redraws_one_line() -> None:
    out = io.StringIO()
    progress = LiveProgress(out, tty=True)
    progress.run_started(1, 1, PlannedRun(1, 1, "local-warm", "w-amd64"))
    progress.statuses([{"vertexes": [{"digest": "a", "name": "[1/2] RUN make", "started": "t"}]}])
    progress.run_finished(1, 1, record())
    progress.close()
    text = out.getvalue()
    assert "\r\x1b[K[1/1] round 1 local-warm" in text and "[1/2] RUN make" in text
    assert text.endswith("\r\x1b[K")


def test_summary_table_has_one_line_per_target_and_scenario() -> None:
    report = {"results": [
        {"target": "w-arm", "scenario": "cold", "n": 3, "median": 1.5, "min": 1.4, "max": 1.9, "cv": 0.16,
         "high_cv": True},
        {"target": "w-arm", "scenario": "cold", "n": 3, "median": 1.5, "min": 1.4, "max": 1.9, "cv": 0.16,
         "high_cv": True}],
        "targets": [{"target": "w-arm", "scenario": "cold", "run_cache_hit_ratio": 0.0}]}
    lines = summary_table(report).splitlines()
    assert len(lines) == 3
    assert lines[2] == "w-arm                cold            3    1.50s    1.40s    1.90s  16%!  0%"
