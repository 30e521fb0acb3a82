"""The pure side of ``bakery bench``: what to run, with which bake document, and what a run's output means.

Nothing here talks to docker, a registry or the clock: :mod:`bakery.bench.run` feeds in what it observed
(the rawjson steps, the wall time, the exit code) and gets back plans, documents and JSON-ready records,
so every decision bench makes can be tested on recorded streams (``tests/fixtures/rawjson/bench``).
"""

from __future__ import annotations

import json
import random
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.bench.rawjson import Status
from bakery.bench.steps import Step, critical_path, summarize
from bakery.build import bakefile
from bakery.build.bakefile import TargetInfo
from bakery.config.model import Config, suggest
from bakery.config.variables import VAR_REGISTRY, bake_variables
from bakery.errors import BakeryError

__all__ = [
    "NEEDS_REGISTRY_CACHE", "SCENARIOS", "SHARED", "TOUCH_NAME", "BenchError", "BenchPlan", "BenchRequest",
    "BenchResult", "Observer", "PlannedRun", "TargetRefs", "Touch", "attribute_platform", "base_images",
    "bench_documents", "cache_refs", "choose_scenarios", "choose_touch", "concurrent_steps", "copy_sources",
    "document_key", "failure_message", "incremental_check", "local_base_images", "plan", "plan_bench",
    "primed_settings", "relative", "run_record", "runnable", "scenario_document", "settings_of", "step_record",
]

SCENARIOS: tuple[str, ...] = ("cold", "no-cache", "registry-warm", "incremental", "local-warm")
SHARED = "shared"          # steps of a multi-platform build that belong to no single platform (exports, ...)
TOUCH_NAME = ".bakery-bench-touch"
NEEDS_REGISTRY_CACHE = ("registry-warm", "incremental")


# ================================================================================================ records
class BenchError(BakeryError):
    """A benchmark that cannot run as asked (bad flags, a failing build while priming)."""


@dataclass(frozen=True)
class BenchRequest:
    images: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()      # empty: all, in SCENARIOS order
    runs: int = 3
    seed: int | None = None              # order of scenarios per round; None: random (recorded)


@dataclass(frozen=True)
class PlannedRun:
    seq: int
    round: int
    scenario: str
    target: str


@dataclass(frozen=True)
class Touch:
    """How the incremental scenario invalidates one late step of a target."""

    step: str            # the step's label, e.g. ``COPY test/ /app/test/``
    path: Path           # absolute path of the file added or appended to
    kind: str            # "add-file" (a new file in a copied directory) or "append" (a newline to a copied file)


@dataclass(frozen=True)
class TargetRefs:
    """The registry cache refs bench uses for one target."""

    seed: str       # written once while priming, read by registry-warm / incremental / local-warm
    run: str        # written by every timed run (a real build exports too), never read


@dataclass(frozen=True)
class BenchPlan:
    """Everything decided before the first build: scenarios, targets, bench's cache refs and the run order."""

    scenarios: tuple[str, ...]
    infos: tuple[TargetInfo, ...]
    registry: str
    seed: int
    scope: str
    refs: Mapping[str, TargetRefs]
    rounds: int
    runs: tuple[PlannedRun, ...]


@dataclass
class BenchResult:
    """Everything a report is made of; ``runs`` are JSON-ready dicts (see :func:`run_record`)."""

    environment: dict[str, Any]
    settings: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class Observer:
    """Progress hooks (all no-ops); ``bakery.bench.tasks`` draws a live display from them."""

    def phase(self, text: str) -> None: ...
    def run_started(self, index: int, total: int, run: PlannedRun) -> None: ...
    def statuses(self, statuses: Sequence[Status]) -> None: ...
    def run_finished(self, index: int, total: int, record: Mapping[str, Any]) -> None: ...
    def close(self) -> None: ...


# ================================================================================================ planning
def plan(scenarios: Sequence[str], targets: Sequence[str], runs: int, seed: int) -> list[PlannedRun]:
    """Rounds of all scenarios in a fresh random order each round; every target once per scenario and round."""
    rng = random.Random(seed)
    out: list[PlannedRun] = []
    for rnd in range(1, runs + 1):
        order = list(scenarios)
        rng.shuffle(order)
        for scenario in order:
            for target in targets:
                out.append(PlannedRun(len(out) + 1, rnd, scenario, target))
    return out


