"""The facts of the machine a bench report records, so that a reader can judge (and compare) its numbers:
engine and buildx versions, image store, builders, CPUs, kernel, the QEMU handlers of emulated platforms, and
the registry the cache goes to."""

from __future__ import annotations

import os
import platform as pyplatform
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bakery.config.model import Config
from bakery.docker import Docker, docker_for
from bakery.errors import BakeryError
from bakery.oci.platforms import QEMU_NAMES, PlatformError, is_emulated, parse_platform
from bakery.oci.registry import is_loopback, registry_for
from bakery.process import Runner

__all__ = ["environment", "native_platform"]

BINFMT = Path("/proc/sys/fs/binfmt_misc")


def environment(config: Config, docker: Docker, registry: str, platforms: Iterable[str],
                groups: Sequence[str]) -> dict[str, Any]:
    """The facts a reader needs to judge the numbers: versions, store, CPUs, QEMU, registry."""
    from bakery.version import __version__
    engine = docker.engine()
    info = docker.info()
    cli = docker.client_version()
    described = _builders(config, docker, groups)
    native = native_platform(engine.os_arch)
    client, _ = registry_for(registry)
    return {
        "bakery": __version__,
        "engine": engine.server_version,
        "docker_client": cli,
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
        "qemu": _qemu(platforms, native, docker.runner),
        "registry": {"name": registry, "url": client.api_url, "loopback": is_loopback(client.host)},
        "python": pyplatform.python_version(),
    }


def native_platform(os_arch: str) -> str:
    """The engine's ``os/arch`` without a variant (what :func:`is_emulated` compares against)."""
    try:
        parsed = parse_platform(os_arch)
        return f"{parsed.os}/{parsed.arch}"
    except PlatformError:
        return os_arch


def _builders(config: Config, docker: Docker, groups: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Driver, BuildKit version, context and platforms of each builder the benchmarked groups use."""
    used = list(dict.fromkeys(config.builder_of(g).name for g in groups))
    described: dict[str, dict[str, Any]] = {}
    for name in used:
        builder = config.builders[name]
        target = docker_for(docker, builder)
        info_b = target.builder_info(None if builder.driver == "docker" else builder.name)
        described[name] = {"driver": builder.driver, "buildkit": info_b.buildkit if info_b else "",
                           "context": builder.context, "platforms": list(info_b.platforms) if info_b else []}
    return described


def _qemu(platforms: Iterable[str], native: str, runner: Runner) -> dict[str, Any]:
    """Per emulated platform: the QEMU handler, its version and its binfmt_misc entry (flags, interpreter)."""
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
        entry.update(_binfmt(BINFMT / f"qemu-{name}"))
        out[plat] = entry
    return out


def _binfmt(path: Path) -> dict[str, str]:
    """The kernel's binfmt_misc entry of one handler: its status line, flags and interpreter."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {"binfmt": "missing"}
    return {"binfmt": lines[0] if lines else "",
            "flags": next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("flags:")), ""),
            "interpreter": next((ln.split(" ", 1)[1] for ln in lines if ln.startswith("interpreter ")), "")}
