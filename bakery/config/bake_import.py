"""``images_from``: import the images of existing bake files (HCL, JSON, compose), evaluated by the buildx that
will build them.

Re-implementing bake's evaluation would always lag buildx (functions, matrix, typed variables, merging of
several ``-f`` files), so bakery runs ``docker buildx bake -f F… --print <selection>`` once, through an injected
:class:`Evaluator`, and maps the result (:mod:`.bake_map`); python-hcl2 only says where each target is written and
which targets are bases (:mod:`.bake_sources`).

Variables policy: bake reads its variables from bakery's environment, as a plain ``docker buildx bake`` would,
in the directory of the first file. ``SOURCE_DATE_EPOCH`` is left out (bake injects it into every target at
build time anyway). Whatever bake computed at import time (``timestamp()``, an environment value) is frozen into
the imported images. The result is cached under ``<bake_dir>/import/`` by the files' digests, the buildx version,
the selection and the environment values of every name the files mention, so ``build`` does not pay twice; a file
that calls ``timestamp()`` is evaluated on every load.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from bakery.atomic import write_file
from bakery.capabilities import Capabilities, Version, version_string
from bakery.config import bake_sources as sources_
from bakery.config.bake_map import Mapped, check_local, linked_targets, map_printed
from bakery.config.bake_sources import BakeSource
from bakery.errors import CommandError, ConfigError

FORMAT = 1                       # bump when the cached mapping changes shape
FIXED_ENV = {"SOURCE_DATE_EPOCH": ""}
SPEC_KEYS = ("files", "targets", "groups")


class Evaluator(Protocol):
    """What the import needs from buildx (``bakery.docker.Docker`` is one; tests pass recorded ``--print``)."""

    def buildx_version(self) -> Version: ...

    def bake_print(self, files: Sequence[Path], targets: Sequence[str], env: Mapping[str, str],
                   cwd: Path) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ImportSpec:
    """``images_from`` as written: the files (merged as bake merges ``-f`` files) and the selection."""
    files: tuple[str, ...]
    targets: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    source: str = "bakery.yaml"          # where images_from is written, for messages

    @property
    def selection(self) -> tuple[str, ...]:
        return self.targets + self.groups


@dataclass(frozen=True)
class Imported:
    """The images an import contributes, where each is written, and what to tell the user."""
    images: dict[str, dict[str, Any]]
    where: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    replaced: dict[str, tuple[str, ...]] = field(default_factory=dict)
    selection: tuple[str, ...] = ()
    buildx: str = ""
    cached: bool = False


def _strings(value: Any, key: str, source: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(source, key, f"expected a file name or a list of them, got {value!r}")
    return tuple(items)


def parse_spec(value: Any, source: str) -> ImportSpec:
    """``images_from: F`` / ``[F, G]`` / ``{files: F|[F, G], targets: [...], groups: [...]}``."""
    if not isinstance(value, Mapping):
        return ImportSpec(_strings(value, "images_from", source), source=source)
    for key in value:
        if key not in SPEC_KEYS:
            raise ConfigError(source, f"images_from.{key}", f"unknown key {key!r}; expected one of: "
                                                            f"{', '.join(SPEC_KEYS)}")
    if "files" not in value:
        raise ConfigError(source, "images_from.files", "is required: the bake or compose file(s) to import")
    return ImportSpec(_strings(value["files"], "images_from.files", source),
                      _strings(value.get("targets") or [], "images_from.targets", source),
                      _strings(value.get("groups") or [], "images_from.groups", source), source)


# --------------------------------------------------------------------------- phases
def read_sources(spec: ImportSpec, root: Path) -> list[BakeSource]:
    return [sources_.read_source(root / f, Path(os.path.normpath(f)).as_posix()) for f in spec.files]


def choose_selection(spec: ImportSpec, sources: Sequence[BakeSource]) -> tuple[str, ...]:
    """The targets/groups named in images_from; else what a plain ``docker buildx bake`` builds (the default
    group); else, when there is none, every target that is not a base."""
    if spec.selection:
        return spec.selection
    if sources_.has_default(sources):
        return ()
    found = sources_.image_targets(sources)
    if not found:
        raise ConfigError(", ".join(s.shown for s in sources), "images_from", "defines no target to import")
    return tuple(found)


def evaluate(evaluator: Evaluator, sources: Sequence[BakeSource], selection: Sequence[str]) -> dict[str, Any]:
    """``bake --print`` of the selection, run where a plain bake would run (the first file's directory); the
    targets a selected one links to (``target:X`` contexts) are printed too (asked for if buildx left one out)."""
    cwd = sources[0].path.parent
    files = [Path(os.path.relpath(s.path, cwd)) for s in sources]
    names = list(selection)
    for _ in range(8):
        printed = _print(evaluator, files, names, cwd, sources)
        targets = printed.get("target") or {}
        missing = [d for t in targets.values() for d in linked_targets(t) if d not in targets and d not in names]
        if not missing:
            return printed
        names = (names or ["default"]) + sorted(set(missing))
    return printed


def _print(evaluator: Evaluator, files: Sequence[Path], names: Sequence[str], cwd: Path,
           sources: Sequence[BakeSource]) -> dict[str, Any]:
    try:
        return evaluator.bake_print(files, names, FIXED_ENV, cwd)
    except CommandError as exc:
        last = next((ln.strip() for ln in reversed(exc.stderr.splitlines()) if ln.strip()), str(exc))
        last = last.removeprefix("ERROR: ")
        version = version_string(evaluator.buildx_version())
        raise ConfigError(", ".join(s.shown for s in sources), "images_from",
                          f"buildx {version} cannot evaluate it: {last}") from None
    except ValueError as exc:   # not JSON: another program answered
        raise ConfigError(", ".join(s.shown for s in sources), "images_from", f"bake --print: {exc}") from None


def map_sources(printed: Mapping[str, Any], selection: Sequence[str], caps: Capabilities,
                sources: Sequence[BakeSource], root: Path) -> Mapped:
    cwd = Path(os.path.relpath(sources[0].path.parent, root)).as_posix()
    parents = {child: g for g, body in (printed.get("group") or {}).items() for child in body.get("targets") or []}
    mapped = map_printed(printed, selection, caps, cwd, lambda t: sources_.locate(sources, t, parents))
    if not mapped.images:
        raise ConfigError(", ".join(s.shown for s in sources), "images_from",
                          "no selected target builds an image" + (f" ({mapped.notes[0]})" if mapped.notes else ""))
    check_local(mapped.images, mapped.where, root)
    return mapped


# --------------------------------------------------------------------------- cache
def cache_key(spec: ImportSpec, sources: Sequence[BakeSource], version: Version, env: Mapping[str, str]) -> str:
    """The files' digests, the buildx version, the selection, and the value of each environment variable the
    files could read (every word in them, and BUILDX_BAKE_*); a compose ``.env`` beside the first file too."""
    words = sources_.identifiers(sources)
    dotenv = sources[0].path.parent / ".env"
    data = {"format": FORMAT, "buildx": list(version), "files": [(s.shown, s.digest) for s in sources],
            "selection": list(spec.selection),
            "env": sorted((k, v) for k, v in env.items() if k in words or k.startswith("BUILDX_BAKE")),
            "dotenv": hashlib.sha256(dotenv.read_bytes()).hexdigest() if dotenv.is_file() else ""}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def volatile(sources: Sequence[BakeSource]) -> bool:
    """A file whose evaluation changes from run to run (``timestamp()``) is never cached."""
    return any("timestamp(" in s.text for s in sources)


def read_cache(path: Path) -> Imported | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["notes"] = tuple(data["notes"])
        data["selection"] = tuple(data["selection"])
        data["replaced"] = {k: tuple(v) for k, v in data["replaced"].items()}
        return Imported(**{**data, "cached": True})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cache(path: Path, imported: Imported, keep: int = 8) -> None:
    """Write atomically; keep the newest few results (other branches, other environments)."""
    write_file(path, json.dumps({k: v for k, v in asdict(imported).items() if k != "cached"}, indent=1) + "\n")
    old = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[keep:]
    for stale in old:
        stale.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the import
def import_images(spec: ImportSpec, root: Path, evaluator: Evaluator, *, env: Mapping[str, str] | None = None,
                  cache_dir: Path | None = None) -> Imported:
    """Evaluate the files with buildx (or take the cached result) and map them to ``images:`` entries."""
    sources = read_sources(spec, root)
    version = evaluator.buildx_version()
    key = cache_key(spec, sources, version, os.environ if env is None else env)
    cache = cache_dir / f"{key}.json" if cache_dir is not None and not volatile(sources) else None
    hit = read_cache(cache) if cache is not None else None
    if hit is not None:
        return hit
    selection = choose_selection(spec, sources)
    printed = evaluate(evaluator, sources, selection)
    mapped = map_sources(printed, selection, Capabilities(version), sources, root)
    imported = Imported(mapped.images, mapped.where, mapped.notes, mapped.replaced, selection,
                        version_string(version))
    if cache is not None:
        try:
            write_cache(cache, imported)
        except OSError:
            pass        # a read-only checkout still imports; it only pays again next time
    return imported


POLICY = ("variables: bake read them from this environment, in the first file's directory, as a plain "
          "`docker buildx bake` would (SOURCE_DATE_EPOCH left out); values computed then (timestamp(), "
          "environment values) are frozen into the images")


def report(imported: Imported, out: TextIO, verbose: bool = False) -> None:
    """One line for the skipped targets; with ``verbose`` the policy, the selection and, per image, what bakery
    replaced."""
    if verbose:
        how = "cached" if imported.cached else f"evaluated by buildx {imported.buildx}"
        sel = " ".join(imported.selection) or "default"
        print(f"images_from: {len(imported.images)} image(s) from selection {sel!r}, {how}", file=out)
        print(f"images_from: {POLICY}", file=out)
        for name, where in imported.where.items():
            replaced = ", ".join(imported.replaced.get(name, ())) or "nothing"
            print(f"images_from: {where}: image {name}: bakery replaces {replaced}", file=out)
        for note in imported.notes:
            print(f"images_from: {note}", file=out)
    elif imported.notes:
        names = ", ".join(n.split(": target ", 1)[-1].split(" ", 1)[0] for n in imported.notes)
        print(f"images_from: skipped {len(imported.notes)} target(s) that build no image: {names} (-v says why)",
              file=out)
