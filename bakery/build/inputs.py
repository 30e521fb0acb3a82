"""The input digest of a target (one image for one platform group), computed without building.

It covers everything BuildKit's result depends on that bakery can see: the generated target as bake evaluates it
(every attribute but ``tags`` and the cache settings: where a result is cached is not what it is), the run's bake
overlays, the build context as BuildKit receives it (``.dockerignore`` — or ``<Dockerfile>.dockerignore`` —
honoured; paths, file types, permission bits, symlink targets and file contents; not times or owners, which
BuildKit's cache ignores too), the Dockerfile, named contexts, the digest of every image the Dockerfile starts or
copies from (``FROM`` of every stage, per platform; one registry HEAD per distinct reference; a reference pinned
by digest needs none), the build args taken from the environment, and bakery's version. A target with inputs
bakery cannot see (``ADD <url>`` without ``--checksum``, a git or remote context, a custom frontend, a
``no-cache`` attribute) gets no digest and is always built. See docs/build.md.

Hashing is incremental: a stat cache under the bake dir (``.inputs-stat.json``, written atomically) keeps each
file's digest with its size, mtime, ctime and inode, so an unchanged context costs one ``stat`` per file.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.atomic import write_file
from bakery.build import dockerfile as dockerfile_mod
from bakery.errors import BakeryError
from bakery.oci.reference import parse_reference, split_domain
from bakery.oci.registry import Registry
from bakery.version import __version__

STAT_CACHE = ".inputs-stat.json"
SCHEMA = 1
RACY_NS = 2_000_000_000      # a file changed this recently may change again within the same mtime: not cached
NOT_HASHED = ("tags", "cache-from", "cache-to")
Resolver = Callable[[str], str | None]


# --------------------------------------------------------------------------- .dockerignore (moby/patternmatcher)
@dataclass(frozen=True)
class Pattern:
    text: str
    regex: re.Pattern[str]
    exclusion: bool            # a ``!pattern`` line: re-includes what it matches


def _regex(pattern: str) -> re.Pattern[str]:
    """patternmatcher's translation: ``**`` any number of directories, ``*`` and ``?`` within one, ``\\`` escapes."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*" and pattern[i:i + 1] == "*":
            i += 1
            if pattern[i:i + 1] == "/":
                i += 1
            out += ".*" if i >= len(pattern) else "(.*/)?"
        elif ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".+()|{}$^":
            out += "\\" + ch
        elif ch == "\\" and i < len(pattern):
            out += re.escape(pattern[i])
            i += 1
        elif ch == "\\":
            out += "\\\\"
        else:
            out += ch
    try:
        return re.compile(out + "$", re.DOTALL)
    except re.error:
        return re.compile(re.escape(pattern) + "$")


def read_ignore(text: str) -> list[Pattern]:
    """The patterns of a ``.dockerignore`` as BuildKit reads them (comments, blanks, ``!``, cleaning, leading ``/``)."""
    out = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.lstrip("\ufeff")
        if line.startswith("#"):
            continue
        line = line.strip()
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if not line:
            continue
        cleaned = posixpath.normpath(line.replace("\\", "/") if os.sep == "\\" else line)
        if len(cleaned) > 1 and cleaned.startswith("/"):
            cleaned = cleaned.lstrip("/") or "/"
        out.append(Pattern(("!" if invert else "") + cleaned, _regex(cleaned), invert))
    return out


def ignored(path: str, patterns: Sequence[Pattern]) -> bool:
    """Whether BuildKit leaves ``path`` (posix, relative to the context) out: the last matching pattern decides,
    and a pattern matching a parent directory matches everything in it (``MatchesOrParentMatches``)."""
    matched = False
    parents = path.split("/")[:-1]
    for p in patterns:
        if p.exclusion != matched:
            continue
        hit = bool(p.regex.match(path)) or any(p.regex.match("/".join(parents[:i + 1])) for i in range(len(parents)))
        if hit:
            matched = not p.exclusion
    return matched


