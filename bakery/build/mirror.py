"""Mirrors: every index ``build --push``, ``stitch`` and ``release`` published in the first registry of ``registry:``
is copied to each of the others under the same tags (``docker buildx imagetools create``, registry to registry: the
images, attestations and blobs it reaches; under the first tag, then that copy under the others: :func:`_copy`),
per image and mirror. Every copy is tried; those that failed are then one error naming each mirror and its cause
(the first registry's index stands, and results.json or the release report is written before)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from bakery.config.model import Config
from bakery.docker import Docker
from bakery.errors import BakeryError, CommandError

__all__ = ["copy_to_mirrors", "mirror_refs"]

ATTEMPTS = 3
LOST_BLOB = "blob unknown to registry"                      # what buildx 0.2x says; 0.13 shows only the status:
REFUSED_PUT = re.compile(r"unexpected status from PUT request to \S+/manifests/\S+: 400 ")


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
            _copy(docker, source, targets)
        except CommandError as exc:
            failed.append(f"{targets[0].rsplit(':', 1)[0]}: {exc}")
            continue
        images[name].setdefault("mirrored", []).extend(targets)
        print(f"mirrored {source} -> {', '.join(targets)}", file=out)
    if failed:
        missed = [m for m in config.mirrors if any(f.startswith(f"{m}/") for f in failed)]
        raise BakeryError(f"not mirrored to {len(missed)} of {len(config.mirrors)} mirror(s): " + "; ".join(failed))


def _copy(docker: Docker, source: str, targets: Sequence[str]) -> None:
    """Copy ``source`` under the first target's tag, then tag the others from that copy: ``imagetools create``
    (buildx before 0.33) copies the blobs once per tag, all at once, and two uploads of one blob racing into one
    repository lose it on registry 2.8 (the manifest PUT then fails: blob unknown to registry)."""
    _again(lambda: docker.copy_index(source, targets[:1]))
    if len(targets) > 1:
        _again(lambda: docker.copy_index(f"{targets[0].rsplit(':', 1)[0]}@{source.rsplit('@', 1)[1]}", targets[1:]))


def _again(copy: Callable[[], None]) -> None:
    """One copy, run again (up to ``ATTEMPTS``, after a pause) when the mirror lost a blob: the platforms of one
    index that share a blob upload it at once, and registry 2.8 can then refuse a manifest's PUT with 400 (blob
    unknown to registry); a second copy finds the blobs there. Any other failure is raised at once."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            copy()
            return
        except CommandError as exc:
            if attempt == ATTEMPTS or not (LOST_BLOB in str(exc) or REFUSED_PUT.search(str(exc))):
                raise
            time.sleep(attempt)
