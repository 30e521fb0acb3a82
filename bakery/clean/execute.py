"""``bakery clean``: registry retention (snapshot -> plan -> execute -> validate) and local cleanup.

The plan comes from the pure planner :func:`bakery.clean.retention.plan`, the same for the dry run and the real run.
Executing a plan (:func:`execute`):

1. re-reads every tag (list + HEAD). A tag the plan removes that now points elsewhere is skipped and reported,
   and nothing its old digest leads to is deleted; the graph of every tag that changed or appeared since the
   snapshot is protected (never deleted);
2. writes a *journal*: an OCI index tagged ``bakery-clean-journal-<time>-<n>`` (annotation
   ``dev.bakery.clean.execute: journal``) listing the digests it is about to delete. Registry 2.8 cannot list untagged
   manifests, so without it an interrupted run would leave children nobody can find; the next run sees the
   journal tag, the planner removes it like any leftover and deletes what it lists (unless something kept
   uses it). The journal is deleted last, once everything else is done;
3. removes tags that share a digest with something kept without touching the digest: OCI tag DELETE when a
   probe proves the registry deletes only the tag, else (registry 2.8) it points the tag at a unique tiny
   placeholder manifest (:func:`bakery.manifest.drafts.untag_manifest`, annotation ``dev.bakery.clean.execute: untag``, as
   ``manifest.rm`` writes) and deletes that placeholder by digest. All
   placeholders are PUT before any is deleted: on 2.8 a manifest DELETE reads every tag's link, and a link
   being written at that moment makes the DELETE fail half-way, leaving the digest's tags dangling;
4. deletes digests parents first, level by level (an index before its children, a subject before its
   referrers), re-checking each removed tag just before its digest goes. A DELETE is sent only for a digest
   that resolved as a manifest in the snapshot; 404 counts as done. A digest that something surviving still
   lists (a skipped parent) is kept. The first error stops the run after the current level: what is left is
   in the journal, and a re-run finishes the job. A removed tag still listed but resolving to nothing (left
   dangling by such a half-way DELETE, e.g. racing a push) is then removed the placeholder way;
5. validates: every kept tag resolves, and every manifest a kept tag reaches resolves.

Local cleanup (:func:`local_steps`): ``docker buildx prune`` per builder the config uses (``--keep-storage``,
``--filter``), ``docker buildx rm`` for builders named with bakery's prefix that the config no longer uses, and
``docker image prune`` for dangling images. All through :class:`~bakery.process.Runner`.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from bakery.build import bakefile
from bakery.config.variables import VAR_REGISTRY, bake_variables
from bakery.oci.registry import registry_for
from bakery.config.model import Config, suggest
from bakery.docker import Docker, docker_for
from bakery.errors import BakeryError, ConfigError, RegistryError
from bakery.manifest.drafts import ensure_empty_config, untag_manifest
from bakery.oci.reference import split_domain
from bakery.oci.registry import OCI_INDEX, OCI_MANIFEST, Registry
from bakery.clean.retention import DELETE_DIGEST, MANIFEST_MEDIA_TYPES, Graph, Manifest, Plan, Policy, Snapshot, TagAction
from bakery.clean.retention import parse_policy
from bakery.clean.retention import plan as make_plan
from bakery.clean.snapshot import CREATED, LEFTOVER, Parallel, ProgressFn, Reader, build_snapshot, parallel, take
from bakery.oci.index import make_index

__all__ = [
    "JOURNAL_TAG",
    "Event",
    "LocalStep",
    "Outcome",
    "RepoPlan",
    "Target",
    "execute",
    "local_steps",
    "needs_created",
    "plan_target",
    "policy_for",
    "registry_client",
    "registry_ref",
    "run_local",
    "targets",
    "validate",
]

JOURNAL_TAG = "bakery-clean-journal-"
JOURNAL_CHUNK = 1000                      # descriptors per journal index (keeps each one well under 1 MB)
_SIZE = re.compile(r"^\d+(\.\d+)?\s*([kmgtp]i?b?|b)?$", re.IGNORECASE)


# --------------------------------------------------------------------------- targets and policy
@dataclass(frozen=True)
class Target:
    image: str          # the image's name in bakery.yaml
    ref: str            # <registry host>/<repository path>, as users write it
    repository: str     # the repository path on the registry


def registry_ref(config: Config, registry: str | None = None) -> str:
    """The registry name prefix clean works on: ``registry``, else the one builds push to (``BAKERY_REGISTRY``,
    else the config's ``registry``)."""
    return registry or bake_variables(config)[VAR_REGISTRY]


def registry_client(config: Config, registry: str | None = None) -> Registry:
    client, _ = registry_for(registry_ref(config, registry))
    return client


def targets(config: Config, images: Sequence[str] = (), registry: str | None = None) -> list[Target]:
    """The repositories of the config's images (``--image`` narrows them), under :func:`registry_ref`."""
    prefix_ref = registry_ref(config, registry)
    _, prefix = registry_for(prefix_ref)
    host = split_domain(prefix_ref)[0] or "docker.io"
    for name in images:
        if name not in config.images:
            raise BakeryError(f"--image {name}: no such image in {config.source}; "
                              f"{suggest(name, sorted(config.images))}")
    out: list[Target] = []
    seen: set[str] = set()
    for name in sorted(set(images) or config.images):
        image = config.images[name]
        repository = f"{prefix}/{image.repository}" if prefix else image.repository
        if repository not in seen:
            seen.add(repository)
            out.append(Target(name, f"{host}/{repository}", repository))
    return out


def policy_for(config: Config) -> Policy:
    """``retention:`` from bakery.yaml, plus what the project's own config says about its built-in tags:
    the per-group intermediate ref templates and the registry cache tag pattern."""
    policy = parse_policy(config.raw.get("retention") or {}, config.source)
    known = sorted({*config.images, *(i.repository for i in config.images.values())})
    for i, rule in enumerate(policy.rules):
        for j, name in enumerate(rule.images):
            if name not in known:
                raise ConfigError(config.source, f"retention.rules[{i}].images[{j}]",
                                  f"unknown image {name!r}; {suggest(name, known)}")
    intermediate = tuple(sorted({config.intermediate_tag.replace("{group}", g) for g in config.platform_groups}))
    builtin = tuple(p for p in (_cache_tag_pattern(config),) if p)
    return replace(policy, intermediate=intermediate, builtin=builtin)


def _cache_tag_pattern(config: Config) -> str | None:
    """A regex for the tags ``cache.ref`` produces, when it names a tag with some literal text in it."""
    if config.cache.type != "registry":
        return None
    ref = config.cache.ref
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else ""
    if not tag:
        return None
    groups = "|".join(re.escape(g) for g in sorted(config.platform_groups))
    images = "|".join(re.escape(i) for i in sorted(config.images))
    parts = re.split(r"(\{[a-z_]+\})", tag)
    literal = "".join(p for p in parts if not p.startswith("{"))
    if len(literal) < 2:
        return None
    fill = {"{group}": f"(?:{groups})", "{image}": f"(?:{images})", "{scope}": r"[\w][\w.-]*"}
    return "".join(fill.get(p, ".+") if p.startswith("{") else re.escape(p) for p in parts if p)


def needs_created(policy: Policy) -> bool:
    """Whether any decision depends on image age (else the snapshot skips reading config blobs)."""
    untagged = policy.untagged
    counted = isinstance(untagged, int) and not isinstance(untagged, bool) and untagged > 0
    return counted or any(r.older_than is not None or (r.keep_last or 0) > 0 for r in policy.rules)


# --------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class RepoPlan:
    target: Target
    snapshot: Snapshot
    plan: Plan
    now: datetime
    seconds: float = 0.0     # snapshot + plan wall time


def plan_target(registry: Registry, target: Target, policy: Policy, now: datetime, *, workers: int = 8,
                progress: ProgressFn | None = None) -> RepoPlan:
    """Snapshot one repository and plan it. Reads only."""
    started = time.monotonic()
    snap = take(registry, target.repository, image=target.image, workers=workers,
                need_created=needs_created(policy), progress=progress)
    return RepoPlan(target, snap, make_plan(snap, policy, now), now, time.monotonic() - started)


# --------------------------------------------------------------------------- execute
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

    @property
    def ok(self) -> bool:
        return self.complete and not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"repository": self.repository, "complete": self.complete, "ok": self.ok,
                "done": [e.to_dict() for e in sorted(self.done, key=_event_key)],
                "skipped": [e.to_dict() for e in sorted(self.skipped, key=_event_key)],
                "failed": [e.to_dict() for e in sorted(self.failed, key=_event_key)],
                "validation_problems": sorted(self.problems), "journal": list(self.journal),
                "seconds": round(self.seconds, 3)}


