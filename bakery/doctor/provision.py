"""What ``setup`` changes: builders created and bootstrapped, QEMU binfmt handlers registered (idempotent).

A docker-driver builder is a docker context (an engine): it is selected with ``DOCKER_CONTEXT``, not
``--builder``. Every other driver (docker-container, remote, kubernetes) is a named buildx builder, created with
``docker buildx create`` (``--append`` for each extra node) and selected with ``--builder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bakery.config.model import Builder
from bakery.docker import BuilderInfo, Docker, describe, docker_for
from bakery.doctor.facts import BINFMT, BINFMT_CONF, enabled_emulators, qemu_handler
from bakery.errors import BakeryError
from bakery.oci.platforms import parse_platform
from bakery.process import Runner


def ensure(builder: Builder, base: Docker) -> BuilderInfo:
    """Create (if missing) and bootstrap one builder; idempotent. Returns what buildx reports about it."""
    runner = base.runner
    if builder.driver == "docker":
        if builder.context and builder.endpoint:
            probe = runner.run(base.cmd("context", "inspect", builder.context), check=False)
            if probe.returncode != 0:
                runner.run(base.cmd("context", "create", builder.context, "--docker", f"host={builder.endpoint}"),
                           action=True)
        docker = docker_for(base, builder)
        info = docker.builder_info(builder.context) if builder.context else docker.builder_info()
        if info is None and not runner.dry_run:
            hint = f"create it: docker context create {builder.context} --docker host=unix:///path/to/docker.sock" \
                if builder.context else "start dockerd"
            raise BakeryError(f"{describe(builder)}: docker context not usable; {hint}")
        return info or BuilderInfo(builder.name, "docker", "", (), "")
    docker = docker_for(base, builder)
    info = docker.builder_info(builder.name)
    if info is None:
        create = base.cmd("buildx", "create", "--name", builder.name, "--driver", builder.driver)
        for k, v in sorted(builder.driver_opts.items()):
            create += ["--driver-opt", f"{k}={v}"]
        if builder.platforms:
            create += ["--platform", ",".join(builder.platforms)]
        if builder.endpoint:
            create.append(builder.endpoint)
        runner.run(create, env=docker.env, action=True)
        for node in builder.nodes:
            append = base.cmd("buildx", "create", "--append", "--name", builder.name)
            for k, v in sorted(node.driver_opts.items()):
                append += ["--driver-opt", f"{k}={v}"]
            if node.platforms:
                append += ["--platform", ",".join(node.platforms)]
            target = node.endpoint or node.context
            if target:
                append.append(target)
            runner.run(append, env=docker.env, action=True)
    if info is None or info.status not in ("running", ""):
        out = runner.run(base.cmd("buildx", "inspect", "--bootstrap", builder.name), env=docker.env, action=True,
                         check=False)
        if out.returncode != 0 and not runner.dry_run:
            last = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
            raise BakeryError(f"{describe(builder)}: bootstrap failed: {last}")
        info = docker.builder_info(builder.name)
    return info or BuilderInfo(builder.name, builder.driver, "", (), "")


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
