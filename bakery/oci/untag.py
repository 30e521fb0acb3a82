"""Removing ONE tag on registries that cannot delete tags (distribution 2.8), shared by ``manifest.rm``,
``release --untag-intermediate``, the benchmarks and ``clean``.

The tag is pointed at a tiny manifest unique to that tag (:func:`untag_manifest`, on the empty config that
:func:`ensure_empty_config` uploads) and that manifest is deleted by digest. A digest another tag or an index
refers to is never deleted, so published indexes stay pullable. The placeholder is marked as a leftover
(``LEFTOVER``), so one that an interrupted run leaves under a tag is removed by the next ``clean``.

Some registries refuse every DELETE (GHCR and Docker Hub through the registry API, distribution with
``storage.delete.enabled: false``): :func:`delete_refused` finds that out with a DELETE of a digest that cannot
exist, which changes nothing, so callers stop before they write a placeholder or a journal.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from bakery.errors import BakeryError, RegistryError
from bakery.oci.registry import OCI_MANIFEST, Registry, digest_of

__all__ = [
    "EMPTY_CONFIG",
    "EMPTY_CONFIG_TYPE",
    "EMPTY_DIGEST",
    "LEFTOVER",
    "UNTAG_ANNOTATION",
    "UNTAG_ARTIFACT",
    "Untagged",
    "delete_refused",
    "ensure_empty_config",
    "untag",
    "untag_manifest",
]

EMPTY_CONFIG = b"{}"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = digest_of(EMPTY_CONFIG)
UNTAG_ARTIFACT = "application/vnd.bakery.untag.v1"
UNTAG_ANNOTATION = "dev.bakery.untag"
# the annotation on what bakery writes and a later ``clean`` must remove: "untag" placeholders, "journal" indexes
LEFTOVER = "dev.bakery.clean"


def untag_manifest(repository: str, tag: str, previous: str | None, nonce: str = "") -> bytes:
    """The placeholder a tag is re-pointed at to remove it (``manifest.rm``, ``release --untag-intermediate``,
    ``clean``): a tiny OCI manifest unique to (repository, tag, the digest the tag pointed at, ``nonce``), with
    no layers and the empty config. Deleting its digest removes exactly this tag, nothing shared.

    Its annotations name the tag and mark it as a leftover (``dev.bakery.clean: untag``), so one that an
    interrupted run left under a tag is removed by the next ``clean``."""
    annotations = {LEFTOVER: "untag", UNTAG_ANNOTATION: f"{repository}:{tag}",
                   f"{UNTAG_ANNOTATION}.previous": previous or ""}
    if nonce:
        annotations[f"{UNTAG_ANNOTATION}.nonce"] = nonce
    doc = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": UNTAG_ARTIFACT,
        "config": {"mediaType": EMPTY_CONFIG_TYPE, "digest": EMPTY_DIGEST, "size": len(EMPTY_CONFIG)},
        "layers": [], "annotations": annotations,
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def delete_refused(registry: Registry, repository: str) -> str | None:
    """None when ``repository`` accepts manifest DELETEs, else one line saying what the registry needs. Probed by
    a DELETE of a random digest (404 = deletes work; 400/405 = refused, as the OCI spec allows; 401/403 = these
    credentials may not delete); nothing changes either way. Other errors are raised."""
    try:
        registry.delete_manifest(repository, "sha256:" + secrets.token_hex(32))
    except RegistryError as exc:
        where = f"registry {registry.host}"
        if exc.status in (400, 405):
            return (f"{where} refuses DELETE ({exc.status}): enable `storage.delete.enabled` (distribution) or "
                    f"remove images with the registry's own API or retention policy; nothing was changed")
        if exc.status in (401, 403):
            return (f"{where} does not let these credentials DELETE in {repository} ({exc.status}): log in with "
                    f"delete rights (docker login {registry.host}); nothing was changed")
        raise
    return None


def ensure_empty_config(registry: Registry, repository: str) -> None:
    """Make the empty config blob (every untag placeholder's config) exist in ``repository``."""
    if not registry.blob_exists(repository, EMPTY_DIGEST):
        registry.put_blob(repository, EMPTY_CONFIG)


@dataclass(frozen=True)
class Untagged:
    repository: str
    tag: str
    previous: str | None            # the digest the tag pointed at (kept in the registry)
    placeholder: str                # the tiny manifest that was put under the tag and deleted


def untag(registry: Registry, repository: str, tag: str) -> Untagged:
    """Remove one tag without deleting what it pointed at (registry 2.8 has no tag DELETE).

    PUT a manifest unique to this tag under it (the tag moves off the shared digest), then DELETE that
    manifest by digest (only this tag pointed at it). Leaves the 2-byte empty config blob, as every such
    untag does, until the registry's garbage collection. A registry that refuses DELETE is found out first
    (:func:`delete_refused`), and nothing is written; should the DELETE still fail, the tag is put back on what it
    pointed at.
    """
    found = registry.find_manifest(repository, tag)
    if found is None:
        raise BakeryError(f"{registry.host}/{repository}:{tag} does not exist")
    previous = found.digest
    refused = delete_refused(registry, repository)
    if refused is not None:
        raise BakeryError(f"{repository}:{tag}: {refused}")
    raw = untag_manifest(repository, tag, previous)
    ensure_empty_config(registry, repository)
    placeholder = registry.put_manifest(repository, tag, raw, OCI_MANIFEST)
    if placeholder == previous:     # cannot happen (the placeholder names `previous`), but never delete a shared digest
        raise BakeryError(f"{repository}:{tag}: placeholder digest equals the tagged digest; nothing deleted")
    try:
        registry.delete_manifest(repository, placeholder)
    except RegistryError as exc:
        registry.put_manifest(repository, tag, found.raw, found.media_type)
        raise BakeryError(f"{repository}:{tag}: the registry refused to delete the placeholder ({exc}); the tag "
                          f"points at {previous} again") from None
    return Untagged(repository, tag, previous, placeholder)
