"""Bench report rendering (pure): the Markdown report and a hand-written SVG chart of a report document
(:func:`bakery.bench.report.build_report`), so that reading it needs nothing but a browser."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from bakery.bench.report import median, scenario_key

__all__ = ["to_markdown", "to_svg"]


# ============================================================================================ Markdown
def _s(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.0%}"


def to_markdown(report: Mapping[str, Any]) -> str:
    """The report for people: environment, wall times, per-platform times, critical paths, emulation cost,
    the baseline comparison and the warnings, one section each."""
    sections = (_md_environment, _md_wall_times, _md_platforms, _md_critical_paths, _md_emulation,
                _md_comparison, _md_warnings)
    out: list[str] = ["# bakery bench report", ""]
    for section in sections:
        out += section(report)
    return "\n".join(out).rstrip("\n") + "\n"


def _md_environment(report: Mapping[str, Any]) -> list[str]:
    env = report["environment"]
    settings = report["settings"]
    qemu = ", ".join(f"{p}: {q.get('version') or 'missing'}" for p, q in sorted((env.get("qemu") or {}).items()))
    return [
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
    ]


def _md_wall_times(report: Mapping[str, Any]) -> list[str]:
    out = [
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
    return out


def _md_platforms(report: Mapping[str, Any]) -> list[str]:
    out = ["", "## Per platform", "",
           "Step seconds attributed to each platform (median over runs; shared steps such as exports left out), "
           "the part of it spent in RUN steps under QEMU, and cached/all steps of the median run.", "",
           "| target | platform | scenario | step time | emulated RUN time | cached steps | cached RUN steps |",
           "|---|---|---|--:|--:|--:|--:|"]
    for row in report["results"]:
        emu = _s(median(row["emulated_run_seconds"])) if row["emulated"] else "native"
        mid = (len(row["steps"]) - 1) // 2 if row["steps"] else None
        cached = f"{row['cached_steps'][mid]}/{row['steps'][mid]}" if mid is not None else "-"
        cached_run = f"{row['cached_run_steps'][mid]}/{row['run_steps'][mid]}" if mid is not None else "-"
        out.append(f"| {row['target']} | {row['platform']} | {row['scenario']} | {_s(row['platform_median'])} | "
                   f"{emu} | {cached} | {cached_run} |")
    return out


def _md_critical_paths(report: Mapping[str, Any]) -> list[str]:
    out = ["", "## Critical path", "",
           "Longest chain of dependent steps in the median run (seconds of executed steps).", ""]
    for summ in report.get("targets", []):
        if summ["scenario"] not in ("cold", "incremental"):
            continue
        path = summ["critical_path"]
        chain = " → ".join(f"`{_short(_md_cell(s))}`" for s in path["steps"][-6:])
        more = "… → " if len(path["steps"]) > 6 else ""
        out.append(f"- {summ['target']} {summ['scenario']}: {_s(path['seconds'])} s: {more}{chain}")
    return out


def _md_emulation(report: Mapping[str, Any]) -> list[str]:
    out = ["", "## Emulation cost", ""]
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
    return out


def _md_comparison(report: Mapping[str, Any]) -> list[str]:
    comparison = report.get("comparison")
    if not comparison:
        return []
    out = ["## Against the baseline", "",
           "| target | scenario | baseline median | median | change | tolerance | verdict |",
           "|---|---|--:|--:|--:|--:|---|"]
    for row in comparison["rows"]:
        out.append(f"| {row['target']} | {row['scenario']} | {_s(row['baseline_median'])} | "
                   f"{_s(row['current_median'])} | {row['change']:+.0%} | ±{row['tolerance']:.0%} | "
                   f"{'**regression**' if row['verdict'] == 'regression' else row['verdict']} |")
    return out + [""] + [f"- {n}" for n in comparison["notes"]] + ([""] if comparison["notes"] else [])


def _md_warnings(report: Mapping[str, Any]) -> list[str]:
    if not report.get("warnings"):
        return []
    return ["## Warnings", ""] + [f"- {w}" for w in report["warnings"]] + [""]


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
                for s, r in sorted(mine.items(), key=lambda kv: scenario_key(kv[0])) if r["n"]]
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
