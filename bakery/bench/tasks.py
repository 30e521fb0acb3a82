"""Task: ``bench``: build-time benchmarks across cache scenarios and platforms (see :mod:`bakery.bench.run`)."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from invoke import Context

from bakery.atomic import write_files
from bakery.bench.scenarios import SCENARIOS, BenchError, BenchRequest, Observer, PlannedRun
from bakery.errors import BakeryError
from bakery.bench.rawjson import Status
from bakery.cli import StatusLine, config_from, docker_from, errors_to_exit, task
from bakery.doctor.checks import preflight

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_SVG = "chart.svg"


class RegressionError(BakeryError):
    """``--fail-on-regression`` and the baseline comparison found a regression."""

    exit_code = 3


class LiveProgress(Observer):
    """A one-line live display on a terminal (redrawn every 0.25 s), one line per event otherwise."""

    def __init__(self, out: TextIO | None = None, tty: bool | None = None) -> None:
        self.status = StatusLine(out or sys.stderr, tty)
        self.tty = self.status.tty
        self.lock = threading.Lock()
        self.text = ""
        self.run: PlannedRun | None = None
        self.index = self.total = 0
        self.started = 0.0
        self.drawn = 0.0
        self.vertexes: dict[str, dict[str, Any]] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        if self.tty:
            self.thread = threading.Thread(target=self._tick, daemon=True)
            self.thread.start()

    def _tick(self) -> None:
        while not self.stop.wait(0.25):
            with self.lock:
                if self.run is not None:
                    self._draw(self._running_line())

    def _draw(self, text: str) -> None:
        self.status.draw(text[:118])
        self.drawn = time.monotonic()

    def _line(self, text: str) -> None:
        self.status.line(text)

    def _running_line(self) -> str:
        assert self.run is not None
        done = sum(1 for v in self.vertexes.values() if v.get("completed"))
        cached = sum(1 for v in self.vertexes.values() if v.get("cached"))
        active = [v.get("name", "") for v in self.vertexes.values() if v.get("started") and not v.get("completed")]
        current = active[-1] if active else ""
        return (f"[{self.index}/{self.total}] round {self.run.round} {self.run.scenario:<13} {self.run.target:<18} "
                f"{time.monotonic() - self.started:6.1f}s  steps {done}/{len(self.vertexes)} cached {cached}  "
                f"{current}")

    def phase(self, text: str) -> None:
        with self.lock:
            self.run = None
            if self.tty:
                self._draw(f"… {text}")
            else:
                self._line(f"bench: {text}")

    def run_started(self, index: int, total: int, run: PlannedRun) -> None:
        with self.lock:
            self.run, self.index, self.total = run, index, total
            self.started = time.monotonic()
            self.vertexes = {}
            if self.tty:
                self._draw(self._running_line())
                self.drawn = 0.0     # the first step update redraws at once

    def statuses(self, statuses: Sequence[Status]) -> None:
        with self.lock:
            for status in statuses:
                for v in status.get("vertexes") or []:
                    entry = self.vertexes.setdefault(v.get("digest", ""), {})
                    entry.update({k: v[k] for k in ("name", "started", "completed", "cached") if v.get(k)})
            if self.tty and self.run is not None and time.monotonic() - self.drawn >= 0.1:
                self._draw(self._running_line())

    def run_finished(self, index: int, total: int, record: Mapping[str, Any]) -> None:
        with self.lock:
            self.run = None
            s = record["summary"]
            state = f"{record['wall']:7.2f}s  steps {s['cached_steps']}/{s['steps']} cached" if record["ok"] \
                else f"FAILED: {record['error']}"
            self._line(f"[{index}/{total}] round {record['round']} {record['scenario']:<13} "
                       f"{record['target']:<18} {state}")

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=1)
        with self.lock:
            self.status.clear()


def summary_table(report: Mapping[str, Any]) -> str:
    """The plain-text table printed at the end: one line per target and scenario."""
    lines = [f"{'target':<20} {'scenario':<14} {'n':>2} {'median':>8} {'min':>8} {'max':>8} {'CV':>5}  RUN hits",
             "-" * 79]
    hits = {(t["target"], t["scenario"]): t["run_cache_hit_ratio"] for t in report.get("targets", [])}
    seen: set[tuple[str, str]] = set()
    for row in report["results"]:
        key = (row["target"], row["scenario"])
        if key in seen or not row["n"]:
            continue
        seen.add(key)
        cv = f"{row['cv']:.0%}" + ("!" if row["high_cv"] else " ")
        ratio = hits.get(key)
        lines.append(f"{row['target']:<20} {row['scenario']:<14} {row['n']:>2} {row['median']:>7.2f}s "
                     f"{row['min']:>7.2f}s {row['max']:>7.2f}s {cv:>5}  {'-' if ratio is None else f'{ratio:.0%}'}")
    return "\n".join(lines)


@task(iterable=["image", "group", "scenario"],
      help={"image": "image to benchmark (repeatable; default all)",
            "group": "platform group to benchmark (repeatable; default all)",
            "scenario": f"scenario (repeatable; default all): {', '.join(SCENARIOS)}",
            "runs": "timed runs per scenario and target (default 3)",
            "baseline": "an earlier report.json to compare the medians with",
            "fail-on-regression": "exit non-zero (3) when --baseline finds a regression",
            "out": "report directory (default <bake_dir>/bench, e.g. bake/bench)",
            "seed": "seed of the interleaved scenario order (default random, recorded in the report)",
            "verbose": "echo every command", "config": "path of bakery.yaml"})
@errors_to_exit
def bench(c: Context, image: list[str] | None = None, group: list[str] | None = None,
          scenario: list[str] | None = None, runs: int = 3, baseline: str | None = None,
          fail_on_regression: bool = False, out: str | None = None, seed: int | None = None,
          verbose: bool = False, config: str | None = None) -> None:
    """Benchmark builds per target and platform: cold, no-cache, registry-warm, incremental, local-warm."""
    # the bench core is imported here, not at the top: every other task's start-up stays free of it
    from bakery.bench import render, report as bench_report
    from bakery.bench.run import load_report, run_bench
    cfg = config_from(c, config)
    if int(runs) < 1:
        raise BenchError(f"--runs must be at least 1, got {runs}")
    if fail_on_regression and not baseline:
        raise BenchError("--fail-on-regression needs --baseline FILE")
    base = load_report(Path(baseline)) if baseline else None
    docker = docker_from(c, cfg, verbose=verbose)
    try:
        seed_value = None if seed is None else int(seed)
    except ValueError:
        raise BenchError(f"--seed must be an integer, got {seed!r}") from None
    request = BenchRequest(images=tuple(image or ()), groups=tuple(group or ()), scenarios=tuple(scenario or ()),
                           runs=int(runs), seed=seed_value)
    preflight(cfg, docker, request.groups, request.images)
    out_dir = Path(out) if out else cfg.root / cfg.bake_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = run_bench(cfg, docker, request, out_dir, LiveProgress())
    report = bench_report.build_report(result.environment, result.settings, result.runs, result.warnings, base)
    files = {out_dir / REPORT_JSON: json.dumps(report, indent=1, sort_keys=False) + "\n",
             out_dir / REPORT_MD: render.to_markdown(report),
             out_dir / REPORT_SVG: render.to_svg(report)}
    write_files(files)
    print(summary_table(report))
    for line in report["advice"]:
        print(f"advice: {line}")
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    comparison = report.get("comparison")
    if comparison:
        for row in comparison["rows"]:
            if row["verdict"] != "same":
                print(f"{row['verdict']}: {row['target']} {row['scenario']} {row['baseline_median']:.2f}s -> "
                      f"{row['current_median']:.2f}s ({row['change']:+.0%}, tolerance ±{row['tolerance']:.0%})")
    for path in files:
        print(f"wrote {_show(path)}")
    if comparison and comparison["regressions"] and fail_on_regression:
        first = comparison["regressions"][0]
        raise RegressionError(f"{len(comparison['regressions'])} regression(s) against {baseline}: "
                              f"{first['target']} {first['scenario']} {first['change']:+.0%} "
                              f"(tolerance ±{first['tolerance']:.0%})")


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
