"""What each buildx version does, in one place: which target attributes bake reads, how ``bake --print`` shows
what it read, which entitlements bake asks for, and whether it has build checks.

Pure data and functions of a version (no docker call): :class:`Capabilities` is made once from
``docker buildx version`` by the docker adapter and handed to generation, the ``--print`` check, the bake argv and
doctor. Facts are from buildx's own sources and release notes, checked on both stacks bakery is tested on
(buildx 0.13.1 and 0.29.1); see docs/stack.md.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Version = tuple[int, int, int]

OLDEST_TESTED: Version = (0, 13, 1)
NEWEST_TESTED: Version = (0, 29, 1)

# raw target attributes an image may pass through under `bake:` -> first buildx version whose bake reads them
# (older versions silently drop an attribute they do not know, so bakery refuses it there instead)
TARGET_ATTRS: dict[str, tuple[int, int]] = {
    "secret": (0, 0), "ssh": (0, 0), "no-cache-filter": (0, 0), "contexts": (0, 0), "pull": (0, 0),
    "shm-size": (0, 13), "ulimits": (0, 13), "annotations": (0, 12),
    "call": (0, 16), "description": (0, 16), "network": (0, 17), "entitlements": (0, 17),
    "extra-hosts": (0, 25), "policy": (0, 31), "resources": (0, 35),
    "dockerfile-inline": (0, 0), "attest": (0, 0),
}
# list attributes whose entries `--print` shows as objects from 0.20 on (CSV strings before)
OBJECT_ENTRIES = ("cache-from", "cache-to", "attest", "output", "secret", "ssh")
# the attributes whose values ``--print`` re-escapes (0.23+: ``${`` -> ``$${``); map keys, object entries and every
# other attribute are printed as evaluated (checked on buildx 0.29.1)
PRINT_ESCAPED = ("annotations", "args", "labels", "dockerfile-inline")
# what a target's `network` / `entitlements` need granted with `--allow` (buildx >= 0.17)
NETWORK_GRANTS = {"host": "network.host"}
ENTITLEMENTS = ("network.host", "security.insecure")


def parse_version(text: str) -> Version | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def version_string(version: Version) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Capabilities:
    version: Version

    @property
    def print_objects(self) -> bool:
        """``--print`` shows cache/attest/output/secret/ssh entries as objects (0.19.0 briefly, then 0.20+)."""
        return self.version[:2] >= (0, 20)

    @property
    def print_escapes(self) -> bool:
        """``--print`` keeps interpolation escaped: a literal ``${`` is shown as ``$${``, ``%{`` as ``%%{`` (0.23+)."""
        return self.version[:2] >= (0, 23)

    @property
    def allow_flag(self) -> bool:
        """bake takes ``--allow`` grants (0.17+)."""
        return self.version[:2] >= (0, 17)

    @property
    def fs_entitlements(self) -> bool:
        """bake refuses to read or write outside its working directory without ``--allow fs.*`` (0.20+; 0.19 warns)."""
        return self.version[:2] >= (0, 19)

    @property
    def shared_context_sessions(self) -> bool:
        """Targets of one bake that share a local context share one session (0.17+); on BuildKit >= 0.15 their
        shared steps then keep only one target's cache imports, so bakery bakes such targets in rounds."""
        return self.version[:2] >= (0, 17)

    @property
    def build_checks(self) -> bool:
        """The ``call`` attribute / ``--call check`` runs the Dockerfile build checks (0.16+)."""
        return self.version[:2] >= (0, 16)

    @property
    def outdated(self) -> bool:
        return self.version < OLDEST_TESTED

    def reads(self, attr: str) -> bool:
        """Whether this buildx's bake reads a target attribute (unknown ones it silently drops)."""
        need = TARGET_ATTRS.get(attr, (0, 0))
        return self.version[:2] >= need

    def needs(self, attr: str) -> str:
        need = TARGET_ATTRS.get(attr, (0, 0))
        return f"{need[0]}.{need[1]}"

    def printed(self, key: str, value: Any) -> Any:
        """A generated attribute value in the form this buildx's ``--print`` shows it (after bake evaluated it)."""
        if self.print_objects and key in OBJECT_ENTRIES and isinstance(value, list):
            entry = ssh_entry if key == "ssh" else attest_entry if key == "attest" else csv_entry
            value = [entry(v) if isinstance(v, str) else v for v in value]
        return _escape_printed(value) if self.print_escapes and key in PRINT_ESCAPED else value

    def unprinted(self, key: str, value: Any) -> Any:
        """The evaluated value behind what this buildx's ``--print`` shows (undoes the 0.23+ re-escaping)."""
        return _unescape_printed(value) if self.print_escapes and key in PRINT_ESCAPED else value


def csv_entry(text: str) -> dict[str, str]:
    """``type=registry,ref=r/x:c,mode=max`` -> ``{"type": "registry", "ref": "r/x:c", "mode": "max"}`` (CSV, as
    buildx parses it: a field may be quoted to hold a comma)."""
    fields = next(csv.reader([text]), [])
    out: dict[str, str] = {}
    for f in fields:
        key, _, value = f.partition("=")
        out[key.strip()] = value
    return out


def attest_entry(text: str) -> dict[str, Any]:
    """An attest entry as 0.20+ prints it: its fields, ``type`` and ``disabled`` read case-blind, ``disabled`` a
    boolean shown only when true (buildx's ``Attest``: ``type=provenance,disabled=true`` ->
    ``{"type": "provenance", "disabled": true}``, ``disabled=false`` left out)."""
    out: dict[str, Any] = {}
    for key, value in csv_entry(text).items():
        name = key.strip().lower()
        if name == "disabled" and value.lower() in _BOOLS:
            if _BOOLS[value.lower()]:
                out["disabled"] = True
        else:
            out["type" if name == "type" else key] = value
    return out


_BOOLS = {"1": True, "t": True, "true": True, "0": False, "f": False, "false": False}


def ssh_entry(text: str) -> dict[str, Any]:
    """``default`` -> ``{"id": "default"}``; ``k=/a,/b`` -> ``{"id": "k", "paths": ["/a", "/b"]}`` (0.20+ form)."""
    ident, sep, paths = text.partition("=")
    return {"id": ident, "paths": paths.split(",")} if sep else {"id": ident}


def entry_text(key: str, entry: Mapping[str, Any]) -> str:
    """An object entry of ``--print`` (0.20+) as the CSV string every buildx reads: the inverse of
    :func:`csv_entry` (fields holding a comma or a quote are quoted, as buildx's CSV reader expects), and of
    :func:`ssh_entry` for ``ssh``."""
    if key == "ssh":
        paths = entry.get("paths") or []
        return str(entry.get("id", "default")) + ("=" + ",".join(map(str, paths)) if paths else "")
    fields = []
    for k, v in entry.items():
        text = ("true" if v else "false") if isinstance(v, bool) else str(v)
        field = f"{k}={text}"
        fields.append('"' + field.replace('"', '""') + '"' if any(c in field for c in ',"\n') else field)
    return ",".join(fields)


_DOLLAR = re.compile(r"(?=\$\{)")
_PERCENT = re.compile(r"(?=%\{)")


def _escape_printed(value: Any) -> Any:
    """What bake 0.23+ prints for an evaluated value: every ``${`` re-escaped to ``$${`` and ``%{`` to ``%%{``."""
    if isinstance(value, str):
        return _PERCENT.sub("%", _DOLLAR.sub("$", value))
    if isinstance(value, list):
        return [_escape_printed(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _escape_printed(v) for k, v in value.items()}
    return value


_ESCAPED_DOLLAR = re.compile(r"\$(?=\$\{)")
_ESCAPED_PERCENT = re.compile(r"%(?=%\{)")


def _unescape_printed(value: Any) -> Any:
    """The inverse of :func:`_escape_printed`: exact, because every ``${`` of the printed text was preceded by
    the ``$`` that printing added."""
    if isinstance(value, str):
        return _ESCAPED_PERCENT.sub("", _ESCAPED_DOLLAR.sub("", value))
    if isinstance(value, list):
        return [_unescape_printed(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _unescape_printed(v) for k, v in value.items()}
    return value
