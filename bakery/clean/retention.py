"""Registry retention planner: a pure function from (snapshot, policy, now) to a plan.

The same planner serves the dry run and the real run, so the plan a dry run prints is
exactly the plan a real run executes (``Plan.__eq__`` compares them). It never reads the
clock and never does I/O: the caller builds the ``Snapshot`` and passes ``now``.

Tag rules
---------
* ``protect`` patterns (regexes, full match on the tag) always win: a protected tag is kept
  and takes no part in any rule, so it does not use up a ``keep_last`` slot.
* Leftovers of an interrupted ``clean`` run (a manifest the snapshot marks ``leftover``: an
  untag placeholder or a journal index) are always removed, unless a protect pattern matches;
  so is every tag a journal lists (``Node.journal_tags``) that still points at the digest the
  journal names: the interrupted run had decided it, and its public tag or subject may be gone.
* Built-in tags (unless the policy says ``protect_defaults: false``) take no part in ordinary
  rules either; only a rule with ``override_defaults: true`` (the first such rule that matches)
  handles them. They are:

  - ``DEFAULT_PROTECT`` and ``Policy.builtin`` patterns: BuildKit registry-cache tags
    (``cache-.*``, ``.*buildcache.*``, and the project's own cache tag pattern), ``sha-<hex>``
    revision tags, and referrers-scheme / cosign tags (``sha256-<64 hex>`` with an optional
    ``.sig``/``.att``/... suffix): kept, except that a referrers-scheme tag goes when the plan
    deletes the digest it names (it follows its subject);
  - per-group intermediate refs: for each template in ``Policy.intermediate`` (e.g.
    ``{tag}-amd64``), a tag ``T-amd64`` whose public tag ``T`` is in the repository follows
    ``T``: kept with it, removed with it, never counted by ``keep_last``. Without its public tag
    (a build still being stitched, or a public tag removed by hand) it is kept.
* Rules are ordered. A tag is handled by the FIRST rule whose ``match`` regex fully matches
  it and whose ``images`` list is empty or names the repository. Tags no rule matches are kept.
* Within a rule:

  - ``keep: all`` keeps every tag it matches (useful to shield tags from later rules);
  - ``keep_last N`` counts images (distinct digests), not tags: the rule's tags are grouped
    by digest, the digests are ordered newest first by ``created`` (unknown ages sort as
    oldest, ties by digest string), and the tags of the N newest digests are kept.
    ``keep_last: 0`` keeps none;
  - ``older_than D`` removes only tags whose digest was created before ``now - D``.
    A digest whose age is unknown is never "older", and gets a warning;
  - with both, a tag goes only if its digest is beyond ``keep_last`` AND older than ``D``.

* A ``created`` that is missing, or earlier than 1980-01-02 (the 1970-01-01 and 1980-01-01
  placeholders that reproducible builds / ``SOURCE_DATE_EPOCH=0`` write), is an unknown age.
  Naive datetimes (in ``created`` and ``now``) are taken as UTC.

Dangling tags (``Snapshot.dangling``: listed by the registry, resolving to no manifest, as registry
2.8 can leave them when a DELETE fails half-way) are removed, method ``retag-then-delete`` with an
empty ``digest``, unless a protect pattern matches them.

Untagged manifests
------------------
A top-level untagged manifest (a "root") is a manifest in the snapshot that no tag points at,
no index lists as a child, and that is not a referrer of a manifest we know (its ``subject``).
Registry 2.8 cannot list them; the caller may supply them. ``untagged`` decides their fate:
``"keep"`` (default), ``"delete"``, or an int N (keep the N newest roots). Children and
attestations are never judged by this setting: they live and die with their parents.

Reachability, digests and tag methods
-------------------------------------
The walk follows two kinds of edges: index -> each listed child (BuildKit attestation entries
included: bakery's snapshot leaves their ``vnd.docker.reference.digest`` out of ``subject``, so
they go with the last index that lists them), and subject -> each manifest whose ``subject`` is
that digest (OCI referrers, and manifests behind ``sha256-<hex>`` tags). Everything reachable from a kept tag's digest or a kept root is kept.

A digest is deleted only if it was released (the digest of a removed tag, an untagged root the
policy drops, or reached from those through deleted parents), is NOT reachable from anything
kept, and resolved as a manifest (it is a key of ``Snapshot.manifests``). A manifest whose
media type is not a manifest media type is never deleted (registry 2.8 answers 202 to a
manifest DELETE of a blob digest and unlinks the blob) and is kept, with its descendants.

Registry 2.8 cannot delete a tag, and deleting a digest removes every tag on it. So a removed
tag gets method ``"delete-digest"`` only when its digest is itself deleted (no kept tag, kept
index or kept subject refers to it); otherwise ``"retag-then-delete"``: point the tag at a
unique throw-away manifest, then delete that one. A shared digest is never digest-deleted.

``delete_digests`` lists parents before children (an index before its children, a subject
before its referrers), so an interrupted run leaves untagged orphans rather than broken
indexes. ``bytes`` is an estimate: the manifest size plus, when the snapshot lists a manifest's
``blobs``, the blobs no surviving manifest of the repository references, each counted once
(else ``layer_bytes``). Other repositories may share blobs too, and space only comes back after
the registry's garbage collection.

``protected`` explains what was saved: every tag matched by a protect pattern, and every
digest a removal would have deleted but something kept still uses.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from bakery.clean.graph import Graph
from bakery.clean.model import (DEFAULT_PROTECT, DELETE_DIGEST, PLACEHOLDER_BEFORE, REFERRER_TAG, RETAG_THEN_DELETE,
                                DigestAction, Node, Plan, Policy, Protection, Rule, Snapshot, TagAction, Untagged)
from bakery.oci.media import ALL_MANIFEST_TYPES

__all__ = ["plan"]   # its records (Snapshot, Node, Policy, Plan, ...) are in bakery.clean.model


def plan(snapshot: Snapshot, policy: Policy, now: datetime) -> Plan:
    """Decide which tags to remove and which manifests to delete. Pure: no clock, no I/O."""
    now = _as_utc(now)
    manifests = snapshot.manifests
    graph = Graph(manifests)
    warnings: set[str] = set()

    # 1. tags: protect patterns, leftovers, built-in tags, then the first matching rule
    protections: dict[str, str] = {}
    removed, referrer_tags = _decide_tags(snapshot, policy, now, warnings, protections)

    # 2. untagged roots
    kept_roots, dropped_roots = _decide_untagged(snapshot, policy.untagged, warnings)

    # 3-5. released -> kept -> deleted; a referrers-scheme tag follows its subject, so repeat until stable
    while True:
        released, saved, deleted = _resolve(snapshot, graph, removed, kept_roots, dropped_roots, warnings)
        followers = {
            tag: f"referrer tag of deleted manifest {subject}"
            for tag, subject in referrer_tags.items()
            if tag not in removed and subject in deleted
        }
        if not followers:
            break
        removed.update(followers)
    for tag in removed:
        protections.pop(tag, None)
    for digest, why in saved.items():
        protections.setdefault(digest, why)

    kept_tags = sorted(set(snapshot.tags) - set(removed))
    tag_actions = _tag_actions(snapshot, policy, removed, deleted, protections)
    order = graph.parents_first(deleted)
    sizes = _freed_bytes(order, deleted, manifests)
    digest_actions = tuple(
        _digest_action(digest, released, deleted, graph, manifests, sizes[digest]) for digest in order
    )
    return Plan(
        repository=snapshot.repository,
        remove_tags=tag_actions,
        delete_digests=digest_actions,
        protected=tuple(Protection(what, why) for what, why in sorted(protections.items())),
        warnings=tuple(sorted(warnings)),
        keep_tags=tuple(kept_tags),
    )


def _tag_actions(snapshot: Snapshot, policy: Policy, removed: Mapping[str, str], deleted: set[str],
                 protections: dict[str, str]) -> tuple[TagAction, ...]:
    """How each removed tag goes, and the dangling tags (removed unless a protect pattern matches them)."""
    actions = [
        TagAction(
            tag=tag,
            digest=snapshot.tags[tag],
            reason=removed[tag],
            method=DELETE_DIGEST if snapshot.tags[tag] in deleted else RETAG_THEN_DELETE,
        )
        for tag in removed
    ]
    user = [re.compile(p) for p in policy.protect]
    for tag in sorted(set(snapshot.dangling) - set(snapshot.tags)):
        if any(rx.fullmatch(tag) for rx in user):
            protections[tag] = "protect pattern (the tag resolves to no manifest)"
            continue
        why = "listed but resolves to no manifest (a DELETE that stopped half-way)"
        actions.append(TagAction(tag=tag, digest="", reason=why, method=RETAG_THEN_DELETE))
    return tuple(sorted(actions, key=lambda a: a.tag))


def _resolve(
    snapshot: Snapshot,
    graph: Graph,
    removed: Mapping[str, str],
    kept_roots: Mapping[str, str],
    dropped_roots: Mapping[str, str],
    warnings: set[str],
) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """(released {digest: reason}, saved {digest: why kept}, deleted digests) for a set of removed tags.

    ``saved`` holds the digests a removal would have deleted but something kept still uses.
    """
    manifests = snapshot.manifests
    kept_tags = sorted(set(snapshot.tags) - set(removed))

    # released: the digests of removed tags and the dropped untagged roots
    released: dict[str, str] = dict(dropped_roots)
    by_digest: dict[str, list[str]] = {}
    for tag in sorted(removed):
        by_digest.setdefault(snapshot.tags[tag], []).append(tag)
    for digest, on_digest in sorted(by_digest.items()):
        names = ", ".join(on_digest)
        released[digest] = f"tags {names} removed" if len(on_digest) > 1 else f"tag {names} removed"
        if digest not in manifests:
            warnings.add(f"tag {names}: digest {digest} did not resolve as a manifest; only the tag is removed")

    # what stays: everything reachable from kept tags and kept roots
    kept_seeds = [(snapshot.tags[t], f"shared with kept tag {t}") for t in kept_tags]
    kept_seeds += sorted(kept_roots.items())
    kept = graph.reach(kept_seeds)
    # never DELETE something that is not a manifest: keep it, and what it references
    refused = [
        (d, f"media type {manifests[d].media_type} is not a manifest type; never deleted")
        for d in sorted(graph.reach(sorted(released.items())))
        if d in manifests and d not in kept and manifests[d].media_type not in ALL_MANIFEST_TYPES
    ]
    if refused:
        warnings.update(f"{d}: {why}" for d, why in refused)
        kept = graph.reach(kept_seeds + refused)

    # what goes: walk from the released digests through deletable manifests only
    deleted: set[str] = set()
    saved: dict[str, str] = {}
    queue = deque(sorted(released))
    while queue:
        digest = queue.popleft()
        if digest in deleted:
            continue
        if digest in kept:
            saved.setdefault(digest, kept[digest])
            continue
        if digest not in manifests:
            continue  # never resolved as a manifest: nothing we may delete
        deleted.add(digest)
        queue.extend(child for child, _ in graph.successors(digest))
    return released, saved, deleted


def _freed_bytes(order: list[str], deleted: set[str], manifests: Mapping[str, Node]) -> dict[str, int]:
    """Estimated bytes per deleted digest; a blob counts once, and only if no surviving manifest uses it."""
    surviving = {blob for d, m in manifests.items() if d not in deleted for blob, _ in m.blobs}
    counted: set[str] = set()
    sizes: dict[str, int] = {}
    for digest in order:
        m = manifests[digest]
        if not m.blobs:
            sizes[digest] = m.size + m.layer_bytes
            continue
        fresh = {blob: size for blob, size in m.blobs if blob not in surviving and blob not in counted}
        counted.update(fresh)
        sizes[digest] = m.size + sum(fresh.values())
    return sizes


def _decide_tags(
    snapshot: Snapshot, policy: Policy, now: datetime, warnings: set[str], protections: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Return ({removed tag: reason}, {referrers-scheme tag: subject digest}); record kept-why in ``protections``."""
    user = [(re.compile(p), f"protect pattern {p}") for p in policy.protect]
    builtin = [(re.compile(p), f"default protect pattern {p}") for p in (*DEFAULT_PROTECT, *policy.builtin)]
    rules = [
        (i, r, re.compile(r.match))
        for i, r in enumerate(policy.rules)
        if r.applies_to(snapshot.repository) or (bool(snapshot.image) and r.applies_to(snapshot.image))
    ]
    bases = _intermediate_bases(snapshot.tags, policy.intermediate) if policy.protect_defaults else {}

    claimed: dict[int, list[str]] = {i: [] for i, _, _ in rules}
    removed: dict[str, str] = {}
    followers: dict[str, str] = {}  # intermediate ref -> its public tag
    referrer_tags: dict[str, str] = {}  # referrers-scheme tag -> the digest it names
    journaled = {t: d for m in snapshot.manifests.values() if m.leftover == "journal" for t, d in m.journal_tags}
    for tag in sorted(snapshot.tags):
        why = next((label for rx, label in user if rx.fullmatch(tag)), None)
        if why is not None:
            protections[tag] = why
            continue
        manifest = snapshot.manifests.get(snapshot.tags[tag])
        if manifest is not None and manifest.leftover:
            removed[tag] = f"{manifest.leftover} left by an interrupted clean run"
            continue
        if journaled.get(tag) == snapshot.tags[tag]:
            removed[tag] = "listed by the journal of an interrupted clean run"
            continue
        if policy.protect_defaults:
            label = next((label for rx, label in builtin if rx.fullmatch(tag)), None)
            if tag in bases and label is None:
                label = f"intermediate ref of {bases[tag]}"
            if label is not None:
                override = next((i for i, r, rx in rules if r.override_defaults and rx.fullmatch(tag)), None)
                if override is not None:
                    claimed[override].append(tag)
                elif tag in bases and bases[tag] in snapshot.tags:
                    followers[tag] = bases[tag]
                else:
                    found = REFERRER_TAG.fullmatch(tag)
                    if found is not None:
                        referrer_tags[tag] = f"sha256:{found.group(1)}"
                    elif tag in bases:
                        label = f"intermediate ref whose public tag {bases[tag]} is not in the repository"
                    protections[tag] = label
                continue
        first = next((i for i, _, rx in rules if rx.fullmatch(tag)), None)
        if first is not None:
            claimed[first].append(tag)

    for i, rule, _ in rules:
        removed.update(_apply_rule(i, rule, claimed[i], snapshot, now, warnings))
    _follow_public_tags(followers, removed, protections)
    return removed, referrer_tags


