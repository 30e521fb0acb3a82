"""Running bake on several builders at once: one ``docker buildx bake`` per builder (or per target on a builder
with ``max_parallel``), bounded, with the first failure cancelling the rest and naming its builder.

bake itself runs every target it is given at once and has no concurrency limit (docker/buildx#359): a builder's
``max_parallel: N`` makes bakery run that builder's targets as single-target bakes, N at a time.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.build.bakefile import TargetInfo
from bakery.config.model import Builder, Config
from bakery.build.steps import StepCount
from bakery.docker import Docker, describe, docker_for
from bakery.errors import BakeryError


def by_builder(config: Config, targets: Sequence[TargetInfo]) -> dict[str, list[TargetInfo]]:
    """Targets per builder, in config order; builders without selected targets are left out."""
    out: dict[str, list[TargetInfo]] = {}
    for t in targets:
        out.setdefault(config.builder_of(t.group).name, []).append(t)
    return out


@dataclass(frozen=True)
class Job:
    builder: Builder
    targets: tuple[TargetInfo, ...]
    metadata: Path            # absolute path of this job's --metadata-file
    label: str = ""           # how its output lines are prefixed when several bakes run


@dataclass(frozen=True)
class BakeOptions:
    files: tuple[Path, ...]   # relative to cwd
    variables: Mapping[str, str]
    cwd: Path
    push: bool = False
    load: bool = False
    no_cache: bool = False
    progress: str = "plain"
    allow: tuple[str, ...] = ()   # --allow grants the file needs (buildx >= 0.17)
    cache_export: bool = True     # False: read the cache, write none (no push rights)
    sets: tuple[str, ...] = ()    # --set overrides (build.overrides)
    log_groups: bool = False      # GitHub Actions: fold each bake's output (::group::), when bakes run one at a time
    provenance: str | None = None
    sbom: str | None = None

    def argv(self, docker: Docker, targets: Sequence[str], **extra: Any) -> list[str]:
        """The ``docker buildx bake`` argv of these options for ``targets`` (``extra``: the per-job
        ``metadata_file`` and ``progress``, or ``print_only``)."""
        return docker.bake_argv(self.files, targets, push=self.push, load=self.load, no_cache=self.no_cache,
                                allow=self.allow, cache_export=self.cache_export, sets=self.sets,
                                provenance=self.provenance, sbom=self.sbom, **extra)


def jobs_for(plan: Mapping[str, Sequence[TargetInfo]], builders: Mapping[str, Builder], out_dir: Path,
             token: str, contexts: Mapping[str, str] | None = None) -> list[Job]:
    """Jobs in plan order: one per builder, or one per target on a builder with ``max_parallel``.

    With ``contexts`` (target -> build context; see :func:`rounds`), a builder's targets that share a context go to
    separate bakes, run side by side: buildx >= 0.17 gives targets of one bake that share a local context one
    session, and BuildKit then keeps only one target's cache imports for the shared steps (docs/stack.md); bakes of
    their own (one session each) keep every target's imports, also when they run at once.
    """
    jobs = []
    for name, targets in plan.items():
        b = builders[name]
        if b.max_parallel is not None:
            groups = [[t] for t in targets]
        elif contexts is not None:
            groups = rounds(targets, contexts)
        else:
            groups = [list(targets)]
        for i, chunk in enumerate(groups):
            label = f"{name} {chunk[0].name}" if b.max_parallel is not None else \
                f"{name} {i + 1}/{len(groups)}" if len(groups) > 1 else name
            jobs.append(Job(b, tuple(chunk), out_dir / f".metadata-{token}-{name}-{i}.json", label))
    return jobs


def rounds(targets: Sequence[TargetInfo], contexts: Mapping[str, str]) -> list[list[TargetInfo]]:
    """Targets split so that no two in one round share a build context: round i holds the i-th target of every
    context (the example's amd64 targets, then its arm ones); a single round when no context is shared."""
    seen: dict[str, int] = {}
    out: list[list[TargetInfo]] = []
    for t in targets:
        i = seen.get(contexts[t.name], 0)
        seen[contexts[t.name]] = i + 1
        if i == len(out):
            out.append([])
        out[i].append(t)
    return out


@dataclass
class _Run:
    failures: list[str] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: bool = False
    verdict: BaseException | None = None      # what ``beside`` (the preflight) raised


def run_jobs(base: Docker, jobs: Sequence[Job], options: BakeOptions, explain: Any,
             fanout: int | None = None, stats: dict[str, dict[str, Any]] | None = None,
             beside: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run every job; return the merged metadata (target -> exporter response) or raise naming the builder.

    ``explain(tail_lines, targets)`` turns a failed bake's output into a message. ``stats``, when given, gets per
    target the wall time of the bake that built it (``seconds``) and its Dockerfile steps and cache hits
    (``steps``, ``cached``: plain progress only). ``beside`` (the preflight) runs in a thread of its own while
    the bakes run: when it raises, the bakes are stopped and its error is the one raised, whatever the bakes
    said; the jobs' result stands only once it returned.
    """
    state = _Run()
    watcher = _watch(state, beside) if beside is not None else None
    single = len(jobs) == 1
    builders_in_order = list(dict.fromkeys(j.builder.name for j in jobs))
    # one bake at a time (a single job, or one builder with max_parallel 1): their outputs never interleave
    sequential = single or (len(builders_in_order) == 1 and jobs[0].builder.max_parallel == 1)

    def run(job: Job) -> None:
        if state.cancelled:
            return
        docker = docker_for(base, job.builder)
        argv = options.argv(docker, [t.name for t in job.targets], progress=options.progress,
                            metadata_file=job.metadata.relative_to(options.cwd))
        label = job.label
        started = time.monotonic()
        fold = options.log_groups and sequential
        if fold:
            print(f"::group::bake {' '.join(t.name for t in job.targets)}", file=docker.runner.out, flush=True)
        for attempt in range(1, ATTEMPTS + 1):
            counted = StepCount()
            code, tail = docker.runner.stream(
                argv, env={**(docker.env or {}), **options.variables}, cwd=options.cwd,
                capture=options.progress not in ("tty", "auto") or not single,
                prefix="" if single else f"[{label}] ", on_start=lambda p: _started(state, p),
                on_line=counted.feed if options.progress == "plain" else None)
            if code == 0 or state.cancelled or attempt == ATTEMPTS or not transient(tail):
                break
            # registry 2.8 answers 5xx now and then while a tag is being written (a HEAD reads a half-written
            # link); the build itself is cached by now, so running the bake again only redoes the push
            print(f"bakery: {describe(job.builder)}: the registry answered {transient(tail)}; running the bake "
                  f"again in {attempt} s ({attempt + 1} of {ATTEMPTS})", file=docker.runner.out, flush=True)
            time.sleep(attempt)
        if fold:
            print("::endgroup::", file=docker.runner.out, flush=True)
        if stats is not None and code == 0:
            with state.lock:
                for t in job.targets:
                    stats[t.name] = {"seconds": round(time.monotonic() - started, 3), **(counted.of(t.name, len(job.targets) == 1) or {})}
        if code != 0 and not state.cancelled:
            named = len(builders_in_order) > 1 or not job.builder.implicit
            message = f"{describe(job.builder)}: " * named + explain(tail, list(job.targets))
            with state.lock:
                state.failures.append(message)
                state.cancelled = True
                others = list(state.procs.values())
            _interrupt(others)       # stop the other builders' bakes: nothing will be published anyway

    def run_builder(name: str) -> None:
        mine = [j for j in jobs if j.builder.name == name]
        # rounds (no max_parallel) all at once; a dry run prints them in order
        width = mine[0].builder.max_parallel or (1 if base.runner.dry_run else len(mine))
        if width == 1 or len(mine) == 1:
            for job in mine:
                run(job)
            return
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"bake-{name}") as pool:
            try:
                list(pool.map(run, mine))
            except BaseException:
                _stop(state)
                raise

    try:
        if len(builders_in_order) == 1:
            run_builder(builders_in_order[0])
        else:
            with ThreadPoolExecutor(max_workers=fanout or len(builders_in_order), thread_name_prefix="fanout") as pool:
                try:
                    list(pool.map(run_builder, builders_in_order))
                except BaseException:
                    _stop(state)   # SIGTERM reaches only bakery: stop the bakes before the pool waits for them
                    raise
        if watcher is not None:
            watcher.join()
        if state.verdict is not None:
            raise state.verdict
        if state.failures:
            raise BakeryError(state.failures[0])
        merged: dict[str, Any] = {}
        if base.runner.dry_run:
            return merged
        for job in jobs:
            try:
                merged.update(json.loads(job.metadata.read_text()))
            except (OSError, ValueError):
                raise BakeryError(f"{describe(job.builder)}: bake wrote no metadata for "
                                  f"{', '.join(t.name for t in job.targets)}") from None
        return merged
    finally:
        for job in jobs:
            job.metadata.unlink(missing_ok=True)


ATTEMPTS = 3          # a bake that failed on a registry 5xx alone runs at most this often

_TRANSIENT = re.compile(r"\b(50[0234] (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout))")


def transient(tail: Sequence[str]) -> str:
    """The registry 5xx a failed bake reports in its final error, or "" when the failure is anything else."""
    for line in reversed(tail):
        if line.startswith("ERROR:") or " ERROR: " in line:
            m = _TRANSIENT.search(line)
            if m:
                return m.group(1)
    return ""


def _watch(state: _Run, beside: Callable[[], None]) -> threading.Thread:
    """Run ``beside`` in a thread; what it raises becomes ``state.verdict`` and stops the running bakes."""
    def watch() -> None:
        try:
            beside()
        except BaseException as exc:        # handed to the caller's thread
            state.verdict = exc
            _stop(state)
    thread = threading.Thread(target=watch, name="preflight-watch", daemon=True)
    thread.start()
    return thread


def _stop(state: _Run) -> None:
    with state.lock:
        state.cancelled = True
        running = list(state.procs.values())
    _interrupt(running)


STOP_PAUSE = 1.0      # seconds between the SIGINTs that stop a bake
STOP_SIGNALS = 3      # the docker CLI cancels its plugin on the first it catches, kills it on the third


def _interrupt(procs: Sequence[subprocess.Popen[str]]) -> None:
    """SIGINT each running bake, again every STOP_PAUSE while it runs (at most STOP_SIGNALS times): a docker CLI
    that has only just started has no handler yet and drops the first, as it would a Ctrl-C."""
    def keep_at_it() -> None:
        for _ in range(STOP_SIGNALS):
            alive = [p for p in procs if p.poll() is None]
            if not alive:
                return
            for proc in alive:
                proc.send_signal(signal.SIGINT)
            time.sleep(STOP_PAUSE)
    threading.Thread(target=keep_at_it, name="stop-bakes", daemon=True).start()


def _started(state: _Run, proc: subprocess.Popen[str]) -> None:
    with state.lock:
        state.procs[proc.pid] = proc
        cancelled = state.cancelled
    if cancelled:
        _interrupt([proc])
