"""Bench report (pure): results table, emulation advice, baseline comparison, Markdown and a hand-written SVG.

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
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from bakery.bench.stats import Stats, compare, describe, high_cv

__all__ = [
    "CV_WARNING", "SCENARIO_ORDER", "build_report", "compare_reports", "emulation", "results", "target_summary",
    "to_markdown", "to_svg",
]

SCHEMA = 1
SCENARIO_ORDER = ("cold", "no-cache", "registry-warm", "incremental", "local-warm")
CV_WARNING = 0.10
SHARED = "shared"


def _median(values: Sequence[float]) -> float:
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


def _scenario_key(name: str) -> int:
    return SCENARIO_ORDER.index(name) if name in SCENARIO_ORDER else len(SCENARIO_ORDER)


def _targets_in_order(runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[str]:
    order = list((settings.get("targets") or {}).keys())
    for r in runs:
        if r["target"] not in order:
            order.append(r["target"])
    return order


def _is_emulated(platform: str, native: str) -> bool:
    def split(p: str) -> tuple[str, ...]:
        return tuple(p.split("/")[:2])
    return split(platform) != split(native)


def _emulated_step(step: Mapping[str, Any], native: str) -> bool:
    """A RUN step that executed (not cached, no error) under emulation: not a cross-compiling stage."""
    plat = step.get("platform") or SHARED
    return (bool(step.get("run")) and not step.get("cached") and not step.get("error")
            and plat != SHARED and step.get("build_platform") is None and _is_emulated(plat, native))


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
            for scenario in sorted({r["scenario"] for r in mine}, key=_scenario_key):
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
                    "platforms": platforms, "emulated": _is_emulated(platform, native), "scenario": scenario,
                    "runs": walls, **_stats_fields(describe(walls) if walls else None),
                    **per, "platform_median": _round(_median(per["platform_seconds"])),
                    "failures": len(group) - len(ok),
                })
    return rows


def _optional_median(values: Sequence[float | None]) -> float | None:
    """Median of the known values; None when there are none (e.g. a RUN hit ratio without RUN steps)."""
    known = [v for v in values if v is not None]
    return _round(_median(known)) if known else None


def target_summary(runs: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per (target, scenario): medians of the whole-build signals, and the critical path of the median run."""
    out: list[dict[str, Any]] = []
    for target in _targets_in_order(runs, settings):
        mine = [r for r in runs if r["target"] == target and r.get("ok")]
        for scenario in sorted({r["scenario"] for r in mine}, key=_scenario_key):
            group = sorted((r for r in mine if r["scenario"] == scenario), key=lambda r: (r["wall"], r.get("seq", 0)))
            middle = group[(len(group) - 1) // 2]
            out.append({
                "target": target, "scenario": scenario, "n": len(group),
                "median": _round(_median([r["wall"] for r in group])),
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
            if plat == native or (s.get("build_platform") is None and not _is_emulated(plat, native)):
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


# ============================================================================================ Markdown
def _s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0%}"


def to_markdown(report: Mapping[str, Any]) -> str:
    env = report["environment"]
    settings = report["settings"]
    out: list[str] = ["# bakery bench report", ""]
    qemu = ", ".join(f"{p}: {q.get('version') or 'missing'}" for p, q in sorted((env.get("qemu") or {}).items()))
    out += [
        f"- Engine {env.get('engine')} ({env.get('image_store')} image store), buildx {env.get('buildx')}, "
        f"BuildKit {env.get('buildkit') or '?'}, builders: "
        + (", ".join(f"`{n}` ({b.get('driver')} driver)" for n, b in (env.get("builders") or {}).items()) or "?"),
        f"- {env.get('cpus')} CPUs, native platform {env.get('native_platform')}, kernel {env.get('kernel')}",
        f"- QEMU: {qemu or 'not used'}",
        f"- Registry: {(env.get('registry') or {}).get('url')} (cache mode {settings.get('cache_mode')}, "
        f"scope `{settings.get('cache_scope')}`, removed afterwards)",
        f"- {settings.get('runs')} run(s) per scenario, interleaved in random order (seed {settings.get('seed')}), "
        f"{settings.get('started')} to {settings.get('finished')}",
        "",
        "## Wall time per target and scenario",
        "",
        "Seconds of the `docker buildx bake` process (monotonic clock). The platforms of a group build together.",
        "",
        "| target | platforms | scenario | n | median | min | max | IQR | CV | RUN cache hits | parallelism "
        "| cache import | cache export |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    summaries = {(t["target"], t["scenario"]): t for t in report.get("targets", [])}
    done: set[tuple[str, str]] = set()
    for row in report["results"]:
        key = (row["target"], row["scenario"])
        if key in done:
            continue
        done.add(key)
        summ = summaries.get(key, {})
        flag = " ⚠" if row["high_cv"] else ""
        out.append(f"| {row['target']} | {', '.join(row['platforms'])} | {row['scenario']} | {row['n']} | "
                   f"{_s(row['median'])} | {_s(row['min'])} | {_s(row['max'])} | {_s(row['iqr'])} | "
                   f"{_pct(row['cv'])}{flag} | {_pct(summ.get('run_cache_hit_ratio'))} | "
                   f"{_s(summ.get('parallelism'))} | {_s(summ.get('cache_import_seconds'))} | "
                   f"{_s(summ.get('cache_export_seconds'))} |")
    out += ["", "## Per platform", "",
            "Step seconds attributed to each platform (median over runs; shared steps such as exports left out), "
            "the part of it spent in RUN steps under QEMU, and cached/all steps of the median run.", "",
            "| target | platform | scenario | step time | emulated RUN time | cached steps | cached RUN steps |",
            "|---|---|---|--:|--:|--:|--:|"]
    for row in report["results"]:
        emu = _s(_median(row["emulated_run_seconds"])) if row["emulated"] else "native"
        mid = (len(row["steps"]) - 1) // 2 if row["steps"] else None
        cached = f"{row['cached_steps'][mid]}/{row['steps'][mid]}" if mid is not None else "-"
        cached_run = f"{row['cached_run_steps'][mid]}/{row['run_steps'][mid]}" if mid is not None else "-"
        out.append(f"| {row['target']} | {row['platform']} | {row['scenario']} | {_s(row['platform_median'])} | "
                   f"{emu} | {cached} | {cached_run} |")
    out += ["", "## Critical path", "",
            "Longest chain of dependent steps in the median run (seconds of executed steps).", ""]
    for summ in report.get("targets", []):
        if summ["scenario"] not in ("cold", "incremental"):
            continue
        path = summ["critical_path"]
        chain = " → ".join(f"`{_short(_md_cell(s))}`" for s in path["steps"][-6:])
        more = "… → " if len(path["steps"]) > 6 else ""
        out.append(f"- {summ['target']} {summ['scenario']}: {_s(path['seconds'])} s: {more}{chain}")
    out += ["", "## Emulation cost", ""]
    if report.get("emulation"):
        out += ["| image | step | platform | native s | emulated s | factor |", "|---|---|---|--:|--:|--:|"]
        for row in report["emulation"]:
            factor = f"{row['factor']:.1f}x" if row["factor"] is not None else "no native build"
            out.append(f"| {row['image']} | `{_short(_md_cell(row['step']), 70)}` | {row['platform']} | "
                       f"{_s(row['native_seconds'])} | {_s(row['emulated_seconds'])} | {factor} |")
        out.append("")
    else:
        out += ["No RUN step executed under emulation.", ""]
    if report.get("advice"):
        out += ["Advice:", ""] + [f"- {a}" for a in report["advice"]] + [""]
    elif report.get("emulation"):
        out += ["No emulated RUN step is far above its native time (>= 3x and >= 1 s longer): nothing to move "
                "to a cross-compiling `FROM --platform=$BUILDPLATFORM` stage.", ""]
    comparison = report.get("comparison")
    if comparison:
        out += ["## Against the baseline", "",
                "| target | scenario | baseline median | median | change | tolerance | verdict |",
                "|---|---|--:|--:|--:|--:|---|"]
        for row in comparison["rows"]:
            out.append(f"| {row['target']} | {row['scenario']} | {_s(row['baseline_median'])} | "
                       f"{_s(row['current_median'])} | {row['change']:+.0%} | ±{row['tolerance']:.0%} | "
                       f"{'**regression**' if row['verdict'] == 'regression' else row['verdict']} |")
        out += [""] + [f"- {n}" for n in comparison["notes"]] + ([""] if comparison["notes"] else [])
    if report.get("warnings"):
        out += ["## Warnings", ""] + [f"- {w}" for w in report["warnings"]] + [""]
    return "\n".join(out).rstrip("\n") + "\n"


def _short(text: str, width: int = 60) -> str:
    text = re.sub(r"@sha256:[0-9a-f]{64}", "", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


# ============================================================================================ SVG
COLORS = {"cold": "#c0392b", "no-cache": "#e67e22", "registry-warm": "#2471a3", "incremental": "#7d3c98",
          "local-warm": "#229954"}
NATIVE_COLOR = "#7f8c8d"
EMULATED_COLOR = "#a04000"
WIDTH = 860
LABEL_W = 150
BAR_H = 16
GAP = 6


def _nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value."""
    if value <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt(v: float) -> str:
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int = 12, weight: str = "normal",
          fill: str = "#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" font-weight="{weight}" fill="{fill}" '
            f'text-anchor="{anchor}">{escape(text)}</text>')


def _panel(title: str, bars: Sequence[tuple[str, float, float, float, str, str]], top: float) -> tuple[list[str], float]:
    """Horizontal bars (label, value, low, high, colour, note) with an axis; returns (svg parts, height)."""
    parts = [_text(10, top + 16, title, size=13, weight="bold")]
    y0 = top + 28
    plot_w = WIDTH - LABEL_W - 190
    top_value = max((max(b[1], b[3]) for b in bars), default=1.0)
    step = _nice_max(top_value / 4)
    count = max(1, math.ceil(top_value / step - 1e-9))
    vmax = step * count
    scale = plot_w / vmax
    for i in range(count + 1):
        tick = step * i
        x = LABEL_W + tick * scale
        parts.append(f'<line x1="{x:.1f}" y1="{y0 - 4:.1f}" x2="{x:.1f}" '
                     f'y2="{y0 + len(bars) * (BAR_H + GAP):.1f}" stroke="#ddd" stroke-width="1"/>')
        parts.append(_text(x, y0 + len(bars) * (BAR_H + GAP) + 12, f"{tick:g} s", anchor="middle", size=10,
                           fill="#666"))
    for i, (label, value, low, high, colour, note) in enumerate(bars):
        y = y0 + i * (BAR_H + GAP)
        parts.append(_text(LABEL_W - 8, y + BAR_H - 4, label, anchor="end", size=11))
        parts.append(f'<rect x="{LABEL_W}" y="{y:.1f}" width="{max(value * scale, 1):.1f}" height="{BAR_H}" '
                     f'fill="{colour}"><title>{escape(label)}: {value:.3f} s</title></rect>')
        if high > low:
            cy = y + BAR_H / 2
            parts.append(f'<line x1="{LABEL_W + low * scale:.1f}" y1="{cy:.1f}" x2="{LABEL_W + high * scale:.1f}" '
                         f'y2="{cy:.1f}" stroke="#111" stroke-width="1.5"/>')
            for end in (low, high):
                parts.append(f'<line x1="{LABEL_W + end * scale:.1f}" y1="{cy - 4:.1f}" '
                             f'x2="{LABEL_W + end * scale:.1f}" y2="{cy + 4:.1f}" stroke="#111" stroke-width="1.5"/>')
        parts.append(_text(LABEL_W + max(value, high) * scale + 6, y + BAR_H - 4,
                           f"{_fmt(value)} s{('  ' + note) if note else ''}", size=11))
    return parts, 28 + len(bars) * (BAR_H + GAP) + 26


def to_svg(report: Mapping[str, Any]) -> str:
    """Per target: a bar per scenario (median wall time, whisker min-max); per image: each emulated RUN step on
    the native platform and on every emulated platform (median seconds when it executed, whisker min-max)."""
    env = report["environment"]
    parts: list[str] = []
    top = 44.0
    seen: set[str] = set()
    for row in report["results"]:
        if row["target"] in seen:
            continue
        seen.add(row["target"])
        mine = {r["scenario"]: r for r in report["results"] if r["target"] == row["target"]}
        bars = [(s, r["median"] or 0.0, r["min"] or 0.0, r["max"] or 0.0, COLORS.get(s, "#555"),
                 f"(n={r['n']}" + (", high CV)" if r["high_cv"] else ")"))
                for s, r in sorted(mine.items(), key=lambda kv: _scenario_key(kv[0])) if r["n"]]
        if not bars:
            continue
        panel, height = _panel(f"{row['target']}  ({', '.join(row['platforms'])}): wall time per scenario", bars, top)
        parts += panel
        top += height
    for title, bars in _emulation_bars(report).items():
        panel, height = _panel(title, bars, top)
        parts += panel
        top += height
    legend = [f'<rect x="{10 + i * 150}" y="{top + 2:.1f}" width="12" height="12" fill="{c}"/>'
              + _text(10 + i * 150 + 18, top + 12, s, size=11) for i, (s, c) in enumerate(COLORS.items())]
    legend += [f'<rect x="10" y="{top + 22:.1f}" width="12" height="12" fill="{NATIVE_COLOR}"/>'
               + _text(28, top + 32, "native", size=11),
               f'<rect x="160" y="{top + 22:.1f}" width="12" height="12" fill="{EMULATED_COLOR}"/>'
               + _text(178, top + 32, "emulated (QEMU)", size=11),
               _text(310, top + 32, "bars: median; whiskers: min-max", size=11, fill="#555")]
    height = top + 48
    title = (f"bakery bench: engine {env.get('engine')}, buildx {env.get('buildx')}, {env.get('cpus')} CPUs, "
             f"{report['settings'].get('runs')} run(s) per scenario")
    head = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
            f'viewBox="0 0 {WIDTH} {height:.0f}" font-family="DejaVu Sans, Arial, sans-serif">',
            f'<rect width="{WIDTH}" height="{height:.0f}" fill="#fff"/>', _text(10, 24, title, size=15, weight="bold")]
    return "\n".join(head + parts + legend + ["</svg>"]) + "\n"


def _emulation_bars(report: Mapping[str, Any]) -> dict[str, list[tuple[str, float, float, float, str, str]]]:
    """Per emulated RUN step (panel title -> bars): native, then each emulated platform (median, min-max)."""
    native = report["environment"].get("native_platform", "linux/amd64")
    out: dict[str, list[tuple[str, float, float, float, str, str]]] = {}
    by_step: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in report.get("emulation", []):
        by_step.setdefault((row["image"], row["step"]), []).append(row)
    for (image, step), rows in by_step.items():
        short = step if len(step) <= 70 else step[:67] + "..."
        bars = out.setdefault(f"{image}: {short}  (emulation cost)", [])
        first = rows[0]
        if first["native_seconds"] is not None:
            bars.append((f"{native}", first["native_seconds"], first["native_min"], first["native_max"],
                         NATIVE_COLOR, f"(n={first['n_native']})"))
        for row in sorted(rows, key=lambda r: r["platform"]):
            note = f"{row['factor']:.1f}x native" if row["factor"] is not None else "no native build"
            bars.append((row["platform"], row["emulated_seconds"], row["emulated_min"], row["emulated_max"],
                         EMULATED_COLOR, f"(n={row['n_emulated']}) {note}"))
    return out
