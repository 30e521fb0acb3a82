"""What a ``clean`` run writes besides its DELETEs.

- The *journal*: OCI indexes tagged ``bakery-clean-journal-<time>-<nonce>-<n>`` (annotation
  ``dev.bakery.clean: journal``) listing the digests the run is about to delete, each descriptor carrying the
  manifest's bytes (``data``, base64), and in the annotation ``dev.bakery.clean.tags`` the tags the run removes
  (``{tag: digest}``). Registry 2.8 cannot list untagged manifests, so without it an interrupted run would leave
  children nobody can find; the next run sees the journal tag, the planner removes it like any leftover, deletes
  what it lists (unless something kept uses it) and removes the tags it lists (per-group refs and referrer tags
  included, whose public tag or subject may already be gone). The bytes let any run re-PUT a manifest it (or
  the interrupted run) deleted that a concurrent publish turned out to need (:mod:`bakery.clean.repair`).
- The *placeholders* that remove a tag whose digest stays (:func:`bakery.oci.untag.untag_manifest`, unique per
  call), and the one-time probe of whether this registry's tag DELETE removes only the tag (then no placeholder
  is needed).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bakery.clean.model import Snapshot
from bakery.clean.snapshot import CREATED, JOURNAL_TAGS, Reader
from bakery.errors import RegistryError
from bakery.oci.index import make_index
from bakery.oci.registry import OCI_INDEX, OCI_MANIFEST, Registry, digest_of
from bakery.oci.untag import LEFTOVER, ensure_empty_config, untag_manifest

__all__ = ["JOURNAL_BYTES", "JOURNAL_CHUNK", "JOURNAL_TAG", "Untagging", "journal_bytes", "journal_chunks",
           "journal_index", "placeholder", "write_journal"]

JOURNAL_TAG = "bakery-clean-journal-"
JOURNAL_CHUNK = 1000                      # descriptors per journal index
JOURNAL_BYTES = 512 * 1024                # and bytes: far below the 4 MiB manifest limit of distribution


def journal_index(snap: Snapshot, digests: Sequence[str], now: datetime, raw: Mapping[str, bytes] | None = None,
                  tags: Mapping[str, str] | None = None) -> bytes:
    """The journal: an OCI index listing the manifests a run is about to delete (deterministic bytes), with each
    one's bytes (``raw``) as the descriptor's ``data`` and the tags the run removes (``tags``) as an annotation."""
    manifests = []
    for d in digests:
        entry: dict[str, object] = {"mediaType": snap.manifests[d].media_type, "digest": d,
                                    "size": snap.manifests[d].size}
        if raw and d in raw:
            entry["data"] = base64.b64encode(raw[d]).decode()
        manifests.append(entry)
    notes = {LEFTOVER: "journal", CREATED: now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if tags:
        notes[JOURNAL_TAGS] = json.dumps(dict(sorted(tags.items())), separators=(",", ":"))
    return make_index(manifests, notes)


def journal_chunks(digests: Sequence[str], tags: Mapping[str, str], raw: Mapping[str, bytes],
                   budget: int = JOURNAL_BYTES, most: int = JOURNAL_CHUNK) -> list[tuple[list[str], dict[str, str]]]:
    """Split what a journal records into indexes of at most ``most`` descriptors and about ``budget`` bytes:
    [(digests, {tag: digest})]. A tag rides with its digest when that digest is journaled, else at the end."""
    by_digest: dict[str, dict[str, str]] = {}
    loose: dict[str, str] = {}
    journaled = set(digests)
    for tag, on in sorted(tags.items()):
        (by_digest.setdefault(on, {}) if on in journaled else loose)[tag] = on
    chunks: list[tuple[list[str], dict[str, str]]] = [([], {})]
    used = 0
    items: list[tuple[str | None, dict[str, str]]] = [(d, by_digest.get(d, {})) for d in digests]
    items += [(None, {t: d}) for t, d in loose.items()]
    for digest, riders in items:
        cost = sum(len(t) + 80 for t in riders) + (200 + len(raw.get(digest, b"")) * 4 // 3 if digest else 0)
        current = chunks[-1]
        if (current[0] or current[1]) and (used + cost > budget or (digest and len(current[0]) >= most)):
            chunks.append(([], {}))
            current, used = chunks[-1], 0
        if digest:
            current[0].append(digest)
        current[1].update(riders)
        used += cost
    return [c for c in chunks if c[0] or c[1]]


def journal_bytes(raw: bytes) -> dict[str, tuple[str, bytes]]:
    """What a journal index carries to restore: {digest: (media type, manifest bytes)}, each checked against its
    digest (an entry without bytes, or whose bytes do not match, is left out)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    found: dict[str, tuple[str, bytes]] = {}
    for entry in doc.get("manifests") or [] if isinstance(doc, dict) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("data"), str):
            continue
        try:
            data = base64.b64decode(entry["data"], validate=True)
        except (binascii.Error, ValueError):
            continue
        if digest_of(data) == entry.get("digest"):
            found[str(entry["digest"])] = (str(entry.get("mediaType", "")), data)
    return found


