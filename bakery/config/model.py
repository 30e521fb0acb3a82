"""bakery.yaml as data: the immutable :class:`Config` and its parts, the keys each section takes, and names.

Loading is :mod:`bakery.config.load`, validation :mod:`bakery.config.validate`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bakery.capabilities import TARGET_ATTRS
from bakery.config.lines import KeyLines

CONFIG_FILE = "bakery.yaml"
CacheType = Literal["registry", "local", "inline", "none", "gha", "s3", "azblob"]
CACHE_TYPES: tuple[str, ...] = ("registry", "local", "inline", "none", "gha", "s3", "azblob")
# cache.options each backend takes (BuildKit's cache exporter/importer attributes); EXPORT_ONLY go to cache-to only
_EXPORT = ("compression", "compression-level", "force-compression")
CACHE_OPTIONS: dict[str, tuple[str, ...]] = {
    "registry": ("image-manifest", "oci-mediatypes", *_EXPORT),
    "local": ("image-manifest", "oci-mediatypes", *_EXPORT),
    "inline": (),
    "none": (),
    "gha": ("url", "url_v2", "version", "timeout", "repository", *_EXPORT),
    "s3": ("region", "bucket", "endpoint_url", "prefix", "blobs_prefix", "manifests_prefix", "use_path_style",
           "upload_parallelism", "touch_refresh", *_EXPORT),
    "azblob": ("account_url", "prefix", "blobs_prefix", "manifests_prefix", "upload_parallelism", *_EXPORT),
}
CACHE_REQUIRED: dict[str, tuple[str, ...]] = {"s3": ("region", "bucket"), "azblob": ("account_url",)}
EXPORT_ONLY = ("image-manifest", "oci-mediatypes", *_EXPORT)
# credentials never go into a bake file: buildx and BuildKit read them from the environment
CACHE_SECRETS = {"token": "ACTIONS_RUNTIME_TOKEN", "ghtoken": "GITHUB_TOKEN",
                 "access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY / AZURE_*",
                 "session_token": "AWS_SESSION_TOKEN"}
PROVENANCE: tuple[str, ...] = ("min", "max")
DRIVERS: tuple[str, ...] = ("docker", "docker-container", "remote", "kubernetes")
ARG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
GROUP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
RESERVED_GROUPS = ("default",)

TOP_KEYS = ("registry", "platform_groups", "cache", "images", "images_from", "tag", "intermediate_tag",
            "bake_dir", "formats", "provenance", "sbom", "attest", "builders", "default_builder", "fanout", "labels",
            "retention", "release", "skip", "tags")
IMAGE_KEYS = ("context", "dockerfile", "target", "args", "labels", "platform_groups", "repository", "test",
              "provenance", "sbom", "attest", "bake")
CACHE_KEYS = ("type", "scope", "fallback_scope", "mode", "dir", "ref", "ignore_error", "options")
GROUP_KEYS = ("platforms", "builder")
BUILDER_KEYS = ("driver", "context", "endpoint", "driver_opts", "platforms", "max_parallel", "nodes")
NODE_KEYS = ("context", "endpoint", "platforms", "driver_opts")
IMPLICIT_BUILDER = "default"
# raw target attributes an image may pass through under `bake:` (which buildx reads which: bakery.capabilities)
PASSTHROUGH_ATTRS = tuple(TARGET_ATTRS)


@dataclass(frozen=True)
class PlatformGroup:
    name: str
    platforms: tuple[str, ...]
    builder: str | None = None   # None: the configured default builder


@dataclass(frozen=True)
class Cache:
    type: str = "registry"
    scope: str = "main"              # this build's cache ref suffix (branch); BAKERY_CACHE_SCOPE at run time
    fallback_scope: str | None = "main"  # also read from this scope's refs (e.g. the main branch)
    mode: str = "max"
    dir: str = "bake/cache"          # for type=local, relative to the repo root
    ref: str = "{registry}/{repository}:cache-{group}-{scope}"
    ignore_error: bool = False
    options: Mapping[str, str] = field(default_factory=dict)   # backend attributes (CACHE_OPTIONS)


@dataclass(frozen=True)
class BuilderNode:
    """An extra node of a multi-node builder (``docker buildx create --append``)."""
    context: str | None = None
    endpoint: str | None = None
    platforms: tuple[str, ...] = ()
    driver_opts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Builder:
    """A buildx builder. The docker driver's builder lives in a docker context and is selected with
    ``DOCKER_CONTEXT``, not ``--builder``; every other driver is a named buildx builder."""
    name: str = IMPLICIT_BUILDER
    driver: str = "docker"
    context: str | None = None          # docker context (docker driver: the engine; others: where to create)
    endpoint: str | None = None         # docker driver: creates `context` with this host; remote: BuildKit address
    driver_opts: Mapping[str, str] = field(default_factory=dict)
    platforms: tuple[str, ...] = ()     # platforms it serves natively (--platform at creation)
    max_parallel: int | None = None     # at most this many targets at once on this builder
    nodes: tuple[BuilderNode, ...] = ()

    @property
    def implicit(self) -> bool:
        """The docker driver on the current docker context: nothing to create or select."""
        return self.driver == "docker" and self.context is None and self.endpoint is None


@dataclass(frozen=True)
class Image:
    name: str
    context: str                 # relative to the repo root, posix
    dockerfile: str              # relative to the context, as bake expects
    platform_groups: tuple[str, ...]
    repository: str              # path under `registry`
    target: str | None = None
    args: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    test: tuple[str, ...] | None = None
    bake: Mapping[str, Any] = field(default_factory=dict)
    # attestations of this image's targets (bakery.config.attest); None: as the top level says
    provenance: str | bool | None = None     # "min" | "max" | False (none)
    sbom: bool | None = None
    attest: tuple[str, ...] = ()             # raw attest entries ("type=sbom,generator=..."), one per type


@dataclass(frozen=True)
class Config:
    root: Path
    source: str                  # file name shown in messages
    registry: str
    platform_groups: Mapping[str, PlatformGroup]
    images: Mapping[str, Image]
    cache: Cache = Cache()
    tag: str = "latest"
    intermediate_tag: str = "{tag}-{group}"
    bake_dir: str = "bake"
    formats: tuple[str, ...] = ("json",)
    provenance: str | None = "min"      # None: no provenance attestation
    sbom: bool = False
    attest: tuple[str, ...] = ()         # raw attest entries, one per type (bakery.config.attest)
    labels: Mapping[str, str] = field(default_factory=dict)
    builders: Mapping[str, Builder] = field(default_factory=lambda: {IMPLICIT_BUILDER: Builder()})
    default_builder: str = IMPLICIT_BUILDER
    fanout: int | None = None            # builders building at once (None: all of them)
    skip: bool = True                    # build --push reuses the result of a target whose inputs did not change
    mirrors: tuple[str, ...] = ()        # `registry:` after the first: each gets a copy of every published index
    raw: Mapping[str, Any] = field(default_factory=dict)   # the merged document, for later sections
    lines: KeyLines = field(default_factory=lambda: KeyLines(), compare=False, repr=False)

    def builder_of(self, group: str) -> Builder:
        return self.builders[self.platform_groups[group].builder or self.default_builder]

    def builders_for(self, groups: Sequence[str] = ()) -> list[Builder]:
        """The builders the given platform groups (default: all) are mapped to, in config order, once each."""
        names = dict.fromkeys(self.builder_of(g).name for g in (groups or self.platform_groups))
        return [self.builders[n] for n in names]

    def groups_of(self, image: str) -> tuple[PlatformGroup, ...]:
        return tuple(self.platform_groups[g] for g in self.images[image].platform_groups)

    def platforms_of(self, image: str) -> tuple[str, ...]:
        return tuple(p for g in self.groups_of(image) for p in g.platforms)


def shown(value: Any) -> str:
    """A value for a message: its repr, cut short (a message is one line)."""
    try:
        text = repr(value)
    except ValueError:          # an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= 80 else text[:77] + "..."


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else f"expected one of: {', '.join(choices)}"


def target_name(image: str, group: str) -> str:
    """The bake target of one image built for one platform group."""
    return f"{image}-{group}"


