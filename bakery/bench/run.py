"""``bakery bench``: time builds per target (image x platform group) and platform under five cache scenarios.

Scenarios (each one bake invocation of ONE target; the platforms of a multi-platform group are built
together, as in a real build, and attributed afterwards from the rawjson step names):

``cold``           build cache pruned (``docker buildx prune -af``) and the target's base images removed from
                   the local image store when their registry can serve them again; no cache import.  Pulling
                   the base images is part of the time.
``no-cache``       ``--no-cache``, no cache import, base images present: pure compute.
``registry-warm``  the same empty machine as ``cold``, but importing the registry cache a previous build of
                   the same inputs exported: the figure for a fresh CI runner with a shared registry cache.
``incremental``    ``registry-warm`` after touching the input of the target's latest ``COPY``/``ADD`` from the
                   build context (a file is added to a copied directory, or a newline appended to a copied
                   file; restored right after the run): only that step and the steps after it rebuild.
``local-warm``     an immediate rebuild after an untimed identical build: the floor.

Every timed run exports its cache exactly like a real build (``cache-to`` with the configured mode), but
to a bench-only ref, so the refs it reads stay unchanged all along.  All registry refs live under a scope
``bench-<random>`` (``cache-<group>-bench-<random>`` and ``...-run``): the user's cache refs are never
read or written.  Scenarios are interleaved across rounds in a seeded random order (randomized multiple
interleaved trials); each reset happens before the clock starts.  The wall time is ``time.monotonic``
around the ``docker buildx bake`` process; per-step timings and cache hits come from ``--progress=rawjson``.

Afterwards the machine is put back: the touched file restored, every image tag a run created removed,
base images pulled again if they were present before (and removed if bench pulled them), bench's cache
tags removed from the registry (re-pointed to a throw-away manifest that is then deleted, so a digest
shared with another tag is never deleted).  The local build cache stays pruned: that is a cache.  A state
file (``<out>/.bench-state.json``) records what to undo, so an interrupted bench is cleaned up by the next.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bakery.atomic import write_file
from bakery.bench.environment import environment
from bakery.bench.machine import Machine, State
from bakery.bench.rawjson import RawJsonError, Status, StreamDecoder
from bakery.bench.scenarios import (BenchError, BenchPlan, BenchRequest, BenchResult, Observer, PlannedRun, Touch,
                                    base_images, bench_documents, choose_touch, document_key, incremental_check,
                                    local_base_images, plan_bench, primed_settings, run_record, runnable,
                                    settings_of)
from bakery.bench.steps import Step, collect_steps
from bakery.build import bakefile
from bakery.build.bakefile import TargetInfo
from bakery.build.build import overlay_files
from bakery.config.model import Config
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.process import Runner

__all__ = ["load_report", "run_bench"]


def run_bench(config: Config, docker: Docker, request: BenchRequest, out_dir: Path,
              observer: Observer | None = None) -> BenchResult:
    """Prime, run every planned scenario, and restore the machine; raises only for a failed priming build.

    A timed run that fails is recorded (``ok: false`` with its error) and left out of the statistics.
    """
    obs = observer or Observer()
    bench = plan_bench(config, request, _seed(request), f"bench-{uuid.uuid4().hex[:8]}")
    machine = Machine(config, docker, request, out_dir, obs)
    machine.recover()
    result = _describe(config, docker, bench, machine.warnings, obs)
    documents = bench_documents(config, bakefile.document(config, docker.capabilities()), bench.refs)
    state = State(scope=bench.scope, workdir=str(out_dir / f".work-{bench.scope}"),
                  cache_tags=[r for t in bench.refs.values() for r in (t.seed, t.run)])
    try:
        ctx = _open(config, machine, state, bench, documents)
        primed = _prime(ctx, bench, result)
        removable = _check_base_images(ctx, bench, primed.bases, result)
        result.settings.update(primed_settings(primed.bases, primed.touches, config.root))
        _timed_runs(ctx, bench, primed, removable, result)
    finally:
        _restore(machine, state, result, obs)
    _finish(result)
    return result


def load_report(path: Path) -> dict[str, Any]:
    """Read a report written by an earlier bench (for ``--baseline``)."""
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BenchError(f"--baseline {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise BenchError(f"--baseline {path}: not a bench report ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BenchError(f"--baseline {path}: not a bench report (no results list)")
    return data


# ================================================================================================ phases
@dataclass
class _Primed:
    """What the untimed priming builds found, per target."""

    bases: dict[str, list[str]] = field(default_factory=dict)
    touches: dict[str, Touch | None] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seed(request: BenchRequest) -> int:
    """The requested seed, or a random one (recorded in the report, so the order can be replayed)."""
    return request.seed if request.seed is not None else random.SystemRandom().randrange(2 ** 31)


def _describe(config: Config, docker: Docker, bench: BenchPlan, warnings: list[str],
              obs: Observer) -> BenchResult:
    """The result to fill: the machine's facts and the settings known before the first build."""
    obs.phase("reading the environment")
    env = environment(config, docker, bench.registry, [p for i in bench.infos for p in i.platforms],
                      list(dict.fromkeys(i.group for i in bench.infos)))
    return BenchResult(env, settings_of(config, bench, _now()), warnings=warnings)


