"""Generate: the bake files of a config, written atomically and checked with ``docker buildx bake --print``.

The bake model is :mod:`bakery.build.bakefile` (pure); this module renders it (JSON and HCL), writes it, and asks the
installed buildx what it read, in the form that version prints (:mod:`bakery.capabilities`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bakery.atomic import write_file, write_files
from bakery.build import bakefile
from bakery.capabilities import Capabilities
from bakery.config.model import Config
from bakery.config.variables import bake_variables
from bakery.docker import Docker
from bakery.errors import BakeryError

JSON_FILE = "docker-bake.json"
HCL_FILE = "docker-bake.hcl"
CHECKED_FILE = ".print-checked.json"


def render_files(config: Config, caps: Capabilities | None, formats: Sequence[str] | None = None) -> dict[Path, str]:
    """Path -> content of every bake file for this config (pure; byte-identical for the same input)."""
    return render(bakefile.document(config, caps), config, formats)


def render(doc: Mapping[str, Any], config: Config, formats: Sequence[str] | None = None) -> dict[Path, str]:
    """Path -> content of every bake file of one bake document."""
    out_dir = config.root / config.bake_dir
    files: dict[Path, str] = {}
    for fmt in formats or config.formats:
        if fmt == "json":
            files[out_dir / JSON_FILE] = bakefile.to_json(doc)
        elif fmt == "hcl":
            files[out_dir / HCL_FILE] = bakefile.to_hcl(doc)
        else:
            raise BakeryError(f"unknown bake file format {fmt!r}; use json or hcl")
    return files


_TOKEN = re.compile(r"\$\$\{|%%\{|\$\{(\w+)\}")


def evaluate(value: Any, variables: Mapping[str, str]) -> Any:
    """What bake makes of a generated value (escapes and our own ``${VAR}`` references only)."""
    if isinstance(value, bakefile.Expr):
        return None   # evaluated by bake itself; compared by presence only
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            tok = m.group(0)
            if tok == "$${":
                return "${"
            if tok == "%%{":
                return "%{"
            return variables[m.group(1)]
        return _TOKEN.sub(sub, value)
    if isinstance(value, list):
        return [evaluate(v, variables) for v in value]
    if isinstance(value, Mapping):
        return {evaluate(k, variables): evaluate(v, variables) for k, v in value.items()}
    return value


def evaluated_targets(doc: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, Any]:
    """The targets of a generated document as bake evaluates them (``${VAR}`` filled in, escapes undone)."""
    return {"target": {name: evaluate(t, variables) for name, t in doc["target"].items()}}


def compare_with_print(doc: Mapping[str, Any], printed: Mapping[str, Any], variables: Mapping[str, str],
                       caps: Capabilities | None = None) -> list[str]:
    """Differences between what we generated and what bake will do; empty means bake understood every attribute.

    ``caps`` says how this buildx's ``--print`` shows what it read (0.20+ objects for cache/attest entries, 0.23+
    ``$${`` for a literal ``${``): the generated value is put in that form first, so a dropped or changed
    attribute is still caught on every version.
    """
    problems = []
    for name, target in doc["target"].items():
        got = printed.get("target", {}).get(name)
        if got is None:
            problems.append(f"target {name}: missing from bake --print")
            continue
        for key, value in target.items():
            if key not in got:
                problems.append(f"target {name}: attribute {key!r} was dropped by this buildx")
                continue
            want = evaluate(value, variables)
            if want is not None and caps is not None:
                want = caps.printed(key, want)
            if want is not None and key not in ("context", "dockerfile") and got[key] != want:
                problems.append(f"target {name}: {key} is {got[key]!r} in bake, generated {want!r}")
    return problems


def generate(config: Config, docker: Docker | None, out: TextIO, *, formats: Sequence[str] | None = None,
             check: bool = True, doc: Mapping[str, Any] | None = None) -> list[Path]:
    """Write the bake files atomically, then check with ``bake --print`` that buildx reads them as meant.

    If the check fails the previous files are restored, so a bad generation never replaces a good one.
    """
    written = write(config, docker, out, formats=formats, doc=doc)
    if check and docker is not None and written.wrote:
        verify(config, docker, written)
    return list(written.files)


@dataclass(frozen=True)
class Written:
    """Bake files just written, and what they replaced (restored when the check fails); ``wrote`` is false in a
    dry run, which only says what it would write."""
    doc: Mapping[str, Any]
    files: dict[Path, str]
    previous: dict[Path, str]
    wrote: bool = True


def write(config: Config, docker: Docker | None, out: TextIO, *, formats: Sequence[str] | None = None,
          doc: Mapping[str, Any] | None = None) -> Written:
    """Write the bake files atomically (only when their bytes change); a dry run says what it would write."""
    if doc is None:
        doc = bakefile.document(config, docker.capabilities() if docker is not None else None)
    files = render(doc, config, formats)
    if docker is not None and docker.runner.dry_run:
        for path in files:
            print(f"would write {os.path.relpath(path)}", file=out)
        return Written(doc, files, {}, wrote=False)
    previous = {p: p.read_text(encoding="utf-8") for p in files if p.exists()}
    if previous != files:
        write_files(files)
    return Written(doc, files, previous)


def verify(config: Config, docker: Docker, written: Written) -> None:
    """Check with ``bake --print`` that the installed buildx reads the written files as generated (skipped for
    a file whose bytes and buildx version are those of the last check, ``bake/.print-checked.json``). On a
    failure the previous files are restored (a file that was not there is removed) and the error raised."""
    variables = bake_variables(config, env={})
    checked = _checked(config)
    version = ".".join(map(str, docker.buildx_version()))
    files = written.files
    todo = {p: _stamp(text, version) for p, text in files.items() if checked.get(p.name) != _stamp(text, version)}
    try:
        for path in todo:
            printed = docker.bake_print([path.relative_to(config.root)], ["default"], variables, config.root)
            problems = compare_with_print(written.doc, printed, variables, docker.capabilities())
            if problems:
                raise BakeryError(f"{path.name}: buildx does not read it as generated: {problems[0]}"
                                  + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    except BaseException:
        write_files(written.previous) if written.previous else None
        for p in files:
            if p not in written.previous:
                p.unlink(missing_ok=True)
        raise
    if todo:
        write_file(config.root / config.bake_dir / CHECKED_FILE,
                   json.dumps({**checked, **{p.name: stamp for p, stamp in todo.items()}}, sort_keys=True) + "\n")


def _stamp(text: str, buildx: str) -> str:
    """What one ``--print`` check vouches for: these bytes, read by this buildx."""
    return f"{hashlib.sha256(text.encode('utf-8')).hexdigest()} buildx {buildx}"


def _checked(config: Config) -> dict[str, str]:
    """file name -> stamp of the last successful ``--print`` check (``bake/.print-checked.json``): a file whose
    bytes and buildx version are those of the last check needs no new one."""
    try:
        data = json.loads((config.root / config.bake_dir / CHECKED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
