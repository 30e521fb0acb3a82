"""What ``clean`` works on, from bakery.yaml: the repositories (:func:`targets`), the retention policy
(:func:`policy_for`: the ``retention:`` section plus the project's own built-in tags), and the checks of the
``--local`` flags. Reads the config only; the registry is first touched by the snapshot."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bakery.clean.model import Policy
from bakery.clean.retention_config import parse_policy, validator
from bakery.config.model import Config, suggest
from bakery.config.variables import VAR_REGISTRY, bake_variables
from bakery.errors import BakeryError
from bakery.oci.reference import split_domain
from bakery.oci.registry import Registry, registry_for

__all__ = ["Target", "check_filter", "check_size", "needs_created", "policy_for", "registry_client",
           "registry_ref", "targets"]

_SIZE = re.compile(r"^\d+(\.\d+)?\s*([kmgtp]i?b?|b)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    image: str          # the image's name in bakery.yaml
    ref: str            # <registry host>/<repository path>, as users write it
    repository: str     # the repository path on the registry


def registry_ref(config: Config, registry: str | None = None) -> str:
    """The registry name prefix clean works on: ``registry``, else the one builds push to (``BAKERY_REGISTRY``,
    else the config's ``registry``)."""
    return registry or bake_variables(config)[VAR_REGISTRY]


def registry_client(config: Config, registry: str | None = None) -> Registry:
    client, _ = registry_for(registry_ref(config, registry))
    return client


def targets(config: Config, images: Sequence[str] = (), registry: str | None = None) -> list[Target]:
    """The repositories of the config's images (``--image`` narrows them), under :func:`registry_ref`."""
    prefix_ref = registry_ref(config, registry)
    _, prefix = registry_for(prefix_ref)
    host = split_domain(prefix_ref)[0] or "docker.io"
    for name in images:
        if name not in config.images:
            raise BakeryError(f"--image {name}: no such image in {config.source}; "
                              f"{suggest(name, sorted(config.images))}")
    out: list[Target] = []
    seen: set[str] = set()
    for name in sorted(set(images) or config.images):
        image = config.images[name]
        repository = f"{prefix}/{image.repository}" if prefix else image.repository
        if repository not in seen:
            seen.add(repository)
            out.append(Target(name, f"{host}/{repository}", repository))
    return out


def policy_for(config: Config) -> Policy:
    """``retention:`` from bakery.yaml (every problem at once, a rule's ``images`` checked against the config's
    images), plus what the project's own config says about its built-in tags: the per-group intermediate ref
    templates and the registry cache tag pattern."""
    known = sorted({*config.images, *(i.repository for i in config.images.values())})
    policy = parse_policy(config.raw.get("retention") or {}, config.source,
                          v=validator(config.source, config.root), images=known)
    intermediate = tuple(sorted({config.intermediate_tag.replace("{group}", g) for g in config.platform_groups}))
    builtin = tuple(p for p in (_cache_tag_pattern(config),) if p)
    return replace(policy, intermediate=intermediate, builtin=builtin)


def _cache_tag_pattern(config: Config) -> str | None:
    """A regex for the tags ``cache.ref`` produces, when it names a tag with some literal text in it."""
    if config.cache.type != "registry":
        return None
    ref = config.cache.ref
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
    if not tag:
        return None
    groups = "|".join(re.escape(g) for g in sorted(config.platform_groups))
    images = "|".join(re.escape(i) for i in sorted(config.images))
    parts = re.split(r"(\{[a-z_]+\})", tag)
    literal = "".join(p for p in parts if not p.startswith("{"))
    if len(literal) < 2:
        return None
    fill = {"{group}": f"(?:{groups})", "{image}": f"(?:{images})", "{scope}": r"[\w][\w.-]*"}
    return "".join(fill.get(p, ".+") if p.startswith("{") else re.escape(p) for p in parts if p)


def needs_created(policy: Policy) -> bool:
    """Whether any decision depends on image age (else the snapshot skips reading config blobs)."""
    untagged = policy.untagged
    counted = isinstance(untagged, int) and not isinstance(untagged, bool) and untagged > 0
    return counted or any(r.older_than is not None or (r.keep_last or 0) > 0 for r in policy.rules)


def check_size(value: str) -> str:
    if not _SIZE.match(value.strip()):
        raise BakeryError(f"--keep-storage {value!r}: not a size; use e.g. 10gb, 512mb or a number of bytes")
    return value.strip()


def check_filter(value: str, flag: str) -> str:
    key, sep, val = value.partition("=")
    if not sep or not key.strip() or not val.strip():
        raise BakeryError(f"{flag} {value!r}: expected KEY=VALUE, e.g. until=168h")
    return value
