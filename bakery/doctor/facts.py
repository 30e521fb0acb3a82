"""What doctor and the build preflight judge, read from the machine: the engine and buildx (through the docker
adapter), each builder the selected groups use, the registry's ping, and this machine's binfmt_misc handlers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bakery.config.model import Builder, Config
from bakery.docker import BuilderInfo, Docker, EngineInfo, describe, docker_for
from bakery.errors import BakeryError, RegistryError
from bakery.oci.platforms import QEMU_NAMES, PlatformError, parse_platform
from bakery.oci.registry import registry_for

BINFMT = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d")


@dataclass(frozen=True)
class BuilderFacts:
    """What was found about one builder (and, for the docker driver, the engine behind it)."""
    builder: Builder
    engine: EngineInfo | None = None    # docker driver: the engine of its context
    error: str = ""                     # why it is not usable
    info: BuilderInfo | None = None     # `docker buildx inspect`
    native: str = "linux/amd64"
    local: bool = True                  # runs on this machine, so its binfmt handlers apply


@dataclass(frozen=True)
class Facts:
    buildx: str
    emulators: frozenset[str]           # qemu-* binfmt entries that are enabled on this machine
    registry: str
    registry_error: str | None          # None: reachable
    builders: Mapping[str, BuilderFacts] = field(default_factory=dict)
    engine: EngineInfo | None = None    # the engine of the current docker context
    engine_error: str = ""
    components: Mapping[str, str] = field(default_factory=dict)   # doctor: containerd, runc, ... versions


def qemu_handler(platform: str) -> str:
    arch = parse_platform(platform).arch
    return f"qemu-{QEMU_NAMES.get(arch, arch)}"


def enabled_emulators(binfmt: Path = BINFMT) -> frozenset[str]:
    if not binfmt.is_dir():
        return frozenset()
    out = set()
    for entry in binfmt.glob("qemu-*"):
        try:
            if entry.read_text().startswith("enabled"):
                out.add(entry.name)
        except OSError:
            continue
    return frozenset(out)


def _is_local_endpoint(endpoint: str) -> bool:
    return endpoint.startswith("unix://") or endpoint.startswith("npipe://") or endpoint == ""


def builder_facts(builder: Builder, base: Docker, default_native: str) -> BuilderFacts:
    docker = docker_for(base, builder)
    if builder.driver == "docker":
        try:
            engine = docker.engine()
        except BakeryError as exc:
            return BuilderFacts(builder, error=f"{describe(builder)}: {exc}", native=default_native)
        info = docker.builder_info(builder.context) if builder.context else docker.builder_info()
        local = _is_local_endpoint(base.context_endpoint(builder.context))
        return BuilderFacts(builder, engine, "", info, engine.os_arch, local)
    info = docker.builder_info(builder.name)
    if info is None:
        return BuilderFacts(builder, error="does not exist", native=default_native)
    native = info.platforms[0] if info.platforms else default_native
    local = builder.driver == "docker-container" and _is_local_endpoint(base.context_endpoint(builder.context))
    try:
        native = str(parse_platform(native))
    except PlatformError:
        native = default_native
    return BuilderFacts(builder, None, "", info, native, local)


def gather(config: Config, base: Docker, groups: Sequence[str] = (), *, stack: bool = False) -> Facts:
    """Everything doctor and the build preflight judge, for the builders the selected groups use; ``stack``
    also reads the engine's components (containerd, runc) for doctor's stack line."""
    engine, engine_error = None, ""
    try:
        engine = base.engine()
    except BakeryError as exc:
        engine_error = str(exc)
    try:
        buildx = ".".join(map(str, base.buildx_version()))
    except BakeryError:
        buildx = ""
    registry, _ = registry_for(config.registry)
    registry_error: str | None = None
    try:
        registry.retries = 0
        registry.ping()
    except RegistryError as exc:
        registry_error = str(exc)
    native = engine.os_arch if engine else "linux/amd64"
    per = {b.name: builder_facts(b, base, native) for b in config.builders_for(groups)}
    components = base.server_components() if stack and engine else {}
    return Facts(buildx, enabled_emulators(), registry.api_url, registry_error, per, engine, engine_error,
                 components)