def choose_scenarios(config: Config, request: BenchRequest) -> tuple[str, ...]:
    """The requested scenarios in canonical order; the registry ones only with a registry cache."""
    chosen = list(dict.fromkeys(request.scenarios)) or list(SCENARIOS)
    for s in chosen:
        if s not in SCENARIOS:
            raise BenchError(f"--scenario {s!r} is not a scenario; {suggest(s, list(SCENARIOS))}")
    if config.cache.type != "registry":
        needs = [s for s in chosen if s in NEEDS_REGISTRY_CACHE]
        if needs and request.scenarios:
            raise BenchError(f"--scenario {needs[0]} needs cache.type registry (this config has "
                             f"{config.cache.type!r})")
        chosen = [s for s in chosen if s not in NEEDS_REGISTRY_CACHE]
    return tuple(s for s in SCENARIOS if s in chosen)


def cache_refs(config: Config, info: TargetInfo, scope: str, registry: str) -> TargetRefs:
    image = config.images[info.image]
    return TargetRefs(bakefile.cache_ref(config, image, info.group, scope, registry),
                      bakefile.cache_ref(config, image, info.group, f"{scope}-run", registry))


def plan_bench(config: Config, request: BenchRequest, seed: int, scope: str) -> BenchPlan:
    """Check the request and decide the whole bench; ``seed`` and ``scope`` are drawn by the caller."""
    if request.runs < 1:
        raise BenchError(f"--runs must be at least 1, got {request.runs}")
    scenarios = choose_scenarios(config, request)
    names = bakefile.select_targets(config, request.groups, request.images)
    infos = tuple(bakefile.target_infos(config, names))
    registry = bake_variables(config)[VAR_REGISTRY]
    refs = {i.name: cache_refs(config, i, scope, registry) for i in infos}
    runs = plan(scenarios, [i.name for i in infos], request.runs, seed)
    return BenchPlan(scenarios, infos, registry, seed, scope, refs, request.runs, tuple(runs))


def settings_of(config: Config, bench: BenchPlan, started: str) -> dict[str, Any]:
    """The report's ``settings`` as known before the first build."""
    return {
        "scenarios": list(bench.scenarios), "runs": bench.rounds,
        "seed": bench.seed, "cache_scope": bench.scope,
        "targets": {i.name: {"image": i.image, "group": i.group, "platforms": list(i.platforms)}
                    for i in bench.infos},
        "order": [[p.round, p.scenario, p.target] for p in bench.runs],
        "cache_mode": config.cache.mode, "cache_type": config.cache.type,
        "started": started,
    }


def runnable(planned: Iterable[PlannedRun], touches: Mapping[str, Touch | None]) -> list[PlannedRun]:
    """The planned runs left once incremental runs of targets with nothing to touch are dropped."""
    return [p for p in planned if not (p.scenario == "incremental" and touches.get(p.target) is None)]


# ================================================================================================ documents
def scenario_document(doc: Mapping[str, Any], refs: Mapping[str, TargetRefs], *, read_cache: bool,
                      write: str, mode: str, ignore_error: bool = False) -> dict[str, Any]:
    """The generated bake document with each target's cache attributes replaced by bench's own refs.

    ``write`` is ``"seed"``, ``"run"`` or ``"none"``.  Targets not in ``refs`` lose their cache attributes
    (so nothing reads or writes a user's cache).  Everything else is left exactly as generated.
    """
    out: dict[str, Any] = json.loads(json.dumps(doc))
    extra = ",ignore-error=true" if ignore_error else ""
    for name, target in out.get("target", {}).items():
        target.pop("cache-from", None)
        target.pop("cache-to", None)
        ref = refs.get(name)
        if ref is None:
            continue
        if read_cache:
            target["cache-from"] = [f"type=registry,ref={ref.seed}"]
        if write in ("seed", "run"):
            dest = ref.seed if write == "seed" else ref.run
            target["cache-to"] = [f"type=registry,ref={dest},mode={mode}{extra}"]
    return out


def bench_documents(config: Config, doc: Mapping[str, Any], refs: Mapping[str, TargetRefs]) -> dict[str, Any]:
    """The three documents bench bakes with (see :func:`document_key`); without a registry cache none uses one."""
    used = refs if config.cache.type == "registry" else {}
    mode, ignore = config.cache.mode, config.cache.ignore_error
    return {
        "prime": scenario_document(doc, used, read_cache=False, write="seed", mode=mode),
        "cold": scenario_document(doc, used, read_cache=False, write="run", mode=mode, ignore_error=ignore),
        "warm": scenario_document(doc, used, read_cache=True, write="run", mode=mode, ignore_error=ignore),
    }


def document_key(scenario: str) -> str:
    """Which of :func:`bench_documents` a scenario bakes: priming seeds, cold and no-cache import nothing."""
    return "prime" if scenario == "prime" else "cold" if scenario in ("cold", "no-cache") else "warm"


