"""The doctor's checks: facts (:mod:`bakery.doctor.facts`) in, checks out (pure), each with the fix for what is
wrong. Every builder and every platform group gets its own check, judged against the builder that group is mapped
to. :func:`preflight` is the same judgement before a build: the first failing check stops it, naming the fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bakery.capabilities import NEWEST_TESTED, OLDEST_TESTED, parse_version, version_string
from bakery.config.model import Config
from bakery.docker import Docker
from bakery.doctor.facts import BuilderFacts, Facts, gather, qemu_handler
from bakery.errors import BakeryError
from bakery.oci.platforms import is_emulated, parse_platform


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def can_build(platform: str, bf: BuilderFacts, emulators: frozenset[str]) -> tuple[bool, str]:
    """Whether a builder can build ``platform``: natively, via its platform list, or via this machine's QEMU."""
    p = parse_platform(platform)          # raises on a bad platform, which is_emulated would not
    native = parse_platform(bf.native)
    if not is_emulated(platform, bf.native):
        return True, "native"
    listed = set()
    for s in (bf.info.platforms if bf.info else ()) + bf.builder.platforms:
        try:
            listed.add(parse_platform(s))
        except ValueError:
            continue
    if p in listed:
        return True, "builder"
    if bf.local and p.os == native.os and qemu_handler(platform) in emulators:
        return True, f"emulated ({qemu_handler(platform)})"
    return False, ""


def _builder_check(bf: BuilderFacts) -> Check:
    b = bf.builder
    name = f"builder {b.name}"
    if bf.error or bf.info is None:
        fix = ("start its engine, or fix builders." + b.name + ".context" if b.driver == "docker"
               else "run `invoke setup` (creates and bootstraps it)")
        return Check(name, False, bf.error or "not found", fix)
    bk = bf.info.buildkit or "?"
    if bk.startswith("v0.0.0") and b.driver == "docker" and bf.engine:
        bk = f"embedded in Docker {bf.engine.server_version} (distro build, reports {bk})"
    where = f", context {b.context}" if b.context else ""
    detail = f"driver {bf.info.driver or b.driver}{where}, {bf.info.status or 'unknown'}, BuildKit {bk}"
    if b.driver == "docker" and bf.engine and bf.engine.image_store != "containerd":
        return Check(name, False, f"{detail}, image store {bf.engine.image_store}",
                     "enable the containerd image store on that engine (multi-platform images, registry cache)")
    ok = bf.info.status in ("running", "")
    return Check(name, ok, detail, "" if ok else "run `invoke setup` (bootstraps it)")


def _buildx_check(version: str) -> Check:
    """buildx itself; one older than the oldest bakery is tested with passes, with the upgrade to make."""
    if not version:
        return Check("buildx", False, "missing", "install the docker-buildx package")
    parsed = parse_version(version)
    if parsed is not None and parsed < OLDEST_TESTED:
        return Check("buildx", True, f"{version} (older than {version_string(OLDEST_TESTED)}, the oldest bakery is "
                                     "tested with)",
                     f"upgrade buildx to {version_string(OLDEST_TESTED)} or newer (tested up to "
                     f"{version_string(NEWEST_TESTED)}): the docker-buildx package, or Docker's buildx release")
    return Check("buildx", True, version)


def machine_checks(facts: Facts) -> list[Check]:
    """The engine, its image store and buildx: what doctor judges with or without a bakery.yaml."""
    checks: list[Check] = []
    if facts.engine is None:
        checks.append(Check("engine", False, facts.engine_error or "not reachable",
                            "start the stack: `make stack` (or start dockerd)"))
    else:
        e = facts.engine
        parts = "".join(f", {n} {v}" for n, v in facts.components.items() if n in ("containerd", "runc"))
        checks.append(Check("engine", True, f"Docker {e.server_version} ({e.os_arch}){parts}"))
        checks.append(Check("image store", e.image_store == "containerd", e.image_store,
                            "" if e.image_store == "containerd" else
                            'set {"features":{"containerd-snapshotter":true}} in /etc/docker/daemon.json and '
                            "restart dockerd (needed for multi-platform images and registry cache with the docker driver)"))
    checks.append(_buildx_check(facts.buildx))
    return checks


