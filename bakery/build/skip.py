"""Build only what changed: look a target's input digest (:mod:`bakery.build.inputs`) up in the registry before
bake, point an unchanged target's previous per-group result at this run's per-group ref (a manifest copy: the same
bytes, so the same digest), and record the input digest of every result pushed.

The record of one result is a tiny OCI artifact manifest in the image's own repository, tagged
``cache-inputs-<inputs hex>`` (:func:`lookup_tag`): its ``subject`` is the per-group result, its annotations name
the input digest and the tag it was built for. The tag is one of clean's built-in kinds (``cache-.*``, kept like
BuildKit's cache tags); it holds only the artifact, never the image, so clean still deletes the image with its
tags, and a record whose image is gone is passed over. The per-group index itself carries the digest too, as the
annotation ``dev.bakery.inputs``, when the result is an index (several platforms or attestations).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bakery.build.inputs import TargetInputs
from bakery.capabilities import csv_entry
from bakery.errors import RegistryError
from bakery.oci.index import Part, holds_exactly, read_part
from bakery.oci.registry import OCI_MANIFEST, Registry, digest_of

ANNOTATION = "dev.bakery.inputs"
TAG_ANNOTATION = "dev.bakery.inputs.tag"
TARGET_ANNOTATION = "dev.bakery.inputs.target"
ARTIFACT_TYPE = "application/vnd.bakery.inputs.v1+json"
EMPTY = b"{}"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
LOOKUP_PREFIX = "cache-inputs-"


# what changes with every commit though the image need not: a target whose inputs are otherwise those of a pushed
# result is not rebuilt for a new revision label; the result it reuses keeps the revision it was built from
PER_COMMIT_LABELS = ("org.opencontainers.image.revision", "org.opencontainers.image.created")
PER_COMMIT_ARGS = ("SOURCE_DATE_EPOCH",)


def commit_free(overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay`` (a bake document) without the per-commit values of the ``tags:`` labels: the revision and
    created labels and annotations and ``SOURCE_DATE_EPOCH`` (pure; the version label and every other key stay)."""
    out: dict[str, Any] = {k: v for k, v in overlay.items() if k != "target"}
    targets: dict[str, Any] = {}
    for name, body in dict(overlay.get("target") or {}).items():
        kept = dict(body)
        if isinstance(kept.get("labels"), Mapping):
            kept["labels"] = {k: v for k, v in kept["labels"].items() if k not in PER_COMMIT_LABELS}
        if isinstance(kept.get("annotations"), list):
            kept["annotations"] = [a for a in kept["annotations"]
                                   if str(a).split("=", 1)[0].split(":", 1)[-1] not in PER_COMMIT_LABELS]
        if isinstance(kept.get("args"), Mapping):
            kept["args"] = {k: v for k, v in kept["args"].items() if k not in PER_COMMIT_ARGS}
        targets[name] = kept
    if "target" in overlay:
        out["target"] = targets
    return out


def lookup_tag(inputs: str) -> str:
    """The tag of a result's record: the input digest's hex (71 characters, a valid tag)."""
    return LOOKUP_PREFIX + inputs.removeprefix("sha256:")


@dataclass(frozen=True)
class Unchanged:
    """A target whose inputs equal those of a result already in the registry."""
    target: str
    inputs: str
    since: str                # the tag that result was built for
    part: Part                # the previous per-group result


@dataclass
class Decision:
    unchanged: dict[str, Unchanged] = field(default_factory=dict)
    built: dict[str, str] = field(default_factory=dict)      # target -> why it is built


@dataclass(frozen=True)
class Where:
    """A target's repository and this run's per-group tag."""
    repository: str
    tag: str
    platforms: tuple[str, ...]


def find_previous(registry: Registry, where: Where, inputs: TargetInputs) -> Unchanged | str:
    """The previous result with these inputs, or why there is none (a lookup that fails is a reason too)."""
    if inputs.digest is None:
        return "inputs bakery cannot see: " + "; ".join(inputs.reasons)
    try:
        record = registry.find_manifest(where.repository, lookup_tag(inputs.digest))
        if record is None:
            return "no result with these inputs yet"
        subject = record.body.get("subject") or {}
        if record.annotations.get(ANNOTATION) != inputs.digest or not subject.get("digest"):
            return f"the record {lookup_tag(inputs.digest)} names other inputs"
        part = read_part(registry, where.repository, str(subject["digest"]))
    except RegistryError as exc:
        return "previous result is gone" if exc.status == 404 else f"lookup failed: {exc}"
    stamped = part.manifest.annotations.get(ANNOTATION)
    if stamped not in (None, inputs.digest):
        return f"{part.digest} carries other inputs ({stamped})"
    if not holds_exactly(part.platforms, where.platforms):
        return f"{part.digest} holds {part.platforms}, expected {list(where.platforms)}"
    return Unchanged(inputs.name, inputs.digest, record.annotations.get(TAG_ANNOTATION, "?"), part)