# ================================================================================================ steps
def attribute_platform(step: Step, platforms: Sequence[str]) -> str:
    """The platform of ``platforms`` a step belongs to, or :data:`SHARED`.

    A single-platform build's vertex names carry no platform: every step is that platform's.  In a
    multi-platform build steps without one of the target's platforms (bake definition, context transfer,
    exports, cache import/export, a build-platform stage shared by the cross-compiling platforms) are shared.
    """
    if step.platform is not None and step.platform in platforms:
        return step.platform
    if len(platforms) == 1 and (step.platform is None or step.build_platform is not None):
        return platforms[0]
    return SHARED


def step_record(step: Step, platforms: Sequence[str]) -> dict[str, Any]:
    """A step as stored in the report."""
    kind = "cache-import" if step.is_cache_import else "cache-export" if step.is_cache_export else None
    return {
        "name": step.name, "label": step.label, "platform": attribute_platform(step, platforms),
        "build_platform": step.build_platform, "seconds": round(step.duration, 6), "cached": step.cached,
        "run": step.is_run, "kind": kind, "error": step.error,
    }


_METADATA = re.compile(r"^load metadata for (\S+)$")


def base_images(steps: Iterable[Step]) -> list[str]:
    """The image references a build resolved (``load metadata for <ref>``), in order, without duplicates."""
    out: list[str] = []
    for step in steps:
        match = _METADATA.match(step.label)
        if match and match.group(1) not in out:
            out.append(match.group(1))
    return out


