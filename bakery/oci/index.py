"""Stitching: per-group build results (indexes or single manifests, in one repository) -> one OCI index.

Pure parts (:func:`index_entries`, :func:`make_index`, :func:`platform_of_config`) take manifests and return
data; :func:`config_platform` (the platform of an image manifest, from its config blob) and :func:`read_part` do the
registry reads. The stitcher that build and release share (:mod:`bakery.build.stitch`) makes its index from
:class:`Part` records. Attestation manifests (``vnd.docker.reference.type: attestation-manifest``) are carried over
with the platform manifests they describe, so nothing in the final index dangles.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bakery.oci.registry import OCI_INDEX, Manifest, Registry

ATTESTATION = "attestation-manifest"


def platform_string(p: dict[str, Any]) -> str:
    s = f"{p.get('os')}/{p.get('architecture')}"
    return f"{s}/{p['variant']}" if p.get("variant") else s


def is_attestation(entry: dict[str, Any]) -> bool:
    return (entry.get("annotations") or {}).get("vnd.docker.reference.type") == ATTESTATION


def platform_of_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The OCI platform an image config describes: os, architecture, and variant and os.version when set."""
    plat: dict[str, Any] = {"architecture": config.get("architecture") or "", "os": config.get("os") or ""}
    for key in ("variant", "os.version"):
        if config.get(key):
            plat[key] = config[key]
    return plat


def read_config(registry: Registry, repository: str, manifest_json: Mapping[str, Any]) -> dict[str, Any]:
    """The image config an image manifest names ({} when it names none or the blob is not a JSON object)."""
    desc = manifest_json.get("config") or {}
    if not desc.get("digest"):
        return {}
    try:
        data = json.loads(registry.get_blob(repository, str(desc["digest"])))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def config_platform(registry: Registry, repository: str, manifest_json: Mapping[str, Any]) -> dict[str, Any]:
    """The platform of an image manifest, read from its config blob."""
    return platform_of_config(read_config(registry, repository, manifest_json))


def index_entries(manifest: Manifest,
                  config_platform: Callable[[dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    """Descriptors to put in the final index for one group result.

    An index contributes its entries as they are; a single manifest becomes one descriptor whose platform is
    read from its image config (``config_platform`` fetches it).
    """
    body = manifest.json
    if manifest.is_index:
        return [dict(e) for e in body.get("manifests", [])]
    platform = config_platform(body)
    return [{"mediaType": manifest.media_type, "digest": manifest.digest, "size": len(manifest.raw),
             "platform": platform}]


def platforms_of(entries: Sequence[dict[str, Any]]) -> list[str]:
    return [platform_string(e.get("platform") or {}) for e in entries if not is_attestation(e)]


def make_index(entries: Sequence[dict[str, Any]], annotations: dict[str, str] | None = None) -> bytes:
    """A deterministic OCI index: same entries in the same order -> the same bytes and digest."""
    seen: set[str] = set()
    unique = []
    for e in entries:
        if e["digest"] not in seen:
            seen.add(e["digest"])
            unique.append(e)
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": unique}
    if annotations:
        doc["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Part:
    """One per-group result read from its repository: the manifest and the descriptors it adds to an index."""

    digest: str
    manifest: Manifest
    entries: tuple[dict[str, Any], ...]

    @property
    def platforms(self) -> list[str]:
        """The image platforms it holds, in its order (attestations left out)."""
        return platforms_of(self.entries)


def read_part(registry: Registry, repository: str, digest: str) -> Part:
    """Fetch one per-group result (and, for a single manifest, its config blob for the platform)."""
    manifest = registry.get_manifest(repository, digest)
    entries = index_entries(manifest, functools.partial(config_platform, registry, repository))
    return Part(digest, manifest, tuple(entries))


def holds_exactly(found: Sequence[str], expected: Sequence[str]) -> bool:
    """Whether a group result holds its group's platforms, no more and no fewer (order aside)."""
    return sorted(found) == sorted(expected)
