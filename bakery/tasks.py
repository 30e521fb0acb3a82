"""Invoke tasks: parse flags, read config, call the core, turn BakeryError into a one-line message + exit code.

Invoke config (``ns.configure``, ``invoke.yaml`` under ``bakery:``, or ``INVOKE_BAKERY_*`` variables):

=================  ======================================================================
``config``         path of bakery.yaml (default: found by walking up from the current dir)
``registry``       overrides ``registry``            (``INVOKE_BAKERY_REGISTRY``)
``tag``            overrides ``tag``                 (``INVOKE_BAKERY_TAG``)
``cache_scope``    overrides ``cache.scope``         (``INVOKE_BAKERY_CACHE_SCOPE``)
``docker``         the docker binary (default ``docker``)
``overrides``      any bakery.yaml keys, deep-merged (e.g. ``{cache: {type: local}}``)
=================  ======================================================================

At build time the variables bake itself reads win over all of these: ``BAKERY_REGISTRY``, ``BAKERY_TAG``,
``BAKERY_CACHE_SCOPE``; task flags win over everything.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke import Collection, Context, Exit, task

from bakery.build import build as build_mod
from bakery.config.model import CONFIG_FILE, Config, load
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.process import Runner
from bakery.build import builders
from bakery.doctor.checks import assess, register_qemu

F = TypeVar("F", bound=Callable[..., Any])

DEFAULTS: dict[str, Any] = {
    "config": None, "registry": None, "tag": None, "cache_scope": None, "docker": "docker", "overrides": {},
}


def _errors_to_exit(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BakeryError as exc:
            raise Exit(f"bakery: {exc}".replace("\n", "\nbakery: "), code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("bakery: interrupted; no results written", code=130) from None
    return wrapper  # type: ignore[return-value]


def _plain(value: Any) -> Any:
    """Invoke hands config out as DataProxy objects; the core takes plain dicts and lists."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _settings(c: Context) -> dict[str, Any]:
    try:
        settings: dict[str, Any] = _plain(c.config.bakery)
    except AttributeError:
        settings = dict(DEFAULTS)
    return settings


def find_config(start: Path) -> Path:
    for d in (start, *start.parents):
        if (d / CONFIG_FILE).is_file():
            return d / CONFIG_FILE
    raise BakeryError(f"{CONFIG_FILE} not found in {start} or any parent directory (pass --config PATH)")


def config_from(c: Context, path: str | None = None) -> Config:
    s = _settings(c)
    chosen = path or s.get("config")
    cfg_path = Path(chosen) if chosen else find_config(Path.cwd())
    overrides: dict[str, Any] = dict(s.get("overrides") or {})
    if s.get("registry"):
        overrides["registry"] = s["registry"]
    if s.get("tag"):
        overrides["tag"] = s["tag"]
    if s.get("cache_scope"):
        overrides["cache"] = {**overrides.get("cache", {}), "scope": s["cache_scope"]}
    return load(cfg_path, overrides)


def docker_from(c: Context, config: Config, *, verbose: bool = False, dry_run: bool = False) -> Docker:
    """The docker adapter for the current docker context; :func:`builders.docker_for` derives per-builder ones."""
    return Docker(Runner(verbose=verbose, dry_run=dry_run), binary=_settings(c).get("docker") or "docker")


@task(help={"hcl": "also write bake/docker-bake.hcl", "config": "path of bakery.yaml",
            "check": "verify the files with `docker buildx bake --print` (default on)"})
@_errors_to_exit
def generate(c: Context, hcl: bool = False, config: str | None = None, check: bool = True) -> None:
    """Write bake/docker-bake.json (and .hcl) from bakery.yaml."""
    cfg = config_from(c, config)
    formats = list(cfg.formats) + (["hcl"] if hcl and "hcl" not in cfg.formats else [])
    docker = docker_from(c, cfg) if check else None
    for path in build_mod.generate(cfg, docker, formats=formats, check=check):
        print(f"wrote {path.relative_to(cfg.root)}")


@task(iterable=["group", "image"],
      help={"group": "platform group to build (repeatable; default all)", "image": "image to build (repeatable)",
            "tag": "tag of the final multi-arch index (default: config `tag`, or BAKERY_TAG)",
            "push": "push per-group results and stitch one index per image under --tag",
            "no-stitch": "with --push: push only the per-group refs (CI fan-out; publish later with `stitch`)",
            "load": "load the per-group images into the local image store",
            "no-cache": "build without the build cache", "dry-run": "print the exact commands, change nothing",
            "verbose": "echo every command", "progress": "buildx progress: plain (default), tty, rawjson, quiet",
            "cache-scope": "cache ref scope, e.g. the branch (default: cache.scope, or BAKERY_CACHE_SCOPE)",
            "config": "path of bakery.yaml"})
