"""Build steps from decoded rawjson statuses: :func:`collect_steps` merges the vertex updates into
:class:`Step` s, :func:`critical_path` finds the longest chain over the ``inputs`` DAG, and :func:`summarize`
computes accumulated time, wall span, parallelism, cache hit ratios and cache import/export time.

Vertex names as bake 0.13.1 prints them (recorded in ``tests/fixtures/rawjson``)::

    [internal] load local bake definitions                 (bake itself, no target)
    [demo-amd64 internal] load build definition from Dockerfile
    [demo-amd64 2/4] RUN uname -m > /arch                   (single-platform target: no platform)
    [demo-arm linux/arm64 internal] load metadata for 127.0.0.1:5000/base/busybox:1.35
    [demo-arm linux/arm/v7 3/4] RUN sleep 1 && echo done > /done
    [demo-arm] importing cache manifest from 127.0.0.1:5000/fixture/demo:cache-demo-arm
    [demo-arm] exporting to image
    [demo-arm] exporting cache to registry

(``preparing build cache for export`` and ``writing cache manifest ...`` are *status* ids inside the
``exporting cache to registry`` vertex in 0.13, not vertexes.)  Timestamps are aligned per target by
buildx (``progress.ResetTime``): durations are exact, cross-target wall spans are approximate.

Pure: data in, data out.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from heapq import heapify, heappop, heappush
from typing import Any

from bakery.bench.rawjson import RawJsonError, Status, parse_timestamp

__all__ = [
    "Step",
    "Summary",
    "TargetTotals",
    "VertexName",
    "collect_steps",
    "critical_path",
    "parse_vertex_name",
    "summarize",
]


# --------------------------------------------------------------------------------------------------
# Vertex names

_STEP_COUNTER = re.compile(r"\d+/\d+")
_PLATFORM = re.compile(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9_.]+)?")
_KNOWN_OS = frozenset(
    {"aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js", "linux", "netbsd",
     "openbsd", "plan9", "solaris", "wasip1", "windows"}
)  # fmt: skip
# first bracket words that BuildKit/the frontend use themselves, never a bake target
_RESERVED = frozenset({"internal", "auth", "context"})


@dataclass(frozen=True)
class VertexName:
    """A vertex name split into bake target, platform and the rest (``label``)."""

    target: str | None
    platform: str | None
    label: str


def _platform_of(token: str) -> str | None:
    """The build's target platform named by a bracket token, or None if it is not a platform.

    Cross-compiling stages read ``linux/amd64->arm64`` (or ``linux/amd64->windows/amd64``): the
    platform returned is the one built *for* (``linux/arm64``).
    """
    if "->" in token:
        base, _, dest = token.partition("->")
        if not _PLATFORM.fullmatch(base) or not dest:
            return None
        first = dest.split("/", 1)[0]
        return dest if first in _KNOWN_OS else f"{base.split('/', 1)[0]}/{dest}"
    if _STEP_COUNTER.fullmatch(token) or not _PLATFORM.fullmatch(token):
        return None
    return token


def _split(name: str) -> tuple[list[str], str] | None:
    if not name.startswith("["):
        return None
    close = name.find("]")
    if close == -1:
        return None
    return name[1:close].split(), name[close + 1 :].strip()


def _target_token(tokens: list[str], targets: Collection[str] | None) -> str | None:
    """The bake target a bracket starts with; ``targets=None`` answers only unambiguous cases."""
    if not tokens:
        return None
    first = tokens[0]
    if first in _RESERVED or _STEP_COUNTER.fullmatch(first) or _platform_of(first) is not None:
        return None
    if len(tokens) == 2 and _STEP_COUNTER.fullmatch(tokens[1]):
        # "[X 2/4]": a single-platform target X, or a named stage X of an unprefixed build
        return first if targets is not None and first in targets else None
    return first


def parse_vertex_name(name: str, targets: Collection[str] | None = None) -> VertexName:
    """Split a (possibly bake-prefixed) vertex name.

    Shapes handled: ``[target platform stage N/M] RUN ...``, ``[target N/M] ...``,
    ``[target platform internal] ...``, ``[target internal] ...``, ``[target] exporting to image``,
    ``[internal] ...`` (no target), unprefixed ``[platform N/M] ...`` and names without brackets.
    ``[X N/M]`` is ambiguous (target X with an unnamed stage, or stage X without a target): X is taken
    as the target only if it is in ``targets``.  Step counters may be space-padded (`` 2/12``).
    """
    parts = _split(name)
    if parts is None:
        return VertexName(None, None, name.strip())
    tokens, label = parts
    target = _target_token(tokens, targets)
    rest = tokens[1:] if target is not None else tokens
    platform = next((p for p in map(_platform_of, rest) if p is not None), None)
    return VertexName(target, platform, label)


# --------------------------------------------------------------------------------------------------
# Steps

_CACHE_IMPORT_PREFIXES = ("importing cache manifest from",)
_CACHE_EXPORT_PREFIXES = ("exporting cache", "preparing build cache for export", "preparing layers for inline cache")


@dataclass(frozen=True)
class Step:
    """One build vertex after merging all its updates."""

    digest: str
    name: str
    inputs: tuple[str, ...]
    started: datetime | None
    completed: datetime | None
    cached: bool
    error: str | None
    target: str | None
    platform: str | None

    @property
    def duration(self) -> float:
        """``completed - started`` in seconds; 0 unless both are known (never negative)."""
        if self.started is None or self.completed is None:
            return 0.0
        return max(0.0, (self.completed - self.started).total_seconds())

    @property
    def label(self) -> str:
        """The name without its ``[...]`` prefix, e.g. ``RUN uname -m > /arch``."""
        parts = _split(self.name)
        return self.name.strip() if parts is None else parts[1]

    @property
    def build_platform(self) -> str | None:
        """For a cross-compiling stage (``[linux/amd64->arm64 build 4/4]``) the platform it runs on
        (``linux/amd64``); None for every other step."""
        parts = _split(self.name)
        if parts is None:
            return None
        for token in parts[0]:
            base, arrow, _ = token.partition("->")
            if arrow and _PLATFORM.fullmatch(base):
                return base
        return None

    @property
    def is_run(self) -> bool:
        label = self.label
        return label == "RUN" or label.startswith("RUN ")

    @property
    def is_cache_import(self) -> bool:
        return self.label.startswith(_CACHE_IMPORT_PREFIXES)

    @property
    def is_cache_export(self) -> bool:
        return self.label.startswith(_CACHE_EXPORT_PREFIXES)

    @property
    def is_cache_io(self) -> bool:
        return self.is_cache_import or self.is_cache_export


def _optional(vertex: Status, key: str, kind: type, digest: str) -> Any:
    value = vertex.get(key)
    if value is not None and not isinstance(value, kind):
        raise RawJsonError(f"rawjson vertex {digest}: {key!r} has type {type(value).__name__}")
    return value


@dataclass(frozen=True)
class _Merged:
    """A vertex's state so far while its updates are merged."""

    digest: str
    name: str
    inputs: tuple[str, ...] = ()
    started: datetime | None = None
    completed: datetime | None = None
    cached: bool = False
    error: str | None = None


