"""The last phase of ``clean --yes``: verify every tag of the repository, and repair what a concurrent publish
needed from what the run deleted.

Registry 2.8 has no referential integrity and no transactions: an index PUT checks that its children exist *at
that moment*, and a DELETE of a child an index lists succeeds. So an index published while clean deletes (a new
build reusing unchanged platform images, a removed index promoted to ``v1.0.0``) can lose children clean deletes
after its PUT. The re-checks before each DELETE (:mod:`bakery.clean.guard`) narrow that window; this phase closes
it for content:

1. after the run's last DELETE, every tag is listed and HEADed, and the graph of every tag is walked (a tag the
   snapshot did not know is fetched). A new tag that resolves to nothing (PUT on a manifest in the instant this
   run deleted it) counts with the digest the registry names in its 404, when the run holds that manifest;
2. every manifest any tag reaches (children, attestations, referrers) is HEADed;
3. a missing one whose bytes the run holds (what it deleted, and what journals of interrupted runs carry) is PUT
   back by digest, children before parents; then the pass repeats (at most :data:`PASSES` times) until nothing is
   missing.

No DELETE follows this phase (only the run's journal goes), and an index PUT after it is checked by the registry
against what exists, so what was published during the run resolves fully afterwards. What stays out of reach:
see docs/clean.md ("What a concurrent publish can and cannot lose").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from bakery.clean.graph import Graph
from bakery.clean.model import Node, Snapshot
from bakery.clean.snapshot import ProgressFn, Reader, nodes_of
from bakery.errors import RegistryError
from bakery.oci.registry import Manifest, Registry

__all__ = ["PASSES", "Verdict", "validate"]

PASSES = 3


@dataclass
class Verdict:
    """What the verification found: ``problems`` (empty = every tag resolves fully), the digests it PUT back,
    and how many tags and manifests the last pass checked."""

    problems: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    tags: int = 0
    manifests: int = 0


def validate(registry: Registry, snap: Snapshot, *, restorable: Mapping[str, tuple[str, bytes]] | None = None,
             ignore: Collection[str] = (), going: Mapping[str, str] | None = None, workers: int = 8,
             progress: ProgressFn | None = None) -> Verdict:
    """Verify every tag of the repository (and repair from ``restorable``: {digest: (media type, bytes)}).

    ``ignore``: tags that are not content (the run's own journal); ``going``: {tag: digest} of removals the run
    did not finish (a tag still there pointing at its planned digest is on its way out, not checked)."""
    reader = Reader(registry, snap.repository, workers=workers, progress=progress)
    restorable = dict(restorable or {})
    verdict = Verdict()
    for _ in range(PASSES):
        seeds, dangling = _tags(reader, snap, set(ignore), dict(going or {}))
        revived = _revivable(registry, snap.repository, dangling, restorable)
        dangling = [t for t in dangling if t not in revived]
        nodes = _graph(reader, snap, restorable, set(seeds.values()))
        why = _reached(nodes, {**seeds, **revived})
        checked = sorted(d for d in why if d not in set(seeds.values()) and d not in set(revived.values()))
        heads = reader.map("validating manifests", reader.head, checked)
        missing = {d for d, h in zip(checked, heads) if h is None} | set(revived.values())
        verdict.tags, verdict.manifests = len(seeds), len(checked) + len(set(seeds.values()))
        fixable = sorted(missing & set(restorable))
        restored = _restore(registry, snap.repository, nodes, fixable, restorable) if fixable else []
        verdict.restored += restored
        if not restored:
            verdict.problems = _problems(snap, why, missing, dangling)
            return verdict
    verdict.problems = [f"manifests were still missing after {PASSES} repair passes; re-run clean"]
    return verdict


def _tags(reader: Reader, snap: Snapshot, ignore: set[str],
          going: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """({tag: digest} of every tag to verify, [tags listed that resolve to nothing and should not])."""
    current = reader.head_tags(reader.list_tags())
    leftovers = {d for d, m in snap.manifests.items() if m.leftover}
    seeds = {t: d for t, d in current.items() if d is not None and t not in ignore and going.get(t) != d
             and d not in leftovers and not _is_leftover(reader.fetched.get(d))}
    dangling = sorted(t for t, d in current.items() if d is None and t not in ignore and t not in going
                      and t not in snap.dangling)
    return seeds, dangling


def _revivable(registry: Registry, repository: str, dangling: list[str],
               restorable: Mapping[str, tuple[str, bytes]]) -> dict[str, str]:
    """{tag: digest} of the dangling tags whose digest the run holds the bytes of: a tag PUT on a manifest while
    this run deleted it (registry 2.8 writes the revision link, the DELETE removes it, then the tag link lands),
    which resolves again once that manifest is PUT back. The registry names the digest of such a tag in its 404
    (distribution 2.8: ``detail.Revision``); one GET per dangling tag, none in a run nothing raced."""
    revived = {}
    for tag in dangling:
        digest = registry.dangling_revision(repository, tag)
        if digest is not None and digest in restorable:
            revived[tag] = digest
    return revived


def _is_leftover(found: Manifest | None) -> bool:
    return found is not None and nodes_of({found.digest: found})[found.digest].leftover is not None


def _graph(reader: Reader, snap: Snapshot, restorable: Mapping[str, tuple[str, bytes]],
           roots: set[str]) -> dict[str, Node]:
    """The graph of everything the tags reach: the snapshot, what the restorable bytes say, and what is fetched
    now (tags the snapshot did not know, and what they lead to)."""
    held = nodes_of({d: Manifest(d, media, raw) for d, (media, raw) in restorable.items()})
    known = {**held, **snap.manifests}
    frontier = roots - set(known)
    if frontier:
        reader.walk(frontier)
    return {**nodes_of(dict(reader.fetched)), **known}


def _reached(nodes: Mapping[str, Node], seeds: Mapping[str, str]) -> dict[str, str]:
    return Graph(nodes).reach(sorted((d, f"reached from tag {t}") for t, d in seeds.items()))


def _restore(registry: Registry, repository: str, nodes: Mapping[str, Node], fixable: list[str],
             restorable: Mapping[str, tuple[str, bytes]]) -> list[str]:
    """PUT the missing manifests back by digest, children before parents (an index PUT needs its children);
    the digests PUT. A PUT that fails is left for the next pass to report."""
    done = []
    for digest in reversed(Graph(nodes).parents_first(set(fixable))):
        media, raw = restorable[digest]
        try:
            registry.put_manifest(repository, digest, raw, media)
        except RegistryError:
            continue
        done.append(digest)
    return done


def _problems(snap: Snapshot, why: Mapping[str, str], missing: set[str], dangling: list[str]) -> list[str]:
    """Every tag that resolves to nothing, and every manifest a tag reaches that is missing, except what was
    missing before the run (referenced in the snapshot but never resolved: not this run's doing)."""
    before = {c for m in snap.manifests.values() for c in m.children if c not in snap.manifests}
    problems = [f"tag {t} resolves to nothing (put on a manifest while this run deleted it?); push it again"
                for t in dangling]
    problems += [f"{d} ({why[d]}) does not resolve" for d in sorted(missing - before)]
    return sorted(problems)