@_errors_to_exit
def build(c: Context, group: list[str] | None = None, image: list[str] | None = None, tag: str | None = None,
          push: bool = False, no_stitch: bool = False, load: bool = False, no_cache: bool = False,
          dry_run: bool = False,
          verbose: bool = False, progress: str = "plain", cache_scope: str | None = None,
          config: str | None = None) -> None:
    """Generate the bake file and build it; with --push, one multi-arch index per image."""
    if push and load:
        raise BakeryError("--push and --load exclude each other: push, then pull what you need")
    cfg = config_from(c, config)
    docker = docker_from(c, cfg, verbose=verbose, dry_run=dry_run)
    request = build_mod.BuildRequest(groups=tuple(group or ()), images=tuple(image or ()), tag=tag,
                                     cache_scope=cache_scope, push=push, load=load, no_cache=no_cache,
                                     progress=progress, stitch=not no_stitch)
    if not dry_run:
        preflight(cfg, docker, request.groups, request.images)
    result = build_mod.build(cfg, docker, request)
    if dry_run:
        return
    for name, t in result.targets.items():
        print(f"{name:<24} {t['digest'] or '-':<73} {','.join(t['platforms'])}")
    for name, i in result.images.items():
        print(f"{name}: {i['ref']}@{i['digest']} ({', '.join(i['platforms'])})")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"results: {Path(cfg.bake_dir) / build_mod.RESULTS_FILE}")


@task(iterable=["image"], help={"tag": "the tag whose per-group refs to stitch", "image": "image (repeatable)"})
@_errors_to_exit
def stitch(c: Context, tag: str, image: list[str] | None = None, config: str | None = None) -> None:
    """Stitch pushed per-group refs of --tag into one index per image (after fanned-out CI jobs)."""
    cfg = config_from(c, config)
    result = build_mod.stitch_tag(cfg, tag, tuple(image or ()))
    for name, i in result.images.items():
        print(f"{name}: {i['ref']}@{i['digest']} ({', '.join(i['platforms'])})")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.notes:
        raise BakeryError(f"{len(result.notes)} image(s) not stitched")


def preflight(cfg: Config, docker: Docker, groups: tuple[str, ...], images: tuple[str, ...]) -> None:
    """Fail before any build when a builder or a selected group's platforms are not usable, naming the fix."""
    wanted = list(groups) or list(dict.fromkeys(g for i in (images or tuple(cfg.images))
                                                for g in cfg.images[i].platform_groups))
    facts = builders.gather(cfg, docker, wanted)
    relevant = {f"builder {b}" for b in facts.builders} | {f"group {g}" for g in wanted}
    bad = [ch for ch in assess(cfg, facts, wanted) if not ch.ok and ch.name in relevant]
    if bad:
        ch = bad[0]
        raise BakeryError(f"{ch.name}: {ch.detail}; fix: {ch.fix}")


@task(help={"dry-run": "print what would be done", "verbose": "echo every command"})
@_errors_to_exit
def setup(c: Context, dry_run: bool = False, verbose: bool = False, config: str | None = None) -> None:
    """Register QEMU handlers for every emulated platform and create/bootstrap every builder (idempotent)."""
    cfg = config_from(c, config)
    docker = docker_from(c, cfg, verbose=verbose, dry_run=dry_run)
    native = docker.engine().os_arch
    local_groups = [g for g in cfg.platform_groups.values() if cfg.builder_of(g.name).driver in ("docker",
                                                                                                "docker-container")]
    registered = register_qemu([p for g in local_groups for p in g.platforms], docker.runner, native)
    print(f"qemu: {'registered ' + ', '.join(registered) if registered else 'all handlers present'}")
    for b in builders.used_builders(cfg):
        info = builders.ensure(b, docker)
        print(f"{builders.describe(b)}: {info.status or 'ready'}")
    if dry_run:
        return
    failing = [ch for ch in assess(cfg, builders.gather(cfg, docker)) if not ch.ok and
               (ch.name.startswith("group ") or ch.name.startswith("builder "))]
    if failing:
        raise BakeryError("; ".join(f"{ch.name}: {ch.detail}" for ch in failing))


@task(help={"json": "print the checks as JSON"})
@_errors_to_exit
def doctor(c: Context, json_: bool = False, config: str | None = None) -> None:
    """Report engine, buildx, BuildKit, image store, emulators, registry, and per group whether it can build."""
    cfg = config_from(c, config)
    docker = docker_from(c, cfg)
    checks = assess(cfg, builders.gather(cfg, docker))
    if json_:
        print(json.dumps([ch.__dict__ for ch in checks], indent=2))
    else:
        for ch in checks:
            print(f"{'ok  ' if ch.ok else 'FAIL'}  {ch.name:<18} {ch.detail}")
            if ch.fix:
                print(f"      {'':<18} fix: {ch.fix}")
    if not all(ch.ok for ch in checks):
        raise Exit(code=1)


def _collection() -> Collection:
    # feature task modules import this module's helpers, so they are imported here, not at the top
    from bakery.bench.tasks import bench
    from bakery.clean.tasks import clean
    from bakery.release.tasks import manifest, release
    coll = Collection(generate, build, stitch, setup, doctor, release, clean, bench)
    if manifest.tasks:
        coll.add_collection(manifest)
    coll.configure({"bakery": DEFAULTS})
    return coll


ns = _collection()
