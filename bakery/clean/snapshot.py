"""Registry graph snapshot: what one repository holds, read through :class:`bakery.oci.registry.Registry`.

This is clean's only door to the registry for reads: the snapshot, the executor's re-checks and the validation
all read through a :class:`Reader` (bounded concurrency, progress, every manifest fetched once).

The snapshot is the input of the pure planner (:func:`bakery.clean.retention.plan`), a graph of
:class:`~bakery.clean.model.Node`: tags -> digests, index -> children
(manifest descriptors only: a BuildKit cache index lists layer blobs, which are not walked), attestation entries
(``vnd.docker.reference.type: attestation-manifest``; marked ``is_attestation``, platform ``unknown/unknown``)
as children of their index -- they live and die with the index that lists them, not with the image named by
``vnd.docker.reference.digest``, else deleting one of two indexes sharing an image would leave its attestation
behind where registry 2.8 can never list it -- referrer -> subject (a manifest's ``subject`` field, and the
``sha256-<hex>[.sig|.att|...]`` tag scheme: such a tag's manifest gets the digest its name spells as subject),
the age of every image (``created``, see :func:`created_of`), and the blobs each image
manifest uses (for the bytes-freed estimate).

Requests run on a bounded thread pool (``workers``); every manifest digest is fetched once (content-addressed),
and each config blob once. A ``progress(phase, done, total)`` callback is told how far each phase is. Registry
2.8 cannot list untagged manifests, so the snapshot holds what tags (and indexes, subjects and interrupted-run
journals) lead to; the referrers API is not queried (2.8 has none).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from bakery.clean.model import PLACEHOLDER_BEFORE, REFERRER_TAG, Node, Snapshot
from bakery.errors import RegistryError
from bakery.oci.index import ATTESTATION, platform_string
from bakery.oci.registry import ALL_MANIFEST_TYPES, Manifest, Registry
from bakery.oci.untag import LEFTOVER

__all__ = [
    "ATTESTATION",
    "CREATED",
    "JOURNAL_TAGS",
    "LEFTOVER",
    "Parallel",
    "ProgressFn",
    "Reader",
    "build_snapshot",
    "child_descriptors",
    "created_of",
    "is_index",
    "nodes_of",
    "parallel",
    "parse_time",
    "take",
]

ProgressFn = Callable[[str, int, int], None]
CREATED = "org.opencontainers.image.created"
# what bakery marks with LEFTOVER (bakery.oci.untag): "untag" placeholders and journals
LEFTOVER_KINDS = {"untag": "untag placeholder", "journal": "journal"}
JOURNAL_TAGS = "dev.bakery.clean.tags"     # on a journal: {tag: digest} its run was removing (JSON)
T = TypeVar("T")
R = TypeVar("R")


def is_index(manifest: Manifest) -> bool:
    """An index by its media type, or (served without one) by its ``manifests`` list."""
    return manifest.is_index or (not manifest.media_type and "manifests" in manifest.body)


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (nanoseconds allowed) as an aware datetime, or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def created_of(annotations: Mapping[str, Any], config: Mapping[str, Any] | None) -> datetime | None:
    """The build time of an image: the ``org.opencontainers.image.created`` annotation, else the label of that
    name in the config, else the config's ``created``. The first one that is not a placeholder (before
    1980-01-02, as reproducible builds write) wins; if all are placeholders, the first one, so the planner
    can warn about it."""
    labels: Mapping[str, Any] = {}
    if config:
        inner = config.get("config")
        if isinstance(inner, dict) and isinstance(inner.get("Labels"), dict):
            labels = inner["Labels"]
    candidates = [parse_time(annotations.get(CREATED)), parse_time(labels.get(CREATED)),
                  parse_time(config.get("created") if config else None)]
    found = [c for c in candidates if c is not None]
    real = [c for c in found if c >= PLACEHOLDER_BEFORE]
    return (real or found)[0] if found else None


@dataclass
class Parallel:
    """What :func:`parallel` did: ``results[i]`` for every item that finished, ``errors`` by index, and the
    indexes of the items that never started because an earlier one failed."""

    results: list[Any]
    errors: dict[int, BaseException]
    not_started: set[int]


def parallel(fn: Callable[[T], R], items: Sequence[T], *, workers: int,
             progress: Callable[[int, int], None] | None = None, stop_on_error: bool = True) -> Parallel:
    """Run ``fn`` over ``items`` on at most ``workers`` threads. With ``stop_on_error`` the first error cancels
    every item that has not started (running ones finish). Ctrl-C cancels what has not started, waits for what
    runs, and is re-raised."""
    total = len(items)
    out = Parallel([None] * total, {}, set())
    if progress is not None:
        progress(0, total)
    if total == 0:
        return out
    pool = ThreadPoolExecutor(max_workers=max(1, min(workers, total)), thread_name_prefix="bakery")
    futures: dict[Future[R], int] = {}
    try:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        done = 0
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for fut in finished:
                index = futures[fut]
                if fut.cancelled():
                    out.not_started.add(index)
                    continue
                exc = fut.exception()
                if exc is not None:
                    out.errors[index] = exc
                    if stop_on_error:
                        for other in pending:
                            if other.cancel():
                                out.not_started.add(futures[other])
                else:
                    out.results[index] = fut.result()
                done += 1
            if finished and progress is not None:
                progress(done, total)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return out


class Reader:
    """Concurrent, cached reads of one repository. Thread-safe; ``fetched`` and ``missing`` grow as it reads."""

    def __init__(self, registry: Registry, repository: str, *, workers: int = 8,
                 progress: ProgressFn | None = None) -> None:
        self.registry = registry
        self.repository = repository
        self.workers = max(1, workers)
        self.progress = progress
        self.fetched: dict[str, Manifest] = {}
        self.missing: set[str] = set()       # digests something referenced that answered 404
        self.configs: dict[str, dict[str, Any] | None] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ concurrency
    def map(self, phase: str, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``[fn(x) for x in items]`` on the pool; the first error cancels what has not started and is raised."""
        run = parallel(fn, items, workers=self.workers, progress=lambda d, t: self._tell(phase, d, t))
        if run.errors:
            raise run.errors[min(run.errors)]
        return list(run.results)

    def _tell(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(phase, done, total)

    # ------------------------------------------------------------------ reads
    def get(self, ref: str) -> Manifest | None:
        """GET a manifest by tag or digest (:meth:`Registry.find_manifest`); None when it does not exist."""
        found = self.registry.find_manifest(self.repository, ref)
        if found is not None:
            with self._lock:
                self.fetched.setdefault(found.digest, found)
        return found

    def head(self, ref: str) -> str | None:
        return self.registry.head_manifest(self.repository, ref)

    def list_tags(self) -> list[str]:
        self._tell("listing tags", 0, 1)
        tags = self.registry.tags(self.repository)
        self._tell("listing tags", 1, 1)
        return tags

    def resolve_tags(self, tags: Sequence[str]) -> dict[str, str]:
        """GET every tag (content and digest in one request); tags that vanished meanwhile are left out."""
        found = self.map("reading tags", self.get, list(tags))
        return {tag: f.digest for tag, f in zip(tags, found) if f is not None}

    def head_tags(self, tags: Sequence[str]) -> dict[str, str | None]:
        return dict(zip(tags, self.map("checking tags", self.head, list(tags))))

    def walk(self, roots: Iterable[str], extra: Mapping[str, str] | None = None) -> None:
        """Fetch every manifest reachable from ``roots`` (digests already fetched or not): index children,
        and the digests in ``extra`` ({digest that refers: digest it refers to}, e.g. referrer-tag subjects)."""
        extra = dict(extra or {})
        seen: set[str] = set()
        frontier = sorted(set(roots))
        total = 0
        done = 0
        while frontier:
            todo = [d for d in frontier if d not in self.fetched and d not in self.missing]
            total += len(todo)
            if todo:
                got = self.map("reading manifests", self.get, todo)
                for digest, f in zip(todo, got):
                    if f is None:
                        with self._lock:
                            self.missing.add(digest)
                done += len(todo)
                self._tell("reading manifests", done, total)
            seen.update(frontier)
            nxt: set[str] = set()
            for digest in frontier:
                f = self.fetched.get(digest)
                if f is None:
                    continue
                nxt.update(d["digest"] for d in child_descriptors(f))
                subject = subject_of(f)
                if subject:
                    nxt.add(subject)
                if digest in extra:
                    nxt.add(extra[digest])
            frontier = sorted(nxt - seen)

    def read_configs(self, digests: Iterable[str]) -> None:
        """Fetch the config blob of each image manifest in ``digests`` (each config digest once)."""
        wanted: dict[str, str] = {}
        for digest in digests:
            f = self.fetched.get(digest)
            config = f.body.get("config") if f is not None else None
            if isinstance(config, dict) and isinstance(config.get("digest"), str):
                if config["digest"] not in self.configs:
                    wanted.setdefault(config["digest"], digest)
        todo = sorted(wanted)

        def one(config_digest: str) -> dict[str, Any] | None:
            try:
                data = json.loads(self.registry.get_blob(self.repository, config_digest))
            except ValueError:
                return None
            except RegistryError as exc:
                if exc.status == 404:   # a config that is gone: the image has no known age
                    return None
                raise
            return data if isinstance(data, dict) else None

        for config_digest, data in zip(todo, self.map("reading configs", one, todo)):
            self.configs[config_digest] = data

    def config_of(self, digest: str) -> dict[str, Any] | None:
        f = self.fetched.get(digest)
        config = f.body.get("config") if f is not None else None
        if isinstance(config, dict):
            return self.configs.get(str(config.get("digest")))
        return None


def child_descriptors(fetched: Manifest) -> list[dict[str, Any]]:
    """The descriptors of an index that are manifests (layers in a BuildKit cache index are not)."""
    if not is_index(fetched):
        return []
    out = []
    for d in fetched.body.get("manifests") or []:
        if isinstance(d, dict) and isinstance(d.get("digest"), str) and d.get("mediaType") in ALL_MANIFEST_TYPES:
            out.append(d)
    return out


def subject_of(fetched: Manifest) -> str | None:
    subject = fetched.body.get("subject")
    if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
        return str(subject["digest"])
    return None


def _platform(descriptor: Mapping[str, Any]) -> str | None:
    p = descriptor.get("platform")
    return platform_string(p) if isinstance(p, dict) and p.get("os") else None


def take(registry: Registry, repository: str, *, image: str = "", workers: int = 8, need_created: bool = True,
         progress: ProgressFn | None = None, reader: Reader | None = None) -> Snapshot:
    """Read one repository into a :class:`~bakery.clean.model.Snapshot`.

    ``need_created=False`` skips the config blobs (no image age) when the policy does not look at ages.
    """
    reader = reader or Reader(registry, repository, workers=workers, progress=progress)
    listed = reader.list_tags()
    tags = reader.resolve_tags(listed)

    # referrers-scheme tags name their subject: walk it too (it may be untagged)
    named: dict[str, str] = {}
    for tag, digest in tags.items():
        found = REFERRER_TAG.fullmatch(tag)
        if found is not None:
            named.setdefault(digest, f"sha256:{found.group(1)}")
    reader.walk(set(tags.values()), named)
    snap = build_snapshot(reader, repository, tags, named, image=image, need_created=need_created)
    dangling = tuple(sorted(set(listed) - set(tags)))
    return replace(snap, dangling=dangling) if dangling else snap


def build_snapshot(reader: Reader, repository: str, tags: Mapping[str, str], named: Mapping[str, str], *,
                   image: str = "", need_created: bool = True) -> Snapshot:
    """Turn what ``reader`` fetched into planner records (pure apart from the config reads)."""
    fetched = reader.fetched
    platform, attests, listed = _told_by_parents(fetched)
    created: dict[str, datetime | None] = {}
    if need_created:
        reader.read_configs(sorted(_needing_config(fetched, tags, listed, attests)))
        created = _ages(fetched, reader, attests)
    nodes = {digest: _node(f, named.get(digest), created.get(digest), digest in attests, platform.get(digest))
             for digest, f in fetched.items()}
    return Snapshot(repository, dict(sorted(tags.items())), dict(sorted(nodes.items())), image=image)


def _told_by_parents(fetched: Mapping[str, Manifest]) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """What indexes say about their children: ({child: platform}, {attestation: the image it describes},
    every listed child)."""
    platform: dict[str, str] = {}
    attests: dict[str, str] = {}
    listed: set[str] = set()
    for digest in sorted(fetched):
        for d in child_descriptors(fetched[digest]):
            child = d["digest"]
            listed.add(child)
            raw_notes = d.get("annotations")
            notes: dict[str, Any] = raw_notes if isinstance(raw_notes, dict) else {}
            if notes.get("vnd.docker.reference.type") == ATTESTATION:
                ref = notes.get("vnd.docker.reference.digest")
                if isinstance(ref, str):
                    attests.setdefault(child, ref)
                platform.setdefault(child, "unknown/unknown")
            elif (p := _platform(d)) is not None:
                platform.setdefault(child, p)
    return platform, attests, listed


def _needing_config(fetched: Mapping[str, Manifest], tags: Mapping[str, str], listed: set[str],
                    attests: Mapping[str, str]) -> set[str]:
    """The image manifests whose age only their config blob tells (no ``created`` annotation on the way)."""
    needed: set[str] = set()
    stack = sorted(set(tags.values()) | {d for d in fetched if d not in listed})
    visited: set[str] = set()
    while stack:
        digest = stack.pop()
        if digest in visited or digest not in fetched:
            continue
        visited.add(digest)
        f = fetched[digest]
        if parse_time(f.annotations.get(CREATED)) is not None:
            continue
        if is_index(f):
            stack.extend(d["digest"] for d in child_descriptors(f) if d["digest"] not in attests)
        else:
            needed.add(digest)
    return needed


def nodes_of(fetched: Mapping[str, Manifest]) -> dict[str, Node]:
    """Graph records (edges only: no age, platform or referrer-tag subject) of manifests fetched after the
    snapshot, for the executor's re-checks."""
    return {digest: _node(f, None, None, False, None) for digest, f in fetched.items()}


def _journal_tags(f: Manifest, leftover: str | None) -> tuple[tuple[str, str], ...]:
    if leftover != "journal":
        return ()
    try:
        listed = json.loads(str(f.annotations.get(JOURNAL_TAGS) or "{}"))
    except ValueError:
        return ()
    if not isinstance(listed, dict):
        return ()
    return tuple(sorted((t, d) for t, d in listed.items() if isinstance(t, str) and isinstance(d, str)))


def _node(f: Manifest, named: str | None, created: datetime | None, attestation: bool, platform: str | None) -> Node:
    """The planner's record of one fetched manifest; ``named``: the subject its referrers-scheme tag names."""
    body = f.body
    blobs: tuple[tuple[str, int], ...] = ()
    if not is_index(f):
        descs = [body.get("config"), *(body.get("layers") or [])]
        blobs = tuple(
            (str(d["digest"]), int(d.get("size") or 0))
            for d in descs
            if isinstance(d, dict) and isinstance(d.get("digest"), str) and isinstance(d.get("size", 0), int)
        )
    subject = subject_of(f) or named
    leftover = LEFTOVER_KINDS.get(str(f.annotations.get(LEFTOVER, "")))
    return Node(
        digest=f.digest,
        media_type=f.media_type,
        size=len(f.raw),
        children=tuple(d["digest"] for d in child_descriptors(f)),
        subject=subject if subject != f.digest else None,
        created=created,
        is_attestation=attestation,
        platform=platform,
        layer_bytes=sum(size for _, size in blobs),
        blobs=blobs,
        leftover=leftover,
        journal_tags=_journal_tags(f, leftover),
    )


def _ages(fetched: Mapping[str, Manifest], reader: Reader, attests: Mapping[str, str]) -> dict[str, datetime | None]:
    """created for every manifest: its own (annotation / config), or for an index the newest of its images."""
    memo: dict[str, datetime | None] = {}

    def age(digest: str, depth: int = 0) -> datetime | None:
        if digest in memo:
            return memo[digest]
        f = fetched.get(digest)
        if f is None or depth > 8:
            return None
        memo[digest] = None   # cycle guard
        own = parse_time(f.annotations.get(CREATED))
        if own is None and is_index(f):
            ages = [age(d["digest"], depth + 1) for d in child_descriptors(f) if d["digest"] not in attests]
            known = [a for a in ages if a is not None]
            real = [a for a in known if a >= PLACEHOLDER_BEFORE]
            own = max(real) if real else (max(known) if known else None)
        elif own is None:
            own = created_of(f.annotations, reader.config_of(digest))
        memo[digest] = own
        return own

    return {digest: age(digest) for digest in sorted(fetched)}
