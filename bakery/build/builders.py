"""Builders: which builder builds which platform group, how to address each one, and creating them.

A docker-driver builder is a docker context (an engine): it is selected with ``DOCKER_CONTEXT``, not
``--builder``. Every other driver (docker-container, remote, kubernetes) is a named buildx builder, created with
``docker buildx create`` (``--append`` for each extra node) and selected with ``--builder``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bakery.build.bakefile import TargetInfo
from bakery.config.model import Builder, Config
from bakery.docker import BuilderInfo, Docker
from bakery.errors import BakeryError, RegistryError
from bakery.oci.platforms import PlatformError, parse_platform
from bakery.doctor.checks import BuilderFacts, Facts, enabled_emulators


def docker_for(base: Docker, builder: Builder) -> Docker:
    """The docker adapter that talks to ``builder``."""
    env = {**(base.env or {}), "DOCKER_CONTEXT": builder.context} if builder.context else base.env
    name = None if builder.driver == "docker" else builder.name
    if env == base.env and name == base.builder:
        return base      # the same engine and builder: keep the facts already read
    return dataclasses.replace(base, builder=name, env=env)


def describe(builder: Builder) -> str:
    where = f"context {builder.context}" if builder.context else \
        (builder.endpoint or ("current docker context" if builder.driver == "docker" else ""))
    return f"builder {builder.name} ({builder.driver}{', ' + where if where else ''})"


def plan(config: Config, targets: Sequence[TargetInfo]) -> dict[str, list[TargetInfo]]:
    """Targets per builder, in config order; builders without selected targets are left out."""
    out: dict[str, list[TargetInfo]] = {}
    for t in targets:
        out.setdefault(config.builder_of(t.group).name, []).append(t)
    return out


def used_builders(config: Config, groups: Sequence[str] = ()) -> list[Builder]:
    names = dict.fromkeys(config.builder_of(g).name for g in (groups or config.platform_groups))
    return [config.builders[n] for n in names]


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


# --------------------------------------------------------------------------- facts for doctor and preflight
def _is_local_endpoint(endpoint: str) -> bool:
    return endpoint.startswith("unix://") or endpoint.startswith("npipe://") or endpoint == ""


def context_endpoint(base: Docker, context: str | None) -> str:
    args = base.cmd("context", "inspect", "--format", "{{.Endpoints.docker.Host}}")
    if context:
        args.append(context)
    res = base.runner.run(args, env=base.env, check=False)
    return res.stdout.strip() if res.returncode == 0 else ""


def builder_facts(builder: Builder, base: Docker, default_native: str) -> BuilderFacts:
    docker = docker_for(base, builder)
    if builder.driver == "docker":
        try:
            engine = docker.engine()
        except BakeryError as exc:
            return BuilderFacts(builder, error=f"{describe(builder)}: {exc}", native=default_native)
        info = docker.builder_info(builder.context) if builder.context else docker.builder_info()
        local = _is_local_endpoint(context_endpoint(base, builder.context))
        return BuilderFacts(builder, engine, "", info, engine.os_arch, local)
    info = docker.builder_info(builder.name)
    if info is None:
        return BuilderFacts(builder, error="does not exist", native=default_native)
    native = info.platforms[0] if info.platforms else default_native
    local = builder.driver == "docker-container" and _is_local_endpoint(context_endpoint(base, builder.context))
    try:
        native = str(parse_platform(native))
    except PlatformError:
        native = default_native
    return BuilderFacts(builder, None, "", info, native, local)


def gather(config: Config, base: Docker, groups: Sequence[str] = ()) -> Facts:
    """Everything doctor and the build preflight judge, for the builders the selected groups use."""
    from bakery.build.build import registry_for   # build imports this module
    engine, engine_error = None, ""
    try:
        engine = base.engine()
    except BakeryError as exc:
        engine_error = str(exc)
    try:
        buildx = ".".join(map(str, base.buildx_version()))
    except BakeryError:
        buildx = ""
    registry, _ = registry_for(config, config.registry)
    registry_error: str | None = None
    try:
        registry.retries = 0
        registry.ping()
    except RegistryError as exc:
        registry_error = str(exc)
    native = engine.os_arch if engine else "linux/amd64"
    per = {b.name: builder_facts(b, base, native) for b in used_builders(config, groups)}
    return Facts(buildx, enabled_emulators(), f"{registry.base}/v2/", registry_error, per, engine, engine_error)
