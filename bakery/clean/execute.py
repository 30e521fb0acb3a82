"""``bakery clean`` on the registry: plan a repository (snapshot -> :func:`bakery.clean.retention.plan`), then
execute the plan and verify the whole repository afterwards.

The plan comes from the pure planner, the same for the dry run and the real run. :func:`execute` runs these
phases, each a function of its own (:class:`Execution` carries what they share):

1. :func:`probe_delete`: one DELETE of a digest that cannot exist; a registry that refuses DELETE (405, as GHCR
   and Docker Hub do, or distribution with ``storage.delete.enabled: false``) stops the run here, before anything
   is written, with one line saying what the registry needs;
2. :func:`since_snapshot` re-reads every tag (list + HEAD). A tag the plan removes that now points elsewhere is
   skipped and reported, and nothing its old digest leads to is deleted; the graph of every tag that changed or
   appeared since the snapshot is protected (never deleted; :class:`bakery.clean.guard.Guard`);
3. :func:`journal_phase` writes the journal: the digests it is about to delete with their bytes, and the tags
   it removes (:mod:`bakery.clean.journal`); the journal is deleted last, once everything else is done;
4. :func:`remove_shared_tags` removes tags that share a digest with something kept without touching the digest:
   OCI tag DELETE when a probe proves the registry deletes only the tag, else (registry 2.8) it points the tag at
   a unique tiny placeholder manifest and deletes that placeholder by digest. All placeholders are PUT before any
   is deleted: on 2.8 a manifest DELETE reads every tag's link, and a link being written at that moment makes the
   DELETE fail half-way, leaving the digest's tags dangling;
5. :func:`delete_digests` deletes digests parents first, level by level (an index before its children, a subject
   before its referrers). Before each level every tag is re-read again; right before each DELETE the tag list is
   read once more (:meth:`Guard.check`) and each removed tag of that digest re-checked. A DELETE is sent only for
   a digest that resolved as a manifest in the snapshot; 404 counts as done. A digest that something surviving
   still lists (a skipped parent) is kept, and so is one whose DELETE the registry answered 400 DIGEST_INVALID
   (distribution 2.8 read its link while a push was rewriting it: nothing was deleted, and a push of that very
   digest is landing). The first error stops the run after the current level: what is left is in the journal,
   and a re-run finishes the job;
6. :func:`repair_dangling`: a removed tag still listed but resolving to nothing (left dangling by such a half-way
   DELETE, e.g. racing a push), or whose digest a concurrent publish made stay, is removed the placeholder way;
7. :func:`verify_phase` (also after a run that stopped): every tag of the repository and everything it reaches
   is checked, and what is missing is PUT back from the bytes the run holds (:mod:`bakery.clean.repair`); then
   :func:`delete_journal`.

Every read goes through :class:`bakery.clean.snapshot.Reader`; local cleanup is :mod:`bakery.clean.local`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bakery.clean.guard import Guard
from bakery.clean.journal import Untagging, journal_bytes, write_journal
from bakery.clean.model import DELETE_DIGEST, Node, Plan, Policy, Snapshot, TagAction
from bakery.clean.policy import Target, needs_created
from bakery.clean.repair import validate
from bakery.clean.retention import plan as make_plan
from bakery.clean.snapshot import Parallel, ProgressFn, Reader, parallel, take
from bakery.errors import BakeryError, RegistryError
from bakery.oci.registry import ALL_MANIFEST_TYPES, Registry
from bakery.oci.untag import delete_refused

__all__ = [
    "Changes",
    "Event",
    "Execution",
    "Outcome",
    "RepoPlan",
    "delete_digests",
    "delete_journal",
    "execute",
    "journal_phase",
    "plan_target",
    "probe_delete",
    "remove_shared_tags",
    "repair_dangling",
    "since_snapshot",
    "validate",
    "verify_phase",
]


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class RepoPlan:
    target: Target
    snapshot: Snapshot
    plan: Plan
    now: datetime
    seconds: float = 0.0     # snapshot + plan wall time
    raw: Mapping[str, bytes] = field(default_factory=dict)   # digest -> bytes of every manifest the snapshot read


def plan_target(registry: Registry, target: Target, policy: Policy, now: datetime, *, workers: int = 8,
                progress: ProgressFn | None = None) -> RepoPlan:
    """Snapshot one repository and plan it. Reads only."""
    started = time.monotonic()
    reader = Reader(registry, target.repository, workers=workers, progress=progress)
    snap = take(registry, target.repository, image=target.image, workers=workers,
                need_created=needs_created(policy), progress=progress, reader=reader)
    raw = {digest: found.raw for digest, found in reader.fetched.items()}
    return RepoPlan(target, snap, make_plan(snap, policy, now), now, time.monotonic() - started, raw)


# --------------------------------------------------------------------------- outcome
@dataclass(frozen=True)
class Event:
    action: str        # untag | delete | journal | skip | fail
    what: str          # a tag or a digest
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"action": self.action, "what": self.what, "detail": self.detail}


@dataclass
class Outcome:
    repository: str
    done: list[Event] = field(default_factory=list)
    skipped: list[Event] = field(default_factory=list)
    failed: list[Event] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)     # validation
    journal: list[str] = field(default_factory=list)      # journal tags written (and deleted when complete)
    complete: bool = True
    seconds: float = 0.0
    refused: str = ""        # the registry refuses DELETE: what it needs (nothing was changed)
    restored: list[str] = field(default_factory=list)     # digests PUT back because a concurrent publish needs them
    verified: tuple[int, int] = (0, 0)                    # (tags, manifests) the verification checked

    @property
    def ok(self) -> bool:
        return self.complete and not self.problems and not self.refused

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "complete": self.complete, "ok": self.ok,
                "done": [e.to_dict() for e in sorted(self.done, key=_event_key)],
                "skipped": [e.to_dict() for e in sorted(self.skipped, key=_event_key)],
                "failed": [e.to_dict() for e in sorted(self.failed, key=_event_key)],
                "validation_problems": sorted(self.problems), "journal": list(self.journal),
                "refused": self.refused, "restored": sorted(self.restored),
                "verified": {"tags": self.verified[0], "manifests": self.verified[1]},
                "seconds": round(self.seconds, 3)}


def _event_key(e: Event) -> tuple[str, str]:
    return e.action, e.what


class _Skip(Exception):
    """An action that must not happen any more (the registry changed since the snapshot)."""


class _Blocked(_Skip):
    """A digest a current tag reaches: it stays, the removed tags on it are still removed (alone)."""


# --------------------------------------------------------------------------- execute
@dataclass
class Execution:
    """One repository's run: what every phase reads, and the :class:`Outcome` they fill in."""

    registry: Registry
    reader: Reader
    repo_plan: RepoPlan
    out: Outcome
    workers: int = 8
    progress: ProgressFn | None = None
    untagging: Untagging = field(init=False)
    guard: Guard = field(init=False)
    changes: Changes = field(init=False)
    journal: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.untagging = Untagging(self.registry, self.reader)
        self.guard = Guard(self.reader, self.repo_plan.snapshot)
        self.changes = Changes(blocked=self.guard.blocked)

    @property
    def snap(self) -> Snapshot:
        return self.repo_plan.snapshot

    @property
    def plan(self) -> Plan:
        return self.repo_plan.plan

    @property
    def repo(self) -> str:
        return self.repo_plan.snapshot.repository

    def phase(self, name: str) -> Callable[[int, int], None] | None:
        progress = self.progress
        return None if progress is None else (lambda d, t: progress(name, d, t))

    def tell(self, name: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(name, done, total)


@dataclass
class Changes:
    """What moved since the snapshot: removed tags that were re-pushed (kept, with their digest), and the
    digests that must not be deleted ({digest: why})."""

    skipped_tags: set[str] = field(default_factory=set)
    blocked: dict[str, str] = field(default_factory=dict)


def execute(registry: Registry, repo_plan: RepoPlan, *, workers: int = 8, progress: ProgressFn | None = None,
            validate_after: bool = True) -> Outcome:
    """Carry out a plan (see the module docstring). Never raises for registry errors: they stop the run and
    are recorded in ``Outcome.failed`` (``complete`` is False); a re-run finishes the job. The verification (and
    repair) runs unless the registry refused DELETE; ``validate_after=False`` skips it when nothing was deleted."""
    started = time.monotonic()
    snap, plan = repo_plan.snapshot, repo_plan.plan
    out = Outcome(snap.repository)
    run = Execution(registry, Reader(registry, snap.repository, workers=workers, progress=progress), repo_plan, out,
                    workers, progress)
    try:
        if not plan.is_empty:
            _phases(run)
    except RegistryError as exc:
        out.complete = False
        out.failed.append(Event("fail", snap.repository, str(exc)))
    deleted = any(e.action == "delete" for e in out.done)
    if not out.refused and (validate_after or deleted) and verify_phase(run) and out.complete:
        try:
            delete_journal(run, run.journal)
        except RegistryError as exc:
            out.complete = False
            out.failed.append(Event("fail", snap.repository, f"deleting the journal: {exc}"))
    out.seconds = time.monotonic() - started
    return out


def _phases(run: Execution) -> None:
    if not probe_delete(run):
        return
    changes = since_snapshot(run)
    run.journal = journal_phase(run, changes)
    if remove_shared_tags(run, changes) and delete_digests(run, changes):
        repair_dangling(run, changes)


def probe_delete(run: Execution) -> bool:
    """Phase 1: whether this registry deletes manifests at all; before anything is written."""
    reason = delete_refused(run.registry, run.repo)
    if reason is not None:
        run.out.refused = reason
        run.out.complete = False
    return reason is None


def since_snapshot(run: Execution) -> Changes:
    """Phase 2: every tag re-read, so that the new graph of a re-pushed tag is protected even where it reuses
    what another removal deletes (removed tags are re-checked again just before acting)."""
    plan = run.plan
    current = run.guard.refresh()
    changes = run.changes
    for action in plan.remove_tags:
        now_at = current.get(action.tag)
        if now_at is not None and now_at != action.digest:   # (a dangling tag that resolves again: re-pushed)
            changes.skipped_tags.add(action.tag)
            run.out.skipped.append(Event("skip", action.tag, f"re-pushed since the snapshot (now {now_at}); kept"))
    for action in plan.remove_tags:
        if action.tag in changes.skipped_tags and action.method == DELETE_DIGEST:
            changes.blocked.setdefault(action.digest, f"its tag {action.tag} was re-pushed since the snapshot")
    return changes


def journal_phase(run: Execution, changes: Changes) -> list[tuple[str, str]]:
    """Phase 3: the journal of what is about to be deleted (with the bytes) and of the tags the run removes;
    (tag, digest) of each journal index."""
    to_journal = [a.digest for a in run.plan.delete_digests if a.digest not in changes.blocked]
    tags = {a.tag: a.digest for a in run.plan.remove_tags if a.tag not in changes.skipped_tags and a.digest}
    journal = write_journal(run.registry, run.reader, run.snap, to_journal, run.repo_plan.now, run.repo_plan.raw,
                            tags) if to_journal or tags else []
    run.guard.ignore.update(tag for tag, _ in journal)
    run.out.journal = [tag for tag, _ in journal]
    run.out.done.extend(Event("journal", tag, f"wrote {digest}") for tag, digest in journal)
    return journal


def remove_shared_tags(run: Execution, changes: Changes) -> bool:
    """Phase 4: the removed tags whose digest stays; whether the run may go on. Registry 2.8 answers a manifest
    DELETE by reading every tag's link, and a link being written by a concurrent PUT makes that DELETE fail
    half-way (manifest gone, its tags left dangling), so no tag is written while a DELETE runs: probe once, PUT
    every placeholder, then DELETE them."""
    retags = [a for a in run.plan.remove_tags if a.method != DELETE_DIGEST and a.tag not in changes.skipped_tags]
    if not retags:
        return True
    errors = _delete_tags(run, retags) if run.untagging.tag_delete_works() else _retag_then_delete(run, retags)
    if any(not isinstance(e, _Skip) for e in errors):
        run.out.complete = False
        return False
    return True


def _delete_tags(run: Execution, retags: Sequence[TagAction]) -> list[BaseException]:
    """Tag DELETE (the registry was probed to delete only the tag); the errors."""
    def tag_delete(action: TagAction) -> Event:
        _recheck(run.reader, action)
        run.registry.delete_tag(run.repo, action.tag)
        return Event("untag", action.tag, "tag DELETE")

    result = parallel(tag_delete, retags, workers=run.workers, progress=run.phase("removing tags"))
    _collect(result, retags, lambda a: a.tag, run.out)
    return list(result.errors.values())


def _retag_then_delete(run: Execution, retags: Sequence[TagAction]) -> list[BaseException]:
    """Every tag onto a placeholder, then every placeholder deleted; the errors. Placeholders that were put are
    deleted even when some PUT failed: no tag is left on a placeholder."""
    run.untagging.ensure_empty_blob()

    def put(action: TagAction) -> str:
        _recheck(run.reader, action)
        return run.untagging.retag(action.tag, action.digest)

    result = parallel(put, retags, workers=run.workers, progress=run.phase("re-pointing tags"))
    placed = [(a, result.results[i]) for i, a in enumerate(retags) if result.results[i] is not None]
    _collect(Parallel([None] * len(retags), result.errors, result.not_started), retags, lambda a: a.tag, run.out)
    gone = parallel(lambda item: run.registry.delete_manifest(run.repo, item[1]), placed, workers=run.workers,
                    progress=run.phase("removing tags"), stop_on_error=False)
    for i, (action, digest) in enumerate(placed):
        if i not in gone.errors:
            run.out.done.append(Event("untag", action.tag, f"retag-then-delete (placeholder {digest})"))
    _collect(Parallel([None] * len(placed), gone.errors, gone.not_started), [a for a, _ in placed],
             lambda a: a.tag, run.out)
    return [*result.errors.values(), *gone.errors.values()]


def delete_digests(run: Execution, changes: Changes) -> bool:
    """Phase 5: the planned digests, parents first, level by level, every tag re-read before each level;
    whether every level finished."""
    snap = run.snap
    by_digest: dict[str, list[TagAction]] = {}
    for action in run.plan.remove_tags:
        if action.method == DELETE_DIGEST and action.tag not in changes.skipped_tags:
            by_digest.setdefault(action.digest, []).append(action)
    planned = [a.digest for a in run.plan.delete_digests]
    parents = _parents(snap.manifests)
    survivors = (set(snap.manifests) - set(planned)) | set(changes.blocked)
    finished = 0
    for level in _levels(planned, parents):
        run.guard.refresh()
        for digest, why in list(run.guard.blocked.items()):
            changes.blocked.setdefault(digest, why)
        todo = _deletable(run, level, changes.blocked, parents, survivors)

        def tell(done: int, _total: int, base: int = finished) -> None:
            run.tell("deleting", base + done, len(planned))

        result = parallel(lambda d: _delete(run, d, by_digest), todo, workers=run.workers, progress=tell)
        finished += len(level)
        for i, digest in enumerate(todo):
            err = result.errors.get(i)
            if err is not None or i in result.not_started:
                survivors.add(digest)
            if isinstance(err, _Skip) and not isinstance(err, _Blocked):
                for action in by_digest.get(digest, ()):
                    changes.skipped_tags.add(action.tag)
                    run.out.skipped.append(Event("skip", action.tag, str(err)))
        _collect(result, todo, lambda d: d, run.out)
        if any(not isinstance(e, _Skip) for e in result.errors.values()):
            run.out.complete = False
            return False
    run.tell("deleting", len(planned), len(planned))
    return True


def _deletable(run: Execution, level: Sequence[str], blocked: Mapping[str, str], parents: Mapping[str, set[str]],
               survivors: set[str]) -> list[str]:
    """The digests of one level that may go; the others join ``survivors`` and are reported as skipped."""
    todo: list[str] = []
    for digest in level:
        why = blocked.get(digest)
        holder = next((p for p in sorted(parents.get(digest, ())) if p in survivors), None)
        if why is None and holder is not None:
            why = f"still listed by {holder}, which stays"
        if why is not None:
            survivors.add(digest)
            run.out.skipped.append(Event("skip", digest, why))
        else:
            todo.append(digest)
    return todo


def _delete(run: Execution, digest: str, by_digest: Mapping[str, Sequence[TagAction]]) -> Event:
    manifests = run.snap.manifests
    if digest not in manifests or manifests[digest].media_type not in ALL_MANIFEST_TYPES:
        raise _Skip("did not resolve as a manifest in the snapshot; never deleted")   # defensive
    blocked = run.guard.check(digest)
    if blocked is not None:
        raise _Blocked(blocked)
    for action in by_digest.get(digest, ()):
        now_at = run.reader.head(action.tag)
        if now_at is not None and now_at != digest:
            raise _Skip(f"tag {action.tag} was re-pushed since the snapshot (now {now_at}); kept")
    try:
        gone = run.registry.delete_manifest(run.repo, digest)
    except RegistryError as exc:
        if exc.status != 400 or exc.code != "DIGEST_INVALID":
            raise
        why = "a push was writing it at that moment (the registry answered 400 DIGEST_INVALID); kept"
        run.guard.block(digest, why)
        raise _Blocked(why) from None
    run.guard.forget(digest)
    return Event("delete", digest, "deleted" if gone else "already gone")


def repair_dangling(run: Execution, changes: Changes) -> None:
    """Phase 6: a removed tag the registry still lists but that resolves to nothing (a DELETE that failed
    half-way, e.g. racing a push) is removed the placeholder way, one at a time; so is one whose digest stayed
    because a tag published meanwhile uses it."""
    removed = run.plan.remove_tags
    gone_tags = {a.tag for a in removed if a.tag not in changes.skipped_tags}
    leftover = sorted(gone_tags & set(run.reader.list_tags()))
    for tag, at in zip(leftover, run.reader.map("checking removed tags", run.reader.head, leftover)):
        if at is None:
            run.registry.delete_manifest(run.repo, run.untagging.retag(tag))
            run.out.done.append(Event("untag", tag, "repaired: the registry left it dangling"))
        elif at not in {a.digest for a in removed if a.tag == tag}:
            run.out.skipped.append(Event("skip", tag, f"re-pushed during the run (now {at}); kept"))
        elif at in changes.blocked:
            run.registry.delete_manifest(run.repo, run.untagging.retag(tag, at))
            run.out.done.append(Event("untag", tag, f"untag only: its manifest stays ({changes.blocked[at]})"))


def verify_phase(run: Execution) -> bool:
    """Phase 7: every tag of the repository verified and repaired (:func:`bakery.clean.repair.validate`) with the
    bytes of every manifest the snapshot read and those journals of interrupted runs carry; whether it finished."""
    raw = run.repo_plan.raw
    restorable = {d: (m.media_type, raw[d]) for d, m in run.snap.manifests.items() if d in raw}
    for digest, node in run.snap.manifests.items():
        if node.leftover == "journal" and digest in raw:
            for held, entry in journal_bytes(raw[digest]).items():
                restorable.setdefault(held, entry)
    going = {a.tag: a.digest for a in run.plan.remove_tags if a.tag not in run.changes.skipped_tags}
    try:
        verdict = validate(run.registry, run.snap, restorable=restorable, ignore=set(run.out.journal), going=going,
                           workers=run.workers, progress=run.progress)
    except RegistryError as exc:
        run.out.problems = [f"validation could not finish: {exc}"]
        return False
    run.out.problems, run.out.restored = verdict.problems, verdict.restored
    run.out.verified = (verdict.tags, verdict.manifests)
    run.out.done.extend(Event("restore", d, "PUT back: a tag published during the run needs it")
                        for d in verdict.restored)
    return True


def delete_journal(run: Execution, journal: Sequence[tuple[str, str]]) -> None:
    """The journal goes last, once everything it lists is gone and the repository is verified."""
    for _tag, digest in journal:
        run.registry.delete_manifest(run.repo, digest)


def _recheck(reader: Reader, action: TagAction) -> None:
    """Just before acting on a removed tag: it must still point where the plan saw it (a dangling tag, planned
    with an empty digest, must still resolve to nothing)."""
    now_at = reader.head(action.tag)
    if now_at != (action.digest or None) and not (now_at is None and action.digest):
        raise _Skip(f"re-pushed since the snapshot (now {now_at}); kept")


def _collect(run: Parallel, items: Sequence[Any], name: Callable[[Any], str], out: Outcome) -> None:
    for i, item in enumerate(items):
        err = run.errors.get(i)
        if isinstance(err, _Skip):
            out.skipped.append(Event("skip", name(item), str(err)))
        elif err is not None:
            out.failed.append(Event("fail", name(item), str(err) if isinstance(err, BakeryError)
                                    else f"{type(err).__name__}: {err}"))
        elif i in run.not_started:
            out.skipped.append(Event("skip", name(item), "not started: the run stopped on an error"))
        elif run.results[i] is not None:
            out.done.append(run.results[i])


def _parents(manifests: Mapping[str, Node]) -> dict[str, set[str]]:
    """digest -> what keeps it alive when it stays: the indexes listing it, and its subject."""
    parents: dict[str, set[str]] = {}
    for digest, m in manifests.items():
        for child in m.children:
            if child != digest:
                parents.setdefault(child, set()).add(digest)
        if m.subject is not None and m.subject != digest:
            parents.setdefault(digest, set()).add(m.subject)
    return parents


def _levels(order: Sequence[str], parents: Mapping[str, set[str]]) -> list[list[str]]:
    """Group a parents-first order into levels: nothing in a level has a parent in the same or a later one."""
    depth: dict[str, int] = {}
    members = set(order)
    for digest in order:
        ups = [depth[p] for p in parents.get(digest, ()) if p in members and p in depth]
        depth[digest] = 1 + max(ups) if ups else 0
    levels: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for digest in order:
        levels[depth[digest]].append(digest)
    return levels
