"""``bakery init``: a first bakery.yaml for a repository, commented so a team can read what each key does.

The images come from an existing bake or compose file when there is one (evaluated by buildx through the import,
:mod:`bakery.config.bake_import`: what ``docker buildx bake`` builds today is what bakery builds), else from the
Dockerfiles found under the directory. The text is checked by the validator before it is written: ``init`` never
leaves a bakery.yaml that ``bakery generate`` refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.adopt.derive import images_yaml
from bakery.oci.platforms import parse_platform

# what `docker buildx bake` reads without -f, in its order (compose files first, as bake does)
BAKE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml", "docker-bake.json",
              "docker-bake.hcl")
SKIP_DIRS = frozenset({"node_modules", "vendor", "venv", "dist", "build", "target", "__pycache__"})
_DOCKERFILE = re.compile(r"^(?:Dockerfile|Containerfile)(?:\.[\w.-]+)?$|^[\w.-]+\.(?:Dockerfile|dockerfile)$")


@dataclass(frozen=True)
class Draft:
    """What bakery.yaml is written from: the registry, platforms and images (with where each came from)."""
    registry: str
    platforms: tuple[str, ...]
    images: Mapping[str, Mapping[str, Any]]
    where: Mapping[str, str] = field(default_factory=dict)
    origin: str = "the Dockerfiles under this directory"
    bake_dir: str = "bake"


def bake_files(root: Path) -> list[str]:
    """The bake and compose files ``docker buildx bake`` would read in ``root``."""
    return [name for name in BAKE_FILES if (root / name).is_file()]


def dockerfiles(root: Path, skip: Sequence[str] = ("bake",)) -> list[Path]:
    """Dockerfiles under ``root`` (relative paths, sorted), hidden and dependency directories left out."""
    return sorted(p.relative_to(root) for p in _walk(root, root, frozenset(skip)))


def _walk(root: Path, here: Path, skip: frozenset[str]) -> Iterator[Path]:
    for entry in sorted(here.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            rel = entry.relative_to(root).as_posix()
            if not entry.name.startswith(".") and entry.name not in SKIP_DIRS and rel not in skip:
                yield from _walk(root, entry, skip)
        elif entry.is_file() and _DOCKERFILE.match(entry.name):
            yield entry


def image_name(path: Path, root: Path) -> str:
    """An image name (a bake target name too) from a Dockerfile's place: its directory and the file's suffix
    (``worker/Dockerfile.prod`` -> ``worker-prod``, ``Dockerfile.worker`` -> ``worker``), or the repository's
    directory for a Dockerfile at the top."""
    stem = path.name
    for known in ("Dockerfile", "Containerfile", "dockerfile"):
        stem = stem.replace(known, "")
    stem = stem.strip(".")
    folder = path.parent.name if path.parent != Path(".") else ""
    base = "-".join(x for x in (folder, stem) if x) or root.resolve().name
    return re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-") or "app"


def from_dockerfiles(root: Path, files: Sequence[Path]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """``images:`` entries (context, dockerfile when not the default) and where each came from."""
    images: dict[str, dict[str, Any]] = {}
    where: dict[str, str] = {}
    for path in files:
        name = unique(image_name(path, root), images)
        entry: dict[str, Any] = {"context": path.parent.as_posix()}
        if path.name != "Dockerfile":
            entry["dockerfile"] = path.name
        images[name] = entry
        where[name] = path.as_posix()
    return images, where


def unique(name: str, taken: Mapping[str, Any]) -> str:
    n, candidate = 2, name
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def groups_of(platforms: Sequence[str]) -> dict[str, list[str]]:
    """One platform group per architecture (``linux/arm/v7`` -> ``armv7``), named as bake target suffixes."""
    out: dict[str, list[str]] = {}
    for p in platforms:
        parsed = parse_platform(p)
        out.setdefault(re.sub(r"[^a-z0-9]", "", f"{parsed.arch}{parsed.variant or ''}".lower()), []).append(
            str(parsed))
    return out


def render(draft: Draft, schema_path: str | None) -> str:
    """bakery.yaml's text: a schema line for editors, a comment per section, the images with their origin."""
    head = [f"# yaml-language-server: $schema={schema_path}\n"] if schema_path else []
    head += [f"# bakery.yaml, written by `bakery init` from {draft.origin}.\n",
             "# Every key: docs/config.md (or `bakery schema`). Next: `bakery doctor`, `bakery generate`,\n",
             "# `bakery build` (`--push --tag X` publishes one multi-arch index per image).\n", "\n",
             f"registry: {draft.registry}    # images are <registry>/<image>:<tag>; BAKERY_REGISTRY overrides it\n",
             "\n", "# group name -> platforms: one bake target per image and group, each with its own cache\n",
             "platform_groups:\n"]
    head += [f"  {g}: [{', '.join(ps)}]\n" for g, ps in groups_of(draft.platforms).items()]
    head += ["\n", "cache:\n",
             "  type: registry    # registry | local | inline | none (registry: needs push rights there)\n",
             "  scope: main       # the cache refs' suffix; CI sets BAKERY_CACHE_SCOPE to the branch\n", "\n"]
    if draft.bake_dir != "bake":
        head += [f"bake_dir: {draft.bake_dir}\n", "\n"]
    head += ["# one entry per image: context (from the repository root), dockerfile (from the context), target,\n",
             "# args, labels, platform_groups (default: all), test (a smoke-test command for `bakery release`)\n",
             "images:\n", images_yaml(draft.images, draft.where)]
    return "".join(head)
