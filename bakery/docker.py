"""Thin adapter over the docker CLI and its buildx plugin: argv builders and output parsers.

Nothing here decides anything; it only turns requests into commands (run through :class:`Runner`) and
command output into data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dataclasses

from bakery.atomic import write_file
from bakery.capabilities import Capabilities, Version, parse_version, version_string
from bakery.config.model import Builder
from bakery.errors import BakeryError, CommandError
from bakery.oci.platforms import PlatformError, parse_platform
from bakery.process import Result, Runner



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
    # where the buildx version read last is kept with what decides it (:func:`buildx_fingerprint`); None: probe
    buildx_record: Path | None = None
    # facts that cannot change during one invocation, read once per adapter; ``dataclasses.replace`` (another
    # engine) starts without them
    _buildx: Version | None = field(default=None, init=False, repr=False, compare=False)
    _engine: EngineInfo | None = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def cmd(self, *args: str) -> list[str]:
        return [self.binary, *args]

    def _builder_flag(self) -> list[str]:
        return ["--builder", self.builder] if self.builder else []

    # ------------------------------------------------------------------ facts
    def buildx_version(self) -> Version:
        """``docker buildx version``, read once; with ``buildx_record``, read from the record while the docker
        binary, the client config and every ``docker-buildx`` the CLI could run are the ones it was read with."""
        if self._buildx is None:
            key = buildx_fingerprint(self.binary, {**os.environ, **(self.env or {})}) if self.buildx_record else ""
            self._buildx = _recorded(self.buildx_record, key) if key else None
            if self._buildx is None:
                self._buildx = self._probe_buildx()
                if key and self.buildx_record is not None and not self.runner.dry_run:
                    _record(self.buildx_record, key, self._buildx)
        return self._buildx

    def _probe_buildx(self) -> Version:
        out = self.runner.run(self.cmd("buildx", "version"), env=self.env).stdout
        found = parse_version(out.split(None, 1)[1] if " " in out else out)
        if found is None:
            raise BakeryError(f"cannot read the buildx version from {out.strip()!r}")
        return found

    def capabilities(self) -> Capabilities:
        """What the installed buildx does (attributes bake reads, --print form, entitlements, build checks)."""
        return Capabilities(self.buildx_version())

    def engine(self) -> EngineInfo:
        with self._lock:       # probes run concurrently (doctor.facts): `docker info` is still read once
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

    def bootstrap(self, name: str) -> str:
        """Start a builder (``buildx inspect --bootstrap``); "" when it came up, else buildx's last error line."""
        res = self.runner.run(self.cmd("buildx", "inspect", "--bootstrap", name), env=self.env, action=True,
                              check=False)
        if res.returncode == 0 or self.runner.dry_run:
            return ""
        return res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"

    def create_builder(self, name: str, driver: str, driver_opts: Mapping[str, str], platforms: Sequence[str],
                       endpoint: str | None, *, append: bool = False) -> None:
        """``buildx create`` a builder (or, with ``append``, add a node to it)."""
        args = self.cmd("buildx", "create", *(["--append"] if append else []), "--name", name)
        if not append:
            args += ["--driver", driver]
        for k, v in sorted(driver_opts.items()):
            args += ["--driver-opt", f"{k}={v}"]
        if platforms:
            args += ["--platform", ",".join(platforms)]
        if endpoint:
            args.append(endpoint)
        self.runner.run(args, env=self.env, action=True)

    def context_exists(self, name: str) -> bool:
        return self.runner.run(self.cmd("context", "inspect", name), check=False).returncode == 0

    def create_context(self, name: str, host: str) -> None:
        self.runner.run(self.cmd("context", "create", name, "--docker", f"host={host}"), action=True)

    def context_endpoint(self, context: str | None) -> str:
        """The engine endpoint of a docker context (the current one when None); "" when it cannot be read. The
        current context is read without the CLI when it is the default one (:func:`default_endpoint`)."""
        if context is None and (known := default_endpoint({**os.environ, **(self.env or {})})):
            return known
        args = self.cmd("context", "inspect", "--format", "{{.Endpoints.docker.Host}}")
        if context:
            args.append(context)
        res = self.runner.run(args, env=self.env, check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    def builders(self) -> dict[str, str]:
        """{builder name: driver} of every builder ``docker buildx ls`` lists (a read: never skipped by --dry-run)."""
        return parse_builders(self.runner.run(self.cmd("buildx", "ls", "--format", "json"), env=self.env).stdout)

    # ------------------------------------------------------------------ bake
    def bake_argv(self, files: Sequence[Path], targets: Sequence[str], *, push: bool = False, load: bool = False,
                  no_cache: bool = False, metadata_file: Path | None = None, progress: str | None = None,
                  print_only: bool = False, sets: Sequence[str] = (), allow: Sequence[str] = (),
                  cache_export: bool = True, provenance: str | None = None, sbom: str | None = None) -> list[str]:
        """``cache_export=False``: no target writes a cache (``--set *.cache-to=`` clears it, buildx 0.13 and
        0.2x alike): a build without push rights still reads the shared cache."""
        args = self.cmd("buildx", "bake", *self._builder_flag())
        for grant in allow:
            args += ["--allow", grant]
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
        if provenance is not None:
            args += ["--provenance", provenance]
        if sbom is not None:
            args += ["--sbom", sbom]
        if not cache_export:
            args += ["--set", "*.cache-to="]
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

    # ------------------------------------------------------------------ containers (release smoke tests)
    def server_components(self) -> dict[str, str]:
        """Name -> version of what the engine runs on (Engine, containerd, runc, docker-init): doctor only."""
        res = self.runner.run(self.cmd("version", "--format", "{{json .Server.Components}}"), env=self.env,
                              check=False)
        try:
            parts = json.loads(res.stdout) if res.returncode == 0 else []
        except ValueError:
            parts = []
        return {str(p.get("Name")): str(p.get("Version")) for p in parts or () if isinstance(p, dict)}

    def bake_check(self, files: Sequence[Path], targets: Sequence[str], env: Mapping[str, str], cwd: Path,
                   allow: Sequence[str] = ()) -> dict[str, Any]:
        """The Dockerfile build checks of every target (``--call check,format=json``, buildx >= 0.16): the
        printed document, one ``check`` section per target. A finding is not an error here."""
        argv = self.bake_argv(files, [], allow=allow) + ["--call", "check,format=json", *targets]
        res = self.runner.run(argv, env={**(self.env or {}), **env}, cwd=cwd, check=False)
        try:
            data: dict[str, Any] = json.loads(res.stdout)
        except ValueError:
            raise CommandError(res.argv, res.returncode, res.stderr, "docker buildx bake --call check failed") \
                from None
        return data

    def run_detached_argv(self, name: str, platform: str, ref: str,
                          command: Sequence[str] | None = None) -> list[str]:
        """``docker run -d``: named (to wait for, read the logs of and remove), always pulled; a ``command``
        replaces the entrypoint, so an image whose ENTRYPOINT is a server still runs it."""
        args = self.cmd("run", "-d", "--name", name, "--pull", "always", "--platform", platform)
        if command:
            args += ["--entrypoint", command[0], ref, *command[1:]]
        else:
            args.append(ref)
        return args

    def run_detached(self, name: str, platform: str, ref: str, command: Sequence[str] | None = None) -> Result:
        """Start a container (an action); the caller reads returncode and stderr."""
        return self.runner.run(self.run_detached_argv(name, platform, ref, command), env=self.env, check=False,
                               action=True)

    def wait_container(self, name: str, timeout: float) -> int | None:
        """The container's exit code, or None when it is still running after ``timeout`` seconds."""
        try:
            res = self.runner.run(self.cmd("wait", name), env=self.env, timeout=timeout, check=False)
        except CommandError as exc:
            if exc.returncode != -1:
                raise
            return None
        text = res.stdout.strip()
        return int(text) if text.lstrip("-").isdigit() else 1

    def container_logs(self, name: str) -> list[str]:
        """Everything the container wrote, stdout then stderr, one line each."""
        res = self.runner.run(self.cmd("logs", name), env=self.env, check=False)
        return (res.stdout + res.stderr).splitlines()

    def remove_container(self, name: str) -> None:
        """``docker rm -f`` (an action; a container already gone is no error)."""
        self.runner.run(self.cmd("rm", "-f", name), env=self.env, check=False, action=True)

    # ------------------------------------------------------------------ image store and build cache
    def image_present(self, ref: str) -> bool:
        """Whether the engine's image store has ``ref`` (a read: never skipped by --dry-run)."""
        res = self.runner.run(self.cmd("image", "inspect", "--format", "{{.Id}}", ref), env=self.env, check=False)
        return res.returncode == 0

    def remove_image(self, ref: str) -> bool:
        """``docker image rm``; False if the engine refused (in use, or not there)."""
        return self.runner.run(self.cmd("image", "rm", ref), env=self.env, check=False, action=True).returncode == 0

    def tag_image(self, source: str, target: str) -> None:
        """``docker tag``: one more name for a local image (an action)."""
        self.runner.run(self.cmd("tag", source, target), env=self.env, action=True)

    def copy_index(self, source: str, targets: Sequence[str]) -> None:
        """``docker buildx imagetools create -t T... SOURCE``: the index at ``source`` (``repo@digest``) and every
        manifest and blob it reaches copied under ``targets``, registry to registry (an action)."""
        args = self.cmd("buildx", "imagetools", "create")
        for target in targets:
            args += ["-t", target]
        self.runner.run([*args, source], env=self.env, action=True)

    def pull(self, ref: str) -> None:
        self.runner.run(self.cmd("pull", "-q", ref), env=self.env, action=True)

    def pull_platform(self, ref: str, platform: str) -> Result:
        """``docker pull --platform``; the caller reads returncode and stderr."""
        return self.runner.run(self.cmd("pull", "-q", "--platform", platform, ref), env=self.env, check=False,
                               action=True)

    def image_platform(self, ref: str) -> str:
        """os/arch[/variant] of a local image ("" when it is not there)."""
        fmt = "{{.Os}}/{{.Architecture}}{{if .Variant}}/{{.Variant}}{{end}}"
        res = self.runner.run(self.cmd("image", "inspect", "--format", fmt, ref), env=self.env, check=False)
        return res.stdout.strip() if res.returncode == 0 else ""

    def prune_build_cache(self) -> None:
        """Empty the builder's whole build cache (``buildx prune -af``), internal and unused records included."""
        self.runner.run(self.cmd("buildx", "prune", "-af", *self._builder_flag()), env=self.env, action=True)

    # ------------------------------------------------------------------ local cleanup (argv: clean lists them first)
    def prune_cache_argv(self, keep_storage: str | None = None, filters: Sequence[str] = ()) -> list[str]:
        """``docker buildx prune --force`` of this adapter's builder, keeping ``keep_storage`` of its cache."""
        args = self.cmd("buildx", "prune", "--force", *self._builder_flag())
        if keep_storage:
            args += ["--keep-storage", keep_storage]
        for f in filters:
            args += ["--filter", f]
        return args

    def remove_builder_argv(self, name: str) -> list[str]:
        return self.cmd("buildx", "rm", name)

    def prune_images_argv(self, filters: Sequence[str] = ()) -> list[str]:
        """``docker image prune --force``: dangling images only, never tagged ones."""
        args = self.cmd("image", "prune", "--force")
        for f in filters:
            args += ["--filter", f]
        return args

    # ------------------------------------------------------------------ facts for reports
    def info(self) -> dict[str, Any]:
        """``docker info`` as JSON; empty if the engine does not answer (a report then says less)."""
        res = self.runner.run(self.cmd("info", "--format", "{{json .}}"), env=self.env, check=False)
        if res.returncode != 0:
            return {}
        try:
            data = json.loads(res.stdout)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def client_version(self) -> str:
        """The docker CLI's own version (empty if it cannot say)."""
        res = self.runner.run(self.cmd("version", "--format", "{{.Client.Version}}"), env=self.env, check=False)
        return res.stdout.strip()


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


def parse_builders(text: str) -> dict[str, str]:
    """{builder name: driver} from ``docker buildx ls --format json`` (one JSON document per line)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("Name"):
            out[str(data["Name"])] = str(data.get("Driver", ""))
    return out


# --------------------------------------------------------------------------- the current context's endpoint
DEFAULT_HOST = "unix:///var/run/docker.sock"


def default_endpoint(env: Mapping[str, str]) -> str:
    """The engine endpoint the docker CLI talks to when that needs no context store: DOCKER_HOST when set (it
    wins over any context), the default socket when neither DOCKER_CONTEXT nor config.json names a context other
    than ``default``; "" otherwise (then ``docker context inspect`` answers)."""
    if env.get("DOCKER_HOST"):
        return env["DOCKER_HOST"]
    if env.get("DOCKER_CONTEXT") not in (None, "", "default"):
        return ""
    config_dir = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME") or "~").expanduser() / ".docker")
    try:
        data = json.loads((config_dir / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, ValueError):
        return ""
    current = data.get("currentContext") if isinstance(data, dict) else None
    return DEFAULT_HOST if current in (None, "", "default") and not env.get("DOCKER_CONTEXT") else ""


# --------------------------------------------------------------------------- the buildx version record
# where the docker CLI looks for plugins on Linux after config.json's cliPluginsExtraDirs and
# $DOCKER_CONFIG/cli-plugins (docker/cli cli-plugins/manager); the first docker-buildx found is the one it runs
SYSTEM_PLUGIN_DIRS = ("/usr/local/lib/docker/cli-plugins", "/usr/local/libexec/docker/cli-plugins",
                      "/usr/lib/docker/cli-plugins", "/usr/libexec/docker/cli-plugins")


def buildx_fingerprint(binary: str, env: Mapping[str, str]) -> str:
    """What decides which buildx ``docker buildx`` runs, as one string: the docker binary, the client config
    (config.json) and every ``docker-buildx`` in the directories the CLI searches, each by path, size, mtime and
    inode. Any change (an upgrade, another DOCKER_CONFIG, a plugin dropped in front) gives another string; ""
    when the docker binary is not on PATH (then the version is probed)."""
    found = shutil.which(binary, path=env.get("PATH"))
    if not found:
        return ""
    config_dir = Path(env.get("DOCKER_CONFIG") or Path(env.get("HOME") or "~").expanduser() / ".docker")
    dirs = [*_extra_plugin_dirs(config_dir / "config.json"), str(config_dir / "cli-plugins"), *SYSTEM_PLUGIN_DIRS]
    parts = [_stamp(Path(found)), _stamp(config_dir / "config.json")]
    parts += [_stamp(Path(d) / "docker-buildx") for d in dirs]
    return "\n".join(parts)


def _stamp(path: Path) -> str:
    try:
        st = path.stat()
    except OSError:
        return f"{path} -"
    return f"{path} {st.st_size} {st.st_mtime_ns} {st.st_ino}"


def _extra_plugin_dirs(config_json: Path) -> list[str]:
    try:
        data = json.loads(config_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    extra = data.get("cliPluginsExtraDirs") if isinstance(data, dict) else None
    return [str(d) for d in extra] if isinstance(extra, list) else []


def _recorded(record: Path | None, key: str) -> Version | None:
    """The version in ``record`` when it was read under ``key``; None otherwise (missing, stale or unreadable)."""
    if record is None:
        return None
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    return parse_version(str(data.get("version", "")))


def _record(record: Path, key: str, version: Version) -> None:
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_file(record, json.dumps({"key": key, "version": version_string(version)}, indent=1) + "\n")
    except OSError:
        pass                        # a read-only checkout only loses the shortcut


# --------------------------------------------------------------------------- one adapter per builder
# a builder addressed by its docker context must not be redirected by the caller's environment: DOCKER_HOST wins
# over DOCKER_CONTEXT in the docker CLI, and BUILDX_BUILDER picks another builder; both are unset when empty
PINNED = {"DOCKER_HOST": "", "BUILDX_BUILDER": ""}


def docker_for(base: Docker, builder: Builder) -> Docker:
    """The docker adapter that talks to ``builder``, whatever DOCKER_HOST/DOCKER_CONTEXT/BUILDX_BUILDER say."""
    env = {**(base.env or {}), **PINNED, "DOCKER_CONTEXT": builder.context} if builder.context else base.env
    name = None if builder.driver == "docker" else builder.name
    if env == base.env and name == base.builder:
        return base      # the same engine and builder: keep the facts already read
    return dataclasses.replace(base, builder=name, env=env)


def describe(builder: Builder) -> str:
    """How a builder is named in messages: `builder NAME (driver, where)`."""
    where = f"context {builder.context}" if builder.context else \
        (builder.endpoint or ("current docker context" if builder.driver == "docker" else ""))
    return f"builder {builder.name} ({builder.driver}{', ' + where if where else ''})"
