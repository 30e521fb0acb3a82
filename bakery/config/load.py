"""Loading bakery.yaml: read it, apply the overrides (Invoke config, environment, flags), take in
``images_from``, validate."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from bakery.config.bake_import import Evaluator, Imported, import_images, parse_spec, report
from bakery.config.interpolate import interpolate
from bakery.config.lines import read_yaml
from bakery.config.model import RESERVED_GROUPS, Config, target_name
from bakery.config.validate import validate
from bakery.errors import ConfigError


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(path: Path, overrides: Mapping[str, Any] | None = None, evaluator: Evaluator | None = None, *,
         env: Mapping[str, str] | None = None, out: TextIO | None = None, verbose: bool = False) -> Config:
    """Read bakery.yaml, apply overrides (Invoke config, environment, flags) and validate.

    ``images_from`` (bake HCL/JSON or compose files) contributes images that bakery.yaml does not define,
    evaluated by ``evaluator`` (default: the docker CLI on PATH); notes about skipped targets go to ``out``.
    """
    root = path.parent.resolve()
    rel = os.path.relpath(path.resolve(), Path.cwd().resolve())
    source = str(path) if rel.startswith("..") else rel
    data, lines = read_yaml(path, source)
    if data is None:
        data = {}
    data = interpolate(data, os.environ if env is None else env, source, lines)
    if overrides:
        if not isinstance(data, Mapping):
            raise ConfigError(source, "", f"expected a mapping at the top level, got {type(data).__name__}")
        data = deep_merge(data, overrides)
    if isinstance(data, Mapping) and data.get("images_from"):
        where = f"{source}:{lines.at('images_from')}" if lines.at("images_from") else source
        imported = import_from(data, root, where, evaluator, env=env)
        if out is not None:
            report(imported, out, verbose)
        check_names(data, imported)
        data = dict(data)
        data["images"] = {**imported.images, **(data.get("images") or {})}
    return validate(data, root, source, lines)


def import_from(data: Mapping[str, Any], root: Path, where: str, evaluator: Evaluator | None = None, *,
                env: Mapping[str, str] | None = None) -> Imported:
    """The images ``images_from`` names, cached under the config's bake dir."""
    spec = parse_spec(data["images_from"], where)
    bake_dir = data.get("bake_dir") if isinstance(data.get("bake_dir"), str) else "bake"
    if evaluator is None:
        from bakery.docker import Docker
        from bakery.process import Runner
        evaluator = Docker(Runner())
    return import_images(spec, root, evaluator, env=env, cache_dir=root / str(bake_dir) / "import")


def check_names(data: Mapping[str, Any], imported: Imported) -> None:
    """An imported image must not produce a target or group name that another image or a platform group
    produces (bake would merge them silently): a one-line error naming both. (Collisions among bakery.yaml's own
    images are validation's.)"""
    raw_groups = data.get("platform_groups")
    groups = [str(g) for g in raw_groups] if isinstance(raw_groups, Mapping) else []
    raw_images = data.get("images")
    own: Mapping[str, Any] = raw_images if isinstance(raw_images, Mapping) else {}
    images = {**imported.images, **own}
    produced: dict[str, tuple[str, str]] = {g: (f"platform group {g}", "") for g in [*RESERVED_GROUPS, *groups]}
    for name, spec in images.items():
        mine = str(name) if name in imported.images and name not in own else ""
        owner = f"image {name}" + (f" ({imported.where[name]})" if mine and name in imported.where else "")
        chosen = spec.get("platform_groups") if isinstance(spec, Mapping) else None
        names = [(str(name), f"{owner} (its bake group)")]
        names += [(target_name(str(name), g), f"{owner} in group {g}")
                  for g in (chosen if isinstance(chosen, list) else groups)]
        for made, what in names:
            first = produced.get(made)
            culprit = mine or (first[1] if first else "")
            if first is not None and culprit:
                raise ConfigError(imported.where.get(culprit, "images_from"), f"images.{culprit}",
                                  f"{made!r} is produced twice: by {first[0]} and by {what}; "
                                  "select fewer targets or rename one")
            produced[made] = (what, mine)