def _open(config: Config, machine: Machine, state: State, bench: BenchPlan,
          documents: Mapping[str, Any]) -> _RunContext:
    """Record the state (before anything is created) and write bench's bake documents into its work dir."""
    machine.save(state)
    workdir = Path(state.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    doc_files: dict[str, Path] = {}
    for key, content in documents.items():
        doc_files[key] = workdir / f"bake-{key}.json"
        write_file(doc_files[key], bakefile.to_json(content))
    return _RunContext(machine, config, state, bench.registry, bench.scope, doc_files, machine.obs)


def _prime(ctx: _RunContext, bench: BenchPlan, result: BenchResult) -> _Primed:
    """One untimed build per target writes the seed cache and shows what the build uses."""
    primed = _Primed()
    config = ctx.config
    for info in bench.infos:
        ctx.obs.phase(f"priming {info.name} (untimed: writes the bench cache, finds base images)")
        rec, steps = ctx.bake(info, "prime", f"{bench.scope}-prime", no_cache=False, timed=False)
        if not rec["ok"]:
            raise BenchError(f"priming failed: {rec['error']}")
        primed.bases[info.name] = base_images(steps)
        touch = primed.touches[info.name] = choose_touch(steps, config.root / config.images[info.image].context)
        if "incremental" in bench.scenarios and touch is None:
            result.warnings.append(f"{info.name}: no COPY/ADD from the build context to touch; "
                                   "incremental skipped")
    return primed


def _check_base_images(ctx: _RunContext, bench: BenchPlan, bases: Mapping[str, Sequence[str]],
                       result: BenchResult) -> list[str]:
    """Record which base images were present, and return those cold may remove (its registry serves them)."""
    machine, state = ctx.machine, ctx.state
    items = local_base_images(ctx.config, bench.infos, bases)
    state.base_before = [[bd, b] for bd, b in items if machine.image_present(bd, b)]
    checked = {b: machine.restorable(b) for b in dict.fromkeys(b for _, b in items)}
    for b, ok in checked.items():
        if not ok:
            result.warnings.append(f"cold keeps base image {b}: its registry cannot be checked to pull it again")
    machine.save(state)
    return [b for b, ok in checked.items() if ok]


def _timed_runs(ctx: _RunContext, bench: BenchPlan, primed: _Primed, removable: Sequence[str],
                result: BenchResult) -> None:
    """Every planned run that can run, each after its reset; failed runs are recorded, not raised."""
    todo = runnable(bench.runs, primed.touches)
    by_name = {i.name: i for i in bench.infos}
    for index, run in enumerate(todo, 1):
        info = by_name[run.target]
        ctx.obs.phase(f"reset for {run.scenario} {run.target}")
        ctx.reset(run, info, primed.bases[info.name], removable, primed.touches.get(info.name))
        ctx.obs.run_started(index, len(todo), run)
        rec = _timed_run(ctx, run, info, primed.touches.get(info.name), result.warnings)
        result.runs.append(rec)
        ctx.obs.run_finished(index, len(todo), rec)


def _timed_run(ctx: _RunContext, run: PlannedRun, info: TargetInfo, touch: Touch | None,
               warnings: list[str]) -> dict[str, Any]:
    """One timed bake; the incremental touch is undone right after it, whatever happened."""
    try:
        rec, steps = ctx.bake(info, run.scenario, f"{ctx.scope}-{run.seq}", no_cache=run.scenario == "no-cache",
                              timed=True)
    finally:
        if run.scenario == "incremental":
            ctx.machine.restore_touch(ctx.state)
    rec.update({"seq": run.seq, "round": run.round})
    if run.scenario == "incremental" and touch is not None and rec["ok"]:
        rec["touched"], notes = incremental_check(touch, steps, ctx.config.root, info.name)
        warnings.extend(notes)
    for note in rec["notes"]:
        warnings.append(f"run {run.seq} ({run.scenario} {run.target}): {note}")
    return rec


def _restore(machine: Machine, state: State, result: BenchResult, obs: Observer) -> None:
    """Undo what the state records; what cannot be undone becomes a warning."""
    obs.phase("restoring the machine")
    for problem in machine.cleanup(state):
        result.warnings.append(f"cleanup: {problem}")
    obs.close()


def _finish(result: BenchResult) -> None:
    result.settings["finished"] = _now()
    failed = [r for r in result.runs if not r["ok"]]
    if failed:
        result.warnings.append(f"{len(failed)} run(s) failed and are left out of the statistics; first: "
                               f"{failed[0]['error']}")


# ================================================================================================ one bake
class _Discard:
    """A text sink: bench parses the rawjson stream itself instead of echoing it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


@dataclass(frozen=True)
class _Streamed:
    """What one bake process gave: exit code, last stderr lines, wall seconds, decoded statuses, stream notes."""

    code: int
    tail: list[str]
    wall: float
    statuses: list[Status]
    notes: list[str]


@dataclass
class _RunContext:
    """Resets and bakes of one bench: the machine, the state it records to and bench's bake documents."""

    machine: Machine
    config: Config
    state: State
    registry: str
    scope: str
    docs: Mapping[str, Path]
    obs: Observer
    # bake's stderr is parsed, not echoed
    bake_runner: Runner = field(
        default_factory=lambda: Runner(verbose=False, dry_run=False, out=_Discard()))  # type: ignore[arg-type]

    def reset(self, run: PlannedRun, info: TargetInfo, bases: Sequence[str], removable: Sequence[str],
              touch: Touch | None) -> None:
        """Bring the machine into the scenario's starting state (never timed)."""
        builder = self.config.builder_of(info.group)
        local_bases = bases if builder.driver == "docker" else ()
        if run.scenario in ("cold", "registry-warm", "incremental"):
            self._empty(builder.name, local_bases, removable)
        elif run.scenario == "no-cache":
            self._fill(builder.name, local_bases)
        elif run.scenario == "local-warm":
            self.obs.phase(f"warming {run.target} (untimed identical build)")
            self.bake(info, "local-warm", f"{self.scope}-{run.seq}-warm", no_cache=False, timed=False)
        if run.scenario == "incremental" and touch is not None:
            self.machine.apply_touch(touch, self.state)

    def _empty(self, builder: str, bases: Sequence[str], removable: Sequence[str]) -> None:
        """The build cache pruned and the base images removed that can be pulled again."""
        self.machine.prune(builder)
        for ref in bases:
            if ref in removable and self.machine.image_present(builder, ref):
                self.machine.remove_image(builder, ref)

    def _fill(self, builder: str, bases: Sequence[str]) -> None:
        """Every base image present (no-cache times compute, not pulls); a failed pull is the build's to report."""
        for ref in bases:
            if not self.machine.image_present(builder, ref):
                try:
                    self.machine.pull(builder, ref)
                except BakeryError:
                    continue
                self.machine.pulled_base(self.state, builder, ref)

    def bake(self, info: TargetInfo, scenario: str, tag: str, *, no_cache: bool,
             timed: bool) -> tuple[dict[str, Any], list[Step]]:
        """One ``docker buildx bake`` of one target, timed with the monotonic clock; returns (record, steps)."""
        config = self.config
        builder = config.builder_of(info.group).name
        metadata = Path(self.state.workdir) / f"metadata-{tag}.json"
        argv, env = self._command(info, builder, scenario, tag, no_cache=no_cache, metadata=metadata)
        image_ref = f"{self.registry}/{config.images[info.image].repository}:" \
                    f"{bakefile.intermediate_tag(config, info.group, tag)}"
        self.machine.expect_image(self.state, builder, image_ref)
        streamed = self._stream(argv, env, self.obs.statuses if timed else None)
        steps = collect_steps(streamed.statuses, targets=[info.name])
        digest = _image_digest(metadata, info.name)
        self.machine.drop_image(self.state, builder, image_ref)
        record = run_record(info, scenario, code=streamed.code, tail=streamed.tail, wall=streamed.wall,
                            steps=steps, digest=digest, notes=streamed.notes)
        return record, steps

    def _command(self, info: TargetInfo, builder: str, scenario: str, tag: str, *, no_cache: bool,
                 metadata: Path) -> tuple[list[str], dict[str, str]]:
        """The bake argv and environment of one run: bench's document, the config's overlays, bench's tag."""
        docker = self.machine.docker_of(builder)
        files = [self.docs[document_key(scenario)], *overlay_files(self.config)]
        argv = docker.bake_argv(files, [info.name], no_cache=no_cache, metadata_file=metadata, progress="rawjson")
        env = {**(docker.env or {}), VAR_REGISTRY: self.registry, VAR_TAG: tag, VAR_SCOPE: self.scope}
        return argv, env

    def _stream(self, argv: list[str], env: Mapping[str, str],
                observe: Callable[[Sequence[Status]], None] | None) -> _Streamed:
        """Run bake, decoding its rawjson stderr as it arrives (``observe`` sees each batch of statuses)."""
        decoder = StreamDecoder(on_skip=lambda _text: None)
        statuses: list[Status] = []

        def on_line(line: str) -> None:
            got = decoder.feed(line)
            if got:
                statuses.extend(got)
                if observe is not None:
                    observe(got)

        runner = self.machine.docker.runner
        if runner.verbose:
            runner.echo(argv, env, self.config.root)
        started = time.monotonic()
        code, tail = self.bake_runner.stream(argv, env=env, cwd=self.config.root, on_line=on_line)
        wall = time.monotonic() - started
        notes: list[str] = []
        try:
            statuses.extend(decoder.close())
        except RawJsonError as exc:
            notes.append(str(exc))
        return _Streamed(code, tail, wall, statuses, notes)


def _image_digest(metadata: Path, target: str) -> str | None:
    """The image digest bake's ``--metadata-file`` names for ``target`` (the file is removed after reading)."""
    digest = None
    try:
        meta = json.loads(metadata.read_text()) if metadata.exists() else {}
        digest = (meta.get(target) or {}).get("containerimage.digest")
    except ValueError:
        pass
    metadata.unlink(missing_ok=True)
    return digest
