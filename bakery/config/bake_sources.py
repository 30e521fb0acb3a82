"""The imported files as text, read for the jobs buildx cannot do for bakery: where each target is written
(``file:line`` for messages), which targets are only bases (inherited, never selected), and whether a plain
``docker buildx bake`` has a default to build.

buildx evaluates the files (:mod:`bakery.config.bake_import`); nothing here interprets values. python-hcl2 lags
HCL, so a file it cannot parse but buildx can still imports: targets and groups are then found by their block
headers, and no target counts as a base.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bakery.errors import ConfigError

_HEADER = re.compile(r'^[ \t]*(target|group)[ \t]+"?([A-Za-z0-9_.-]+)"?[ \t]*\{', re.MULTILINE)


@dataclass(frozen=True)
class BakeSource:
    """One imported file: its text and the block structure bakery needs from it."""
    path: Path                      # absolute
    shown: str                      # as messages name it (relative to the repo root)
    kind: str                       # "hcl", "json" or "compose"
    text: str
    lines: Mapping[str, int] = field(default_factory=dict)          # target name -> line of its block
    inherits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def kind_of(path: Path) -> str:
    if path.suffix == ".json":
        return "json"
    if path.suffix in (".yml", ".yaml"):
        return "compose"
    return "hcl"


def read_source(path: Path, shown: str) -> BakeSource:
    """Read one file (a one-line error when it is missing or not text); its structure as far as it parses."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(shown, "images_from", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(shown, "images_from", f"cannot read: {exc}") from None
    kind = kind_of(path)
    reader = {"hcl": _hcl_structure, "json": _json_structure, "compose": _compose_structure}[kind]
    lines, inherits, groups = reader(text)
    return BakeSource(path, shown, kind, text, lines, inherits, groups)


Structure = tuple[dict[str, int], dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]


def _headers(text: str) -> Structure:
    lines: dict[str, int] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for m in _HEADER.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group(1) == "target":
            lines.setdefault(m.group(2), line)
        else:
            groups.setdefault(m.group(2), ())
    return lines, {}, groups


def _unquote(value: Any) -> str | None:
    """A python-hcl2 string literal (``'"x"'``) as text; None for an expression."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' and "${" not in value:
        try:
            return str(json.loads(value))
        except ValueError:
            return None
    return None


def _names(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else []
    return tuple(n for n in (_unquote(v) for v in items) if n is not None)


def _hcl_structure(text: str) -> Structure:
    lines, _, header_groups = _headers(text)
    try:
        import hcl2  # python-hcl2
        doc = hcl2.loads(text)
    except Exception:   # lark raises several unrelated types; buildx is the judge of the file, not python-hcl2
        return lines, {}, header_groups
    inherits: dict[str, tuple[str, ...]] = {}
    for block in doc.get("target", []):
        for name, body in block.items():
            inherits[_unquote(name) or name] = _names(body.get("inherits"))
    groups = {(_unquote(n) or n): _names(body.get("targets")) for b in doc.get("group", []) for n, body in b.items()}
    return lines, inherits, groups


def _json_structure(text: str) -> Structure:
    try:
        doc = json.loads(text)
    except ValueError:
        return {}, {}, {}
    if not isinstance(doc, Mapping):
        return {}, {}, {}
    raw_targets, raw_groups = doc.get("target"), doc.get("group")
    targets: Mapping[str, Any] = raw_targets if isinstance(raw_targets, Mapping) else {}
    start = text.find('"target"')
    lines = {}
    for name in targets:
        at = text.find(json.dumps(name), max(start, 0))
        lines[str(name)] = text.count("\n", 0, at) + 1 if at >= 0 else 0
    inherits = {str(n): tuple(str(x) for x in (t.get("inherits") or []) if isinstance(x, str))
                for n, t in targets.items() if isinstance(t, Mapping)}
    groups = {str(n): tuple(str(x) for x in (g.get("targets") or [])) for n, g in
              (raw_groups.items() if isinstance(raw_groups, Mapping) else ()) if isinstance(g, Mapping)}
    return lines, inherits, groups


def _compose_structure(text: str) -> Structure:
    """Services with a ``build:``, each a target; bake's default group is all of them."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}, {}, {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "services" and isinstance(value, yaml.MappingNode):
                for svc, body in value.value:
                    built = isinstance(body, yaml.MappingNode) and any(k.value == "build" for k, _ in body.value)
                    if built:
                        lines[str(svc.value)] = svc.start_mark.line + 1
    return lines, {}, {"default": tuple(lines)}


# --------------------------------------------------------------------------- questions about the merged files
def has_default(sources: Sequence[BakeSource]) -> bool:
    """Whether a plain ``docker buildx bake`` finds something to build: a ``default`` group or target (a compose
    file always has one: all its services)."""
    return any(s.kind == "compose" or "default" in s.groups or "default" in s.lines for s in sources)


def base_targets(sources: Sequence[BakeSource]) -> set[str]:
    """Targets that exist to be inherited: named in some ``inherits`` and listed in no group."""
    inherited = {p for s in sources for parents in s.inherits.values() for p in parents}
    grouped = {t for s in sources for members in s.groups.values() for t in members}
    return inherited - grouped


def image_targets(sources: Sequence[BakeSource]) -> list[str]:
    """The selection when there is no default: every target that is not a base, in file order."""
    bases = base_targets(sources)
    names = dict.fromkeys(n for s in sources for n in (list(s.lines) or list(s.inherits)))
    return [n for n in names if n not in bases]


def locate(sources: Sequence[BakeSource], name: str, parents: Mapping[str, str] | None = None) -> str:
    """``file:line`` of a target's block (a matrix child: of its parent) in the first file that defines it; the
    first file's name when no block is found."""
    for candidate in (name, (parents or {}).get(name, "")):
        for s in sources:
            if candidate and candidate in s.lines:
                return f"{s.shown}:{s.lines[candidate]}" if s.lines[candidate] else s.shown
    return sources[0].shown if sources else ""


def identifiers(sources: Iterable[BakeSource]) -> set[str]:
    """Every word that could name an environment variable the files read (for the cache key)."""
    return {w for s in sources for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", s.text)}