# --------------------------------------------------------------------------- the stat cache
@dataclass
class StatCache:
    """path -> [size, mtime_ns, ctime_ns, inode, sha256 hex] of every file hashed before."""
    entries: dict[str, list[Any]] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    changed: bool = False

    @classmethod
    def load(cls, path: Path) -> StatCache:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        ok = isinstance(data, dict) and data.get("schema") == SCHEMA and isinstance(data.get("files"), dict)
        return cls(dict(data["files"])) if ok else cls()

    def file_digest(self, path: str, st: os.stat_result) -> str:
        sig = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        self.seen.add(path)
        hit = self.entries.get(path)
        if isinstance(hit, list) and len(hit) == 5 and hit[:4] == sig:
            return str(hit[4])
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        if time.time_ns() - st.st_mtime_ns > RACY_NS:
            self.entries[path] = [*sig, h.hexdigest()]
            self.changed = True
        elif path in self.entries:
            del self.entries[path]
            self.changed = True
        return h.hexdigest()

    def save(self, path: Path, roots: Sequence[str]) -> None:
        """Write it (atomically) when it changed; entries under a hashed root that were not seen are dropped."""
        stale = [p for p in self.entries if p not in self.seen and any(p.startswith(r + os.sep) for r in roots)]
        for p in stale:
            del self.entries[p]
        if self.changed or stale:
            write_file(path, json.dumps({"schema": SCHEMA, "files": self.entries}, separators=(",", ":")) + "\n")


# --------------------------------------------------------------------------- contexts
def tree_digest(root: Path, patterns: Sequence[Pattern], cache: StatCache) -> str:
    """The digest of a directory as BuildKit would receive it: one record per entry not ignored."""
    records: list[list[Any]] = []
    negations = any(p.exclusion for p in patterns)

    def walk(directory: str, prefix: str) -> None:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            rel = f"{prefix}{entry.name}"
            st = entry.stat(follow_symlinks=False)
            skip = ignored(rel, patterns)
            if stat.S_ISDIR(st.st_mode):
                if skip and not negations:
                    continue
                records.append([rel, "d", stat.S_IMODE(st.st_mode)])
                walk(entry.path, rel + "/")
            elif skip:
                continue
            elif stat.S_ISLNK(st.st_mode):
                records.append([rel, "l", os.readlink(entry.path)])
            elif stat.S_ISREG(st.st_mode):
                records.append([rel, "f", stat.S_IMODE(st.st_mode), cache.file_digest(entry.path, st)])
            else:
                records.append([rel, "o", stat.S_IFMT(st.st_mode)])

    walk(str(root), "")
    return json_digest(records)


def json_digest(value: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"),
                                                 ensure_ascii=False).encode()).hexdigest()


def is_remote(location: str) -> bool:
    """A context bakery cannot read: a URL (git, https, ...) or a git remote."""
    return "://" in location or location.startswith("git@") or location.endswith(".git") or ".git#" in location


def ignore_patterns(context: Path, dockerfile: Path) -> list[Pattern]:
    """``<Dockerfile>.dockerignore`` next to the Dockerfile wins over the context's ``.dockerignore``."""
    for candidate in (dockerfile.parent / f"{dockerfile.name}.dockerignore", context / ".dockerignore"):
        if candidate.is_file():
            return read_ignore(candidate.read_text(encoding="utf-8", errors="surrogateescape"))
    return []


# --------------------------------------------------------------------------- targets
@dataclass(frozen=True)
class TargetInputs:
    """One target's input digest, or why it has none (it is then always built)."""
    name: str
    digest: str | None
    reasons: tuple[str, ...] = ()
    parts: Mapping[str, Any] = field(default_factory=dict)   # what went in, for --dry-run and docs


@dataclass
class _Plan:
    name: str
    parts: dict[str, Any]
    reasons: list[str]
    images: list[str]
    linked: dict[str, str]      # named context -> target it builds


def _plan(root: Path, name: str, target: Mapping[str, Any], env: Mapping[str, str], cache: StatCache) -> _Plan:
    """Everything of one target but the registry lookups and linked targets."""
    kept = {k: v for k, v in target.items() if k not in NOT_HASHED}
    plan = _Plan(name, {"bakery": __version__, "schema": SCHEMA, "target": kept}, [], [], {})
    if target.get("no-cache") in (True, "true"):
        plan.reasons.append("no-cache is set")
    for key in ("no-cache-filter", "call"):
        if key in target:
            plan.reasons.append(f"{key} is set")
    location = str(target.get("context") or ".")
    if is_remote(location):
        plan.reasons.append(f"remote context {location}")
        return plan
    context = root / location
    dockerfile = context / str(target.get("dockerfile") or "Dockerfile")
    if "dockerfile-inline" in target:
        text = str(target["dockerfile-inline"])
    else:
        try:
            text = dockerfile.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError:
            plan.reasons.append(f"cannot read {dockerfile}")
            return plan
    plan.parts["dockerfile"] = json_digest(text)
    args = {k: (v if v is not None else env.get(k)) for k, v in (target.get("args") or {}).items()}
    plan.parts["env"] = {k: v for k, v in args.items() if (target.get("args") or {}).get(k) is None}
    facts = dockerfile_mod.externals(dockerfile_mod.parse(text), list(target.get("platforms") or []),
                                     {k: v for k, v in args.items() if v is not None})
    plan.reasons.extend(facts.unseen)
    named: dict[str, str] = {}
    for key, value in (target.get("contexts") or {}).items():
        named[str(key)] = _named(root, str(key), str(value), plan, cache)
    plan.parts["contexts"] = named
    plan.images = [ref for ref in facts.images if ref not in named] + plan.images
    try:
        plan.parts["context"] = tree_digest(context, ignore_patterns(context, dockerfile), cache)
    except OSError as exc:
        plan.reasons.append(f"cannot read context {location}: {exc.strerror or exc}")
    return plan


