"""Moving off ``images_from``: the ``images:`` section bakery derived from bake or compose files, as YAML a team
can paste into bakery.yaml (or have written there), so it owns the config from then on.

The YAML is checked to read back as exactly the derived images before it is shown or written.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from bakery.config.bake_import import Imported, ImportSpec, parse_spec
from bakery.errors import BakeryError

class _Dumper(yaml.SafeDumper):
    """Multi-line strings (an inline Dockerfile) as literal blocks, so the YAML reads like the file."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and value == value.strip(" ") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(.*)$")


def images_yaml(images: Mapping[str, Mapping[str, Any]], where: Mapping[str, str] | None = None,
                indent: int = 2) -> str:
    """``images:`` entries as block YAML, each headed by a comment naming the target it came from."""
    pad = " " * indent
    out = []
    for name, entry in images.items():
        if where and name in where:
            out.append(f"{pad}# from {where[name]}\n")
        body = yaml.dump({name: dict(entry)}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100000,
                         default_flow_style=False)
        out.extend(pad + line + "\n" for line in body.splitlines())
    return "".join(out)


def section(imported: Imported) -> str:
    """The whole ``images:`` section, checked to read back as the derived images."""
    text = "images:\n" + images_yaml(imported.images, imported.where)
    if (yaml.safe_load(text) or {}).get("images") != imported.images:
        raise BakeryError("the derived images do not survive a YAML round trip; please report this")
    return text


def _blocks(lines: Sequence[str]) -> dict[str, tuple[int, int, str]]:
    """Top-level key -> (first line, end line (exclusive), what follows the colon)."""
    starts = [(i, m.group(1), m.group(2).split("#", 1)[0].strip()) for i, line in enumerate(lines)
              if (m := _TOP_KEY.match(line))]
    out = {}
    for n, (i, key, rest) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        while end > i + 1 and not lines[end - 1].strip():
            end -= 1
        out[key] = (i, end, rest)
    return out


def write_into(text: str, imported: Imported, *, drop_images_from: bool) -> tuple[str, list[str]]:
    """bakery.yaml's text with the derived images added under ``images:`` (images it already defines are
    kept as they are, as ``images_from`` does) and, with ``drop_images_from``, without ``images_from``.
    Returns the new text and the names added. Comments and layout elsewhere stay as they were."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    data = yaml.safe_load(text) or {}
    own = data.get("images") or {}
    added = {n: e for n, e in imported.images.items() if n not in own}
    blocks = _blocks(lines)
    new = images_yaml(added, imported.where).splitlines(keepends=True)
    if "images" in blocks:
        start, end, rest = blocks["images"]
        if rest:
            raise BakeryError("bakery.yaml's images: is written in flow style; add the images by hand "
                              "(`bakery import` prints them)")
        lines[end:end] = new
    else:
        at = blocks["images_from"][1] if "images_from" in blocks else len(lines)
        lines[at:at] = ["images:\n", *new]
    if drop_images_from and "images_from" in blocks:
        start, end, _ = _blocks(lines)["images_from"]
        del lines[start:end]
    result = "".join(lines)
    check_written(result, {**added, **own}, drop_images_from)
    return result, list(added)


def check_written(text: str, images: Mapping[str, Any], dropped: bool) -> None:
    """The new bakery.yaml reads back with exactly the expected images (nothing is written otherwise)."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise BakeryError(f"bakery.yaml would not parse after the edit ({exc}); nothing written") from None
    if data.get("images") != dict(images) or (dropped and "images_from" in data):
        raise BakeryError("bakery.yaml would not read back as the derived images; nothing written "
                          "(add the output of `bakery import` by hand)")


def spec_for(files: Sequence[str], targets: Sequence[str], groups: Sequence[str], rel: str) -> ImportSpec:
    """What to import: the files (relative to the current directory; ``rel`` is its path from the repo root)."""
    if not files:
        raise BakeryError("name the bake or compose file(s) to import, e.g. `bakery import docker-bake.hcl`")
    return ImportSpec(tuple(posixpath.normpath(posixpath.join(rel, f)) for f in files), tuple(targets),
                      tuple(groups), source="command line")


def same_files(spec: ImportSpec, data: Mapping[str, Any], source: str) -> bool:
    """Whether bakery.yaml's ``images_from`` imports the same files (then ``--write`` replaces it)."""
    if not data.get("images_from"):
        return False
    try:
        current = parse_spec(data["images_from"], source)
    except BakeryError:
        return False
    return [posixpath.normpath(f) for f in current.files] == list(spec.files)
