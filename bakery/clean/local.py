"""``bakery clean --local``: this machine's build cache, stale builders and dangling images.

``docker buildx prune`` per builder the config uses (``--keep-storage``, ``--filter``), ``docker buildx rm`` for
builders named with bakery's prefix that the config no longer uses and that bakery recorded creating (``setup``
records them: :func:`bakery.doctor.provision.created_builders`; a builder someone else made is never removed;
docker-driver builders are docker contexts, never removed either), and ``docker image prune`` for dangling images. The steps are listed first (a dry run prints
them), then run through :class:`~bakery.process.Runner`; every argv comes from :class:`~bakery.docker.Docker`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from bakery.clean.policy import check_filter, check_size
from bakery.config.model import Config
from bakery.docker import Docker, docker_for
from bakery.doctor.provision import created_builders, forget_created

__all__ = ["LocalStep", "local_steps", "run_local"]


@dataclass(frozen=True)
class LocalStep:
    what: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()     # e.g. DOCKER_CONTEXT for a docker-driver builder on another engine
    removes_builder: str = ""                 # the builder this step removes (dropped from the record when done)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"what": self.what, "argv": list(self.argv)}
        if self.env:
            out["env"] = dict(self.env)
        return out


def local_steps(docker: Docker, config: Config, *, keep_storage: str | None = None, filters: Sequence[str] = (),
                builder_prefix: str = "bakery", image_filters: Sequence[str] = (),
                created: Collection[str] | None = None) -> list[LocalStep]:
    """What local cleanup will run (reads ``docker buildx ls``; changes nothing): prune every builder the
    config's groups use, remove builders named ``builder_prefix...`` that bakery.yaml does not define and that
    bakery created (``created``, default: the record ``setup`` keeps), prune dangling images."""
    if keep_storage is not None:
        keep_storage = check_size(keep_storage)
    filters = [check_filter(f, "--filter") for f in filters]
    image_filters = [check_filter(f, "--image-filter") for f in image_filters]
    existing = docker.builders()
    steps = _prune_steps(docker, config, existing, keep_storage, filters)
    ours = set(created_builders() if created is None else created)
    if builder_prefix:
        for name, driver in sorted(existing.items()):
            if name.startswith(builder_prefix) and name not in config.builders and driver != "docker" and name in ours:
                steps.append(LocalStep(f"remove stale builder {name} (driver {driver}, not in {config.source})",
                                       tuple(docker.remove_builder_argv(name)), removes_builder=name))
    steps.append(LocalStep("remove dangling images", tuple(docker.prune_images_argv(image_filters))))
    return steps


def _prune_steps(docker: Docker, config: Config, existing: dict[str, str], keep_storage: str | None,
                 filters: Sequence[str]) -> list[LocalStep]:
    """A build cache prune per builder the config uses that exists (a docker-driver one always does)."""
    steps = []
    for builder in config.builders_for():
        if builder.driver != "docker" and builder.name not in existing:
            continue   # never created (or already removed): nothing to prune
        adapter = docker_for(docker, builder)
        env = tuple(sorted((k, v) for k, v in (adapter.env or {}).items() if k == "DOCKER_CONTEXT"))
        steps.append(LocalStep(f"prune the build cache of builder {builder.name}",
                               tuple(adapter.prune_cache_argv(keep_storage, filters)), env))
    return steps


def run_local(docker: Docker, steps: Sequence[LocalStep]) -> list[dict[str, Any]]:
    """Run the steps (``Runner`` echoes and skips them under ``dry_run``); returns what each printed last."""
    done = []
    for step in steps:
        res = docker.runner.run(list(step.argv), env={**(docker.env or {}), **dict(step.env)}, action=True)
        if step.removes_builder and res.returncode == 0 and not getattr(docker.runner, "dry_run", False):
            forget_created([step.removes_builder])
        lines = [ln.strip() for ln in (res.stdout + "\n" + res.stderr).splitlines() if ln.strip()]
        done.append({**step.to_dict(), "summary": lines[-1] if lines else ""})
    return done
