"""Builder and QEMU setup, and the doctor's checks.

Facts are gathered by the adapters (docker CLI, /proc/sys/fs/binfmt_misc); :func:`assess` turns facts into
checks (pure), each with the fix for what is wrong. A later version maps groups to several builders: every
check already names the builder it is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .config import Config
from .docker import BuilderInfo, Docker, EngineInfo
from .errors import BakeryError
from .platforms import QEMU_NAMES, parse_platform
from .process import Runner

BINFMT = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Facts:
    engine: EngineInfo | None
    engine_error: str
    buildx: str
    builder: BuilderInfo | None
    emulators: frozenset[str]          # qemu-* binfmt entries that are enabled
    registry_error: str | None         # None: reachable
    registry: str
    native: str = "linux/amd64"
    local_builder: bool = True
    extra: Mapping[str, str] = field(default_factory=dict)


def qemu_handler(platform: str) -> str:
    return f"qemu-{QEMU_NAMES.get(parse_platform(platform).arch, parse_platform(platform).arch)}"


def can_build(platform: str, facts: Facts) -> tuple[bool, str]:
    """Whether the builder can build ``platform``: natively, via its platform list, or via local QEMU."""
    p = parse_platform(platform)
    native = parse_platform(facts.native)
    if (p.os, p.arch) == (native.os, native.arch):
        return True, "native"
    listed = set()
    for s in facts.builder.platforms if facts.builder else ():
        try:
            listed.add(parse_platform(s))
        except ValueError:
            continue
    if p in listed:
        return True, "builder"
    if facts.local_builder and p.os == native.os and qemu_handler(platform) in facts.emulators:
        return True, f"emulated ({qemu_handler(platform)})"
    return False, ""


def assess(config: Config, facts: Facts) -> list[Check]:
    checks: list[Check] = []
    if facts.engine is None:
        checks.append(Check("engine", False, facts.engine_error or "not reachable",
                            "start the stack: `make stack` (or start dockerd)"))
    else:
        e = facts.engine
        checks.append(Check("engine", True, f"Docker {e.server_version} ({e.os_arch})"))
        checks.append(Check("image store", e.image_store == "containerd", e.image_store,
                            "" if e.image_store == "containerd" else
                            'set {"features":{"containerd-snapshotter":true}} in /etc/docker/daemon.json and '
                            "restart dockerd (needed for multi-platform images and registry cache with the docker driver)"))
    checks.append(Check("buildx", bool(facts.buildx), facts.buildx or "missing",
                        "" if facts.buildx else "install the docker-buildx package"))
    b = config.builder
    if facts.builder is None:
        checks.append(Check(f"builder {b.name}", False, "does not exist", "run `invoke setup`"))
    else:
        bk = facts.builder.buildkit or "?"
        if bk.startswith("v0.0.0") and facts.builder.driver == "docker" and facts.engine:
            bk = f"embedded in Docker {facts.engine.server_version} (distro build, reports {bk})"
        checks.append(Check(f"builder {b.name}", facts.builder.status in ("running", ""),
                            f"driver {facts.builder.driver}, {facts.builder.status or 'unknown'}, BuildKit {bk}",
                            "" if facts.builder.status in ("running", "") else "run `invoke setup` (bootstraps it)"))
    native_os = parse_platform(facts.native).os
    needed = sorted({qemu_handler(p) for g in config.platform_groups.values() for p in g.platforms
                     if parse_platform(p).os == native_os and p != facts.native
                     and (can_build(p, facts)[1].startswith("emulated") or not can_build(p, facts)[0])})
    have = sorted(facts.emulators)
    checks.append(Check("emulation", all(h in facts.emulators for h in needed) or not facts.local_builder,
                        f"{len(have)} QEMU handlers ({', '.join(h[5:] for h in have) or 'none'})",
                        "" if all(h in facts.emulators for h in needed) else
                        f"run `invoke setup` (registers {', '.join(h for h in needed if h not in facts.emulators)})"))
    checks.append(Check("registry", facts.registry_error is None,
                        facts.registry if facts.registry_error is None else facts.registry_error,
                        "" if facts.registry_error is None else
                        "start it (`make stack` runs one on 127.0.0.1:5000) or fix `registry` in bakery.yaml"))
    for group in config.platform_groups.values():
        missing: list[str] = []
        how: list[str] = []
        for plat in group.platforms:
            ok, via = can_build(plat, facts)
            (how if ok else missing).append(f"{plat} {via}".strip() if ok else plat)
        fix = ""
        native_os = parse_platform(facts.native).os
        emulable = [p for p in missing if parse_platform(p).os == native_os]
        if emulable:
            handlers = " ".join(sorted({qemu_handler(p) for p in emulable}))
            fix = (f"run `invoke setup` to register QEMU handlers ({handlers}; needs the qemu-user-static package "
                   "and root), or move the group to a builder that has these platforms natively")
        elif missing:
            fix = f"add a builder node that runs {', '.join(missing)} natively (QEMU cannot emulate another OS)"
        checks.append(Check(f"group {group.name}", not missing,
                            ", ".join(how) if not missing else f"cannot build {', '.join(missing)}", fix))
    return checks


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
            print(f"+ register {handler} in {binfmt}/register (from {conf})")
        if not runner.dry_run:
            try:
                (binfmt / "register").write_text(line)
            except OSError as exc:
                raise BakeryError(f"cannot register {handler}: {exc.strerror} (needs root)") from None
        done.append(handler)
    return done


def ensure_builder(config: Config, docker: Docker) -> BuilderInfo:
    """Create (if missing) and bootstrap the configured builder; idempotent."""
    b = config.builder
    info = docker.builder_info(b.name)
    if info is None:
        if b.driver == "docker":
            raise BakeryError(f"builder {b.name!r} (driver docker) does not exist: the docker driver's builder is "
                              "named after a docker context (`docker context ls`); set builder.name to one of them")
        docker.create_builder(b.name, b.driver, b.driver_opts, b.endpoint)
    if info is None or info.status not in ("running", ""):
        if docker.runner.dry_run:
            docker.bootstrap(b.name)
            return info or BuilderInfo(b.name, b.driver, "", (), "")
        info = docker.bootstrap(b.name)
    return info