def emulation_check(facts: Facts, missing_handlers: Sequence[str] = ()) -> Check:
    """The QEMU handlers this machine has; not ok when handlers the selected groups need are missing."""
    have = sorted(facts.emulators)
    return Check("emulation", not missing_handlers,
                 f"{len(have)} QEMU handlers ({', '.join(h[5:] for h in have) or 'none'})",
                 f"run `invoke setup` (registers {', '.join(missing_handlers)})" if missing_handlers else "")


def assess(config: Config, facts: Facts, groups: Sequence[str] = ()) -> list[Check]:
    """Checks for the engine, buildx, emulation, the registry, every builder and every platform group."""
    checks = machine_checks(facts)
    selected = list(groups) or list(config.platform_groups)
    needed = sorted({qemu_handler(p) for g in selected for p in config.platform_groups[g].platforms
                     if _needs_qemu(p, facts.builders.get(config.builder_of(g).name), facts.emulators)})
    checks.append(emulation_check(facts, [h for h in needed if h not in facts.emulators]))
    checks.append(Check("registry", facts.registry_error is None,
                        facts.registry if facts.registry_error is None else facts.registry_error,
                        "" if facts.registry_error is None else
                        "start it (`make stack` runs one on 127.0.0.1:5000) or fix `registry` in bakery.yaml"))
    checks.extend(_builder_check(b) for b in facts.builders.values())
    for gname in selected:
        group = config.platform_groups[gname]
        found = facts.builders.get(config.builder_of(gname).name)
        if found is None:
            continue
        bf = found
        missing: list[str] = []
        how: list[str] = []
        for plat in group.platforms:
            ok, via = can_build(plat, bf, facts.emulators)
            (how if ok else missing).append(f"{plat} {via}" if ok else plat)
        fix = ""
        native_os = parse_platform(bf.native).os
        emulable = [p for p in missing if parse_platform(p).os == native_os and bf.local]
        if emulable:
            handlers = " ".join(sorted({qemu_handler(p) for p in emulable}))
            fix = (f"run `invoke setup` to register QEMU handlers ({handlers}; needs the qemu-user-static package "
                   "and root), or move the group to a builder that has these platforms natively")
        elif missing:
            fix = (f"add a builder node that runs {', '.join(missing)} natively"
                   + (" (QEMU cannot emulate another OS)" if any(parse_platform(p).os != native_os for p in missing)
                      else ""))
        on = "" if bf.builder.name == config.default_builder and len(facts.builders) == 1 else \
            f" on {bf.builder.name}"
        checks.append(Check(f"group {gname}", not missing,
                            (", ".join(how) if not missing else f"cannot build {', '.join(missing)}") + on, fix))
    return checks


def _needs_qemu(platform: str, bf: BuilderFacts | None, emulators: frozenset[str]) -> bool:
    if bf is None or not bf.local:
        return False
    if parse_platform(platform).os != parse_platform(bf.native).os or not is_emulated(platform, bf.native):
        return False
    ok, via = can_build(platform, bf, emulators)
    return not ok or via.startswith("emulated")


def preflight(cfg: Config, docker: Docker, groups: tuple[str, ...], images: tuple[str, ...]) -> None:
    """Fail before any build when a builder or a selected group's platforms are not usable, naming the fix."""
    wanted = list(groups) or list(dict.fromkeys(g for i in (images or tuple(cfg.images))
                                                for g in cfg.images[i].platform_groups))
    facts = gather(cfg, docker, wanted, light=True)
    relevant = {f"builder {b}" for b in facts.builders} | {f"group {g}" for g in wanted}
    bad = [ch for ch in assess(cfg, facts, wanted) if not ch.ok and ch.name in relevant]
    if bad:
        ch = bad[0]
        raise BakeryError(f"{ch.name}: {ch.detail}; fix: {ch.fix}")
