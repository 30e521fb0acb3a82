"""What ``setup`` changes: builders created and bootstrapped, QEMU binfmt handlers registered (idempotent).

A docker-driver builder is a docker context (an engine): it is selected with ``DOCKER_CONTEXT``, not
``--builder``. Every other driver (docker-container, remote, kubernetes) is a named buildx builder, created with
``docker buildx create`` (``--append`` for each extra node) and selected with ``--builder``.

Each builder ``ensure`` creates is recorded in ``$XDG_STATE_HOME/bakery/builders.json`` (default
``~/.local/state/bakery``; :func:`created_builders`), so ``clean --local`` removes only builders bakery created,
never one with a similar name that someone else made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bakery.atomic import write_file
from bakery.config.model import Builder
from bakery.docker import BuilderInfo, Docker, describe, docker_for
from bakery.doctor.facts import BINFMT, BINFMT_CONF, enabled_emulators, qemu_handler
from bakery.errors import BakeryError
from bakery.oci.platforms import parse_platform
from bakery.process import Runner


def ensure(builder: Builder, base: Docker) -> BuilderInfo:
    """Create (if missing) and bootstrap one builder; idempotent. Returns what buildx reports about it."""
    if builder.driver == "docker":
        return _ensure_engine(builder, base)
    docker = docker_for(base, builder)
    info = docker.builder_info(builder.name)
    if info is None:
        docker.create_builder(builder.name, builder.driver, builder.driver_opts, builder.platforms, builder.endpoint)
        if not base.runner.dry_run:
            record_created(builder.name, builder.driver)
        for node in builder.nodes:
            docker.create_builder(builder.name, builder.driver, node.driver_opts, node.platforms,
                                  node.endpoint or node.context, append=True)
    if info is None or info.status not in ("running", ""):
        failed = docker.bootstrap(builder.name)
        if failed:
            raise BakeryError(f"{describe(builder)}: bootstrap failed: {failed}")
        info = docker.builder_info(builder.name)
    return info or BuilderInfo(builder.name, builder.driver, "", (), "")


def state_file(env: Mapping[str, str] | None = None) -> Path:
    """Where bakery records the builders it created (per user: builders belong to the machine, not a project)."""
    env = os.environ if env is None else env
    root = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(root) / "bakery" / "builders.json"


def created_builders(path: Path | None = None) -> dict[str, dict[str, str]]:
    """{name: {"driver", "created"}} of the builders bakery recorded creating; {} when none (or unreadable)."""
    try:
        data = json.loads((path or state_file()).read_text())
    except (OSError, ValueError):
        return {}
    found = data.get("builders") if isinstance(data, dict) else None
    return {k: v for k, v in found.items() if isinstance(v, dict)} if isinstance(found, dict) else {}


def record_created(name: str, driver: str, path: Path | None = None) -> None:
    """Add one builder to the record (atomic rewrite)."""
    path = path or state_file()
    builders = created_builders(path)
    builders[name] = {"driver": driver, "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    write_file(path, json.dumps({"builders": builders}, indent=2, sort_keys=True) + "\n")


def forget_created(names: Iterable[str], path: Path | None = None) -> None:
    """Drop removed builders from the record."""
    path = path or state_file()
    builders = created_builders(path)
    gone = [n for n in names if n in builders]
    for name in gone:
        del builders[name]
    if gone:
        write_file(path, json.dumps({"builders": builders}, indent=2, sort_keys=True) + "\n")


def _ensure_engine(builder: Builder, base: Docker) -> BuilderInfo:
    """A docker-driver builder is an engine's docker context: created from ``endpoint`` when it is missing."""
    if builder.context and builder.endpoint and not base.context_exists(builder.context):
        base.create_context(builder.context, builder.endpoint)
    docker = docker_for(base, builder)
    info = docker.builder_info(builder.context) if builder.context else docker.builder_info()
    if info is None and not base.runner.dry_run:
        hint = f"create it: docker context create {builder.context} --docker host=unix:///path/to/docker.sock" \
            if builder.context else "start dockerd"
        raise BakeryError(f"{describe(builder)}: docker context not usable; {hint}")
    return info or BuilderInfo(builder.name, "docker", "", (), "")


def register_qemu(platforms: Sequence[str], runner: Runner, native: str, binfmt: Path = BINFMT,
                  conf_dir: Path = BINFMT_CONF) -> list[str]:
    """Register the binfmt_misc handlers these platforms need from qemu-user-static's own conf files."""
    wanted = sorted({qemu_handler(p) for p in platforms
                     if (parse_platform(p).os, parse_platform(p).arch) !=
                     (parse_platform(native).os, parse_platform(native).arch)})
    have = enabled_emulators(binfmt)
    done = []
    for handler in wanted:
        if handler in have:
            continue
        conf = conf_dir / f"{handler}.conf"
        if not conf.is_file():
            raise BakeryError(f"{conf} not found: install qemu-user-static (apt-get install qemu-user-static) "
                              f"to build {', '.join(p for p in platforms if qemu_handler(p) == handler)}")
        if not (binfmt / "register").exists():
            runner.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], action=True)
        line = next(ln for ln in conf.read_text().splitlines() if ln and not ln.startswith("#"))
        if runner.dry_run or runner.verbose:
            print(f"+ register {handler} in {binfmt}/register (from {conf})", file=runner.out)
        if not runner.dry_run:
            try:
                (binfmt / "register").write_text(line)
            except OSError as exc:
                raise BakeryError(f"cannot register {handler}: {exc.strerror} (needs root)") from None
        done.append(handler)
    return done
