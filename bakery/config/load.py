"""Loading bakery.yaml: read it, apply the overrides (Invoke config, environment, flags), take in
``images_from``, validate."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bakery.config.importers import import_images
from bakery.config.lines import read_yaml
from bakery.config.model import Config
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


def load(path: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read bakery.yaml, apply overrides (Invoke config, environment, flags) and validate.

    ``images_from`` (a docker-bake.hcl or compose file) contributes images that bakery.yaml does not define.
    """
    root = path.parent.resolve()
    rel = os.path.relpath(path.resolve(), Path.cwd().resolve())
    source = str(path) if rel.startswith("..") else rel
    data, lines = read_yaml(path, source)
    if data is None:
        data = {}
    if overrides:
        if not isinstance(data, Mapping):
            raise ConfigError(source, "", f"expected a mapping at the top level, got {type(data).__name__}")
        data = deep_merge(data, overrides)
    if isinstance(data, Mapping) and data.get("images_from"):
        ref = data["images_from"]
        if not isinstance(ref, str):
            raise ConfigError(f"{source}:{lines.at('images_from')}", "images_from", f"expected a path, got {ref!r}")
        imported = import_images(root / ref, root)
        data = dict(data)
        data["images"] = {**imported, **(data.get("images") or {})}
    return validate(data, root, source, lines)