def _merge(entry: _Merged, vertex: Status, name: str) -> _Merged:
    digest = entry.digest
    inputs = _optional(vertex, "inputs", list, digest)
    if inputs is not None and not all(isinstance(i, str) for i in inputs):
        raise RawJsonError(f"rawjson vertex {digest}: 'inputs' must be a list of digests")
    started = _optional(vertex, "started", str, digest)
    completed = _optional(vertex, "completed", str, digest)
    error = _optional(vertex, "error", str, digest)
    return replace(
        entry,
        name=name or entry.name,
        inputs=tuple(inputs) if inputs else entry.inputs,
        started=parse_timestamp(started) if started is not None else entry.started,
        completed=parse_timestamp(completed) if completed is not None else entry.completed,
        cached=entry.cached or bool(_optional(vertex, "cached", bool, digest)),
        error=error or entry.error,
    )


def collect_steps(statuses: Iterable[Status], *, targets: Collection[str] | None = None) -> list[Step]:
    """Merge the ``vertexes`` updates of a status stream into steps, in order of first appearance.

    Updates are merged by digest (and by name, so the same LLB digest reported by two bake targets
    stays two steps); later non-null ``started``/``completed``/``error``/``inputs`` win and ``cached``
    sticks once reported.  Bake targets are recognised from the names (see :func:`parse_vertex_name`);
    pass ``targets`` to resolve ``[X N/M]`` names when the stream alone cannot.
    """
    entries = _merge_updates(statuses)
    known = set(targets or ())
    for entry in entries:
        parts = _split(entry.name)
        if parts is not None:
            found = _target_token(parts[0], None)
            if found is not None:
                known.add(found)
    steps = []
    for entry in entries:
        parsed = parse_vertex_name(entry.name, known)
        steps.append(
            Step(
                digest=entry.digest,
                name=entry.name,
                inputs=entry.inputs,
                started=entry.started,
                completed=entry.completed,
                cached=entry.cached,
                error=entry.error,
                target=parsed.target,
                platform=parsed.platform,
            )
        )
    return steps