def _follow_public_tags(followers: Mapping[str, str], removed: dict[str, str], protections: dict[str, str]) -> None:
    """An intermediate ref follows its public tag (which may itself be an intermediate ref)."""
    def fate(tag: str, depth: int = 0) -> str | None:
        base = followers.get(tag)
        if base is None or depth > len(followers):
            return removed.get(tag)
        return f"intermediate ref of removed tag {base}" if fate(base, depth + 1) is not None else None

    for tag in sorted(followers):
        reason = fate(tag)
        if reason is not None:
            removed[tag] = reason
        else:
            protections[tag] = f"intermediate ref of kept tag {followers[tag]}"


def _intermediate_bases(tags: Iterable[str], templates: Iterable[str]) -> dict[str, str]:
    """{tag: public tag it would be the intermediate ref of}, whether or not that public tag exists."""
    shapes = []
    for template in templates:
        prefix, found, suffix = template.partition("{tag}")
        if found and (prefix or suffix):
            shapes.append((prefix, suffix))
    bases: dict[str, str] = {}
    existing = set(tags)
    for tag in sorted(existing):
        candidates = [
            tag[len(prefix) : len(tag) - len(suffix)]
            for prefix, suffix in shapes
            if len(tag) > len(prefix) + len(suffix) and tag.startswith(prefix) and tag.endswith(suffix)
        ]
        if candidates:
            # an existing public tag wins; then the longest base (the most specific template)
            bases[tag] = max(candidates, key=lambda base: (base in existing, len(base), base))
    return bases


