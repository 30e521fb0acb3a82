"""Thin adapter over the docker CLI and its buildx plugin: argv builders and output parsers.

Nothing here decides anything; it only turns requests into commands (run through :class:`Runner`) and
command output into data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dataclasses

from bakery.config.model import Builder
from bakery.errors import BakeryError, CommandError
from bakery.oci.platforms import PlatformError, parse_platform
from bakery.process import Runner

Version = tuple[int, int, int]


def parse_version(text: str) -> Version | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


@dataclass(frozen=True)
class BuilderInfo:
    name: str
    driver: str
    status: str
    platforms: tuple[str, ...]
    buildkit: str


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    image_store: str          # "containerd" or the graph driver name
    os_arch: str


@dataclass
class Docker:
    runner: Runner
    binary: str = "docker"
    builder: str | None = None   # buildx builder name; None: the current one
    env: Mapping[str, str] | None = None  # e.g. DOCKER_CONTEXT / DOCKER_HOST for another engine
    # facts that cannot change during one invocation, read once per adapter; ``dataclasses.replace`` (another
    # engine) starts without them
    _buildx: Version | None = field(default=None, init=False, repr=False, compare=False)
    _engine: EngineInfo | None = field(default=None, init=False, repr=False, compare=False)

    def cmd(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def _builder_flag(self) -> list[str]:
        return ["--builder", self.builder] if self.builder else []

    # ------------------------------------------------------------------ facts
    def buildx_version(self) -> Version:
        if self._buildx is None:
            out = self.runner.run(self.cmd("buildx", "version"), env=self.env).stdout
            self._buildx = parse_version(out.split(None, 1)[1] if " " in out else out)
            if self._buildx is None:
                raise BakeryError(f"cannot read the buildx version from {out.strip()!r}")
        return self._buildx

    def engine(self) -> EngineInfo:
        if self._engine is None:
            self._engine = self._read_engine()
        return self._engine

    def _read_engine(self) -> EngineInfo:
        fmt = "{{json .}}"
        info = json.loads(self.runner.run(self.cmd("info", "--format", fmt), env=self.env).stdout)
        if info.get("ServerErrors") or not info.get("ServerVersion"):
            errs = "; ".join(info.get("ServerErrors") or ["no server"])
            raise BakeryError(f"cannot reach the Docker engine: {errs} (start it: `make stack`)")
        status = dict(tuple(x) for x in info.get("DriverStatus") or [] if len(x) == 2)
        store = "containerd" if "snapshotter" in status.get("driver-type", "") else info.get("Driver", "unknown")
        try:
            native = str(parse_platform(f"{info.get('OSType')}/{info.get('Architecture')}"))
        except PlatformError:
            native = f"{info.get('OSType')}/{info.get('Architecture')}"
        return EngineInfo(info["ServerVersion"], store, native)

    def builder_info(self, name: str | None = None) -> BuilderInfo | None:
        args = self.cmd("buildx", "inspect")
        if name or self.builder:
            args.append(name or self.builder or "")
        res = self.runner.run(args, env=self.env, check=False)
        if res.returncode != 0:
            return None
        return parse_inspect(res.stdout)

    def bootstrap(self, name: str) -> BuilderInfo:
        out = self.runner.run(self.cmd("buildx", "inspect", "--bootstrap", name), env=self.env, action=True).stdout
        return parse_inspect(out)

    def create_builder(self, name: str, driver: str, driver_opts: Mapping[str, str], endpoint: str | None) -> None:
        args = self.cmd("buildx", "create", "--name", name, "--driver", driver)
        for k, v in sorted(driver_opts.items()):
            args += ["--driver-opt", f"{k}={v}"]
        if endpoint:
            args.append(endpoint)
        self.runner.run(args, env=self.env, action=True)

    # ------------------------------------------------------------------ bake
    def bake_argv(self, files: Sequence[Path], targets: Sequence[str], *, push: bool = False, load: bool = False,
                  no_cache: bool = False, metadata_file: Path | None = None, progress: str | None = None,
                  print_only: bool = False, sets: Sequence[str] = ()) -> list[str]:
        args = self.cmd("buildx", "bake", *self._builder_flag())
        for f in files:
            args += ["-f", str(f)]
        if print_only:
            args.append("--print")
        if push:
            args.append("--push")
        if load:
            args.append("--load")
        if no_cache:
            args.append("--no-cache")
        if metadata_file is not None:
            args += ["--metadata-file", str(metadata_file)]
        if progress:
            args += ["--progress", progress]
        for s in sets:
            args += ["--set", s]
        return args + list(targets)

    def bake_print(self, files: Sequence[Path], targets: Sequence[str], env: Mapping[str, str],
                   cwd: Path) -> dict[str, Any]:
        """What bake will really do (merged files, variables evaluated): offline, no builder needed in 0.13."""
        res = self.runner.run(self.bake_argv(files, targets, print_only=True), env={**(self.env or {}), **env},
                              cwd=cwd, check=False)
        if res.returncode != 0:
            raise CommandError(res.argv, res.returncode, res.stderr, "docker buildx bake --print rejected the file")
        data: dict[str, Any] = json.loads(res.stdout)
        return data

    def run_container(self, ref: str, platform: str, command: Sequence[str]) -> tuple[int, str]:
        args = self.cmd("run", "--rm", "--pull", "always", "--platform", platform, ref, *command)
        res = self.runner.run(args, env=self.env, check=False)
        return res.returncode, res.stdout + res.stderr


def parse_inspect(text: str) -> BuilderInfo:
    """Parse ``docker buildx inspect`` text output (0.13 has no --format)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    plats = tuple(p.strip().rstrip("*") for p in fields.get("Platforms", "").split(",") if p.strip())
    return BuilderInfo(fields.get("Name", ""), fields.get("Driver", ""), fields.get("Status", ""), plats,
                       fields.get("BuildKit version", fields.get("Buildkit", "")))


# --------------------------------------------------------------------------- one adapter per builder
def docker_for(base: Docker, builder: Builder) -> Docker:
    """The docker adapter that talks to ``builder``."""
    env = {**(base.env or {}), "DOCKER_CONTEXT": builder.context} if builder.context else base.env
    name = None if builder.driver == "docker" else builder.name
    if env == base.env and name == base.builder:
        return base      # the same engine and builder: keep the facts already read
    return dataclasses.replace(base, builder=name, env=env)


def describe(builder: Builder) -> str:
    """How a builder is named in messages: `builder NAME (driver, where)`."""
    where = f"context {builder.context}" if builder.context else \
        (builder.endpoint or ("current docker context" if builder.driver == "docker" else ""))
    return f"builder {builder.name} ({builder.driver}{', ' + where if where else ''})"
