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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from invoke import Context, Exit

from bakery.config import CONFIG_FILE, Config, load
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.process import Runner

F = TypeVar("F", bound=Callable[..., Any])


DEFAULTS: dict[str, Any] = {
    "config": None, "registry": None, "tag": None, "cache_scope": None, "docker": "docker", "overrides": {},
}


def errors_to_exit(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BakeryError as exc:
            raise Exit(f"bakery: {exc}".replace("\n", "\nbakery: "), code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("bakery: interrupted; no results written", code=130) from None
    return wrapper  # type: ignore[return-value]


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


def config_from(c: Context, path: str | None = None) -> Config:
    s = _settings(c)
    chosen = path or s.get("config")
    cfg_path = Path(chosen) if chosen else find_config(Path.cwd())
    overrides: dict[str, Any] = dict(s.get("overrides") or {})
    if s.get("registry"):
        overrides["registry"] = s["registry"]
    if s.get("tag"):
        overrides["tag"] = s["tag"]
    if s.get("cache_scope"):
        overrides["cache"] = {**overrides.get("cache", {}), "scope": s["cache_scope"]}
    return load(cfg_path, overrides)


def docker_from(c: Context, config: Config, *, verbose: bool = False, dry_run: bool = False) -> Docker:
    """The docker adapter for the current docker context; :func:`builders.docker_for` derives per-builder ones."""
    return Docker(Runner(verbose=verbose, dry_run=dry_run), binary=_settings(c).get("docker") or "docker")
