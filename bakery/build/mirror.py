"""Mirrors: every index ``build --push`` and ``stitch`` published in the first registry of ``registry:`` is copied
to each of the others under the same tags (``docker buildx imagetools create``, registry to registry: the
images, attestations and blobs it reaches), one command per image and mirror. Every copy is tried; those that
failed are then one error naming each mirror and its cause (the first registry's index stands, and results.json
is written before)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from bakery.config.model import Config
from bakery.docker import Docker
from bakery.errors import BakeryError, CommandError

__all__ = ["copy_to_mirrors", "mirror_refs"]


def mirror_refs(config: Config, images: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """(image, source ``repo@digest``, [``mirror/repository:tag`` ...]) per stitched image and mirror (pure)."""
    out = []
    for name, info in sorted(images.items()):
        repository = config.images[name].repository
        source = f"{str(info['ref']).rsplit(':', 1)[0]}@{info['digest']}"
        tags = info.get("tags") or [str(info["ref"]).rsplit(":", 1)[1]]
        for mirror in config.mirrors:
            out.append((name, source, [f"{mirror}/{repository}:{t}" for t in tags]))
    return out


def copy_to_mirrors(config: Config, docker: Docker, images: Mapping[str, dict[str, Any]], out: TextIO) -> None:
    """Copy each stitched image to every mirror, recording the refs in its ``mirrored`` list; raises once, after
    trying all, when any copy failed."""
    failed = []
    for name, source, targets in mirror_refs(config, images):
        try:
            docker.copy_index(source, targets)
        except CommandError as exc:
            failed.append(f"{targets[0].rsplit(':', 1)[0]}: {exc}")
            continue
        images[name].setdefault("mirrored", []).extend(targets)
        print(f"mirrored {source} -> {', '.join(targets)}", file=out)
    if failed:
        raise BakeryError(f"not mirrored to {len(failed)} of {len(config.mirrors)} mirror(s): " + "; ".join(failed))
