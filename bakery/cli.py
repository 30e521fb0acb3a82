"""What every task module shares: Invoke config -> Config and Docker, BakeryError -> a one-line message and an
exit code. Only task modules import this (and Invoke); the core never does.

Invoke config (``ns.configure``, ``invoke.yaml`` under ``bakery:``, or ``INVOKE_BAKERY_*`` variables):

=================  ======================================================================
``config``         path of bakery.yaml (default: found by walking up from the current dir)
``registry``       overrides ``registry``            (``INVOKE_BAKERY_REGISTRY``)
``tag``            overrides ``tag``                 (``INVOKE_BAKERY_TAG``)
``cache_scope``    overrides ``cache.scope``         (``INVOKE_BAKERY_CACHE_SCOPE``)
``docker``         the docker binary (default ``docker``)
``overrides``      any bakery.yaml keys, deep-merged (e.g. ``{cache: {type: local}}``)
=================  ======================================================================

At build time the variables bake itself reads win over all of these: ``BAKERY_REGISTRY``, ``BAKERY_TAG``,
``BAKERY_CACHE_SCOPE``; task flags win over everything.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO, TypeVar

import invoke
import yaml
from invoke import Context, Exit

from bakery.config import CONFIG_FILE, Config, load
from bakery.config.load import deep_merge
from bakery.docker import Docker
from bakery.errors import BakeryError, ConfigError, ConfigErrors, Terminated
from bakery.process import Runner

F = TypeVar("F", bound=Callable[..., Any])


DEFAULTS: dict[str, Any] = {
    "config": None, "registry": None, "tag": None, "cache_scope": None, "docker": "docker", "overrides": {},
}


SHORT_FLAGS: dict[str, str] = {
    "verbose": "v", "dry-run": "d", "config": "c", "group": "g", "image": "i", "tag": "t", "push": "p",
    "json": "j", "yes": "y",
}
"""The only short flags, the same letter meaning the same flag in every task (docs/config.md): Invoke's automatic
ones differed per task (``-c`` was --config, --cache-scope or --check; ``-h`` hid --help in ``generate``)."""


class BakeryTask(invoke.Task[Any]):
    """A task whose short flags come from :data:`SHORT_FLAGS` only, and which names the flags an empty value is
    meaningful for (``allow_empty``; every other value-taking flag refuses ``""``, see :mod:`bakery.program`)."""

    def __init__(self, *args: Any, allow_empty: tuple[str, ...] = (), **kwargs: Any) -> None:
        kwargs["auto_shortflags"] = False
        super().__init__(*args, **kwargs)
        self.allow_empty = frozenset(allow_empty)

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Any]:
        # Invoke pops each flag's help while it builds the arguments: a second parser (bakery's program reads the
        # contexts before Invoke does) would print every flag without its help
        kept = dict(self.help)
        try:
            return list(super().get_arguments(ignore_unknown_help))
        finally:
            self.help = kept

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        opts = super().arg_opts(name, default, taken_names)
        short = SHORT_FLAGS.get(opts["names"][0])
        if short and short not in taken_names:
            opts["names"].append(short)
        return opts


def task(*args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Invoke's ``@task`` making a :class:`BakeryTask`: every task module declares its tasks with this one."""
    return invoke.task(*args, klass=BakeryTask, **kwargs)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def errors_to_exit(fn: F) -> F:
    """A task's boundary: BakeryError -> its one line and exit code; Ctrl-C -> exit 130 and SIGTERM -> exit 143,
    each after the cleanup an interruption runs, with what state is public."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if main else None
        try:
            return fn(*args, **kwargs)
        except BakeryError as exc:
            if os.environ.get("GITHUB_ACTIONS") == "true":
                for line in github_annotations(exc):
                    print(line, flush=True)
            raise Exit(f"bakery: {exc}".replace("\n", "\nbakery: "), code=exc.exit_code) from None
        except KeyboardInterrupt as exc:
            term = isinstance(exc, Terminated)
            state = str(exc) or "no results written"
            raise Exit(f"bakery: {'terminated (SIGTERM)' if term else 'interrupted'}; {state}",
                       code=143 if term else 130) from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous or signal.SIG_DFL)
    return wrapper  # type: ignore[return-value]


def github_annotations(exc: BakeryError) -> list[str]:
    """GitHub Actions' ``::error file=F,line=N::message`` for each config problem (the file and line it names), so
    the pull request shows it on the line; ``::error::message`` for any other error."""
    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    problems = exc.errors if isinstance(exc, ConfigErrors) else [exc] if isinstance(exc, ConfigError) else []
    if not problems:
        return [f"::error title=bakery::{data(str(exc))}"]
    out = []
    for problem in problems:
        path, _, line = problem.source.rpartition(":")
        where = f"file={prop(path)},line={line}" if path and line.isdigit() else f"file={prop(problem.source)}"
        what = f"{problem.key}: {problem.message}" if problem.key else problem.message
        out.append(f"::error {where},title=bakery.yaml::{data(what)}")
    return out


def _plain(value: Any) -> Any:
    """Invoke hands config out as DataProxy objects; the core takes plain dicts and lists."""
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _settings(c: Context) -> dict[str, Any]:
    try:
        settings: dict[str, Any] = _plain(c.config.bakery)
    except AttributeError:
        settings = dict(DEFAULTS)
    return settings


def find_config(start: Path) -> Path:
    for d in (start, *start.parents):
        if (d / CONFIG_FILE).is_file():
            return d / CONFIG_FILE
    raise BakeryError(f"{CONFIG_FILE} not found in {start} or any parent directory (pass --config PATH)")


def has_config(start: Path) -> bool:
    """Whether a bakery.yaml is in ``start`` or above (the tasks that also work without one ask this)."""
    return any((d / CONFIG_FILE).is_file() for d in (start, *start.parents))


def config_from(c: Context, path: str | None = None, *, verbose: bool = False) -> Config:
    """The validated config; ``images_from`` is evaluated by this docker CLI's buildx (notes to stderr)."""
    s = _settings(c)
    chosen = path or s.get("config")
    cfg_path = Path(chosen) if chosen else find_config(Path.cwd())
    overrides: dict[str, Any] = deep_merge(dict(s.get("overrides") or {}), env_overrides(os.environ))
    if s.get("registry"):
        overrides["registry"] = s["registry"]
    if s.get("tag"):
        overrides["tag"] = s["tag"]
    if s.get("cache_scope"):
        overrides["cache"] = {**overrides.get("cache", {}), "scope": s["cache_scope"]}
    evaluator = Docker(Runner(), binary=s.get("docker") or "docker")
    return load(cfg_path, overrides, evaluator, out=sys.stderr, verbose=verbose)


