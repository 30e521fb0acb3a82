"""The retention planner's records: what it reads (:class:`Snapshot` of :class:`Node`, :class:`Policy` of
:class:`Rule`) and what it decides (:class:`Plan` of :class:`TagAction`, :class:`DigestAction`, :class:`Protection`).

Plain frozen dataclasses with no behaviour beyond small derived views, so the snapshot, the planner, the policy
parser and the executor can share them without importing one another. See :mod:`bakery.clean.retention`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_PROTECT",
    "DELETE_DIGEST",
    "RETAG_THEN_DELETE",
    "PLACEHOLDER_BEFORE",
    "REFERRER_TAG",
    "DigestAction",
    "Node",
    "Plan",
    "Policy",
    "Protection",
    "Rule",
    "Snapshot",
    "TagAction",
    "TagMethod",
    "Untagged",
]

DEFAULT_PROTECT: tuple[str, ...] = (
    r"cache-.*",
    r".*buildcache.*",
    r"sha-[0-9a-f]{7,40}",
    r"sha256-[0-9a-f]{64}(\..*)?",
)

TagMethod = Literal["delete-digest", "retag-then-delete"]
DELETE_DIGEST: Final[TagMethod] = "delete-digest"
RETAG_THEN_DELETE: Final[TagMethod] = "retag-then-delete"
Untagged = Literal["keep", "delete"] | int
# a referrers-scheme / cosign tag: sha256-<the subject's hex>[.sig|.att|...]
REFERRER_TAG = re.compile(r"sha256-([0-9a-f]{64})(\..*)?")
# created earlier than this is a placeholder (1970-01-01, 1980-01-01 of reproducible builds), not a build time
PLACEHOLDER_BEFORE = datetime(1980, 1, 2, tzinfo=UTC)


@dataclass(frozen=True)
class Node:
    """A node of the retention graph: one digest that resolved as a manifest (image manifest, index or
    attestation), with what the planner needs to know about it (its edges, age and size)."""

    digest: str
    media_type: str
    size: int
    children: tuple[str, ...] = ()  # digests an index lists (manifest descriptors only)
    subject: str | None = None  # for attestations / referrers: the digest they describe
    created: datetime | None = None
    is_attestation: bool = False
    platform: str | None = None
    layer_bytes: int = 0
    blobs: tuple[tuple[str, int], ...] = ()  # (digest, size) of the config and layers, when known
    leftover: str | None = None  # what an interrupted clean run left behind ("untag placeholder", "journal")
    journal_tags: tuple[tuple[str, str], ...] = ()  # for a journal: (tag, digest) its run was removing


@dataclass(frozen=True)
class Snapshot:
    """What the registry holds for one repository."""

    repository: str
    tags: Mapping[str, str]  # tag -> digest
    manifests: Mapping[str, Node]  # digest -> node, for every digest that resolved as a manifest
    image: str = ""  # the config's image name, also accepted by ``Rule.images``
    dangling: tuple[str, ...] = ()  # tags the registry lists that resolve to no manifest


@dataclass(frozen=True)
class Rule:
    """One ordered retention rule; see the module docstring."""

    match: str  # regex, full match on the tag
    keep_last: int | None = None
    older_than: timedelta | None = None
    keep_all: bool = False
    images: tuple[str, ...] = ()  # repositories (or image names) it applies to; empty = all
    override_defaults: bool = False  # may handle built-in tags (cache refs, sha-..., intermediate refs)

    def applies_to(self, repository: str) -> bool:
        return not self.images or repository in self.images


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    protect: tuple[str, ...] = ()  # regexes; always win
    untagged: Untagged = "keep"
    protect_defaults: bool = True
    intermediate: tuple[str, ...] = ()  # per-group ref templates with only {tag} left, e.g. "{tag}-amd64"
    builtin: tuple[str, ...] = ()  # the project's own built-in tag regexes (e.g. from its cache ref)

    def protect_patterns(self) -> tuple[tuple[str, str], ...]:
        """(pattern, label) pairs in the order they are tried: the user's first, then defaults."""
        mine = tuple((p, "protect pattern") for p in self.protect)
        defaults = tuple((p, "default protect pattern") for p in (*DEFAULT_PROTECT, *self.builtin))
        return mine + (defaults if self.protect_defaults else ())


@dataclass(frozen=True)
class TagAction:
    tag: str
    digest: str
    reason: str
    method: TagMethod


@dataclass(frozen=True)
class DigestAction:
    digest: str
    reason: str
    cascade_from: str | None  # the deleted parent / subject this deletion follows from
    bytes: int


@dataclass(frozen=True)
class Protection:
    what: str  # a tag name or a digest ("sha256:...")
    why: str


@dataclass(frozen=True)
class Plan:
    """Everything a cleanup run will do, sorted; equal inputs give equal plans."""

    repository: str
    remove_tags: tuple[TagAction, ...] = ()
    delete_digests: tuple[DigestAction, ...] = ()  # parents before children
    protected: tuple[Protection, ...] = ()
    warnings: tuple[str, ...] = ()
    keep_tags: tuple[str, ...] = ()

    @property
    def bytes_freed(self) -> int:
        return sum(action.bytes for action in self.delete_digests)

    @property
    def is_empty(self) -> bool:
        return not self.remove_tags and not self.delete_digests

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, strings, ints and None only)."""
        return {
            "repository": self.repository,
            "remove_tags": [asdict(a) for a in self.remove_tags],
            "delete_digests": [asdict(a) for a in self.delete_digests],
            "protected": [asdict(p) for p in self.protected],
            "warnings": list(self.warnings),
            "keep_tags": list(self.keep_tags),
            "bytes_freed": self.bytes_freed,
        }