def _event_key(e: Event) -> tuple[str, str]:
    return e.action, e.what


class _Skip(Exception):
    """An action that must not happen any more (the registry changed since the snapshot)."""


@dataclass
class _State:
    """Per-repository facts learnt while executing (shared by the worker threads)."""

    tag_delete: bool | None = None      # None: not probed yet
    empty_blob: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def execute(registry: Registry, repo_plan: RepoPlan, *, workers: int = 8, progress: ProgressFn | None = None,
            validate_after: bool = True) -> Outcome:
    """Carry out a plan (see the module docstring). Never raises for registry errors: they stop the run and
    are recorded in ``Outcome.failed`` (``complete`` is False); a re-run finishes the job."""
    started = time.monotonic()
    snap, plan = repo_plan.snapshot, repo_plan.plan
    repo = snap.repository
    out = Outcome(repo)
    reader = Reader(registry, repo, workers=workers, progress=progress)
    try:
        if not plan.is_empty:
            _execute(registry, reader, repo_plan, out, workers, progress)
    except RegistryError as exc:
        out.complete = False
        out.failed.append(Event("fail", repo, str(exc)))
    if validate_after and out.complete:
        try:
            out.problems = validate(registry, snap, [t for t in plan.keep_tags], workers=workers,
                                    progress=progress)
        except RegistryError as exc:
            out.problems = [f"validation could not finish: {exc}"]
    out.seconds = time.monotonic() - started
    return out


