"""The ``--allow`` grants a generated bake file needs, derived from the file itself (pure).

buildx >= 0.17 takes entitlements on the bake command line; from 0.20 on bake refuses to read or write outside its
working directory without an ``fs.read``/``fs.write`` grant (0.19 warns), and asks for ``network.host`` and
``security.insecure`` when a target wants them. On a terminal it would stop and ask; bakery passes exactly the
grants its file needs instead, so a CI run never waits on a prompt and never grants more than the file uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bakery.capabilities import ENTITLEMENTS, NETWORK_GRANTS, Capabilities, csv_entry

_REMOTE = ("docker-image://", "target:", "oci-layout://", "http://", "https://", "git@", "git://", "ssh://")


def _local(value: str) -> bool:
    return bool(value) and not value.startswith(_REMOTE) and "://" not in value and value != "-"


def _outside(path: str, root: Path) -> str | None:
    """The absolute path when ``path`` (relative to the bake working directory) leaves it, else None."""
    full = Path(os.path.normpath(root / path))
    resolved = full.resolve()
    inside = resolved == root.resolve() or root.resolve() in resolved.parents
    return None if inside else str(full)


def _entries(value: Any) -> list[dict[str, str]]:
    items = value if isinstance(value, list) else [value] if value else []
    return [csv_entry(v) if isinstance(v, str) else {str(k): str(x) for k, x in v.items()} for v in items]


def target_grants(target: Mapping[str, Any], root: Path) -> list[str]:
    """The grants one evaluated target needs (fs ones only for paths outside ``root``)."""
    want: list[str] = []

    def fs(kind: str, path: str | None) -> None:
        if path and _local(path):
            outside = _outside(path, root)
            if outside:
                want.append(f"fs.{kind}={outside}")

    context = str(target.get("context") or ".")
    fs("read", context)
    dockerfile = str(target.get("dockerfile") or "")
    if dockerfile and os.path.isabs(dockerfile) and not target.get("dockerfile-inline"):
        fs("read", dockerfile)   # a relative one is read from inside the context
    for named in (target.get("contexts") or {}).values():
        fs("read", str(named))
    for entry in _entries(target.get("cache-from")):
        if entry.get("type") == "local":
            fs("read", entry.get("src"))
    for entry in _entries(target.get("cache-to")):
        if entry.get("type") == "local":
            fs("write", entry.get("dest"))
    for entry in _entries(target.get("output")):
        if entry.get("type") in ("local", "tar", "oci", "docker") and entry.get("dest"):
            fs("write", entry.get("dest"))
    for entry in _entries(target.get("secret")):
        fs("read", entry.get("src") or entry.get("source"))
    network = NETWORK_GRANTS.get(str(target.get("network") or ""))
    if network:
        want.append(network)
    want.extend(str(e) for e in target.get("entitlements") or () if str(e) in ENTITLEMENTS)
    return want


def cache_dirs(doc: Mapping[str, Any], targets: list[str], root: Path) -> list[Path]:
    """The local cache directories of the selected targets. bake asks a grant for the nearest existing ancestor
    of a path that does not exist yet (``fs.read=..`` for a first build), so they are made before bake runs and
    the grants stay exactly these directories."""
    dirs: set[Path] = set()
    for name in targets:
        target = doc["target"][name]
        for key, field in (("cache-from", "src"), ("cache-to", "dest")):
            for entry in _entries(target.get(key)):
                if entry.get("type") == "local" and entry.get(field):
                    dirs.add(Path(os.path.normpath(root / entry[field])))
    return sorted(dirs)


def grants(doc: Mapping[str, Any], targets: list[str], root: Path, caps: Capabilities | None) -> list[str]:
    """Every grant the selected targets of a bake document need on this buildx, sorted, each once."""
    if caps is None or not caps.allow_flag:
        return []
    out: set[str] = set()
    for name in targets:
        for grant in target_grants(doc["target"][name], root):
            if grant.startswith("fs.") and not caps.fs_entitlements:
                continue
            out.add(grant)
    return sorted(out)
