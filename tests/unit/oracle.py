"""Independent reference walk used as the oracle of the planner's property tests (it must not share code with
the planner it checks)."""

from __future__ import annotations

from collections.abc import Iterable

from bakery.clean.retention import Snapshot


def reachable(snapshot: Snapshot, roots: Iterable[str]) -> set[str]:
    """Every digest ``roots`` reach: index -> children, subject -> referrers."""
    referrers: dict[str, list[str]] = {}
    for digest, m in snapshot.manifests.items():
        if m.subject is not None:
            referrers.setdefault(m.subject, []).append(digest)
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in seen:
            continue
        seen.add(digest)
        m = snapshot.manifests.get(digest)
        stack.extend(m.children if m is not None else ())
        stack.extend(referrers.get(digest, ()))
    return seen
