"""Attestations in bakery.yaml: ``provenance``, ``sbom`` and ``attest``, at the top level and per image.

``provenance: min | max | false`` and ``sbom: true | false`` are shorthands; ``attest`` is a list of raw attest
entries in bake's syntax (``type=sbom,generator=IMAGE``, ``type=provenance,mode=max``), carried verbatim. Each is
checked here as buildx parses it (CSV fields, one ``type=`` of provenance or sbom, at most one entry per type), and
a type given by both an ``attest`` entry and its shorthand key of the same level is an error. An image's settings
override the top level's, type by type; :func:`entries` is what a target's ``attest`` list is made of.

Pure: problems go to the validator's ``err(key, message)``, one line each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bakery.config.model import PROVENANCE, Config, Image, shown as _shown, suggest

ATTEST_TYPES: tuple[str, ...] = ("provenance", "sbom")
SBOM = "type=sbom"
Err = Callable[[str, str], None]


def fields(text: str) -> list[str]:
    """The CSV fields of one entry, as buildx reads them (Go's encoding/csv: a field may be quoted to hold a comma,
    ``""`` is a quote inside it, and a quote anywhere else is an error); raises ValueError with buildx's reason."""
    out: list[str] = []
    i, n = 0, len(text)
    while True:
        if i < n and text[i] == '"':
            value, i = [], i + 1
            while True:
                end = text.find('"', i)
                if end < 0:
                    raise ValueError('extraneous or missing " in quoted-field')
                value.append(text[i:end])
                if text.startswith('""', end):
                    value.append('"')
                    i = end + 2
                    continue
                i = end + 1
                break
            if i < n and text[i] != ",":
                raise ValueError('extraneous or missing " in quoted-field')
            out.append("".join(value))
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            if '"' in text[i:end]:
                raise ValueError('bare " in non-quoted-field')
            out.append(text[i:end])
            i = end
        if i >= n:
            return out
        i += 1                  # the comma


def entry_type(text: str) -> str:
    """The ``type=`` of a checked entry ("" when it has none)."""
    try:
        found = fields(text)
    except ValueError:
        return ""
    return next((f.partition("=")[2] for f in found if f.partition("=")[0].strip().lower() == "type"), "")


def check_entry(text: str, key: str, err: Err) -> str | None:
    """One attest entry: its type, or None after reporting what is wrong with it."""
    if "\n" in text or "\r" in text or "\0" in text:
        err(key, f"{_shown(text)}: an attest entry is one line")
        return None
    try:
        found = fields(text)
    except ValueError as exc:
        err(key, f"{_shown(text)}: {exc} (quote a whole field to hold a comma: '\"generator=a,b\"')")
        return None
    attrs: dict[str, str] = {}
    for f in found:
        name, sep, value = f.partition("=")
        if not sep or not name:
            err(key, f"{_shown(text)}: {f!r} is not KEY=VALUE")
            return None
        if name != name.strip() or name in attrs:
            err(key, f"{_shown(text)}: key {name!r} " + ("has spaces around it" if name != name.strip()
                                                         else "is given twice (buildx keeps the last silently)"))
            return None
        attrs[name] = value
    kind = attrs.get("type")
    if kind is None:
        err(key, f"{_shown(text)} has no type=; start it with type=provenance or type=sbom")
        return None
    if kind not in ATTEST_TYPES:
        err(key, f"type={kind!r} is not an attestation type; {suggest(kind, ATTEST_TYPES)}")
        return None
    if attrs.get("disabled", "false") not in ("true", "false"):
        err(key, f"disabled={attrs['disabled']!r}: expected true or false")
        return None
    if kind == "provenance" and attrs.get("mode", "min") not in PROVENANCE:
        err(key, f"mode={attrs['mode']!r} is not one of {', '.join(PROVENANCE)}; "
                 f"{suggest(attrs['mode'], PROVENANCE)}")
        return None
    return kind


def check_list(value: Any, key: str, err: Err) -> tuple[str, ...]:
    """``attest``: a list of entries, at most one per type."""
    if value is None:
        return ()
    if not isinstance(value, list):
        err(key, f"expected a list of attest entries such as ['type=sbom'], got {type(value).__name__} "
                 f"{_shown(value)}")
        return ()
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(value):
        sub = f"{key}[{i}]"
        if not isinstance(item, str):
            err(sub, f"expected a string such as 'type=sbom,generator=IMAGE', got {type(item).__name__} "
                     f"{_shown(item)}")
            continue
        kind = check_entry(item, sub, err)
        if kind is None:
            continue
        if kind in seen:
            err(sub, f"type={kind} is given twice (also {key}[{seen[kind]}]); bake would keep only the last")
            continue
        seen[kind] = i
        out.append(item)
    return tuple(out)


def provenance_value(value: Any, key: str, err: Err) -> str | bool:
    """``provenance:`` as written: ``min`` or ``max``, or False for ``false``/``null`` (none)."""
    if value is False or value is None:
        return False
    if value is True:
        err(key, "true is not a mode: give min or max (or false for none)")
        return "min"
    if value not in PROVENANCE:
        err(key, f"{_shown(value)} is not one of {', '.join(PROVENANCE)}, false; {suggest(str(value), PROVENANCE)}")
        return "min"
    return str(value)


def sbom_value(value: Any, key: str, err: Err) -> bool:
    if not isinstance(value, bool):
        err(key, f"expected true or false, got {_shown(value)}")
        return False
    return value


def level(data: Mapping[str, Any], prefix: str, err: Err) -> tuple[str | bool | None, bool | None, tuple[str, ...]]:
    """One level's ``provenance``, ``sbom`` (None: not given) and ``attest``; ``prefix`` is the level's key path
    with its dot (``""``, ``"images.api."``)."""
    provenance = provenance_value(data["provenance"], f"{prefix}provenance", err) if "provenance" in data else None
    sbom = sbom_value(data["sbom"], f"{prefix}sbom", err) if "sbom" in data else None
    raw = data.get("attest")
    attest = check_list(raw, f"{prefix}attest", err)
    for i, item in enumerate(raw if attest and isinstance(raw, list) else ()):
        kind = entry_type(item) if isinstance(item, str) and item in attest else ""
        if kind and kind in data:
            err(f"{prefix}{kind}", f"type={kind} is also given by {prefix}attest[{i}]; keep one of them")
    return provenance, sbom, attest


def _by_type(attest: Sequence[str]) -> dict[str, str]:
    return {entry_type(e): e for e in attest}


def _provenance_entry(value: str | bool | None) -> str:
    return f"type=provenance,mode={value}" if value else "type=provenance,disabled=true"


def entries(config: Config, image: Image) -> list[str]:
    """The attest entries of an image's targets: per type, the image's setting (key or entry), else the top
    level's, else the default (provenance ``min``, no SBOM). Provenance first, then the SBOM when there is one."""
    top, own = _by_type(config.attest), _by_type(image.attest)
    if image.provenance is not None:
        provenance = _provenance_entry(image.provenance)
    else:
        provenance = own.get("provenance") or top.get("provenance") or _provenance_entry(config.provenance)
    if image.sbom is not None:
        sbom = SBOM if image.sbom else None
    else:
        sbom = own.get("sbom") or top.get("sbom") or (SBOM if config.sbom else None)
    return [provenance, *([sbom] if sbom else [])]
