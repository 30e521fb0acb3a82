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
import os
import platform as pyplatform
import random
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bakery.build import bakefile


from bakery.manifest import drafts as manifest
from bakery.atomic import write_file
from bakery.build.bakefile import TargetInfo
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG
from bakery.build.build import overlay_files
from bakery.config.variables import bake_variables
from bakery.oci.registry import registry_for
from bakery.config.model import Config
from bakery.docker import Docker, docker_for
from bakery.errors import BakeryError, RegistryError
from bakery.oci.platforms import QEMU_NAMES, PlatformError, parse_platform
from bakery.process import Runner
from bakery.bench.rawjson import RawJsonError, Status, Step, StreamDecoder, collect_steps, critical_path, summarize
from bakery.oci.reference import InvalidReference, parse_reference
from bakery.oci.registry import Registry, is_loopback

__all__ = [
    "SCENARIOS", "SHARED", "BenchError", "BenchRequest", "BenchResult", "Observer", "PlannedRun", "Touch",
    "attribute_platform", "base_images", "choose_touch", "concurrent_steps", "copy_sources", "is_emulated", "plan",
    "run_bench", "scenario_document", "step_record", "untag",
]

SCENARIOS: tuple[str, ...] = ("cold", "no-cache", "registry-warm", "incremental", "local-warm")
SHARED = "shared"          # steps of a multi-platform build that belong to no single platform (exports, ...)
STATE_FILE = ".bench-state.json"
TOUCH_NAME = ".bakery-bench-touch"
_NEEDS_REGISTRY_CACHE = ("registry-warm", "incremental")


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


@dataclass
class BenchResult:
    """Everything a report is made of; ``runs`` are JSON-ready dicts (see :func:`step_record`)."""

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


# ================================================================================================ pure parts
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


def is_emulated(platform: str, native: str) -> bool:
    """True if ``platform`` needs QEMU on a ``native`` host (another OS or architecture; variants don't count)."""
    try:
        p, n = parse_platform(platform), parse_platform(native)
    except PlatformError:
        return False
    return (p.os, p.arch) != (n.os, n.arch)


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
    if rest.startswith("["):
        try:
            items = json.loads(rest)
        except ValueError:
            return None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            return None
    else:
        try:
            items = shlex.split(rest)
        except ValueError:
            return None
    if len(items) < 2:
        return None
    sources: list[str] = [str(i) for i in items[:-1]]
    if any("://" in s or s.startswith("git@") for s in sources):
        return None
    return sources


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
        if not sources:
            continue
        for src in sources:
            if any(ch in src for ch in "*?[$"):
                continue
            path = (root / src.lstrip("/")).resolve()
            if path != root and root not in path.parents:
                continue
            if path.is_dir():
                touch = Touch(step.label, path / TOUCH_NAME, "add-file")
            elif path.is_file():
                touch = Touch(step.label, path, "append")
            else:
                continue
            key = (depth, -order)
            if best is None or key > best[:2]:
                best = (depth, -order, touch)
            break
    return best[2] if best else None


@dataclass(frozen=True)
class TargetRefs:
    """The registry cache refs bench uses for one target."""

    seed: str       # written once while priming, read by registry-warm / incremental / local-warm
    run: str        # written by every timed run (a real build exports too), never read


def cache_refs(config: Config, info: TargetInfo, scope: str, registry: str) -> TargetRefs:
    image = config.images[info.image]
    return TargetRefs(bakefile.cache_ref(config, image, info.group, scope, registry),
                      bakefile.cache_ref(config, image, info.group, f"{scope}-run", registry))


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


# ================================================================================================ machine
def untag(client: Registry, repository: str, tag: str) -> bool:
    """Remove one of bench's registry tags without touching other tags on its digest; False if it was not there
    (the shared placeholder way of :func:`bakery.manifest.drafts.untag`: registry 2.8 cannot delete a tag)."""
    if client.head_manifest(repository, tag) is None:
        return False
    manifest.untag(client, repository, tag)
    return True


