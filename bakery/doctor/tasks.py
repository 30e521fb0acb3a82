"""Tasks: ``setup`` (QEMU handlers and builders) and ``doctor`` (what can build here, and the fix)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from invoke import Context, Exit

from bakery.config.model import Config
from bakery.docker import Docker
from bakery.cli import _settings, config_from, docker_from, errors_to_exit, has_config, task
from bakery.docker import describe
from bakery.doctor.checks import Check, assess, emulation_check, machine_checks
from bakery.doctor.facts import gather, machine_facts
from bakery.errors import BakeryError


@task(help={"dry-run": "print what would be done", "verbose": "echo every command"})
@errors_to_exit
def setup(c: Context, dry_run: bool = False, verbose: bool = False, config: str | None = None) -> None:
    """Register QEMU handlers for every emulated platform and create/bootstrap every builder (idempotent)."""
    from bakery.doctor.provision import ensure, register_qemu   # imported when the task runs, not when bakery starts
    cfg = config_from(c, config)
    docker = docker_from(c, cfg, verbose=verbose, dry_run=dry_run)
    native = docker.engine().os_arch
    local_groups = [g for g in cfg.platform_groups.values() if cfg.builder_of(g.name).driver in ("docker",
                                                                                                "docker-container")]
    registered = register_qemu([p for g in local_groups for p in g.platforms], docker.runner, native)
    print(f"qemu: {'registered ' + ', '.join(registered) if registered else 'all handlers present'}")
    for b in cfg.builders_for():
        info = ensure(b, docker)
        print(f"{describe(b)}: {info.status or 'ready'}")
    if dry_run:
        return
    failing = [ch for ch in assess(cfg, gather(cfg, docker)) if not ch.ok and
               (ch.name.startswith("group ") or ch.name.startswith("builder "))]
    if failing:
        raise BakeryError("; ".join(f"{ch.name}: {ch.detail}" for ch in failing))


@task(help={"json": "print the checks as JSON",
            "check": "also run the Dockerfile build checks of every target (buildx >= 0.16; see `check`)",
            "config": "path of bakery.yaml (without one: only the engine, buildx and QEMU are checked)"})
@errors_to_exit
def doctor(c: Context, json_: bool = False, check: bool = False, config: str | None = None) -> None:
    """Report engine, buildx, BuildKit, image store, emulators, registry, and per group whether it can build."""
    if config is None and not _settings(c).get("config") and not has_config(Path.cwd()):
        checks = machine_checks(facts := machine_facts(docker_from(c, None), stack=True))
        checks.append(emulation_check(facts))
        print("note: no bakery.yaml here or above: registry, builder and platform group checks skipped "
              "(`bakery init` writes one)", file=sys.stderr)
    else:
        cfg = config_from(c, config)
        docker = docker_from(c, cfg)
        checks = assess(cfg, gather(cfg, docker, stack=True))
        if check:
            checks.append(build_checks(cfg, docker))
    if json_:
        print(json.dumps([ch.__dict__ for ch in checks], indent=2))
    else:
        for ch in checks:
            print(f"{'ok  ' if ch.ok else 'FAIL'}  {ch.name:<18} {ch.detail}")
            if ch.fix:
                print(f"      {'':<18} fix: {ch.fix}")
    if not all(ch.ok for ch in checks):
        raise Exit(code=1)


def build_checks(cfg: Config, docker: Docker) -> Check:
    """The Dockerfile build checks as one doctor check: findings are reported, they do not fail doctor."""
    from bakery.build.check import run_checks, unavailable   # only `doctor --check` needs it
    found = run_checks(cfg, docker, sys.stderr)
    if found is None:
        return Check("build checks", True, unavailable(docker))
    detail = "; ".join(str(w) for w in found) if found else "no findings"
    return Check("build checks", True, f"{len(found)} finding(s): {detail}" if found else detail,
                 "see `bakery check`" if found else "")