def write_journal(registry: Registry, reader: Reader, snap: Snapshot, digests: Sequence[str], now: datetime,
                  raw: Mapping[str, bytes] | None = None, tags: Mapping[str, str] | None = None,
                  ) -> list[tuple[str, str]]:
    """Push the journal index(es): (tag, digest) of each. A digest that vanished meanwhile (the PUT of an index
    naming it fails) is dropped and the push retried once."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    nonce = secrets.token_hex(3)
    written: list[tuple[str, str]] = []
    for n, (chunk, riders) in enumerate(journal_chunks(digests, tags or {}, raw or {}), 1):
        tag = f"{JOURNAL_TAG}{stamp}-{nonce}-{n}"
        for attempt in (1, 2):
            doc = journal_index(snap, chunk, now, raw, riders)
            try:
                written.append((tag, registry.put_manifest(snap.repository, tag, doc, OCI_INDEX)))
                break
            except RegistryError:
                if attempt == 2 or not chunk:
                    raise
                heads = reader.map("checking journal", reader.head, chunk)
                chunk = [d for d, h in zip(chunk, heads) if h is not None]
    return written


def placeholder(tag: str, repository: str = "", previous: str | None = None) -> bytes:
    """The manifest to re-point ``tag`` at (:func:`bakery.oci.untag.untag_manifest`), unique to this call."""
    return untag_manifest(repository, tag, previous, nonce=secrets.token_hex(8))


@dataclass
class Untagging:
    """How tags are removed in one repository, learnt once per run and shared by the worker threads: whether a
    tag DELETE works (probed on first need), and whether the placeholders' empty config blob is there."""

    registry: Registry
    reader: Reader
    tag_delete: bool | None = None      # None: not probed yet
    empty_blob: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def repository(self) -> str:
        return self.reader.repository

    def ensure_empty_blob(self) -> None:
        with self.lock:
            if not self.empty_blob:
                ensure_empty_config(self.registry, self.repository)
                self.empty_blob = True

    def retag(self, tag: str, previous: str | None = None) -> str:
        """Point ``tag`` at a fresh placeholder; its digest (to delete)."""
        self.ensure_empty_blob()
        return self.registry.put_manifest(self.repository, tag, placeholder(tag, self.repository, previous),
                                          OCI_MANIFEST)

    def tag_delete_works(self) -> bool:
        """Whether ``DELETE /manifests/<tag>`` removes only that tag here. Probed on two throw-away tags that share
        one placeholder: some registries answer a tag DELETE by deleting the manifest (and so every tag on it)."""
        with self.lock:
            if self.tag_delete is not None:
                return self.tag_delete
        self.ensure_empty_blob()
        repo, nonce = self.repository, secrets.token_hex(4)
        first, second = f"bakery-clean-probe-{nonce}-a", f"bakery-clean-probe-{nonce}-b"
        raw = placeholder(f"bakery-clean-probe-{nonce}", repo)
        digest = self.registry.put_manifest(repo, first, raw, OCI_MANIFEST)
        self.registry.put_manifest(repo, second, raw, OCI_MANIFEST)
        try:
            status = self.registry.delete_tag(repo, first, ok=(202, 400, 404, 405))
            works = status == 202 and self.reader.head(first) is None and self.reader.head(second) == digest
        finally:
            self.registry.delete_manifest(repo, digest)
        with self.lock:
            self.tag_delete = works
        return works
