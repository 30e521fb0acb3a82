"""Bench report (pure): results table, emulation advice and baseline comparison (rendered by :mod:`bakery.bench.render`).

The report is one JSON document::

    {"schema": 1,
     "environment": {...},                      # versions, image store, CPUs, QEMU, registry
     "settings": {...},                         # scenarios, runs, seed, order, cache scope, touched step
     "results": [{"target", "image", "group", "platform", "platforms", "emulated", "scenario",
                  "runs": [wall seconds], "n", "median", "min", "max", "q1", "q3", "iqr", "mean", "stdev",
                  "cv", "high_cv", "platform_seconds": [...], "platform_median", "steps": [...],
                  "cached_steps": [...], "run_steps": [...], "cached_run_steps": [...],
                  "emulated_run_seconds": [...], "failures"}],
     "targets": [{"target", "scenario", "median", "parallelism", "cache_hit_ratio", "run_cache_hit_ratio",
                  "cache_import_seconds", "cache_export_seconds", "critical_path"}],
     "emulation": [{"image", "step", "platform", "native_seconds", "emulated_seconds", "factor", "advise"}],
     "advice": ["..."],
     "comparison": {...} | null,
     "warnings": ["..."],
     "runs": [every raw run with its steps]}

``runs`` in a result row are the wall times of the bake process that built the row's target: the platforms
of a multi-platform group are built together, so they share that wall time; ``platform_seconds`` is the
step time attributed to the row's platform alone (its own steps, shared steps left out).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bakery.bench.scenarios import SCENARIOS, SHARED
from bakery.bench.stats import Stats, compare, describe, high_cv
from bakery.oci.platforms import is_emulated

__all__ = [
    "CV_WARNING", "SCENARIO_ORDER", "advice", "build_report", "compare_reports", "emulation", "median", "results",
    "scenario_key", "target_summary",
]

SCHEMA = 1
SCENARIO_ORDER = SCENARIOS
CV_WARNING = 0.10


def median(values: Sequence[float]) -> float:
    """The median of ``values``; 0 for none (a scenario without a successful run)."""
    return describe(values).median if values else 0.0


def _round(value: float, digits: int = 4) -> float:
    return round(value, digits) if math.isfinite(value) else value


def _stats_fields(stats: Stats | None) -> dict[str, Any]:
    if stats is None:
        return {k: None for k in ("median", "min", "max", "q1", "q3", "iqr", "mean", "stdev", "cv")} | \
            {"n": 0, "high_cv": False}
    return {"n": stats.n, "median": _round(stats.median), "min": _round(stats.min), "max": _round(stats.max),
            "q1": _round(stats.q1), "q3": _round(stats.q3), "iqr": _round(stats.iqr), "mean": _round(stats.mean),
            "stdev": _round(stats.stdev), "cv": _round(stats.cv), "high_cv": high_cv(stats, CV_WARNING)}


def scenario_key(name: str) -> int:
    """Sort key: the canonical scenario order, unknown scenarios (from another bench version) last."""
    return SCENARIO_ORDER.index(name) if name in SCENARIO_ORDER else len(SCENARIO_ORDER)


def _targets_in_order(runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[str]:
    order = list((settings.get("targets") or {}).keys())
    for r in runs:
        if r["target"] not in order:
            order.append(r["target"])
    return order


def _emulated_step(step: Mapping[str, Any], native: str) -> bool:
    """A RUN step that executed (not cached, no error) under emulation: not a cross-compiling stage."""
    plat = step.get("platform") or SHARED
    return (bool(step.get("run")) and not step.get("cached") and not step.get("error")
            and plat != SHARED and step.get("build_platform") is None and is_emulated(plat, native))


def results(runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any], native: str) -> list[dict[str, Any]]:
    """One row per (target, platform, scenario) from the successful runs, in target/platform/scenario order."""
    rows: list[dict[str, Any]] = []
    for target in _targets_in_order(runs, settings):
        mine = [r for r in runs if r["target"] == target]
        if not mine:
            continue
        first = mine[0]
        platforms = list(first["platforms"])
        for platform in platforms:
            for scenario in sorted({r["scenario"] for r in mine}, key=scenario_key):
                group = [r for r in mine if r["scenario"] == scenario]
                ok = [r for r in group if r.get("ok")]
                walls = [float(r["wall"]) for r in ok]
                per: dict[str, list[Any]] = {k: [] for k in ("platform_seconds", "steps", "cached_steps",
                                                             "run_steps", "cached_run_steps",
                                                             "emulated_run_seconds")}
                for r in ok:
                    steps = [s for s in r["steps"] if s.get("platform") == platform]
                    per["platform_seconds"].append(_round(sum(s["seconds"] for s in steps), 6))
                    per["steps"].append(len(steps))
                    per["cached_steps"].append(sum(bool(s["cached"]) for s in steps))
                    per["run_steps"].append(sum(bool(s["run"]) for s in steps))
                    per["cached_run_steps"].append(sum(bool(s["run"] and s["cached"]) for s in steps))
                    per["emulated_run_seconds"].append(
                        _round(sum(s["seconds"] for s in steps if _emulated_step(s, native)), 6))
                rows.append({
                    "target": target, "image": first["image"], "group": first["group"], "platform": platform,
                    "platforms": platforms, "emulated": is_emulated(platform, native), "scenario": scenario,
                    "runs": walls, **_stats_fields(describe(walls) if walls else None),
                    **per, "platform_median": _round(median(per["platform_seconds"])),
                    "failures": len(group) - len(ok),
                })
    return rows


def _optional_median(values: Sequence[float | None]) -> float | None:
    """Median of the known values; None when there are none (e.g. a RUN hit ratio without RUN steps)."""
    known = [v for v in values if v is not None]
    return _round(median(known)) if known else None


def target_summary(runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per (target, scenario): medians of the whole-build signals, and the critical path of the median run."""
    out: list[dict[str, Any]] = []
    for target in _targets_in_order(runs, settings):
        mine = [r for r in runs if r["target"] == target and r.get("ok")]
        for scenario in sorted({r["scenario"] for r in mine}, key=scenario_key):
            group = sorted((r for r in mine if r["scenario"] == scenario), key=lambda r: (r["wall"], r.get("seq", 0)))
            middle = group[(len(group) - 1) // 2]
            out.append({
                "target": target, "scenario": scenario, "n": len(group),
                "median": _round(median([r["wall"] for r in group])),
                **{k: _optional_median([r["summary"][k] for r in group])
                   for k in ("parallelism", "cache_hit_ratio", "run_cache_hit_ratio", "step_seconds",
                             "cache_import_seconds", "cache_export_seconds")},
                "critical_path": middle["critical_path"],
            })
    return out


def emulation(runs: Sequence[Mapping[str, Any]], native: str, *, min_factor: float = 3.0,
              min_seconds: float = 1.0) -> list[dict[str, Any]]:
    """Emulated RUN steps against the same step (same image, same label) built natively.

    Samples are every successful run in which the step executed (not cached).  ``advise`` marks a step
    whose emulated median is at least ``min_factor`` times native and at least ``min_seconds`` longer:
    those are worth moving to a ``FROM --platform=$BUILDPLATFORM`` stage that cross-compiles.
    """
    native_samples: dict[tuple[str, str], list[float]] = {}
    emulated_samples: dict[tuple[str, str, str], list[float]] = {}
    for r in runs:
        if not r.get("ok"):
            continue
        for s in r["steps"]:
            if not s.get("run") or s.get("cached") or s.get("error"):
                continue
            plat = s.get("platform") or SHARED
            if plat == SHARED:
                continue
            if plat == native or (s.get("build_platform") is None and not is_emulated(plat, native)):
                native_samples.setdefault((r["image"], s["label"]), []).append(float(s["seconds"]))
            elif _emulated_step(s, native):
                emulated_samples.setdefault((r["image"], s["label"], plat), []).append(float(s["seconds"]))
    rows = []
    for (image, label, plat), samples in sorted(emulated_samples.items()):
        ref = native_samples.get((image, label))
        emu = describe(samples)
        nat = describe(ref) if ref else None
        factor = emu.median / nat.median if nat is not None and nat.median > 0 else None
        rows.append({
            "image": image, "step": label, "platform": plat, "n_emulated": emu.n, "n_native": nat.n if nat else 0,
            "emulated_seconds": _round(emu.median), "emulated_min": _round(emu.min), "emulated_max": _round(emu.max),
            "native_seconds": _round(nat.median) if nat else None, "native_min": _round(nat.min) if nat else None,
            "native_max": _round(nat.max) if nat else None,
            "factor": _round(factor, 2) if factor is not None else None,
            "advise": bool(factor is not None and nat is not None and factor >= min_factor
                           and emu.median - nat.median >= min_seconds),
        })
    return rows


def advice(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """One sentence per advised step."""
    out = []
    for row in rows:
        if not row["advise"]:
            continue
        out.append(
            f"{row['image']}: `{row['step']}` takes {row['emulated_seconds']:.1f} s on {row['platform']} under "
            f"QEMU vs {row['native_seconds']:.1f} s natively ({row['factor']:.1f}x). Run that stage on the build "
            "platform and cross-compile for the target: `FROM --platform=$BUILDPLATFORM <image> AS build` with "
            "`ARG TARGETOS TARGETARCH` passed to the compiler (e.g. GOOS/GOARCH, --target), then COPY the result "
            "into the target-platform stage.")
    return out


def compare_reports(baseline: Mapping[str, Any], current: Mapping[str, Any], *, min_tolerance: float = 0.10,
                    small_n_tolerance: float = 0.25) -> dict[str, Any]:
    """Compare wall-time medians per (target, scenario) with :func:`bakery.bench.stats.compare`.

    The tolerance is at least twice the larger CV of the two sides, and at least ``min_tolerance``; with
    fewer than 3 runs on either side the CV says little, so the floor is ``small_n_tolerance``.
    """
    def by_key(report: Mapping[str, Any]) -> dict[tuple[str, str], list[float]]:
        out: dict[tuple[str, str], list[float]] = {}
        for row in report.get("results", []):
            key = (row["target"], row["scenario"])
            if key not in out and row.get("runs"):
                out[key] = [float(x) for x in row["runs"]]
        return out

    base, cur = by_key(baseline), by_key(current)
    rows = []
    for key in sorted(cur, key=lambda k: (list(cur).index(k),)):
        if key not in base:
            continue
        b, c = describe(base[key]), describe(cur[key])
        floor = small_n_tolerance if min(b.n, c.n) < 3 else min_tolerance
        cmp = compare(b, c, min_tolerance=floor)
        rows.append({"target": key[0], "scenario": key[1], "baseline_median": _round(cmp.baseline_median),
                     "current_median": _round(cmp.current_median), "ratio": _round(cmp.ratio),
                     "change": _round(cmp.change), "tolerance": _round(cmp.tolerance), "verdict": cmp.verdict,
                     "n_baseline": b.n, "n_current": c.n})
    missing = sorted(f"{t}/{s}" for t, s in base if (t, s) not in cur)
    notes = []
    env_b, env_c = baseline.get("environment") or {}, current.get("environment") or {}
    for field in ("engine", "buildx", "image_store", "cpus", "native_platform"):
        if env_b.get(field) != env_c.get(field):
            notes.append(f"environment differs: {field} {env_b.get(field)!r} -> {env_c.get(field)!r}")
    return {"rows": rows, "regressions": [r for r in rows if r["verdict"] == "regression"],
            "not_measured": missing, "notes": notes}


def build_report(environment: Mapping[str, Any], settings: Mapping[str, Any], runs: Sequence[Mapping[str, Any]],
                 warnings: Sequence[str] = (), baseline: Mapping[str, Any] | None = None) -> dict[str, Any]:
    native = environment.get("native_platform", "linux/amd64")
    rows = results(runs, settings, native)
    emu = emulation(runs, native)
    report: dict[str, Any] = {
        "schema": SCHEMA, "environment": dict(environment), "settings": dict(settings), "results": rows,
        "targets": target_summary(runs, settings), "emulation": emu, "advice": advice(emu), "comparison": None,
        "warnings": list(warnings), "runs": list(runs),
    }
    seen: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["target"], row["scenario"])
        if row["high_cv"] and key not in seen:
            seen.add(key)
            report["warnings"].append(f"{row['target']} {row['scenario']}: high variation (CV {row['cv']:.0%} "
                                      f"over {row['n']} runs); treat its median with care or add --runs")
    if baseline is not None:
        report["comparison"] = compare_reports(baseline, report)
    return report
