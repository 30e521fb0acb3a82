"""What doctor and the build preflight judge, read from the machine: the engine and buildx (through the docker
adapter), each builder the selected groups use, the registry's ping, and this machine's binfmt_misc handlers."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
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


def builder_facts(builder: Builder, base: Docker, default_native: Callable[[], str],
                  pool: Executor | None = None, light: bool = False) -> BuilderFacts:
    """One builder's facts; with ``pool``, a docker-driver builder's three reads (engine, inspect, context) run at
    once. ``light`` (the build's preflight): a docker-driver builder on this machine's engine is that engine, so
    ``docker info`` answering says it runs, and this machine's QEMU handlers say what it emulates: ``buildx
    inspect`` (three processes) is not run."""
    docker = docker_for(base, builder)
    if builder.driver == "docker" and light:
        local = _is_local_endpoint(base.context_endpoint(builder.context))
        if local:
            try:
                engine = docker.engine()
            except BakeryError as exc:
                return BuilderFacts(builder, error=f"{describe(builder)}: {exc}", native=default_native())
            return BuilderFacts(builder, engine, "", BuilderInfo(builder.name, "docker", "running", (), ""),
                                engine.os_arch, local)
    if builder.driver == "docker":
        def read_info() -> BuilderInfo | None:
            return docker.builder_info(builder.context) if builder.context else docker.builder_info()
        info_f = pool.submit(read_info) if pool else None
        endpoint_f = pool.submit(base.context_endpoint, builder.context) if pool else None
        try:
            engine = docker.engine()
        except BakeryError as exc:
            return BuilderFacts(builder, error=f"{describe(builder)}: {exc}", native=default_native())
        info = info_f.result() if info_f else read_info()
        local = _is_local_endpoint(endpoint_f.result() if endpoint_f else base.context_endpoint(builder.context))
        return BuilderFacts(builder, engine, "", info, engine.os_arch, local)
    info = docker.builder_info(builder.name)
    if info is None:
        return BuilderFacts(builder, error="does not exist", native=default_native())
    native = info.platforms[0] if info.platforms else default_native()
    local = builder.driver == "docker-container" and _is_local_endpoint(base.context_endpoint(builder.context))
    try:
        native = str(parse_platform(native))
    except PlatformError:
        native = default_native()
    return BuilderFacts(builder, None, "", info, native, local)


def _engine(base: Docker) -> tuple[EngineInfo | None, str]:
    try:
        return base.engine(), ""
    except BakeryError as exc:
        return None, str(exc)


def _buildx(base: Docker) -> str:
    try:
        return ".".join(map(str, base.buildx_version()))
    except BakeryError:
        return ""


def _ping(config: Config) -> tuple[str, str | None]:
    registry, _ = registry_for(config.registry)
    try:
        registry.retries = 0
        registry.ping()
    except RegistryError as exc:
        return registry.api_url, str(exc)
    return registry.api_url, None


def machine_facts(base: Docker, *, stack: bool = False) -> Facts:
    """What this machine offers whatever bakery.yaml says: the engine, buildx and the QEMU handlers (doctor
    without a config stops here); no registry, no builders."""
    engine, engine_error = _engine(base)
    components = base.server_components() if stack and engine else {}
    return Facts(_buildx(base), enabled_emulators(), "", None, {}, engine, engine_error, components)


def gather(config: Config, base: Docker, groups: Sequence[str] = (), *, stack: bool = False,
           light: bool = False) -> Facts:
    """Everything doctor and the build preflight judge, for the builders the selected groups use; ``stack``
    also reads the engine's components (containerd, runc) for doctor's stack line; ``light`` (the preflight)
    reads no more than the verdict needs (:func:`builder_facts`). The probes run at once (each fact still read
    once: the docker adapter keeps what it read)."""
    builders = config.builders_for(groups)
    with ThreadPoolExecutor(4 + 3 * len(builders), thread_name_prefix="facts") as pool:
        engine_f = pool.submit(_engine, base)
        buildx_f = pool.submit(_buildx, base)
        ping_f = pool.submit(_ping, config)
        emulators_f = pool.submit(enabled_emulators)

        def native() -> str:
            engine = engine_f.result()[0]
            return engine.os_arch if engine else "linux/amd64"
        per_f = {b.name: pool.submit(builder_facts, b, base, native, pool, light) for b in builders}
        engine, engine_error = engine_f.result()
        per = {name: f.result() for name, f in per_f.items()}
        registry, registry_error = ping_f.result()
        buildx, emulators = buildx_f.result(), emulators_f.result()
    components = base.server_components() if stack and engine else {}
    return Facts(buildx, emulators, registry, registry_error, per, engine, engine_error, components)
