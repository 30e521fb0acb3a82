"""What buildx evaluated (``docker buildx bake --print``) -> bakery.yaml ``images:`` entries. Pure: data in, data
out, for any buildx version's ``--print`` form (0.20+ object entries, 0.23+ re-escaped ``${``).

Carried, per target, where this buildx read it (an attribute it does not know is not in its ``--print``):
everything that changes what is built. Replaced by bakery: where and how it is built and published.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakery.capabilities import Capabilities, csv_entry, entry_text
from bakery.errors import ConfigError
from bakery.oci.reference import NAME_RE

CORE = ("context", "dockerfile", "target", "args", "labels")      # Image fields
CARRIED = ("dockerfile-inline", "annotations", "contexts", "secret", "ssh", "network", "shm-size", "ulimits",
           "no-cache-filter", "entitlements", "attest", "call", "extra-hosts", "policy", "resources")
REPLACED = ("platforms", "tags", "cache-from", "cache-to", "output", "pull", "no-cache")
ENTRY_LISTS = ("secret", "ssh", "attest")
NOT_IMAGES = ("local", "tar", "cacheonly")
REMOTE = ("://", "git@")


@dataclass(frozen=True)
class Mapped:
    """The images one import contributes, and what the user should know about them."""
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)          # image -> file:line of its target
    notes: tuple[str, ...] = ()                                    # targets skipped, and why
    replaced: dict[str, tuple[str, ...]] = field(default_factory=dict)   # image -> attributes bakery replaced


def selected(printed: Mapping[str, Any], selection: Sequence[str]) -> list[str]:
    """The printed targets a selection names, groups (matrix parents included) expanded; the other printed
    targets are there because a selected one uses them as a ``target:`` context."""
    groups = printed.get("group") or {}
    targets = printed.get("target") or {}
    out: dict[str, None] = {}

    def walk(name: str, seen: frozenset[str]) -> None:
        if name in targets:
            out[name] = None
        if name in groups and name not in seen:
            for member in groups[name].get("targets") or []:
                walk(member, seen | {name})
    for name in selection or ["default"]:
        walk(name, frozenset())
    return list(out) if out else list(targets)


def output_type(entry: Any) -> str:
    """``type=local,dest=out`` / ``{"type": "local"}`` / a bare path (local) -> the exporter type."""
    if isinstance(entry, Mapping):
        return str(entry.get("type", "local"))
    text = str(entry)
    return str(csv_entry(text).get("type", "")) if "=" in text else ("local" if text != "-" else "tar")


def image_name(target: str, where: str) -> str:
    name = target.lower()
    if name == "default":
        raise ConfigError(where, f"target.{target}", "an image cannot be named 'default' (bake's default group "
                                                     "would collide); select other targets or rename it")
    if not NAME_RE.match(name):
        raise ConfigError(where, f"target.{target}", f"{target!r} cannot be an image name (lowercase letters and "
                                                     "digits separated by . _ or -); select other targets")
    return name


def _entries(key: str, value: Any) -> Any:
    if key in ENTRY_LISTS and isinstance(value, list):
        return [entry_text(key, v) if isinstance(v, Mapping) else v for v in value]
    return value


def _context(value: str, cwd: str) -> str:
    return posixpath.normpath(posixpath.join(cwd, value)) if cwd not in ("", ".") else posixpath.normpath(value)


def entry_for(name: str, spec: Mapping[str, Any], caps: Capabilities, cwd: str,
              names: Mapping[str, str]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """One printed target -> (its bakery.yaml image entry, the attributes bakery replaces)."""
    entry: dict[str, Any] = {"context": _context(str(spec.get("context", ".")), cwd)}
    if "dockerfile" in spec:
        entry["dockerfile"] = str(spec["dockerfile"])
    if "target" in spec:
        entry["target"] = str(spec["target"])
    for key in ("args", "labels"):
        values = caps.unprinted(key, spec.get(key) or {})
        kept = {str(k): v for k, v in values.items() if v is not None or key == "args"}
        if kept:
            entry[key] = kept
    bake: dict[str, Any] = {}
    for key in CARRIED:
        if key in spec and spec[key] not in (None, [], {}, ""):
            bake[key] = _entries(key, caps.unprinted(key, spec[key]))
    if "contexts" in bake:
        bake["contexts"] = {k: _linked(v, names) for k, v in bake["contexts"].items()}
    if bake:
        entry["bake"] = bake
    replaced = tuple(k for k in spec if k in REPLACED)
    return entry, replaced


def _linked(value: Any, names: Mapping[str, str]) -> Any:
    """``target:X`` -> ``target:<image of X>``; bakery then points it at X's target in the same platform group."""
    if isinstance(value, str) and value.startswith("target:") and value[7:] in names:
        return f"target:{names[value[7:]]}"
    return value


