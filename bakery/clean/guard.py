"""The re-checks of ``clean --yes`` while it deletes: nothing any current tag of the repository reaches is deleted.

The plan comes from a snapshot, and tags move while the run works. :class:`Guard` keeps the run's view of every
tag and the digests it must not delete (``blocked``: {digest: why}): everything the graph of a tag reaches when that
tag is new or points elsewhere than in the snapshot (the run's own journal tags aside). A kept tag that did not
move needs no walk: the planner already keeps all it reaches.

- :meth:`Guard.refresh` re-reads every tag (list + a HEAD each: 1 + T requests, plus a GET of each manifest not
  seen yet): at the start of the run and before each level of deletes;
- :meth:`Guard.check`, right before each DELETE, is the cheap re-check: one tag list, and a HEAD (and walk) of only
  the names the run has not seen, so a tag created meanwhile on the digest, or on an index listing it, stops it;
- :meth:`Guard.forget` drops the tags a DELETE took with it, so the same name pushed again counts as new.

What this cannot see (a tag PUT landing between the last check and the DELETE of that very digest) is described
in docs/clean.md; what is missing afterwards is restored by :mod:`bakery.clean.repair`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from bakery.clean.graph import Graph
from bakery.clean.model import Snapshot
from bakery.clean.snapshot import Reader, nodes_of

__all__ = ["Guard"]


@dataclass
class Guard:
    reader: Reader
    snap: Snapshot
    ignore: set[str] = field(default_factory=set)          # the run's own journal tags
    view: dict[str, str] = field(default_factory=dict)     # tag -> digest, as last seen
    blocked: dict[str, str] = field(default_factory=dict)  # digest -> why it must not be deleted
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.view.update(self.snap.tags)

    def refresh(self) -> dict[str, str | None]:
        """Every tag re-read; returns {tag: digest or None (listed, resolves to nothing)}."""
        current = self.reader.head_tags(self.reader.list_tags())
        self._absorb({t: d for t, d in current.items() if d is not None}, replace=True)
        return current

    def check(self, digest: str) -> str | None:
        """Why ``digest`` must not be deleted now (None: it may go), after reading the tag list once more."""
        names = self.reader.registry.tags(self.reader.repository)
        with self.lock:
            new = [n for n in names if n not in self.view and n not in self.ignore]
        if new:
            heads = {n: self.reader.head(n) for n in new}
            self._absorb({n: d for n, d in heads.items() if d is not None})
        with self.lock:
            return self.blocked.get(digest)

    def block(self, digest: str, why: str) -> None:
        """``digest`` must not be deleted (something outside the tags' graphs showed it is in use)."""
        with self.lock:
            self.blocked.setdefault(digest, why)

    def forget(self, digest: str) -> None:
        """``digest`` was deleted, and with it every tag on it."""
        with self.lock:
            for tag in [t for t, d in self.view.items() if d == digest]:
                del self.view[tag]

    def _absorb(self, current: Mapping[str, str], replace: bool = False) -> None:
        changed = {t: d for t, d in current.items() if t not in self.ignore and self.snap.tags.get(t) != d}
        unknown = {d for d in changed.values() if d not in self.snap.manifests}
        if unknown:
            self.reader.walk(unknown)
        reach: dict[str, str] = {}
        if changed:
            graph = Graph({**nodes_of(dict(self.reader.fetched)), **self.snap.manifests})
            for tag, digest in sorted(changed.items()):
                for reached in graph.reach([(digest, "")]):
                    reach.setdefault(reached, f"used by tag {tag}, changed since the snapshot")
        with self.lock:
            if replace:
                self.view.clear()
            self.view.update(current)
            for reached, why in reach.items():
                self.blocked.setdefault(reached, why)
