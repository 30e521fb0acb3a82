"""What a Dockerfile names outside its build context, read without building: every image it starts from or copies
from (``FROM`` of every stage, ``COPY --from``, ``RUN --mount=from=``) per target platform, its ``# syntax``
frontend, and the inputs bakery cannot see (``ADD <url>`` without ``--checksum``, ``ADD <git repo>``, a custom
frontend, a ``FROM`` that depends on the build platform or on an expansion bakery does not evaluate).

Pure: text and build args in, data out. The parser follows BuildKit's: parser directives at the top, the escape
character for line continuations, comments and empty lines inside a continuation dropped, heredoc bodies
(``<<EOF``) skipped, instruction keywords case-insensitive.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from bakery.capabilities import csv_entry
from bakery.oci.platforms import PlatformError, parse_platform

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_LEFTOVER = re.compile(r"\$[{A-Za-z_]")
_BUILD_ARGS = ("BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")
# the frontends that are BuildKit's Dockerfile frontend (only its version varies): their image is resolved as a base
_DOCKERFILE_FRONTENDS = ("docker/dockerfile", "docker.io/docker/dockerfile", "docker.io/docker/dockerfile-upstream",
                         "docker/dockerfile-upstream")


@dataclass(frozen=True)
class Instruction:
    keyword: str                      # upper case
    flags: Mapping[str, tuple[str, ...]]   # --name=value (repeatable)
    args: str                         # the rest, heredoc markers included


@dataclass(frozen=True)
class Dockerfile:
    directives: Mapping[str, str]
    global_args: tuple[tuple[str, str | None], ...]   # ARG before the first FROM: (name, default)
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True)
class Externals:
    """What a Dockerfile takes from outside its context for a set of platforms."""
    images: tuple[str, ...] = ()       # refs to resolve (bases, COPY --from images, the syntax frontend)
    named: tuple[str, ...] = ()        # names a named context may provide (FROM/--from names not a stage)
    unseen: tuple[str, ...] = ()       # why bakery cannot know the inputs (never skipped)


def logical_lines(text: str) -> tuple[dict[str, str], list[str]]:
    """(parser directives, instruction lines with continuations joined and heredoc bodies left out)."""
    lines = text.replace("\r\n", "\n").split("\n")
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE.match(lines[i])
        if not m or m.group(1).lower() in directives:
            break
        directives[m.group(1).lower()] = m.group(2)
        i += 1
    escape = directives.get("escape", "\\")[:1] or "\\"
    out: list[str] = []
    current: list[str] = []
    while i < len(lines):
        raw = lines[i]
        i += 1
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and (not stripped or stripped.startswith("#")):
            continue       # comments and empty lines inside a continuation are dropped
        body = raw.rstrip()
        if body.endswith(escape):
            current.append(body[:-1])
            continue
        current.append(body)
        line = " ".join(part.strip() for part in current).strip()
        current = []
        out.append(line)
        for m in _HEREDOC.finditer(line):
            strip_tabs, word = m.group(1) == "-", m.group(3)
            while i < len(lines):
                candidate = lines[i].lstrip("\t") if strip_tabs else lines[i]
                i += 1
                if candidate == word:
                    break
    if current:
        out.append(" ".join(part.strip() for part in current).strip())
    return directives, out


def _instruction(line: str) -> Instruction:
    keyword, _, rest = line.partition(" ")
    rest = rest.strip()
    flags: dict[str, list[str]] = {}
    while rest.startswith("--"):
        token, _, remainder = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags.setdefault(name.lower(), []).append(value)
        rest = remainder.strip()
    return Instruction(keyword.upper(), {k: tuple(v) for k, v in flags.items()}, rest)


def parse(text: str) -> Dockerfile:
    directives, lines = logical_lines(text)
    instructions = tuple(_instruction(line) for line in lines)
    global_args: list[tuple[str, str | None]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG":
            global_args.extend(_arg_pairs(ins.args))
    return Dockerfile(directives, tuple(global_args), instructions)


def _arg_pairs(args: str) -> list[tuple[str, str | None]]:
    try:
        words = shlex.split(args)
    except ValueError:
        words = args.split()
    out: list[tuple[str, str | None]] = []
    for word in words:
        name, sep, value = word.partition("=")
        out.append((name, value if sep else None))
    return out


class Unevaluated(ValueError):
    """An expansion bakery does not evaluate (``${X#...}``, ``${X/...}``): the target is never skipped."""


def expand(text: str, values: Mapping[str, str]) -> str:
    """Shell-style expansion as the Dockerfile frontend does it for ``FROM``: ``$X``, ``${X}``, ``${X:-d}``,
    ``${X-d}``, ``${X:+a}``, ``${X+a}``; an unset variable is empty."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(4)
        op, word = m.group(2), m.group(3) or ""
        value = values.get(name)
        if op is None:
            return value or ""
        if op == ":-":
            return value if value else expand(word, values)
        if op == "-":
            return value if value is not None else expand(word, values)
        if op == ":+":
            return expand(word, values) if value else ""
        return expand(word, values) if value is not None else ""
    if _LEFTOVER.search(_VAR.sub("", text)):
        raise Unevaluated(f"cannot evaluate {text!r}")
    return _VAR.sub(sub, text)


def platform_args(platform: str) -> dict[str, str]:
    """The automatic TARGET* args of one target platform."""
    try:
        p = parse_platform(platform)
    except PlatformError:
        return {"TARGETPLATFORM": platform}
    return {"TARGETPLATFORM": str(p), "TARGETOS": p.os, "TARGETARCH": p.arch, "TARGETVARIANT": p.variant or ""}


def _mount_froms(ins: Instruction) -> Iterator[str]:
    for mount in ins.flags.get("mount", ()):
        value = csv_entry(mount).get("from")
        if value:
            yield value


def _add_sources(ins: Instruction) -> list[str]:
    args = ins.args
    if args.startswith("["):
        try:
            words = [str(w) for w in json.loads(args)]
        except ValueError:
            words = args.split()
    else:
        words = [w for w in args.split() if not w.startswith("<<")]
    return words[:-1]


def _is_remote(source: str) -> bool:
    s = source.lower()
    return s.startswith(("http://", "https://", "git@", "git://", "ssh://")) or ".git#" in s or s.endswith(".git")


def externals(df: Dockerfile, platforms: Sequence[str], args: Mapping[str, str]) -> Externals:
    """The images, named contexts and unseen inputs of a Dockerfile built for ``platforms`` with build ``args``."""
    images: dict[str, None] = {}
    named: dict[str, None] = {}
    unseen: list[str] = []
    syntax = args.get("BUILDKIT_SYNTAX") or df.directives.get("syntax")
    if syntax:
        if syntax.split("@")[0].rsplit(":", 1)[0] in _DOCKERFILE_FRONTENDS:
            images[syntax] = None
        else:
            unseen.append(f"custom frontend {syntax}")
    for platform in platforms:
        values = platform_args(platform)
        for name, default in df.global_args:     # only declared global ARGs are visible to FROM
            if name in args:
                values[name] = args[name]
            elif default is not None:
                values[name] = default
        stages: set[str] = set()
        count = 0
        for ins in df.instructions:
            if ins.keyword == "FROM":
                words = ins.args.split()
                if not words:
                    continue
                if any(b in words[0] for b in _BUILD_ARGS):
                    unseen.append(f"FROM {words[0]} depends on the build platform")
                    continue
                try:
                    ref = expand(words[0], values)
                except Unevaluated as exc:
                    unseen.append(str(exc))
                    continue
                _external(ref, stages, images, named)
                if len(words) >= 3 and words[1].lower() == "as":
                    stages.add(words[2].lower())
                stages.add(str(count))
                count += 1
            elif ins.keyword in ("COPY", "ADD", "RUN"):
                froms = list(ins.flags.get("from", ())) + list(_mount_froms(ins))
                for source in froms:
                    _external(source, stages, images, named)
                if ins.keyword == "ADD" and "checksum" not in ins.flags:
                    unseen.extend(f"ADD {s} (remote content)" for s in _add_sources(ins) if _is_remote(s))
    return Externals(tuple(images), tuple(named), tuple(dict.fromkeys(unseen)))


def _external(ref: str, stages: set[str], images: dict[str, None], named: dict[str, None]) -> None:
    if not ref or ref.lower() in stages or ref.isdigit():
        return
    named[ref] = None
    if ref.lower() != "scratch":
        images[ref] = None