class _Discard:
    """A text sink: bench parses the rawjson stream itself instead of echoing it."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


@dataclass
class _State:
    """What bench changed and must undo; persisted to ``<out>/.bench-state.json`` while it runs."""

    scope: str
    # [builder, image ref] pairs: images live in the image store of the builder's docker context
    images: list[list[str]] = field(default_factory=list)      # image refs a run may have created
    cache_tags: list[str] = field(default_factory=list)        # registry refs bench may have written
    base_before: list[list[str]] = field(default_factory=list)  # base images present before bench
    base_pulled: list[list[str]] = field(default_factory=list)  # base images bench pulled that were absent
    touch: dict[str, str] | None = None                        # {"path", "kind", "backup"} while applied
    workdir: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> _State:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class _Bench:
    def __init__(self, config: Config, docker: Docker, request: BenchRequest, out_dir: Path,
                 observer: Observer) -> None:
        self.config = config
        self.docker = docker
        self.request = request
        self.out_dir = out_dir
        self.obs = observer
        self.runner = docker.runner
        # bake's stderr is parsed, not echoed
        self.bake_runner = Runner(verbose=False, dry_run=False, out=_Discard())  # type: ignore[arg-type]
        self.state_path = out_dir / STATE_FILE
        self.registries: dict[str, Registry] = {}
        self.warnings: list[str] = []

    # ----------------------------------------------------------------- small adapters
    def docker_of(self, builder: str) -> Docker:
        """The docker adapter addressing one configured builder (its docker context, or ``--builder``)."""
        return docker_for(self.docker, self.config.builders[builder])

    def _docker(self, builder: str, *args: str, check: bool = True, action: bool = True) -> Any:
        docker = self.docker_of(builder)
        return self.runner.run(docker.cmd(*args), env=docker.env, check=check, action=action)

    def _registry(self, host: str) -> Registry:
        if host not in self.registries:
            self.registries[host] = Registry.for_host(host)
        return self.registries[host]

    def _save(self, state: _State) -> None:
        write_file(self.state_path, state.to_json())

    def image_present(self, builder: str, ref: str) -> bool:
        res = self._docker(builder, "image", "inspect", "--format", "{{.Id}}", ref, check=False, action=False)
        return bool(res.returncode == 0)

    def remove_image(self, builder: str, ref: str) -> bool:
        res = self._docker(builder, "image", "rm", ref, check=False)
        return bool(res.returncode == 0)

    def prune(self, builder: str) -> None:
        self._docker(builder, "buildx", "prune", "-af", *self.docker_of(builder)._builder_flag())

    def pull(self, builder: str, ref: str) -> None:
        self._docker(builder, "pull", "-q", ref)

    def restorable(self, ref: str) -> bool:
        """Whether ``ref`` can be pulled again: its registry answers for it now (no retries, short timeout)."""
        try:
            parsed = parse_reference(ref)
        except InvalidReference:
            return False
        if not parsed.domain:
            return False   # Docker Hub: not checked (and not reachable from CI runners without network)
        client = Registry.for_host(parsed.domain)
        client.retries, client.timeout = 0, 5.0
        try:
            return client.head_manifest(parsed.path, parsed.digest or parsed.tag or "latest") is not None
        except RegistryError:
            return False

    def untag(self, ref: str) -> bool:
        parsed = parse_reference(ref)
        return untag(self._registry(parsed.domain), parsed.path, parsed.tag)

    # ----------------------------------------------------------------- touch
    def apply_touch(self, touch: Touch, state: _State) -> None:
        backup = self.out_dir / ".bench-touch-backup"
        entry = {"path": str(touch.path), "kind": touch.kind, "backup": ""}
        if touch.kind == "append":
            shutil.copy2(touch.path, backup)
            entry["backup"] = str(backup)
        state.touch = entry
        self._save(state)           # recorded before the change: an interrupted bench restores it
        if touch.kind == "append":
            with open(touch.path, "ab") as fh:
                fh.write(b"\n")
        else:
            touch.path.write_text(f"bakery bench {uuid.uuid4().hex}\n", encoding="utf-8")

    def restore_touch(self, state: _State) -> None:
        entry = state.touch
        if not entry:
            return
        path = Path(entry["path"])
        if entry["kind"] == "append":
            backup = Path(entry["backup"])
            if backup.exists():
                shutil.copy2(backup, path)   # bytes and mtime
                backup.unlink()
        else:
            path.unlink(missing_ok=True)
        state.touch = None
        self._save(state)

    # ----------------------------------------------------------------- cleanup
    def cleanup(self, state: _State) -> list[str]:
        """Undo everything recorded in ``state``; returns what could not be undone (one line each)."""
        problems: list[str] = []
        try:
            self.restore_touch(state)
        except OSError as exc:
            problems.append(f"could not restore {state.touch and state.touch.get('path')}: {exc}")
        for item in list(state.images):
            builder, ref = item
            if self.image_present(builder, ref) and not self.remove_image(builder, ref):
                problems.append(f"could not remove image {ref}")
            else:
                state.images.remove(item)
        for ref in list(state.cache_tags):
            try:
                self.untag(ref)
                state.cache_tags.remove(ref)
            except (BakeryError, InvalidReference) as exc:
                problems.append(f"could not remove cache tag {ref}: {exc}")
        for builder, ref in state.base_before:
            if not self.image_present(builder, ref):
                try:
                    self.pull(builder, ref)
                except BakeryError as exc:
                    problems.append(f"could not restore base image {ref}: {exc}")
        for item in state.base_pulled:
            if item not in state.base_before and self.image_present(*item):
                self.remove_image(*item)
        if state.workdir:
            shutil.rmtree(state.workdir, ignore_errors=True)
        if not problems:
            self.state_path.unlink(missing_ok=True)
        else:
            self._save(state)
        return problems

    def recover(self) -> None:
        """Clean up after a bench that was interrupted before it could (its state file is still there)."""
        if not self.state_path.exists():
            return
        try:
            state = _State.from_json(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            raise BenchError(f"{self.state_path}: unreadable bench state ({exc}); remove it after checking "
                             "that the files it names are as they should be") from None
        self.obs.phase(f"cleaning up after an interrupted bench (scope {state.scope})")
        problems = self.cleanup(state)
        if problems:
            raise BenchError(f"could not clean up after the interrupted bench: {problems[0]}")
        self.warnings.append(f"cleaned up after an interrupted bench (scope {state.scope})")


# ================================================================================================ environment
def _qemu(platforms: Iterable[str], native: str, runner: Runner) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for plat in sorted(set(platforms)):
        if not is_emulated(plat, native):
            continue
        arch = parse_platform(plat).arch
        name = QEMU_NAMES.get(arch, arch)
        entry: dict[str, Any] = {"handler": f"qemu-{name}"}
        try:
            res = runner.run([f"qemu-{name}-static", "--version"], check=False)
            entry["version"] = (res.stdout.strip().splitlines() or [""])[0]
        except BakeryError:
            entry["version"] = None
        binfmt = Path("/proc/sys/fs/binfmt_misc") / f"qemu-{name}"
        try:
            lines = binfmt.read_text().splitlines()
            entry["binfmt"] = lines[0] if lines else ""
            entry["flags"] = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("flags:")), "")
            entry["interpreter"] = next((ln.split(" ", 1)[1] for ln in lines if ln.startswith("interpreter ")), "")
        except OSError:
            entry["binfmt"] = "missing"
        out[plat] = entry
    return out


def environment(config: Config, docker: Docker, registry: str, platforms: Iterable[str],
                groups: Sequence[str]) -> dict[str, Any]:
    """The facts a reader needs to judge the numbers: versions, store, CPUs, QEMU, registry."""
    from bakery import __version__
    runner = docker.runner
    engine = docker.engine()
    info: dict[str, Any] = {}
    res = runner.run(docker.cmd("info", "--format", "{{json .}}"), env=docker.env, check=False)
    if res.returncode == 0:
        try:
            info = json.loads(res.stdout)
        except ValueError:
            info = {}
    cli = runner.run(docker.cmd("version", "--format", "{{.Client.Version}}"), env=docker.env, check=False)
    used = list(dict.fromkeys(config.builder_of(g).name for g in groups))
    described: dict[str, dict[str, Any]] = {}
    for name in used:
        builder = config.builders[name]
        target = docker_for(docker, builder)
        info_b = target.builder_info(None if builder.driver == "docker" else builder.name)
        described[name] = {"driver": builder.driver, "buildkit": info_b.buildkit if info_b else "",
                           "context": builder.context, "platforms": list(info_b.platforms) if info_b else []}
    native = _native(engine.os_arch)
    client, _ = registry_for(registry)
    return {
        "bakery": __version__,
        "engine": engine.server_version,
        "docker_client": cli.stdout.strip(),
        "buildx": ".".join(map(str, docker.buildx_version())),
        "builders": described,
        "buildkit": ", ".join(sorted({b["buildkit"] for b in described.values() if b["buildkit"]})),
        "image_store": engine.image_store,
        "native_platform": native,
        "cpus": info.get("NCPU") or os.cpu_count(),
        "memory_bytes": info.get("MemTotal"),
        "kernel": info.get("KernelVersion") or pyplatform.release(),
        "os": info.get("OperatingSystem") or "",
        "cgroup": info.get("CgroupVersion") or "",
        "qemu": _qemu(platforms, native, runner),
        "registry": {"name": registry, "url": f"{client.base}/v2/", "loopback": is_loopback(client.host)},
        "python": pyplatform.python_version(),
    }


def _native(os_arch: str) -> str:
    try:
        parsed = parse_platform(os_arch)
        return f"{parsed.os}/{parsed.arch}"
    except PlatformError:
        return os_arch


# ================================================================================================ the run
def run_bench(config: Config, docker: Docker, request: BenchRequest, out_dir: Path,
              observer: Observer | None = None) -> BenchResult:
    """Prime, run every planned scenario, and restore the machine; raises only for a failed priming build.

    A timed run that fails is recorded (``ok: false`` with its error) and left out of the statistics.
    """
    obs = observer or Observer()
    if request.runs < 1:
        raise BenchError(f"--runs must be at least 1, got {request.runs}")
    scenarios = _scenarios(config, request)
    names = bakefile.select_targets(config, request.groups, request.images)
    infos = bakefile.target_infos(config, names)
    variables = bake_variables(config)
    registry = variables[VAR_REGISTRY]
    seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2 ** 31)
    scope = f"bench-{uuid.uuid4().hex[:8]}"
    bench = _Bench(config, docker, request, out_dir, obs)
    bench.recover()

    obs.phase("reading the environment")
    env = environment(config, docker, registry, [p for i in infos for p in i.platforms],
                      list(dict.fromkeys(i.group for i in infos)))
    refs = {i.name: cache_refs(config, i, scope, registry) for i in infos}
    buildx = docker.buildx_version()
    doc = bakefile.document(config, buildx)
    workdir = out_dir / f".work-{scope}"
    state = _State(scope=scope, workdir=str(workdir),
                   cache_tags=[r for t in refs.values() for r in (t.seed, t.run)])
    planned = plan(scenarios, [i.name for i in infos], request.runs, seed)
    settings: dict[str, Any] = {
        "scenarios": list(scenarios), "runs": request.runs, "seed": seed, "cache_scope": scope,
        "targets": {i.name: {"image": i.image, "group": i.group, "platforms": list(i.platforms)} for i in infos},
        "order": [[p.round, p.scenario, p.target] for p in planned],
        "cache_mode": config.cache.mode, "cache_type": config.cache.type,
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    result = BenchResult(env, settings, warnings=bench.warnings)
    uses_registry = config.cache.type == "registry"
    documents = {
        "prime": scenario_document(doc, refs if uses_registry else {}, read_cache=False, write="seed",
                                   mode=config.cache.mode),
        "cold": scenario_document(doc, refs if uses_registry else {}, read_cache=False, write="run",
                                  mode=config.cache.mode, ignore_error=config.cache.ignore_error),
        "warm": scenario_document(doc, refs if uses_registry else {}, read_cache=True, write="run",
                                  mode=config.cache.mode, ignore_error=config.cache.ignore_error),
    }
    doc_files: dict[str, Path] = {}
    touches: dict[str, Touch | None] = {}
    bases: dict[str, list[str]] = {}
    try:
        bench._save(state)
        workdir.mkdir(parents=True, exist_ok=True)
        for key, content in documents.items():
            doc_files[key] = workdir / f"bake-{key}.json"
            write_file(doc_files[key], bakefile.to_json(content))
        ctx = _RunContext(bench, config, state, registry, scope, doc_files, obs)

        # ---- prime: one untimed build per target writes the seed cache and shows what the build uses
        for info in infos:
            obs.phase(f"priming {info.name} (untimed: writes the bench cache, finds base images)")
            rec, steps = ctx.bake(info, "prime", f"{scope}-prime", no_cache=False, timed=False)
            if not rec["ok"]:
                raise BenchError(f"priming failed: {rec['error']}")
            bases[info.name] = base_images(steps)
            touches[info.name] = choose_touch(steps, config.root / config.images[info.image].context)
            if "incremental" in scenarios and touches[info.name] is None:
                result.warnings.append(f"{info.name}: no COPY/ADD from the build context to touch; "
                                       "incremental skipped")
        # base images live in the image store of a docker-driver builder; other drivers keep them in their
        # build cache, which the prune empties
        items = list(dict.fromkeys((config.builder_of(i.group).name, b) for i in infos for b in bases[i.name]
                                   if config.builder_of(i.group).driver == "docker"))
        state.base_before = [[bd, b] for bd, b in items if bench.image_present(bd, b)]
        checked = {b: bench.restorable(b) for b in dict.fromkeys(b for _, b in items)}
        removable = [b for b, ok in checked.items() if ok]
        for b, ok in checked.items():
            if not ok:
                result.warnings.append(f"cold keeps base image {b}: its registry cannot be checked to pull "
                                       "it again")
        bench._save(state)
        settings["base_images"] = {t: bs for t, bs in bases.items()}
        settings["incremental"] = {t: ({"step": tc.step, "path": _rel(tc.path, config.root), "kind": tc.kind}
                                       if tc else None) for t, tc in touches.items()}

        # ---- the timed runs
        todo = [p for p in planned if not (p.scenario == "incremental" and touches.get(p.target) is None)]
        by_name = {i.name: i for i in infos}
        for index, run in enumerate(todo, 1):
            info = by_name[run.target]
            obs.phase(f"reset for {run.scenario} {run.target}")
            ctx.reset(run, info, bases[info.name], removable, touches.get(info.name))
            obs.run_started(index, len(todo), run)
            tag = f"{scope}-{run.seq}"
            try:
                rec, steps = ctx.bake(info, run.scenario, tag, no_cache=run.scenario == "no-cache", timed=True)
            finally:
                if run.scenario == "incremental":
                    bench.restore_touch(state)
            rec.update({"seq": run.seq, "round": run.round})
            touch = touches.get(info.name)
            if run.scenario == "incremental" and touch is not None and rec["ok"]:
                rec["touched"] = {"step": touch.step, "path": _rel(touch.path, config.root)}
                hit = [s for s in steps if s.label == touch.step]
                if hit and all(s.cached for s in hit):
                    result.warnings.append(f"{info.name}: touching {_rel(touch.path, config.root)} did not "
                                           f"invalidate `{touch.step}` (excluded by .dockerignore?)")
            for note in rec["notes"]:
                result.warnings.append(f"run {run.seq} ({run.scenario} {run.target}): {note}")
            result.runs.append(rec)
            obs.run_finished(index, len(todo), rec)
    finally:
        obs.phase("restoring the machine")
        problems = bench.cleanup(state)
        for p in problems:
            result.warnings.append(f"cleanup: {p}")
        obs.close()
    settings["finished"] = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    failed = [r for r in result.runs if not r["ok"]]
    if failed:
        result.warnings.append(f"{len(failed)} run(s) failed and are left out of the statistics; first: "
                               f"{failed[0]['error']}")
    return result


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return str(path)


def _scenarios(config: Config, request: BenchRequest) -> tuple[str, ...]:
    chosen = list(dict.fromkeys(request.scenarios)) or list(SCENARIOS)
    from bakery.config.model import suggest
    for s in chosen:
        if s not in SCENARIOS:
            raise BenchError(f"--scenario {s!r} is not a scenario; {suggest(s, list(SCENARIOS))}")
    if config.cache.type != "registry":
        needs = [s for s in chosen if s in _NEEDS_REGISTRY_CACHE]
        if needs and request.scenarios:
            raise BenchError(f"--scenario {needs[0]} needs cache.type registry (this config has "
                             f"{config.cache.type!r})")
        chosen = [s for s in chosen if s not in _NEEDS_REGISTRY_CACHE]
    return tuple(s for s in SCENARIOS if s in chosen)


@dataclass
class _RunContext:
    bench: _Bench
    config: Config
    state: _State
    registry: str
    scope: str
    docs: Mapping[str, Path]
    obs: Observer

    def reset(self, run: PlannedRun, info: TargetInfo, bases: Sequence[str], removable: Sequence[str],
              touch: Touch | None) -> None:
        """Bring the machine into the scenario's starting state (never timed)."""
        bench = self.bench
        builder = self.config.builder_of(info.group)
        local_images = builder.driver == "docker"
        if run.scenario in ("cold", "registry-warm", "incremental"):
            bench.prune(builder.name)
            for ref in bases if local_images else ():
                if ref in removable and bench.image_present(builder.name, ref):
                    bench.remove_image(builder.name, ref)
        elif run.scenario == "no-cache":
            for ref in bases if local_images else ():
                if not bench.image_present(builder.name, ref):
                    try:
                        bench.pull(builder.name, ref)
                    except BakeryError:
                        continue
                    item = [builder.name, ref]
                    if item not in self.state.base_before and item not in self.state.base_pulled:
                        self.state.base_pulled.append(item)
                        bench._save(self.state)
        elif run.scenario == "local-warm":
            self.obs.phase(f"warming {run.target} (untimed identical build)")
            self.bake(info, "local-warm", f"{self.scope}-{run.seq}-warm", no_cache=False, timed=False)
        if run.scenario == "incremental" and touch is not None:
            bench.apply_touch(touch, self.state)

    def bake(self, info: TargetInfo, scenario: str, tag: str, *, no_cache: bool,
             timed: bool) -> tuple[dict[str, Any], list[Step]]:
        """One ``docker buildx bake`` of one target, timed with the monotonic clock; returns (record, steps)."""
        config, bench = self.config, self.bench
        builder = config.builder_of(info.group).name
        docker = bench.docker_of(builder)
        key = "prime" if scenario == "prime" else "cold" if scenario in ("cold", "no-cache") else "warm"
        workdir = Path(self.state.workdir)
        metadata = workdir / f"metadata-{tag}.json"
        files = [self.docs[key], *overlay_files(config)]
        argv = docker.bake_argv(files, [info.name], no_cache=no_cache, metadata_file=metadata,
                                progress="rawjson")
        env = {**(docker.env or {}), VAR_REGISTRY: self.registry, VAR_TAG: tag, VAR_SCOPE: self.scope}
        image_ref = f"{self.registry}/{config.images[info.image].repository}:" \
                    f"{bakefile.intermediate_tag(config, info.group, tag)}"
        self.state.images.append([builder, image_ref])   # recorded before it can exist
        bench._save(self.state)
        decoder = StreamDecoder(on_skip=lambda _text: None)
        statuses: list[Status] = []
        observe = self.obs.statuses if timed else (lambda _s: None)

        def on_line(line: str) -> None:
            got = decoder.feed(line)
            if got:
                statuses.extend(got)
                observe(got)

        if bench.runner.verbose:
            bench.runner.echo(argv, env, config.root)
        started = time.monotonic()
        code, tail = bench.bake_runner.stream(argv, env=env, cwd=config.root, on_line=on_line)
        wall = time.monotonic() - started
        notes: list[str] = []
        try:
            statuses.extend(decoder.close())
        except RawJsonError as exc:
            notes.append(str(exc))
        steps = collect_steps(statuses, targets=[info.name])
        error = None if code == 0 else failure_message(steps, tail, info.name)
        shared = concurrent_steps(steps, wall)
        if shared:
            notes.append(f"{len(shared)} step(s) took longer than the whole bake (e.g. `{shared[0].label}`): "
                         "they were shared with a concurrent build on the same daemon; this run's time is not "
                         "trustworthy")
        digest = None
        try:
            meta = json.loads(metadata.read_text()) if metadata.exists() else {}
            digest = (meta.get(info.name) or {}).get("containerimage.digest")
        except ValueError:
            pass
        metadata.unlink(missing_ok=True)
        if bench.image_present(builder, image_ref):
            bench.remove_image(builder, image_ref)
        if [builder, image_ref] in self.state.images and not bench.image_present(builder, image_ref):
            self.state.images.remove([builder, image_ref])
            bench._save(self.state)
        summary = summarize(steps)
        path, path_seconds = critical_path(steps)
        record: dict[str, Any] = {
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
        return record, steps


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