def _named(root: Path, key: str, value: str, plan: _Plan, cache: StatCache) -> str:
    """A named context's part of the digest ("" when it is resolved later or cannot be seen)."""
    if value.startswith("target:"):
        plan.linked[key] = value[len("target:"):]
        return ""
    if value.startswith("docker-image://"):
        plan.images.append(value[len("docker-image://"):])
        return value
    if is_remote(value):
        plan.reasons.append(f"remote named context {key}={value}")
        return ""
    try:
        return tree_digest(root / value, [], cache)
    except OSError as exc:
        plan.reasons.append(f"cannot read named context {key}={value}: {exc.strerror or exc}")
        return ""


def resolve_all(refs: Sequence[str], resolve: Resolver, workers: int = 8) -> dict[str, str | BaseException]:
    """ref -> digest (a ref pinned by digest needs no request), or the error: one lookup per distinct ref, at once."""
    todo = [r for r in dict.fromkeys(refs) if "@sha256:" not in r]
    out: dict[str, str | BaseException] = {r: "sha256:" + r.split("@sha256:", 1)[1] for r in refs if "@sha256:" in r}

    def one(ref: str) -> str | BaseException:
        try:
            digest = resolve(ref)
        except (BakeryError, ValueError) as exc:
            return exc
        return digest if digest else BakeryError("not found")

    if todo:
        with ThreadPoolExecutor(min(workers, len(todo)), thread_name_prefix="inputs") as pool:
            out.update(zip(todo, pool.map(one, todo)))
    return out


def compute(root: Path, targets: Mapping[str, Mapping[str, Any]], names: Sequence[str], resolve: Resolver,
            cache: StatCache, env: Mapping[str, str],
            extra: Mapping[str, Any] | None = None) -> dict[str, TargetInputs]:
    """The input digest of every target in ``names`` (``targets``: the evaluated bake targets by name; ``extra``:
    what every digest also covers, e.g. the run's overlays)."""
    plans: dict[str, _Plan] = {}
    queue = list(names)
    while queue:                  # linked targets (`target:` named contexts) are planned too
        name = queue.pop(0)
        if name in plans or name not in targets:
            continue
        plans[name] = _plan(root, name, targets[name], env, cache)
        plans[name].parts["extra"] = dict(extra or {})
        queue.extend(plans[name].linked.values())
    digests = resolve_all([r for p in plans.values() for r in p.images], resolve)
    done: dict[str, TargetInputs] = {}

    def finish(name: str, trail: tuple[str, ...] = ()) -> TargetInputs:
        if name in done:
            return done[name]
        plan = plans.get(name)
        if plan is None or name in trail:
            return TargetInputs(name, None, (f"linked target {name} cannot be followed",))
        reasons = list(plan.reasons)
        bases: dict[str, str] = {}
        for ref in plan.images:
            got = digests[ref]
            if isinstance(got, BaseException):
                reasons.append(f"cannot resolve {ref}: {got}")
            else:
                bases[ref] = got
        for key, other in plan.linked.items():
            linked = finish(other, (*trail, name))
            if linked.digest is None:
                reasons.append(f"named context {key} builds target {other}, which is always built")
            plan.parts["contexts"][key] = linked.digest or ""
        parts = {**plan.parts, "bases": bases}
        done[name] = TargetInputs(name, None if reasons else json_digest(parts), tuple(dict.fromkeys(reasons)), parts)
        return done[name]

    return {name: finish(name) for name in names}


def registry_resolver(retries: int = 1) -> Resolver:
    """ref -> its manifest digest by one HEAD (a multi-platform index's digest pins every platform's manifest);
    one client per registry host."""
    clients: dict[str, Registry] = {}
    lock = threading.Lock()

    def resolve(ref: str) -> str | None:
        parsed = parse_reference(ref)
        domain, path = split_domain(parsed.name)
        if not domain and "/" not in path:
            path = f"library/{path}"
        with lock:
            if domain not in clients:
                clients[domain] = Registry.for_host(domain or "docker.io")
                clients[domain].retries = retries
            client = clients[domain]
        return client.head_manifest(path, parsed.tag or "latest")

    return resolve