def _execute(registry: Registry, reader: Reader, rp: RepoPlan, out: Outcome, workers: int,
             progress: ProgressFn | None) -> None:
    snap, plan = rp.snapshot, rp.plan
    repo = snap.repository
    state = _State()

    # 1. what changed since the snapshot: every tag, so that the new graph of a re-pushed tag is protected even
    #    where it reuses what another removal deletes (removed tags are re-checked again just before acting)
    current = reader.head_tags(reader.list_tags())
    changed = {t: d for t, d in current.items() if d is not None and snap.tags.get(t) != d}
    live: dict[str, str] = {}           # digest -> the changed tag that uses it
    if changed:
        reader.walk(set(changed.values()))
        fresh = build_snapshot(reader, repo, changed, {}, need_created=False)
        merged = {**fresh.manifests, **snap.manifests}
        for tag, digest in sorted(changed.items()):
            for d in _reach([digest], merged):
                live.setdefault(d, tag)
    skipped_tags: set[str] = set()
    for action in plan.remove_tags:
        now_at = current.get(action.tag)
        if now_at is not None and now_at != action.digest:   # (a dangling tag that resolves again: re-pushed)
            skipped_tags.add(action.tag)
            out.skipped.append(Event("skip", action.tag, f"re-pushed since the snapshot (now {now_at}); kept"))
    blocked: dict[str, str] = {d: f"used by tag {t}, changed since the snapshot" for d, t in live.items()}
    for action in plan.remove_tags:
        if action.tag in skipped_tags and action.method == DELETE_DIGEST:
            blocked.setdefault(action.digest, f"its tag {action.tag} was re-pushed since the snapshot")

    # 2. journal of what is about to be deleted
    planned = [a.digest for a in plan.delete_digests]
    to_journal = [d for d in planned if d not in blocked]
    journal = _write_journal(registry, snap, to_journal, rp.now, reader) if to_journal else []
    out.journal = [tag for tag, _ in journal]
    out.done.extend(Event("journal", tag, f"wrote {digest}") for tag, digest in journal)

    # 3. tags whose digest stays. Registry 2.8 answers a manifest DELETE by reading every tag's link, and a link
    #    being written by a concurrent PUT makes that DELETE fail half-way (manifest gone, its tags left dangling),
    #    so no tag is written while a DELETE runs: probe once, PUT every placeholder, then DELETE them.
    retags = [a for a in plan.remove_tags if a.method != DELETE_DIGEST and a.tag not in skipped_tags]
    if retags and _probe_tag_delete(registry, repo, state):
        def tag_delete(action: TagAction) -> Event:
            _recheck(reader, action)
            registry.request("DELETE", f"/v2/{repo}/manifests/{action.tag}", scope=f"repository:{repo}:delete",
                             ok=(202, 404))
            return Event("untag", action.tag, "tag DELETE")
        run = parallel(tag_delete, retags, workers=workers, progress=_phase(progress, "removing tags"))
        _collect(run, retags, lambda a: a.tag, out)
    elif retags:
        _ensure_empty_blob(registry, repo, state)

        def put(action: TagAction) -> str:
            _recheck(reader, action)
            return registry.put_manifest(repo, action.tag, placeholder(action.tag, repo, action.digest), OCI_MANIFEST)

        run = parallel(put, retags, workers=workers, progress=_phase(progress, "re-pointing tags"))
        placed = [(a, run.results[i]) for i, a in enumerate(retags) if run.results[i] is not None]
        _collect(Parallel([None] * len(retags), run.errors, run.not_started), retags, lambda a: a.tag, out)
        # placeholders that were put are deleted even when some PUT failed: no tag is left on a placeholder
        gone = parallel(lambda item: registry.delete_manifest(repo, item[1]), placed, workers=workers,
                        progress=_phase(progress, "removing tags"), stop_on_error=False)
        for i, (action, digest) in enumerate(placed):
            if i not in gone.errors:
                out.done.append(Event("untag", action.tag, f"retag-then-delete (placeholder {digest})"))
        _collect(Parallel([None] * len(placed), gone.errors, gone.not_started), [a for a, _ in placed],
                 lambda a: a.tag, out)
        run.errors.update({len(retags) + i: e for i, e in gone.errors.items()})
    else:
        run = Parallel([], {}, set())
    if any(not isinstance(e, _Skip) for e in run.errors.values()):
        out.complete = False
        return

    # 4. digests, parents first, level by level
    by_digest: dict[str, list[TagAction]] = {}
    for action in plan.remove_tags:
        if action.method == DELETE_DIGEST and action.tag not in skipped_tags:
            by_digest.setdefault(action.digest, []).append(action)
    parents = _parents(snap.manifests)
    planned_set = set(planned)
    survivors = (set(snap.manifests) - planned_set) | set(blocked)
    levels = _levels(planned, parents)
    total = len(planned)
    finished = 0

    def delete(digest: str) -> Event:
        if digest not in snap.manifests or snap.manifests[digest].media_type not in MANIFEST_MEDIA_TYPES:
            raise _Skip("did not resolve as a manifest in the snapshot; never deleted")   # defensive
        for action in by_digest.get(digest, ()):
            now_at = reader.head(action.tag)
            if now_at is not None and now_at != digest:
                raise _Skip(f"tag {action.tag} was re-pushed since the snapshot (now {now_at}); kept")
        gone = registry.delete_manifest(repo, digest)
        return Event("delete", digest, "deleted" if gone else "already gone")

    for level in levels:
        todo: list[str] = []
        for digest in level:
            why = blocked.get(digest)
            holder = next((p for p in sorted(parents.get(digest, ())) if p in survivors), None)
            if why is None and holder is not None:
                why = f"still listed by {holder}, which stays"
            if why is not None:
                survivors.add(digest)
                out.skipped.append(Event("skip", digest, why))
            else:
                todo.append(digest)
        def tell(done: int, _total: int, base: int = finished) -> None:
            _tell(progress, "deleting", base + done, total)

        run = parallel(delete, todo, workers=workers, progress=tell)
        finished += len(level)
        for i, digest in enumerate(todo):
            err = run.errors.get(i)
            if isinstance(err, _Skip):
                survivors.add(digest)
                for action in by_digest.get(digest, ()):
                    skipped_tags.add(action.tag)
                    out.skipped.append(Event("skip", action.tag, str(err)))
            elif err is not None or i in run.not_started:
                survivors.add(digest)
        _collect(run, todo, lambda d: d, out)
        if any(not isinstance(e, _Skip) for e in run.errors.values()):
            out.complete = False
            return
    _tell(progress, "deleting", total, total)

    # 5. a removed tag the registry still lists but that resolves to nothing (a DELETE that failed half-way, e.g.
    #    racing a push) is removed the placeholder way, one at a time
    gone_tags = {a.tag for a in plan.remove_tags if a.tag not in skipped_tags}
    leftover = sorted(gone_tags & set(reader.list_tags()))
    for tag, at in zip(leftover, reader.map("checking removed tags", reader.head, leftover)):
        if at is None:
            _ensure_empty_blob(registry, repo, state)
            digest = registry.put_manifest(repo, tag, placeholder(tag, repo), OCI_MANIFEST)
            registry.delete_manifest(repo, digest)
            out.done.append(Event("untag", tag, "repaired: the registry left it dangling"))
        elif at not in {a.digest for a in plan.remove_tags if a.tag == tag}:
            out.skipped.append(Event("skip", tag, f"re-pushed during the run (now {at}); kept"))

    # 6. the journal goes last
    for tag, digest in journal:
        registry.delete_manifest(repo, digest)


