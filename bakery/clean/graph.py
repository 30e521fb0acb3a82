"""The retention graph: edges index -> child and subject -> referrer over a snapshot's nodes. The planner
walks it to decide what stays; ``clean`` walks it again to protect what changed since the snapshot."""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Mapping

from bakery.clean.model import Node

__all__ = ["Graph"]


class Graph:
    """Edges index -> child and subject -> referrer, over the snapshot's manifests (also used by clean)."""

    def __init__(self, manifests: Mapping[str, Node]) -> None:
        self._manifests = manifests
        self._succ: dict[str, dict[str, str]] = {}  # parent -> {child: kind}, insertion-ordered
        self._pred: dict[str, dict[str, str]] = {}
        for digest in sorted(manifests):
            m = manifests[digest]
            for child in m.children:
                self._add(digest, child, "child")
            if m.subject is not None:
                self._add(m.subject, digest, "referrer")

    def _add(self, parent: str, child: str, kind: str) -> None:
        if parent == child:
            return
        self._succ.setdefault(parent, {}).setdefault(child, kind)
        self._pred.setdefault(child, {}).setdefault(parent, kind)

    def successors(self, digest: str) -> Iterable[tuple[str, str]]:
        return self._succ.get(digest, {}).items()

    def predecessors(self, digest: str) -> Iterable[tuple[str, str]]:
        return self._pred.get(digest, {}).items()

    def reach(self, seeds: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Breadth-first from (digest, why) seeds; returns {reachable digest: why it is reached}."""
        why: dict[str, str] = {}
        queue: deque[str] = deque()
        for digest, reason in seeds:
            if digest not in why:
                why[digest] = reason
                queue.append(digest)
        while queue:
            parent = queue.popleft()
            for child, kind in self.successors(parent):
                if child not in why:
                    why[child] = self._edge_reason(parent, child, kind)
                    queue.append(child)
        return why

    def _edge_reason(self, parent: str, child: str, kind: str) -> str:
        if kind == "child":
            return f"child of kept index {parent}"
        m = self._manifests.get(child)
        return f"{'attestation' if m is not None and m.is_attestation else 'referrer'} of kept manifest {parent}"

    def parents_first(self, digests: set[str]) -> list[str]:
        """Topological order of ``digests`` (ties by digest string); a cycle is appended sorted."""
        pending = {d: 0 for d in digests}
        for d in digests:
            for child, _ in self.successors(d):
                if child in pending:
                    pending[child] += 1
        ready = [d for d, n in pending.items() if n == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            d = heapq.heappop(ready)
            order.append(d)
            for child, _ in self.successors(d):
                if child in pending:
                    pending[child] -= 1
                    if pending[child] == 0:
                        heapq.heappush(ready, child)
        placed = set(order)
        return order + sorted(d for d in digests if d not in placed)