def _vertexes(status: Any) -> Iterator[Status]:
    """The ``vertexes`` of one status object, each checked as it is reached."""
    if not isinstance(status, dict):
        raise RawJsonError(f"rawjson status is a {type(status).__name__}, not an object")
    vertexes = status.get("vertexes") or []
    if not isinstance(vertexes, list):
        raise RawJsonError("rawjson status has a 'vertexes' field that is not a list")
    for vertex in vertexes:
        if not isinstance(vertex, dict):
            raise RawJsonError(f"rawjson vertex is a {type(vertex).__name__}, not an object")
        yield vertex


def _merge_updates(statuses: Iterable[Status]) -> list[_Merged]:
    """Every vertex's updates merged, in order of first appearance (see :func:`collect_steps`)."""
    entries: list[_Merged] = []
    by_key: dict[tuple[str, str], int] = {}  # (digest, name) -> index into entries
    latest: dict[str, int] = {}  # digest -> entry of its most recent update
    for status in statuses:
        for vertex in _vertexes(status):
            digest = vertex.get("digest")
            if not isinstance(digest, str) or not digest:
                raise RawJsonError(f"rawjson vertex without a digest (name {vertex.get('name')!r})")
            name: str = _optional(vertex, "name", str, digest) or ""
            index = by_key.get((digest, name))
            if index is None and digest in latest and (not name or not entries[latest[digest]].name):
                index = latest[digest]  # a nameless update, or the first name for a nameless vertex
                if name:
                    by_key[(digest, name)] = index
            if index is None:
                index = by_key[(digest, name)] = len(entries)
                entries.append(_Merged(digest=digest, name=name))
            latest[digest] = index
            entries[index] = _merge(entries[index], vertex, name)
    return entries


# --------------------------------------------------------------------------------------------------
# Critical path


def critical_path(steps: Sequence[Step]) -> tuple[list[Step], float]:
    """The chain through the ``inputs`` DAG with the largest summed :attr:`Step.duration`.

    Inputs that name no known step are ignored; an input digest is resolved to the step of the same
    target first.  Ties go to the longer chain (more steps), then to the step listed first.
    Returns ``(path from source to sink, total seconds)``; ``([], 0.0)`` for no steps.
    """
    steps = list(steps)
    if not steps:
        return [], 0.0
    preds, succs = _graph(steps)
    best, length, via = _longest_chains(steps, preds, succs)
    sink = max(range(len(steps)), key=lambda i: (best[i], length[i], -i))
    total = best[sink]
    path: list[Step] = []
    node: int | None = sink
    while node is not None:
        path.append(steps[node])
        node = via[node]
    path.reverse()
    return path, total


def _graph(steps: Sequence[Step]) -> tuple[list[list[int]], list[list[int]]]:
    """Predecessors and successors of each step (indexes), from the ``inputs`` digests."""
    by_target: dict[tuple[str, str | None], int] = {}
    by_digest: dict[str, int] = {}
    for index, step in enumerate(steps):
        by_target.setdefault((step.digest, step.target), index)
        by_digest.setdefault(step.digest, index)
    preds: list[list[int]] = []
    succs: list[list[int]] = [[] for _ in steps]
    for index, step in enumerate(steps):
        found: list[int] = []
        for digest in step.inputs:
            pred = by_target.get((digest, step.target), by_digest.get(digest))
            if pred is None or pred in found:
                continue
            if pred == index:
                raise RawJsonError(f"rawjson vertex {step.digest} lists itself as an input")
            found.append(pred)
            succs[pred].append(index)
        preds.append(found)
    return preds, succs