def decide(registry: Registry, where: Mapping[str, Where], inputs: Mapping[str, TargetInputs]) -> Decision:
    """Look every target up at once."""
    names = list(where)
    decision = Decision()
    if not names:
        return decision
    with ThreadPoolExecutor(min(8, len(names)), thread_name_prefix="skip") as pool:
        found = list(pool.map(lambda n: find_previous(registry, where[n], inputs[n]), names))
    for name, got in zip(names, found):
        if isinstance(got, Unchanged):
            decision.unchanged[name] = got
        else:
            decision.built[name] = got
    return decision


def reuse(registry: Registry, decision: Decision, where: Mapping[str, Where]) -> dict[str, str]:
    """Copy every unchanged result to this run's per-group ref; target -> digest (the previous one)."""
    names = list(decision.unchanged)
    if not names:
        return {}

    def copy(name: str) -> str:
        w, part = where[name], decision.unchanged[name].part
        return registry.put_manifest(w.repository, w.tag, part.manifest.raw, part.manifest.media_type)
    with ThreadPoolExecutor(min(8, len(names)), thread_name_prefix="reuse") as pool:
        return dict(zip(names, pool.map(copy, names)))


def artifact(inputs: str, tag: str, target: str, subject: Mapping[str, Any]) -> bytes:
    """The record of one result (deterministic bytes)."""
    empty = {"mediaType": EMPTY_TYPE, "digest": digest_of(EMPTY), "size": len(EMPTY)}
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE, "config": empty,
           "layers": [empty],
           "subject": {k: subject[k] for k in ("mediaType", "digest", "size")},
           "annotations": {ANNOTATION: inputs, TAG_ANNOTATION: tag, TARGET_ANNOTATION: target}}
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def record(registry: Registry, repository: str, target: str, inputs: str, tag: str,
           subject: Mapping[str, Any]) -> str:
    """Push the record of a result just built (``subject``: its descriptor); the record's tag."""
    if not registry.blob_exists(repository, digest_of(EMPTY)):
        registry.put_blob(repository, EMPTY)
    name = lookup_tag(inputs)
    registry.put_manifest(repository, name, artifact(inputs, tag, target, subject), OCI_MANIFEST)
    return name


def subject_of(registry: Registry, repository: str, meta: Mapping[str, Any]) -> dict[str, Any] | None:
    """The descriptor of what bake pushed (its metadata names it; older buildx only the digest)."""
    desc = meta.get("containerimage.descriptor")
    if isinstance(desc, Mapping) and desc.get("digest") and desc.get("mediaType") and desc.get("size"):
        return {k: desc[k] for k in ("mediaType", "digest", "size")}
    digest = meta.get("containerimage.digest")
    if not digest:
        return None
    found = registry.find_manifest(repository, str(digest))
    return None if found is None else {"mediaType": found.media_type, "digest": found.digest, "size": len(found.raw)}


def is_index(target: Mapping[str, Any]) -> bool:
    """Whether bake pushes an index for this target: several platforms, or any attestation not disabled."""
    if len(target.get("platforms") or []) > 1:
        return True
    for entry in target.get("attest") or []:
        fields = entry if isinstance(entry, Mapping) else csv_entry(str(entry))
        if str(fields.get("disabled", "false")).lower() != "true":
            return True
    return False


def annotation_overlay(targets: Mapping[str, Mapping[str, Any]], inputs: Mapping[str, TargetInputs],
                       names: Sequence[str], overlay: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The run's bake overlay with ``index:dev.bakery.inputs=<digest>`` added to each index target (the target's
    own annotations repeated first, so a list-replacing merge cannot lose them)."""
    merged: dict[str, Any] = {k: v for k, v in (overlay or {}).items() if k != "target"}
    bodies: dict[str, Any] = {k: dict(v) for k, v in ((overlay or {}).get("target") or {}).items()}
    for name in names:
        got = inputs.get(name)
        if got is None or got.digest is None or not is_index(targets[name]):
            continue
        body = bodies.setdefault(name, {})
        own = body.get("annotations") or targets[name].get("annotations") or []
        body["annotations"] = [*own, f"index:{ANNOTATION}={got.digest}"]
    if not bodies and not merged:
        return None
    merged["target"] = bodies
    return merged


def report(decision: Decision, dry_run: bool) -> list[str]:
    """One line per target: unchanged (not built), or, in a dry run, why it would be built."""
    lines = []
    for name, u in decision.unchanged.items():
        lines.append(f"{'would skip ' if dry_run else ''}{name}: unchanged since {u.since} (inputs {u.inputs}), "
                     "not built")
    if dry_run:
        lines.extend(f"would build {name}: {why}" for name, why in decision.built.items())
    return lines