def linked_targets(spec: Mapping[str, Any]) -> list[str]:
    return [str(v)[7:] for v in (spec.get("contexts") or {}).values() if str(v).startswith("target:")]


def skip_reason(spec: Mapping[str, Any], chosen: bool) -> str:
    """Why a printed target cannot be a bakery image ("" when it can)."""
    context = str(spec.get("context", "."))
    if any(r in context for r in REMOTE):
        return f"its context {context} is remote (bakery builds local directories)"
    kinds = [output_type(o) for o in spec.get("output") or []]
    if chosen and kinds and all(k in NOT_IMAGES for k in kinds):
        return f"its output is not an image (type={','.join(kinds)})"
    return ""


def map_printed(printed: Mapping[str, Any], selection: Sequence[str], caps: Capabilities, cwd: str,
                locate: Callable[[str], str]) -> Mapped:
    """Map the evaluated targets of a selection (and the targets they link to) to image entries.

    ``cwd`` is where bake ran, relative to the repo root (contexts are relative to it); ``locate`` names a
    target's ``file:line``.
    """
    targets: Mapping[str, Any] = printed.get("target") or {}
    chosen = selected(printed, selection)
    keep, notes = _keep(targets, chosen, locate)
    names = {t: image_name(t, locate(t)) for t in keep}
    seen: dict[str, str] = {}
    for t, n in names.items():
        if n in seen:
            raise ConfigError(locate(t), f"target.{t}", f"becomes image {n!r}, as target {seen[n]!r} does")
        seen[n] = t
    out = Mapped(notes=tuple(notes))
    for t in keep:
        entry, replaced = entry_for(t, targets[t], caps, cwd, names)
        out.images[names[t]] = entry
        out.where[names[t]] = locate(t)
        if replaced:
            out.replaced[names[t]] = replaced
    return out


def _keep(targets: Mapping[str, Any], chosen: Sequence[str],
          locate: Callable[[str], str]) -> tuple[list[str], list[str]]:
    """The chosen targets that are images, plus every target they link to (transitively); notes for the rest."""
    keep: dict[str, None] = {}
    notes: list[str] = []
    todo = [(t, True) for t in chosen]
    while todo:
        name, is_chosen = todo.pop(0)
        if name in keep or name not in targets:
            continue
        why = skip_reason(targets[name], is_chosen)
        if why:
            notes.append(f"{locate(name)}: target {name} skipped: {why}")
            continue
        keep[name] = None
        todo += [(d, False) for d in linked_targets(targets[name])]
    order = list(targets)
    return sorted(keep, key=lambda t: (t not in chosen, order.index(t))), notes


def check_local(images: Mapping[str, Mapping[str, Any]], where: Mapping[str, str], root: Path) -> None:
    """Each imported context is a directory and its Dockerfile exists (an inline one needs none): named by the
    imported file's line, not bakery.yaml's."""
    for name, entry in images.items():
        ctx = root / entry["context"]
        if not ctx.is_dir():
            raise ConfigError(where[name], f"target.{name}.context",
                              f"directory {entry['context']!r} does not exist (relative to {root})")
        dockerfile = entry.get("dockerfile", "Dockerfile")
        if "dockerfile-inline" not in entry.get("bake", {}) and not (ctx / dockerfile).is_file():
            raise ConfigError(where[name], f"target.{name}.dockerfile",
                              f"{os.path.normpath(os.path.join(entry['context'], dockerfile))!r} does not exist")