OVERRIDE_VARIABLES = ("INVOKE_BAKERY_OVERRIDES", "BAKERY_OVERRIDES")


def env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """``bakery.overrides`` from the environment (Invoke cannot set a mapping from one): a YAML or JSON mapping in
    ``INVOKE_BAKERY_OVERRIDES``, then ``BAKERY_OVERRIDES`` on top, e.g. ``BAKERY_OVERRIDES='{cache: {type: gha}}'``;
    validated with the file like every override."""
    merged: dict[str, Any] = {}
    for name in OVERRIDE_VARIABLES:
        text = env.get(name, "").strip()
        if not text:
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BakeryError(f"{name}: not YAML or JSON ({str(exc).splitlines()[0]})") from None
        if not isinstance(value, dict):
            raise BakeryError(f"{name}: expected a mapping such as '{{cache: {{type: local}}}}', got {text[:80]!r}")
        merged = deep_merge(merged, value)
    return merged


BUILDX_RECORD = ".buildx-version.json"      # under bake/: the buildx version and what it was read with


def docker_from(c: Context, config: Config | None, *, verbose: bool = False, dry_run: bool = False,
                record: bool = False) -> Docker:
    """The docker adapter for the current docker context; :func:`bakery.docker.docker_for` derives per-builder
    ones; with ``record`` (the build tasks) the buildx version is kept in ``bake/.buildx-version.json`` (read
    again when docker or buildx changed; bench, clean and doctor leave the checkout as it was).
    ``BUILDX_BUILDER`` in the caller's environment is cleared: the implicit builder is the current context's
    own, the engine ``docker info`` describes (other builders are named in bakery.yaml's ``builders:``)."""
    env = {"BUILDX_BUILDER": ""} if os.environ.get("BUILDX_BUILDER") else None
    kept = config.root / config.bake_dir / BUILDX_RECORD if config is not None and record else None
    return Docker(Runner(verbose=verbose, dry_run=dry_run), binary=_settings(c).get("docker") or "docker", env=env,
                  buildx_record=kept)


class StatusLine:
    """THE one status line of the tasks, on ``stream``: on a terminal ``draw`` rewrites it in place and ``line``
    replaces it with a finished line; elsewhere only finished lines are written, so CI logs stay short."""

    def __init__(self, stream: TextIO, tty: bool | None = None) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)()) if tty is None else tty

    def draw(self, text: str) -> None:
        if self.tty:
            self._write(f"\r\x1b[K{text}")

    def line(self, text: str) -> None:
        self._write(f"\r\x1b[K{text}\n" if self.tty else f"{text}\n")

    def clear(self) -> None:
        if self.tty:
            self._write("\r\x1b[K")

    def _write(self, data: str) -> None:
        self.stream.write(data)
        self.stream.flush()


class Progress:
    """``progress(phase, done, total)`` as ``[label: ]phase done/total`` on a :class:`StatusLine`: redrawn at most
    every 0.1 s on a terminal; elsewhere a line per finished phase (and at most one every ``every`` seconds).
    ``end()`` clears the terminal line before other output."""

    def __init__(self, stream: TextIO, every: float = 10.0) -> None:
        self.status = StatusLine(stream)
        self.every = every
        self.label = ""
        # a terminal shows the first update at once; a log waits `every` seconds before an unfinished phase
        self._last = float("-inf") if self.status.tty else time.monotonic()
        self._shown = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        finished = total > 0 and done >= total
        text = f"{self.label}: {phase} {done}/{total}" if self.label else f"{phase} {done}/{total}"
        if self.status.tty:
            if finished or now - self._last >= 0.1:
                self.status.draw(text)
                self._last, self._shown = now, text
        elif total > 1 and ((finished and text != self._shown) or (done and now - self._last >= self.every)):
            self.status.line(text)
            self._last, self._shown = now, text

    def end(self) -> None:
        if self._shown:
            self.status.clear()
        self._shown = ""
