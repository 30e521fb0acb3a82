"""Tests for bakery.bench.report: result rows, emulation advice, baseline comparison, Markdown and SVG."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import FIXTURES
from bakery.bench.scenarios import step_record
from bakery.bench.render import to_markdown, to_svg
from bakery.bench.report import build_report, compare_reports, emulation, results
from bakery.bench.rawjson import iter_status
from bakery.bench.steps import collect_steps

BENCH = FIXTURES / "rawjson" / "bench"
NATIVE = "linux/amd64"
ENV = {"engine": "26.1.5", "buildx": "0.13.1", "image_store": "containerd", "cpus": 2, "native_platform": NATIVE,
       "buildkit": "v0.13.2", "builders": {"default": {"driver": "docker"}}, "kernel": "6.1",
       "qemu": {"linux/arm64": {"version": "qemu-aarch64 version 7.2.22"}},
       "registry": {"url": "http://127.0.0.1:5000/v2/"}}
TARGETS = {"api-amd64": {"image": "api", "group": "amd64", "platforms": ["linux/amd64"]},
           "api-arm": {"image": "api", "group": "arm", "platforms": ["linux/arm64", "linux/arm/v7"]}}
SETTINGS = {"runs": 3, "seed": 1, "targets": TARGETS, "cache_scope": "bench-x", "cache_mode": "max"}


def s(label: str, platform: str, seconds: float, *, cached: bool = False, run: bool | None = None,
      build_platform: str | None = None) -> dict[str, Any]:
    return {"name": f"[{platform}] {label}", "label": label, "platform": platform, "build_platform": build_platform,
            "seconds": seconds, "cached": cached, "run": label.startswith("RUN") if run is None else run,
            "kind": None, "error": None}


def run(target: str, scenario: str, wall: float, steps: Sequence[dict[str, Any]] = (), *, ok: bool = True,
        seq: int = 0) -> dict[str, Any]:
    info = TARGETS[target]
    total = sum(x["seconds"] for x in steps)
    return {"target": target, "image": info["image"], "group": info["group"], "platforms": info["platforms"],
            "scenario": scenario, "ok": ok, "error": None if ok else "boom", "wall": wall, "seq": seq,
            "steps": list(steps),
            "summary": {"steps": len(steps), "cached_steps": sum(x["cached"] for x in steps),
                        "cache_hit_ratio": 0.0, "run_steps": sum(x["run"] for x in steps),
                        "cached_run_steps": sum(x["run"] and x["cached"] for x in steps), "run_cache_hit_ratio": 0.0,
                        "step_seconds": total, "parallelism": total / wall, "cache_import_seconds": 0.0,
                        "cache_export_seconds": 0.1},
            "critical_path": {"seconds": total, "steps": [x["label"] for x in steps]}, "notes": []}


def arm_steps(compile_: float, uname64: float, uname7: float, cached: bool = False) -> list[dict[str, Any]]:
    return [s("FROM golang", "shared", 1.0, run=False),
            s("RUN go build", "linux/arm64", compile_, build_platform=NATIVE, cached=cached),
            s("RUN uname -m", "linux/arm64", uname64, cached=cached),
            s("RUN uname -m", "linux/arm/v7", uname7, cached=cached),
            s("exporting to image", "shared", 0.2, run=False)]


def amd_steps(uname: float, compile_: float = 5.0, cached: bool = False) -> list[dict[str, Any]]:
    return [s("RUN go build", "linux/amd64", compile_, cached=cached), s("RUN uname -m", "linux/amd64", uname,
                                                                          cached=cached)]


RUNS = [run("api-amd64", "cold", 30.0, amd_steps(0.2), seq=1),
        run("api-amd64", "cold", 31.0, amd_steps(0.25), seq=2),
        run("api-amd64", "cold", 29.0, amd_steps(0.3), seq=3),
        run("api-amd64", "local-warm", 0.7, amd_steps(0, 0, cached=True), seq=4),
        run("api-arm", "cold", 40.0, arm_steps(20, 0.5, 0.6), seq=5),
        run("api-arm", "cold", 42.0, arm_steps(21, 0.6, 0.7), seq=6),
        run("api-arm", "cold", 99.0, ok=False, seq=7),
        run("api-arm", "local-warm", 0.8, arm_steps(0, 0, 0, cached=True), seq=8)]


# ------------------------------------------------------------------------------------------------ rows
def test_one_row_per_target_platform_and_scenario_in_order() -> None:
    rows = results(RUNS, SETTINGS, NATIVE)
    assert [(r["target"], r["platform"], r["scenario"]) for r in rows] == [
        ("api-amd64", "linux/amd64", "cold"), ("api-amd64", "linux/amd64", "local-warm"),
        ("api-arm", "linux/arm64", "cold"), ("api-arm", "linux/arm64", "local-warm"),
        ("api-arm", "linux/arm/v7", "cold"), ("api-arm", "linux/arm/v7", "local-warm")]


def test_row_runs_are_wall_times_with_their_statistics() -> None:
    row = results(RUNS, SETTINGS, NATIVE)[0]
    assert row["runs"] == [30.0, 31.0, 29.0]
    assert (row["n"], row["median"], row["min"], row["max"], row["iqr"]) == (3, 30.0, 29.0, 31.0, 1.0)
    assert row["cv"] == pytest.approx(1 / 30, abs=1e-4) and row["high_cv"] is False
    assert row["emulated"] is False


def test_failed_runs_are_counted_but_not_timed() -> None:
    row = next(r for r in results(RUNS, SETTINGS, NATIVE) if r["target"] == "api-arm" and r["scenario"] == "cold")
    assert row["runs"] == [40.0, 42.0] and row["failures"] == 1


def test_platforms_of_a_group_share_the_wall_time_but_not_the_step_time() -> None:
    rows = [r for r in results(RUNS, SETTINGS, NATIVE) if r["target"] == "api-arm" and r["scenario"] == "cold"]
    arm64, armv7 = rows
    assert arm64["runs"] == armv7["runs"]
    assert arm64["platform_seconds"] == [20.5, 21.6] and armv7["platform_seconds"] == [0.6, 0.7]
    # the cross-compiled step ran natively: only uname counts as emulated work
    assert arm64["emulated_run_seconds"] == [0.5, 0.6] and arm64["emulated"] is True
    assert (arm64["run_steps"], arm64["cached_run_steps"]) == ([2, 2], [0, 0])


def test_cached_counts_per_run() -> None:
    warm = next(r for r in results(RUNS, SETTINGS, NATIVE) if r["target"] == "api-arm"
                and r["scenario"] == "local-warm" and r["platform"] == "linux/arm64")
    assert (warm["steps"], warm["cached_steps"], warm["cached_run_steps"]) == ([2], [2], [2])


# ------------------------------------------------------------------------------------------------ emulation
def test_emulation_compares_the_same_step_with_its_native_build() -> None:
    rows = emulation(RUNS, NATIVE)
    assert [(r["step"], r["platform"]) for r in rows] == [("RUN uname -m", "linux/arm/v7"),
                                                          ("RUN uname -m", "linux/arm64")]
    arm64 = rows[1]
    assert (arm64["native_seconds"], arm64["emulated_seconds"]) == (0.25, 0.55)
    assert arm64["factor"] == pytest.approx(2.2) and arm64["advise"] is False


def test_a_slow_emulated_compile_gets_the_cross_compilation_advice() -> None:
    runs = [run("api-amd64", "no-cache", 10, [s("RUN make", "linux/amd64", 2.0)]),
            run("api-arm", "no-cache", 60, [s("RUN make", "linux/arm64", 18.0), s("RUN make", "linux/arm/v7", 25.0)])]
    report = build_report(ENV, SETTINGS, runs)
    assert [r["advise"] for r in report["emulation"]] == [True, True]
    assert len(report["advice"]) == 2
    assert "FROM --platform=$BUILDPLATFORM" in report["advice"][0]
    assert "`RUN make` takes 25.0 s on linux/arm/v7 under QEMU vs 2.0 s natively (12.5x)" in report["advice"][0]


def test_no_advice_for_short_steps_however_large_the_factor() -> None:
    runs = [run("api-amd64", "no-cache", 1, [s("RUN true", "linux/amd64", 0.05)]),
            run("api-arm", "no-cache", 1, [s("RUN true", "linux/arm64", 0.5)])]
    rows = emulation(runs, NATIVE)
    assert rows[0]["factor"] == pytest.approx(10.0) and rows[0]["advise"] is False


def test_an_image_built_only_emulated_has_no_factor() -> None:
    rows = emulation([run("api-arm", "cold", 5, [s("RUN x", "linux/arm64", 3.0)])], NATIVE)
    assert rows[0]["native_seconds"] is None and rows[0]["factor"] is None and not rows[0]["advise"]


def test_emulation_from_a_real_no_cache_stream() -> None:
    steps = collect_steps(iter_status([(BENCH / "worker-arm-no-cache.txt").read_text()]))
    plats = ["linux/arm64", "linux/arm/v7"]
    rec = run("api-arm", "no-cache", 2.0, [step_record(x, plats) for x in steps])
    row = next(r for r in results([rec], SETTINGS, NATIVE) if r["platform"] == "linux/arm64")
    assert row["run_steps"] == [2] and row["cached_run_steps"] == [0]
    assert row["emulated_run_seconds"][0] > 0


# ------------------------------------------------------------------------------------------------ baseline
def report_with(target: str, scenario: str, walls: Sequence[float], env: dict[str, Any] | None = None) -> dict:
    return {"environment": env or ENV, "results": [{"target": target, "platform": "linux/amd64",
                                                    "scenario": scenario, "runs": list(walls)}]}


def test_a_slowdown_beyond_the_tolerance_is_a_regression() -> None:
    base = report_with("t", "cold", [10.0, 10.1, 9.9])
    cur = report_with("t", "cold", [13.0, 13.1, 12.9])
    out = compare_reports(base, cur)
    assert [r["verdict"] for r in out["rows"]] == ["regression"]
    assert out["regressions"][0]["change"] == pytest.approx(0.3)
    assert out["regressions"][0]["tolerance"] == pytest.approx(0.10)


def test_the_tolerance_is_at_least_twice_the_observed_cv() -> None:
    base = report_with("t", "cold", [8.0, 10.0, 12.0])     # CV 20 %
    cur = report_with("t", "cold", [11.0, 13.0, 15.0])     # +30 %, within 2 x 20 %
    row = compare_reports(base, cur)["rows"][0]
    assert row["tolerance"] == pytest.approx(0.4) and row["verdict"] == "same"


def test_with_fewer_than_three_runs_the_floor_is_wider() -> None:
    row = compare_reports(report_with("t", "cold", [10.0]), report_with("t", "cold", [12.0]))["rows"][0]
    assert row["tolerance"] == 0.25 and row["verdict"] == "same"
    row = compare_reports(report_with("t", "cold", [10.0]), report_with("t", "cold", [13.0]))["rows"][0]
    assert row["verdict"] == "regression"


def test_a_faster_build_is_an_improvement_and_environment_changes_are_noted() -> None:
    cur_env = {**ENV, "cpus": 4}
    out = compare_reports(report_with("t", "cold", [10.0] * 3), report_with("t", "cold", [5.0] * 3, cur_env))
    assert out["rows"][0]["verdict"] == "improvement" and not out["regressions"]
    assert out["notes"] == ["environment differs: cpus 2 -> 4"]


def test_rows_missing_from_the_current_run_are_listed() -> None:
    base = {"environment": ENV, "results": report_with("a", "cold", [1.0])["results"]
            + report_with("b", "cold", [1.0])["results"]}
    out = compare_reports(base, report_with("a", "cold", [1.0]))
    assert out["not_measured"] == ["b/cold"]


# ------------------------------------------------------------------------------------------------ report
def test_report_has_the_documented_shape() -> None:
    report = build_report(ENV, SETTINGS, RUNS, ["w"])
    json.dumps(report)
    assert set(report) >= {"environment", "settings", "results", "targets", "emulation", "advice", "comparison",
                           "warnings", "runs"}
    assert {"target", "platform", "scenario", "runs", "median"} <= set(report["results"][0])
    assert report["runs"] == RUNS and report["warnings"][0] == "w"


def test_high_variation_is_warned_once_per_target_and_scenario() -> None:
    runs = [run("api-arm", "cold", w, arm_steps(1, 0.1, 0.1)) for w in (10.0, 20.0, 30.0)]
    report = build_report(ENV, SETTINGS, runs)
    assert report["warnings"] == ["api-arm cold: high variation (CV 50% over 3 runs); treat its median with care "
                                  "or add --runs"]


def test_target_summary_takes_the_critical_path_of_the_median_run() -> None:
    report = build_report(ENV, SETTINGS, RUNS)
    cold = next(t for t in report["targets"] if t["target"] == "api-amd64" and t["scenario"] == "cold")
    assert cold["median"] == 30.0 and cold["critical_path"]["seconds"] == pytest.approx(5.2)


def test_markdown_tables() -> None:
    base = report_with("api-amd64", "cold", [20.0, 20.0, 20.0])
    md = to_markdown(build_report(ENV, SETTINGS, RUNS, baseline=base))
    assert "| api-amd64 | linux/amd64 | cold | 3 | 30.00 | 29.00 | 31.00 | 1.00 | 3% |" in md
    assert "| api-arm | linux/arm64 | cold | 21.05 | 0.55 | 0/2 | 0/2 |" in md
    assert "| api | `RUN uname -m` | linux/arm64 | 0.25 | 0.55 | 2.2x |" in md
    assert "| api-amd64 | cold | 20.00 | 30.00 | +50% | ±10% | **regression** |" in md
    assert "## Emulation cost" in md and md.endswith("\n")


def test_svg_is_well_formed_with_a_bar_per_scenario() -> None:
    report = build_report(ENV, SETTINGS, RUNS)
    svg = to_svg(report)
    root = ET.fromstring(svg)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert "cold: 30.000 s" in titles and "local-warm: 0.700 s" in titles
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert any(t and t.startswith("api-arm  (linux/arm64, linux/arm/v7)") for t in texts)
    assert any(t and "RUN uname -m" in t and "emulation cost" in t for t in texts)
    assert svg == to_svg(build_report(ENV, SETTINGS, RUNS))          # deterministic


def test_svg_escapes_text() -> None:
    runs = [run("api-amd64", "no-cache", 1, [s("RUN echo '<&>'", "linux/amd64", 0.1)]),
            run("api-arm", "no-cache", 1, [s("RUN echo '<&>'", "linux/arm64", 0.3)])]
    ET.fromstring(to_svg(build_report(ENV, SETTINGS, runs)))


def test_a_target_without_run_steps_has_no_run_hit_ratio() -> None:
    rec = run("api-amd64", "cold", 1.0, [s("COPY site/ /www/", "linux/amd64", 0.1)])
    rec["summary"]["run_cache_hit_ratio"] = None
    report = build_report(ENV, SETTINGS, [rec])
    assert report["targets"][0]["run_cache_hit_ratio"] is None
    assert "| api-amd64 | linux/amd64 | cold | 1 | 1.00 | 1.00 | 1.00 | 0.00 | 0% | - |" in to_markdown(report)


def test_chart_axis_ticks_are_round_numbers() -> None:
    runs = [run("api-amd64", "cold", w) for w in (1.6, 1.9, 1.7)]
    root = ET.fromstring(to_svg(build_report(ENV, SETTINGS, runs)))
    ticks = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.text and t.text.endswith(" s")
             and t.get("font-size") == "10"]
    assert ticks == ["0 s", "0.5 s", "1 s", "1.5 s", "2 s"]