def _apply_rule(
    index: int, rule: Rule, tags: list[str], snapshot: Snapshot, now: datetime, warnings: set[str]
) -> dict[str, str]:
    if rule.keep_all or not tags:
        return {}
    manifests = snapshot.manifests
    created = {snapshot.tags[t]: _known_created(manifests.get(snapshot.tags[t])) for t in tags}
    ordered = sorted(created, key=lambda d: _newest_first(d, created[d]))

    if rule.keep_last is None:
        beyond = ordered
    else:
        beyond = ordered[rule.keep_last :]
        if beyond and rule.keep_last > 0:  # the order decided something, so unknown ages mattered
            warnings.update(_age_warning(d, manifests.get(d)) for d in ordered if created[d] is None)

    gone: set[str] = set()
    for digest in beyond:
        if rule.older_than is not None:
            when = created[digest]
            if when is None:
                warnings.add(_age_warning(digest, manifests.get(digest)))
                continue
            if when >= now - rule.older_than:
                continue
        gone.add(digest)

    parts = []
    if rule.keep_last is not None:
        parts.append(f"not among the {rule.keep_last} newest images" if rule.keep_last else "keep_last 0")
    if rule.older_than is not None:
        parts.append(f"older than {_format_duration(rule.older_than)}")
    reason = f"rule {index} ({rule.match}): {' and '.join(parts) or 'matched'}"
    return {t: reason for t in tags if snapshot.tags[t] in gone}