def _recheck(reader: Reader, action: TagAction) -> None:
    """Just before acting on a removed tag: it must still point where the plan saw it (a dangling tag, planned
    with an empty digest, must still resolve to nothing)."""
    now_at = reader.head(action.tag)
    if now_at != (action.digest or None) and not (now_at is None and action.digest):
        raise _Skip(f"re-pushed since the snapshot (now {now_at}); kept")


def _collect(run: Any, items: Sequence[Any], name: Callable[[Any], str], out: Outcome) -> None:
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


def _phase(progress: ProgressFn | None, phase: str) -> Callable[[int, int], None] | None:
    return None if progress is None else (lambda d, t: progress(phase, d, t))


def _tell(progress: ProgressFn | None, phase: str, done: int, total: int) -> None:
    if progress is not None:
        progress(phase, done, total)


def _parents(manifests: Mapping[str, Manifest]) -> dict[str, set[str]]:
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


def _reach(roots: Iterable[str], manifests: Mapping[str, Manifest]) -> set[str]:
    """Everything a digest keeps alive: index children and referrers, transitively (the planner's graph)."""
    return set(Graph(manifests).reach((root, "") for root in roots))


def _write_journal(registry: Registry, snap: Snapshot, digests: Sequence[str], now: datetime,
                   reader: Reader) -> list[tuple[str, str]]:
    """Push the journal index(es); a digest that vanished meanwhile is dropped and the push retried once."""
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    nonce = secrets.token_hex(3)
    written: list[tuple[str, str]] = []
    chunks = [list(digests[i:i + JOURNAL_CHUNK]) for i in range(0, len(digests), JOURNAL_CHUNK)]
    for n, chunk in enumerate(chunks, 1):
        tag = f"{JOURNAL_TAG}{stamp}-{nonce}-{n}"
        for attempt in (1, 2):
            raw = journal_index(snap, chunk, now)
            try:
                written.append((tag, registry.put_manifest(snap.repository, tag, raw, OCI_INDEX)))
                break
            except RegistryError:
                if attempt == 2:
                    raise
                heads = reader.map("checking journal", lambda d: registry.head_manifest(snap.repository, d), chunk)
                chunk = [d for d, h in zip(chunk, heads) if h is not None]
                if not chunk:
                    break
    return written


