"""Manifest management over the registry API: the ``docker manifest create/annotate/push/inspect/rm`` workflow,
but for buildx output (indexes with attestation entries) and local insecure registries.

- :func:`source_entries` turns one per-arch reference (a single manifest, or a buildx index with its
  attestation manifests) into index descriptors; :func:`select_entries` keeps or drops attestation entries and
  never keeps one whose image is not in the index (nothing dangles); :func:`check_platforms` refuses two
  entries for one platform; :func:`annotate` overrides os/arch/variant of one entry.
- A draft (what ``manifest.create`` prepares and ``manifest.annotate`` edits) is a JSON file under
  ``<bake_dir>/manifests/``; :func:`push_draft` copies children from other repositories of the same registry
  (blob mounts, then manifests by digest) and PUTs one deterministic OCI index (:func:`bakery.oci.index.make_index`).
- removing ONE tag (``manifest.rm``) is :func:`bakery.oci.untag.untag`, shared with ``release`` and ``clean``.

Nothing here runs ``docker manifest`` (it refuses indexes and drops attestations).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.atomic import write_file
from bakery.humanize import short_digest
from bakery.errors import BakeryError
from bakery.oci.reference import InvalidReference, Reference, parse_reference
from bakery.oci.registry import MANIFEST_TYPES, OCI_INDEX, Manifest, Registry
from bakery.oci.index import index_entries, is_attestation, make_index, platform_of_config, platform_string, read_config

ATTESTATION_MODES: tuple[str, ...] = ("keep", "drop")
REFERENCE_DIGEST = "vnd.docker.reference.digest"
DRAFT_DIR = "manifests"


# --------------------------------------------------------------------------- references
def resolve_ref(text: str, default_registry: str | None = None) -> Reference:
    """Parse a reference; a name without a registry host is taken under ``default_registry`` (bakery.yaml's)."""
    try:
        ref = parse_reference(text)
        if not ref.domain and default_registry:
            ref = parse_reference(f"{default_registry}/{text}")
    except InvalidReference as exc:
        raise BakeryError(str(exc)) from None
    if not ref.domain:
        raise BakeryError(f"reference {text!r} names no registry; write it in full, e.g. 127.0.0.1:5000/{text}")
    return ref


def ref_key(ref: Reference) -> str:
    """What the registry API addresses: the digest when there is one, else the tag (``latest`` when neither)."""
    return ref.digest or ref.tag or "latest"


# --------------------------------------------------------------------------- pure: entries
def attestation_of(entry: Mapping[str, Any]) -> str | None:
    """The image digest an attestation entry describes (None for an image entry)."""
    if not is_attestation(dict(entry)):
        return None
    return str((entry.get("annotations") or {}).get(REFERENCE_DIGEST) or "") or None


def entry_platform(entry: Mapping[str, Any]) -> str:
    return platform_string(dict(entry.get("platform") or {}))


def source_entries(manifest: Manifest, config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Descriptors one source contributes: an index's entries as they are; a manifest as one descriptor whose
    platform comes from its image ``config`` (os, architecture, variant, os.version)."""
    if manifest.media_type not in MANIFEST_TYPES:
        raise BakeryError(f"{manifest.digest} is a {manifest.media_type or 'non-manifest'}, not an image manifest")
    return index_entries(manifest, lambda _: platform_of_config(config or {}))


@dataclass(frozen=True)
class Selection:
    entries: tuple[dict[str, Any], ...]
    dropped: tuple[str, ...]            # why entries were left out (one line each)


def select_entries(entries: Sequence[Mapping[str, Any]], attestations: str = "keep") -> Selection:
    """The entries to put in an index, in their original order.

    ``keep`` carries attestation entries over, ``drop`` leaves every one out. An attestation whose image is
    not in the list is always left out, so the index never holds a dangling attestation. A digest listed
    twice is kept once."""
    if attestations not in ATTESTATION_MODES:
        raise BakeryError(f"attestations must be keep or drop, not {attestations!r}")
    images = {str(e["digest"]) for e in entries if not is_attestation(dict(e))}
    out: list[dict[str, Any]] = []
    dropped: list[str] = []
    seen: set[str] = set()
    for e in entries:
        digest = str(e["digest"])
        if digest in seen:
            continue
        target = attestation_of(e)
        if is_attestation(dict(e)):
            if attestations == "drop":
                dropped.append(f"attestation {short(digest)} (attestations: drop)")
                continue
            if target not in images:
                dropped.append(f"attestation {short(digest)}: its image {short(target or '?')} is not in the index")
                continue
        seen.add(digest)
        out.append(dict(e))
    return Selection(tuple(out), tuple(dropped))


def check_platforms(entries: Sequence[Mapping[str, Any]], origins: Mapping[str, str] | None = None) -> None:
    """One image entry per platform; os and architecture set on each (what a pull needs to choose)."""
    owner: dict[str, str] = {}
    for e in entries:
        if is_attestation(dict(e)):
            continue
        plat = dict(e.get("platform") or {})
        digest = str(e["digest"])
        where = (origins or {}).get(digest, short(digest))
        if not plat.get("os") or not plat.get("architecture"):
            raise BakeryError(f"entry {where} has no os/architecture; set them with manifest.annotate "
                              f"--os linux --arch amd64")
        name = platform_string(plat)
        if name in owner:
            raise BakeryError(f"platform {name} is in the index twice ({owner[name]} and {where}); "
                              "an index holds one image per platform")
        owner[name] = where


def annotate(entries: Sequence[Mapping[str, Any]], selector: str, *, os: str | None = None,
             arch: str | None = None, variant: str | None = None,
             origins: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Set/override os, architecture and variant (``""`` removes it) of the image entry ``selector`` names:
    a digest (or a unique prefix of at least 12 characters), a platform, or the source reference it came from."""
    matches = [i for i, e in enumerate(entries) if not is_attestation(dict(e)) and _selected(e, selector, origins)]
    if not matches:
        known = ", ".join(f"{entry_platform(e)} {short(str(e['digest']))}" for e in entries
                          if not is_attestation(dict(e)))
        raise BakeryError(f"no image entry matches {selector!r}; entries: {known or 'none'}")
    if len(matches) > 1:
        raise BakeryError(f"{selector!r} matches {len(matches)} entries; name one by digest")
    if os is None and arch is None and variant is None:
        raise BakeryError("nothing to annotate: pass --os, --arch and/or --variant")
    out = [dict(e) for e in entries]
    entry = out[matches[0]]
    plat = dict(entry.get("platform") or {})
    for key, value in (("os", os), ("architecture", arch), ("variant", variant)):
        if value is None:
            continue
        if value == "" and key != "variant":
            raise BakeryError(f"--{'arch' if key == 'architecture' else key} cannot be empty")
        if value == "":
            plat.pop(key, None)
        else:
            plat[key] = value
    entry["platform"] = {k: plat[k] for k in sorted(plat)}
    return out


def _selected(entry: Mapping[str, Any], selector: str, origins: Mapping[str, str] | None) -> bool:
    digest = str(entry["digest"])
    if selector == digest or (len(selector) >= 12 and (digest.startswith(selector)
                                                       or digest.startswith(f"sha256:{selector}"))):
        return True
    if "/" in selector and selector.count("/") <= 2 and ":" not in selector and entry_platform(entry) == selector:
        return True
    return bool(origins) and (origins or {}).get(digest) == selector


def short(digest: str) -> str:
    """A digest as index tables show it: 12 hex digits, no algorithm."""
    return short_digest(digest, algorithm=False)


def index_bytes(entries: Sequence[Mapping[str, Any]], annotations: Mapping[str, str] | None = None) -> bytes:
    """The OCI index for ``entries`` (deterministic bytes: same entries in the same order -> same digest)."""
    return make_index([dict(e) for e in entries], dict(annotations) if annotations else None)


# --------------------------------------------------------------------------- pure: inspect
@dataclass(frozen=True)
class Row:
    platform: str
    digest: str
    media_type: str
    size: int
    attestation_of: str = ""      # platform (digest) of the image an attestation describes


def rows_of(manifest: Manifest, config: Mapping[str, Any] | None = None) -> list[Row]:
    """Table rows: one per entry of an index, or the manifest itself (platform from its ``config``)."""
    if not manifest.is_index:
        entry = source_entries(manifest, config)[0]
        return [Row(entry_platform(entry), manifest.digest, manifest.media_type, len(manifest.raw))]
    entries = manifest.json.get("manifests") or []
    names = {str(e["digest"]): entry_platform(e) for e in entries if not is_attestation(e)}
    rows = []
    for e in entries:
        target = attestation_of(e)
        of = ""
        if is_attestation(e):
            of = f"{names[target]} ({short(target)})" if target in names else f"{short(target or '')} (missing)"
        rows.append(Row(entry_platform(e), str(e["digest"]), str(e.get("mediaType", "")),
                        int(e.get("size", 0)), of))
    return rows


def render_rows(rows: Sequence[Row]) -> str:
    head = ("PLATFORM", "DIGEST", "MEDIA TYPE", "SIZE", "ATTESTATION OF")
    body = [(r.platform, r.digest, r.media_type, str(r.size), r.attestation_of or "-") for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in (head, *body)]
    return "\n".join(lines)


def inspect_dict(ref: str, manifest: Manifest, rows: Sequence[Row]) -> dict[str, Any]:
    body = manifest.json
    return {"ref": ref, "digest": manifest.digest, "mediaType": manifest.media_type, "size": len(manifest.raw),
            "annotations": body.get("annotations") or {},
            "entries": [{"platform": r.platform, "digest": r.digest, "mediaType": r.media_type, "size": r.size,
                         "attestationOf": r.attestation_of or None} for r in rows]}


# --------------------------------------------------------------------------- registry operations
def fetch(registry: Registry, repository: str, ref: str) -> Manifest:
    """GET a manifest; a missing one is a one-line error naming it."""
    if registry.head_manifest(repository, ref) is None:
        sep = "@" if ref.startswith("sha256:") else ":"
        raise BakeryError(f"{registry.host}/{repository}{sep}{ref} does not exist")
    return registry.get_manifest(repository, ref)


def fetch_entries(registry: Registry, repository: str, ref: str) -> tuple[Manifest, list[dict[str, Any]]]:
    manifest = fetch(registry, repository, ref)
    config = None if manifest.is_index else image_config(registry, repository, manifest)
    return manifest, source_entries(manifest, config)


def image_config(registry: Registry, repository: str, manifest: Manifest) -> dict[str, Any]:
    return read_config(registry, repository, manifest.json)


def layer_bytes(manifest: Manifest) -> int:
    """Compressed size of an image: the sum of its layer sizes as its manifest records them."""
    return sum(int(layer.get("size", 0)) for layer in manifest.json.get("layers") or [])


def copy_manifest(registry: Registry, src: str, dst: str, digest: str) -> None:
    """Make ``src@digest`` (and everything it references) exist in ``dst`` of the same registry, by digest."""
    if src == dst or registry.head_manifest(dst, digest):
        return
    manifest = registry.get_manifest(src, digest)
    body = manifest.json
    if manifest.is_index:
        for child in body.get("manifests") or []:
            if child.get("mediaType") in MANIFEST_TYPES:
                copy_manifest(registry, src, dst, str(child["digest"]))
    else:
        for desc in [body.get("config") or {}, *(body.get("layers") or [])]:
            d = str(desc.get("digest") or "")
            if d and not registry.blob_exists(dst, d) and not registry.mount_blob(dst, d, src):
                registry.put_blob(dst, registry.get_blob(src, d))
    registry.put_manifest(dst, digest, manifest.raw, manifest.media_type)


# --------------------------------------------------------------------------- drafts (create/annotate/push)
@dataclass
class Draft:
    """An index being prepared: entries in order, and for each digest the reference it came from."""

    target: str                                   # full reference, with a tag
    attestations: str = "keep"
    entries: list[dict[str, Any]] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)   # digest -> source reference as given
    repositories: dict[str, str] = field(default_factory=dict)   # digest -> repository path it lives in
    annotations: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"target": self.target, "attestations": self.attestations, "entries": self.entries,
                           "origins": self.origins, "repositories": self.repositories,
                           "annotations": self.annotations}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, path: Path) -> Draft:
        try:
            data = json.loads(text)
            return cls(str(data["target"]), str(data.get("attestations", "keep")), list(data["entries"]),
                       dict(data.get("origins") or {}), dict(data.get("repositories") or {}),
                       dict(data.get("annotations") or {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise BakeryError(f"{path}: not a manifest draft ({type(exc).__name__}: {exc}); remove it "
                              "and run manifest.create again") from None

    def index(self) -> bytes:
        check_platforms(self.entries, self.origins)
        return index_bytes(self.entries, self.annotations)


def draft_path(drafts: Path, target: Reference) -> Path:
    name = f"{target.name}:{target.tag or 'latest'}"
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return drafts / f"{safe}.json"


def load_draft(drafts: Path, target: Reference) -> tuple[Draft, Path]:
    path = draft_path(drafts, target)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BakeryError(f"no draft for {target}: create one with manifest.create {target} --source REF ...") \
            from None
    return Draft.from_json(text, path), path


def save_draft(path: Path, draft: Draft) -> None:
    write_file(path, draft.to_json())


def create_draft(target: Reference, sources: Sequence[tuple[str, Reference]], registry: Registry,
                 attestations: str = "keep", annotations: Mapping[str, str] | None = None) -> Draft:
    """Read every source from the registry and lay out the index: ``sources`` are (as given, parsed)."""
    if not target.tag or target.digest:
        raise BakeryError(f"target {target} must be a tag reference (repo:tag), not a digest")
    if not sources:
        raise BakeryError("give at least one --source reference (an image or a buildx index)")
    entries: list[dict[str, Any]] = []
    origins: dict[str, str] = {}
    repos: dict[str, str] = {}
    for given, ref in sources:
        if ref.domain != target.domain:
            raise BakeryError(f"source {given} is on {ref.domain}, the target on {target.domain}; an index can "
                              "only name manifests of its own registry (copy first with docker buildx imagetools "
                              "create)")
        _, found = fetch_entries(registry, ref.path, ref_key(ref))
        for e in found:
            origins.setdefault(str(e["digest"]), given)
            repos.setdefault(str(e["digest"]), ref.path)
        entries.extend(found)
    selection = select_entries(entries, attestations)
    check_platforms(selection.entries, origins)
    keep = {str(e["digest"]) for e in selection.entries}
    return Draft(str(target), attestations, list(selection.entries),
                 {d: o for d, o in origins.items() if d in keep}, {d: r for d, r in repos.items() if d in keep},
                 dict(annotations or {}))


def push_draft(draft: Draft, registry: Registry) -> str:
    """Copy children living in other repositories, then PUT the index under the draft's tag; its digest."""
    target = parse_reference(draft.target)
    raw = draft.index()
    for e in draft.entries:
        digest = str(e["digest"])
        copy_manifest(registry, draft.repositories.get(digest, target.path), target.path, digest)
    return registry.put_manifest(target.path, target.tag or "latest", raw, OCI_INDEX)