def _decide_untagged(
    snapshot: Snapshot, untagged: Untagged, warnings: set[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Split the untagged roots into ({kept: why}, {dropped: reason})."""
    manifests = snapshot.manifests
    tagged = set(snapshot.tags.values())
    listed = {child for m in manifests.values() for child in m.children}
    known = set(manifests) | tagged
    roots = [
        d
        for d, m in manifests.items()
        if d not in tagged and d not in listed and not (m.subject is not None and m.subject in known)
    ]
    if untagged == "keep":
        return {d: "untagged manifest kept (untagged: keep)" for d in roots}, {}
    if untagged == "delete" or untagged == 0:
        return {}, {d: "untagged (untagged: delete)" for d in roots}

    count = int(untagged)
    created = {d: _known_created(manifests[d]) for d in roots}
    ordered = sorted(roots, key=lambda d: _newest_first(d, created[d]))
    if len(ordered) > count > 0:
        warnings.update(_age_warning(d, manifests[d]) for d in ordered if created[d] is None)
    kept = {d: f"one of the {count} newest untagged manifests" for d in ordered[:count]}
    dropped = {d: f"untagged, not among the {count} newest" for d in ordered[count:]}
    return kept, dropped


def _digest_action(
    digest: str,
    released: Mapping[str, str],
    deleted: set[str],
    graph: Graph,
    manifests: Mapping[str, Node],
    size: int,
) -> DigestAction:
    manifest = manifests[digest]
    if digest in released:
        return DigestAction(digest, f"{released[digest]}; nothing kept uses it", None, size)
    # prefer "child of deleted index" over "referrer of deleted manifest"; then the smallest digest
    _, parent, kind = min((k != "child", p, k) for p, k in graph.predecessors(digest) if p in deleted)
    if kind == "child":
        why = f"child of deleted index {parent}"
    else:
        why = f"{'attestation' if manifest.is_attestation else 'referrer'} of deleted manifest {parent}"
    return DigestAction(digest, why, parent, size)


def _as_utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _known_created(manifest: Node | None) -> datetime | None:
    """The build time if it is trustworthy; None when missing or a placeholder epoch."""
    if manifest is None or manifest.created is None:
        return None
    created = _as_utc(manifest.created)
    return None if created < PLACEHOLDER_BEFORE else created


def _newest_first(digest: str, created: datetime | None) -> tuple[int, float, str]:
    if created is None:
        return (1, 0.0, digest)
    return (0, -created.timestamp(), digest)


def _age_warning(digest: str, manifest: Node | None) -> str:
    if manifest is None:
        problem = "is not in the snapshot, so its created time is unknown"
    elif manifest.created is None:
        problem = "has no created time"
    else:
        problem = f"has a placeholder created time {_as_utc(manifest.created).isoformat()}"
    return f"{digest} {problem}: never counted as older_than, sorted as oldest for keep_last/untagged"


def _format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