def journal_index(snap: Snapshot, digests: Sequence[str], now: datetime) -> bytes:
    """The journal: an OCI index listing the manifests a run is about to delete (deterministic bytes)."""
    manifests = [{"mediaType": snap.manifests[d].media_type, "digest": d, "size": snap.manifests[d].size}
                 for d in digests]
    return make_index(manifests, {LEFTOVER: "journal",
                                  CREATED: now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")})


def placeholder(tag: str, repository: str = "", previous: str | None = None) -> bytes:
    """The manifest to re-point ``tag`` at (:func:`bakery.manifest.drafts.untag_manifest`), unique to this call."""
    return untag_manifest(repository, tag, previous, nonce=secrets.token_hex(8))


def _ensure_empty_blob(registry: Registry, repo: str, state: _State) -> None:
    with state.lock:
        if not state.empty_blob:
            ensure_empty_config(registry, repo)
            state.empty_blob = True


def _probe_tag_delete(registry: Registry, repo: str, state: _State) -> bool:
    """Whether ``DELETE /manifests/<tag>`` removes only that tag here. Probed on two throw-away tags that share
    one placeholder: some registries answer a tag DELETE by deleting the manifest (and so every tag on it)."""
    with state.lock:
        if state.tag_delete is not None:
            return state.tag_delete
    _ensure_empty_blob(registry, repo, state)
    nonce = secrets.token_hex(4)
    first, second = f"bakery-clean-probe-{nonce}-a", f"bakery-clean-probe-{nonce}-b"
    raw = placeholder(f"bakery-clean-probe-{nonce}", repo)
    digest = registry.put_manifest(repo, first, raw, OCI_MANIFEST)
    registry.put_manifest(repo, second, raw, OCI_MANIFEST)
    try:
        resp = registry.request("DELETE", f"/v2/{repo}/manifests/{first}", scope=f"repository:{repo}:delete",
                                ok=(202, 400, 404, 405))
        works = (resp.status_code == 202 and registry.head_manifest(repo, first) is None
                 and registry.head_manifest(repo, second) == digest)
    finally:
        registry.delete_manifest(repo, digest)
    with state.lock:
        state.tag_delete = works
    return works


# --------------------------------------------------------------------------- validate
def validate(registry: Registry, snap: Snapshot, keep_tags: Sequence[str], *, workers: int = 8,
             progress: ProgressFn | None = None) -> list[str]:
    """Problems (empty = fine): every kept tag must resolve, and every manifest it reaches (index children,
    attestations, referrers) must resolve. Tags that point elsewhere than in the snapshot are walked afresh."""
    repo = snap.repository
    reader = Reader(registry, repo, workers=workers, progress=progress)
    heads = reader.map("validating tags", lambda t: registry.head_manifest(repo, t), list(keep_tags))
    problems = [f"kept tag {t} no longer resolves" for t, d in zip(keep_tags, heads) if d is None]
    same = {t: d for t, d in zip(keep_tags, heads) if d is not None and d == snap.tags.get(t)}
    moved = {t: d for t, d in zip(keep_tags, heads) if d is not None and d != snap.tags.get(t)}

    why: dict[str, str] = {}
    for tag in sorted(same):
        for digest in sorted(_reach([same[tag]], snap.manifests)):
            if digest != same[tag]:
                why.setdefault(digest, f"reached from kept tag {tag}")
    known = sorted(d for d in why if d in snap.manifests)
    found = reader.map("validating manifests", lambda d: registry.head_manifest(repo, d), known)
    problems += [f"{d} ({why[d]}) no longer resolves" for d, h in zip(known, found) if h is None]
    if moved:
        reader.walk(set(moved.values()))
        problems += [f"{d} (reached from a kept tag re-pushed since the snapshot) does not resolve"
                     for d in sorted(reader.missing)]
    return sorted(set(problems))


# --------------------------------------------------------------------------- local cleanup
@dataclass(frozen=True)
class LocalStep:
    what: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()     # e.g. DOCKER_CONTEXT for a docker-driver builder on another engine

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"what": self.what, "argv": list(self.argv)}
        if self.env:
            out["env"] = dict(self.env)
        return out


def check_size(value: str) -> str:
    if not _SIZE.match(value.strip()):
        raise BakeryError(f"--keep-storage {value!r}: not a size; use e.g. 10gb, 512mb or a number of bytes")
    return value.strip()


def check_filter(value: str, flag: str) -> str:
    key, sep, val = value.partition("=")
    if not sep or not key.strip() or not val.strip():
        raise BakeryError(f"{flag} {value!r}: expected KEY=VALUE, e.g. until=168h")
    return value


def local_steps(docker: Docker, config: Config, *, keep_storage: str | None = None, filters: Sequence[str] = (),
                builder_prefix: str = "bakery", image_filters: Sequence[str] = ()) -> list[LocalStep]:
    """What local cleanup will run (reads ``docker buildx ls``; changes nothing): prune every builder the
    config's groups use, remove builders named ``builder_prefix...`` that bakery.yaml does not define (docker
    driver builders are docker contexts, never removed), prune dangling images."""
    if keep_storage is not None:
        keep_storage = check_size(keep_storage)
    filters = [check_filter(f, "--filter") for f in filters]
    image_filters = [check_filter(f, "--image-filter") for f in image_filters]
    existing = list_builders(docker)
    steps: list[LocalStep] = []
    for builder in config.builders_for():
        if builder.driver != "docker" and builder.name not in existing:
            continue   # never created (or already removed): nothing to prune
        adapter = docker_for(docker, builder)
        argv = [*adapter.cmd("buildx", "prune", "--force")]
        if adapter.builder:
            argv += ["--builder", adapter.builder]
        if keep_storage:
            argv += ["--keep-storage", keep_storage]
        for f in filters:
            argv += ["--filter", f]
        env = tuple(sorted((k, v) for k, v in (adapter.env or {}).items() if k == "DOCKER_CONTEXT"))
        steps.append(LocalStep(f"prune the build cache of builder {builder.name}", tuple(argv), env))
    if builder_prefix:
        for name, driver in sorted(existing.items()):
            if name.startswith(builder_prefix) and name not in config.builders and driver != "docker":
                steps.append(LocalStep(f"remove stale builder {name} (driver {driver}, not in {config.source})",
                                       tuple(docker.cmd("buildx", "rm", name))))
    argv = [*docker.cmd("image", "prune", "--force")]
    for f in image_filters:
        argv += ["--filter", f]
    steps.append(LocalStep("remove dangling images", tuple(argv)))
    return steps


def list_builders(docker: Docker) -> dict[str, str]:
    """{builder name: driver} from ``docker buildx ls --format json`` (one JSON document per line)."""
    res = docker.runner.run(docker.cmd("buildx", "ls", "--format", "json"), env=docker.env)
    out: dict[str, str] = {}
    for line in res.stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict) and data.get("Name"):
            out[str(data["Name"])] = str(data.get("Driver", ""))
    return out


def run_local(docker: Docker, steps: Sequence[LocalStep]) -> list[dict[str, Any]]:
    """Run the steps (``Runner`` echoes and skips them under ``dry_run``); returns what each printed last."""
    done = []
    for step in steps:
        res = docker.runner.run(list(step.argv), env={**(docker.env or {}), **dict(step.env)}, action=True)
        lines = [ln.strip() for ln in (res.stdout + "\n" + res.stderr).splitlines() if ln.strip()]
        done.append({**step.to_dict(), "summary": lines[-1] if lines else ""})
    return done