def _longest_chains(steps: Sequence[Step], preds: Sequence[Sequence[int]], succs: Sequence[Sequence[int]],
                    ) -> tuple[list[float], list[int], list[int | None]]:
    """Per step, in topological order (lowest index first among the ready): the seconds and the length of
    the longest chain ending there, and the predecessor it comes through."""
    pending = [len(p) for p in preds]
    ready = [i for i, n in enumerate(pending) if n == 0]
    heapify(ready)
    best: list[float] = [0.0] * len(steps)
    length: list[int] = [0] * len(steps)
    via: list[int | None] = [None] * len(steps)
    done = 0
    while ready:
        index = heappop(ready)
        done += 1
        choice = max(preds[index], key=lambda p: (best[p], length[p], -p), default=None)
        base, count = (best[choice], length[choice]) if choice is not None else (0.0, 0)
        best[index] = base + steps[index].duration
        length[index] = count + 1
        via[index] = choice
        for succ in succs[index]:
            pending[succ] -= 1
            if pending[succ] == 0:
                heappush(ready, succ)
    if done != len(steps):
        stuck = next(i for i, n in enumerate(pending) if n > 0)
        raise RawJsonError(f"rawjson vertex graph has a cycle through {steps[stuck].digest}")
    return best, length, via


# --------------------------------------------------------------------------------------------------
# Summary


@dataclass(frozen=True)
class TargetTotals:
    """Step counts and accumulated step seconds for one (target, platform); either may be None."""

    target: str | None
    platform: str | None
    steps: int
    cached_steps: int
    run_steps: int
    cached_run_steps: int
    seconds: float


@dataclass(frozen=True)
class Summary:
    """Aggregate timing of one build (one rawjson stream).

    ``cache_hit_ratio`` counts every step (like BuildKit's ``numCachedSteps/numTotalSteps``, internal
    steps included); ``run_cache_hit_ratio`` counts RUN steps only.  Ratios are 0 when there is
    nothing to count.  ``wall_seconds`` spans first ``started`` to last ``completed`` (approximate
    across bake targets, see the module docstring); ``parallelism`` is total step time over wall time.
    """

    steps: int
    cached_steps: int
    cache_hit_ratio: float
    run_steps: int
    cached_run_steps: int
    run_cache_hit_ratio: float
    errored_steps: int
    total_step_seconds: float
    wall_seconds: float
    parallelism: float
    cache_import_seconds: float
    cache_export_seconds: float
    per_target: tuple[TargetTotals, ...]

    def totals_for(self, target: str | None, platform: str | None) -> TargetTotals | None:
        return next((t for t in self.per_target if t.target == target and t.platform == platform), None)


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def summarize(steps: Iterable[Step]) -> Summary:
    """Aggregate steps into a :class:`Summary` (per-target totals sorted by target, platform)."""
    steps = list(steps)
    starts = [s.started for s in steps if s.started is not None]
    ends = [s.completed for s in steps if s.completed is not None]
    wall = max(0.0, (max(ends) - min(starts)).total_seconds()) if starts and ends else 0.0
    total = sum(s.duration for s in steps)
    runs = [s for s in steps if s.is_run]
    cached = sum(s.cached for s in steps)
    cached_runs = sum(s.cached for s in runs)

    groups: dict[tuple[str | None, str | None], list[Step]] = {}
    for step in steps:
        groups.setdefault((step.target, step.platform), []).append(step)
    per_target = tuple(
        TargetTotals(
            target=target,
            platform=platform,
            steps=len(group),
            cached_steps=sum(s.cached for s in group),
            run_steps=sum(s.is_run for s in group),
            cached_run_steps=sum(s.cached and s.is_run for s in group),
            seconds=sum(s.duration for s in group),
        )
        for (target, platform), group in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", kv[0][1] or ""))
    )
    return Summary(
        steps=len(steps),
        cached_steps=cached,
        cache_hit_ratio=_ratio(cached, len(steps)),
        run_steps=len(runs),
        cached_run_steps=cached_runs,
        run_cache_hit_ratio=_ratio(cached_runs, len(runs)),
        errored_steps=sum(s.error is not None for s in steps),
        total_step_seconds=total,
        wall_seconds=wall,
        parallelism=_ratio(total, wall),
        cache_import_seconds=sum(s.duration for s in steps if s.is_cache_import),
        cache_export_seconds=sum(s.duration for s in steps if s.is_cache_export),
        per_target=per_target,
    )
