"""Tag rules and flavor as docker/metadata-action writes them: ``type=ref,event=branch``, ``type=semver,pattern=
{{version}}``, ``type=sha,format=long``, a bare ``value`` for ``type=raw``; ``latest=auto,prefix=,suffix=`` for the
flavor. Parsing only: what a rule gives for an event is :mod:`bakery.tags.compute`.

Each rule is one string of comma-separated ``key=value`` attributes (keys are case-insensitive, a value may hold
``=``); unknown types or keys, a missing required attribute and a bad ``enable``/``priority``/``format``/``event``
value are a :class:`RuleError` naming the rule. ``pep440`` is not supported (the error says so).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bakery.errors import BakeryError

__all__ = ["DEFAULT_RULES", "PRIORITY", "Flavor", "Rule", "RuleError", "parse_flavor", "parse_rule", "parse_rules"]

# metadata-action's default priorities: higher first in the output
PRIORITY = {"schedule": 1000, "semver": 900, "match": 800, "edge": 700, "ref": 600, "raw": 200, "sha": 100}
COMMON = ("type", "enable", "priority", "prefix", "suffix")
KEYS: Mapping[str, tuple[str, ...]] = {
    "schedule": ("pattern",), "semver": ("pattern", "value", "match"), "match": ("pattern", "group", "value"),
    "edge": ("branch",), "ref": ("event",), "raw": ("value",), "sha": ("format",),
}
REQUIRED: Mapping[str, tuple[str, ...]] = {"semver": ("pattern",), "match": ("pattern",), "ref": ("event",),
                                           "raw": ("value",)}
DEFAULTS: Mapping[str, Mapping[str, str]] = {
    "schedule": {"pattern": "nightly"}, "match": {"group": "0"}, "sha": {"prefix": "sha-", "format": "short"},
}
REF_EVENTS = ("branch", "tag", "pr")
SHA_FORMATS = ("short", "long")
_EXPR = re.compile(r"^\{\{\s*[a-z_]+\s*\}\}$")


class RuleError(BakeryError):
    """A tag rule or flavor that cannot be used; the message names it."""


@dataclass(frozen=True)
class Rule:
    """One parsed rule: its type, every attribute with the type's defaults filled in, and its priority."""

    type: str
    attrs: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    text: str = ""

    def get(self, key: str, default: str = "") -> str:
        return self.attrs.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.attrs


@dataclass(frozen=True)
class Flavor:
    """``latest``: auto (after a semver or match tag of a release), true, false; ``prefix``/``suffix`` for every
    tag a rule does not give its own, and for ``latest`` too with ``onlatest=true``."""

    latest: str = "auto"
    prefix: str = ""
    prefix_onlatest: bool = False
    suffix: str = ""
    suffix_onlatest: bool = False


def _split(text: str) -> list[tuple[str, str]]:
    """The attributes of one line, read as CSV as metadata-action reads them (``"pattern=a,b"`` keeps its comma);
    a field without ``=`` is ("", field)."""
    pairs = []
    for row in csv.reader([text], skipinitialspace=True):
        for part in row:
            if not part.strip():
                continue
            key, eq, value = part.partition("=")
            pairs.append((key.strip().lower(), value.strip()) if eq else ("", key.strip()))
    return pairs


def parse_rule(text: str) -> Rule:
    """One rule string; a field without ``=`` is the ``value``, and a rule without ``type`` is ``raw``."""
    if not isinstance(text, str) or not text.strip():
        raise RuleError(f"tag rule {text!r}: expected a string such as type=ref,event=branch")
    attrs: dict[str, str] = {}
    for key, value in _split(text):
        key = key or "value"                 # a bare field is the value (metadata-action)
        if key in attrs:
            raise RuleError(f"tag rule {text!r}: {key} is given twice")
        attrs[key] = value
    kind = attrs.pop("type", "raw").lower()
    if kind == "pep440":
        raise RuleError(f"tag rule {text!r}: type=pep440 is not supported (use type=semver or type=match)")
    if kind not in KEYS:
        raise RuleError(f"tag rule {text!r}: unknown type {kind!r}; expected one of: {', '.join(KEYS)}")
    unknown = sorted(set(attrs) - set(COMMON) - set(KEYS[kind]))
    if unknown:
        raise RuleError(f"tag rule {text!r}: type={kind} takes no {unknown[0]!r}; it takes "
                        f"{', '.join(KEYS[kind] + COMMON[1:])}")
    for key in REQUIRED.get(kind, ()):
        if not attrs.get(key):
            raise RuleError(f"tag rule {text!r}: type={kind} needs {key}=")
    full = {**DEFAULTS.get(kind, {}), **attrs}
    if kind == "ref" and full["event"] == "pr":
        full.setdefault("prefix", "pr-")
    _check(text, kind, full)
    priority = full.pop("priority", "")
    return Rule(kind, full, int(priority) if priority else PRIORITY[kind], text)