def local_base_images(config: Config, infos: Iterable[TargetInfo],
                      bases: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    """(builder, base image) pairs that live in an image store bench can empty and fill again.

    Base images live in the image store of a docker-driver builder; other drivers keep them in their build
    cache, which the prune empties.
    """
    return list(dict.fromkeys((config.builder_of(i.group).name, b) for i in infos for b in bases[i.name]
                              if config.builder_of(i.group).driver == "docker"))


# ================================================================================================ the touch
def copy_sources(label: str) -> list[str] | None:
    """The build-context sources of a ``COPY``/``ADD`` step label; None if it copies from elsewhere.

    ``--from=`` (another stage or image), heredocs and URLs are not the context; flags are skipped;
    both the shell form and the JSON form are understood.
    """
    word, _, rest = label.partition(" ")
    if word not in ("COPY", "ADD") or "<<" in rest:
        return None
    rest = rest.strip()
    flags: list[str] = []
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        flags.append(flag)
        rest = rest.strip()
    if any(f.startswith("--from") for f in flags):
        return None
    items = _copy_items(rest)
    if items is None or len(items) < 2:
        return None
    sources: list[str] = [str(i) for i in items[:-1]]
    if any("://" in s or s.startswith("git@") for s in sources):
        return None
    return sources


def _copy_items(rest: str) -> list[str] | None:
    """The words of a COPY/ADD after its flags: the JSON form or the shell form; None if neither parses."""
    if rest.startswith("["):
        try:
            items = json.loads(rest)
        except ValueError:
            return None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return None
        return [str(i) for i in items]
    try:
        return shlex.split(rest)
    except ValueError:
        return None


def _depths(steps: Sequence[Step]) -> list[int]:
    """Longest chain of inputs ending at each step (1 for a step without known inputs)."""
    index = {s.digest: i for i, s in enumerate(steps)}
    memo: dict[int, int] = {}

    def depth(i: int, seen: frozenset[int]) -> int:
        if i in memo:
            return memo[i]
        preds = [index[d] for d in steps[i].inputs if d in index and index[d] not in seen and index[d] != i]
        value = 1 + max((depth(p, seen | {i}) for p in preds), default=0)
        memo[i] = value
        return value

    return [depth(i, frozenset()) for i in range(len(steps))]


def _touch_for(label: str, sources: Sequence[str], root: Path) -> Touch | None:
    """How to touch the first usable source of one step: no globs or variables, inside the context, existing."""
    for src in sources:
        if any(ch in src for ch in "*?[$"):
            continue
        path = (root / src.lstrip("/")).resolve()
        if path != root and root not in path.parents:
            continue
        if path.is_dir():
            return Touch(label, path / TOUCH_NAME, "add-file")
        if path.is_file():
            return Touch(label, path, "append")
    return None


def choose_touch(steps: Sequence[Step], context: Path) -> Touch | None:
    """The latest ``COPY``/``ADD`` from the build context (deepest in the step graph) and how to touch it.

    A directory source gets a new file :data:`TOUCH_NAME`; a file source gets a newline appended.  Sources
    with globs or variables, outside the context, or missing are skipped.  None: nothing to touch.
    """
    depths = _depths(steps)
    root = context.resolve()
    best: tuple[int, int, Touch] | None = None
    for order, (step, depth) in enumerate(zip(steps, depths)):
        sources = copy_sources(step.label)
        touch = _touch_for(step.label, sources, root) if sources else None
        if touch is None:
            continue
        key = (depth, -order)
        if best is None or key > best[:2]:
            best = (depth, -order, touch)
    return best[2] if best else None


def relative(path: Path, root: Path) -> str:
    """``path`` as the report shows it: relative to the project root when it is inside it."""
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return str(path)


def primed_settings(bases: Mapping[str, Sequence[str]], touches: Mapping[str, Touch | None],
                    root: Path) -> dict[str, Any]:
    """What priming found, for the report's settings: each target's base images and its incremental touch."""
    return {
        "base_images": {t: list(bs) for t, bs in bases.items()},
        "incremental": {t: ({"step": tc.step, "path": relative(tc.path, root), "kind": tc.kind} if tc else None)
                        for t, tc in touches.items()},
    }


def incremental_check(touch: Touch, steps: Sequence[Step], root: Path,
                      target: str) -> tuple[dict[str, str], list[str]]:
    """The ``touched`` entry of a successful incremental run, and a warning if the touch invalidated nothing."""
    touched = {"step": touch.step, "path": relative(touch.path, root)}
    hit = [s for s in steps if s.label == touch.step]
    warnings = []
    if hit and all(s.cached for s in hit):
        warnings.append(f"{target}: touching {touched['path']} did not invalidate `{touch.step}` "
                        "(excluded by .dockerignore?)")
    return touched, warnings


# ================================================================================================ runs
def concurrent_steps(steps: Sequence[Step], wall: float, slack: float = 0.5) -> list[Step]:
    """Steps that lasted longer than the bake process itself: BuildKit attached this build to a vertex another
    build on the same daemon had already started (identical steps are shared while in progress)."""
    return [s for s in steps if not s.cached and s.duration > wall + slack]


def failure_message(steps: Sequence[Step], tail: Sequence[str], target: str) -> str:
    """One line naming the failed step (platform, label, error) from the rawjson steps, else buildx's last line."""
    failed = next((s for s in steps if s.error and "context canceled" not in s.error), None) \
        or next((s for s in steps if s.error), None)
    if failed is not None:
        where = f"platform {failed.platform}, " if failed.platform else ""
        return f"build of {target} failed: {where}step `{failed.label}`: {failed.error}"
    last = next((ln.strip() for ln in reversed(tail) if ln.strip() and not ln.lstrip().startswith(("{", "}", '"'))),
                "")
    return f"build of {target} failed" + (f": {last}" if last else " (docker buildx bake exited non-zero)")


def run_record(info: TargetInfo, scenario: str, *, code: int, tail: Sequence[str], wall: float,
               steps: Sequence[Step], digest: str | None, notes: Sequence[str]) -> dict[str, Any]:
    """One bake as the report stores it: outcome, wall time, steps, summary and critical path.

    ``notes`` are what the caller observed (a truncated stream); a note is added when steps were shared with
    a concurrent build, because then the wall time measures more than this build.
    """
    error = None if code == 0 else failure_message(steps, tail, info.name)
    notes = list(notes)
    shared = concurrent_steps(steps, wall)
    if shared:
        notes.append(f"{len(shared)} step(s) took longer than the whole bake (e.g. `{shared[0].label}`): "
                     "they were shared with a concurrent build on the same daemon; this run's time is not "
                     "trustworthy")
    summary = summarize(steps)
    path, path_seconds = critical_path(steps)
    return {
        "target": info.name, "image": info.image, "group": info.group, "platforms": list(info.platforms),
        "scenario": scenario, "ok": code == 0, "error": error, "wall": round(wall, 6), "digest": digest,
        "steps": [step_record(s, info.platforms) for s in steps],
        "summary": {
            "steps": summary.steps, "cached_steps": summary.cached_steps,
            "cache_hit_ratio": round(summary.cache_hit_ratio, 4), "run_steps": summary.run_steps,
            "cached_run_steps": summary.cached_run_steps,
            "run_cache_hit_ratio": round(summary.run_cache_hit_ratio, 4) if summary.run_steps else None,
            "step_seconds": round(summary.total_step_seconds, 6),
            "parallelism": round(summary.total_step_seconds / wall, 4) if wall > 0 else 0.0,
            "cache_import_seconds": round(summary.cache_import_seconds, 6),
            "cache_export_seconds": round(summary.cache_export_seconds, 6),
        },
        "critical_path": {"seconds": round(path_seconds, 6), "steps": [s.label for s in path]},
        "notes": notes,
    }