def _check(text: str, kind: str, attrs: Mapping[str, str]) -> None:
    enable = attrs.get("enable", "true")
    if enable not in ("true", "false") and not _EXPR.match(enable):
        raise RuleError(f"tag rule {text!r}: enable={enable!r}; expected true, false or an expression such as "
                        "{{is_default_branch}}")
    if attrs.get("priority") and not attrs["priority"].lstrip("-").isdigit():
        raise RuleError(f"tag rule {text!r}: priority={attrs['priority']!r} is not a whole number")
    if kind == "ref" and attrs["event"] not in REF_EVENTS:
        raise RuleError(f"tag rule {text!r}: event={attrs['event']!r}; expected one of: {', '.join(REF_EVENTS)}")
    if kind == "sha" and attrs["format"] not in SHA_FORMATS:
        raise RuleError(f"tag rule {text!r}: format={attrs['format']!r}; expected short or long")
    if kind == "match":
        if not attrs["group"].isdigit():
            raise RuleError(f"tag rule {text!r}: group={attrs['group']!r} is not a group number")
        literal = re.fullmatch(r"/(.*)/([a-z]*)", attrs["pattern"], re.S)
        try:
            groups = re.compile(literal.group(1) if literal else attrs["pattern"]).groups
        except re.error as exc:
            raise RuleError(f"tag rule {text!r}: pattern is not a regular expression ({exc})") from None
        if int(attrs["group"]) > groups:
            raise RuleError(f"tag rule {text!r}: group={attrs['group']} but the pattern has {groups} group(s)")


def parse_rules(texts: Sequence[str]) -> tuple[Rule, ...]:
    return tuple(parse_rule(t) for t in texts)


DEFAULT_RULES = parse_rules(("type=schedule", "type=ref,event=branch", "type=ref,event=tag", "type=ref,event=pr"))


def parse_flavor(text: str | Mapping[str, object] | None) -> Flavor:
    """``latest=auto,prefix=...,suffix=...`` (``onlatest=true`` after a prefix or suffix applies it to latest
    too), as one string or a mapping of the same keys."""
    if text is None:
        return Flavor()
    if isinstance(text, Mapping):
        pairs = [(str(k).lower(), _text(v)) for k, v in text.items()]
    elif isinstance(text, str):
        pairs = _split(text.replace("\n", ","))
    else:
        raise RuleError(f"tag flavor {text!r}: expected latest=auto,prefix=,suffix= or a mapping of those keys")
    values: dict[str, str] = {}
    onlatest: dict[str, bool] = {}
    last = ""
    for key, value in pairs:
        if key in ("latest", "prefix", "suffix"):
            values[key], last = value, key
        elif key == "onlatest" and last in ("prefix", "suffix") and value in ("true", "false"):
            onlatest[last] = value == "true"
        elif key in ("prefix_onlatest", "suffix_onlatest") and value in ("true", "false"):
            onlatest[key.split("_")[0]] = value == "true"
        else:
            raise RuleError(f"tag flavor: {key or value!r}={value!r} is not latest=, prefix=, suffix= or "
                            "onlatest=true|false after a prefix or suffix")
    latest = values.get("latest", "auto")
    if latest not in ("auto", "true", "false"):
        raise RuleError(f"tag flavor: latest={latest!r}; expected auto, true or false")
    return Flavor(latest, values.get("prefix", ""), onlatest.get("prefix", False), values.get("suffix", ""),
                  onlatest.get("suffix", False))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
