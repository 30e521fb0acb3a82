"""Import an existing image list: a ``docker-bake.hcl`` (read with python-hcl2) or a compose file (pyyaml).

The result is the ``images:`` mapping of bakery.yaml (context, dockerfile, target, args, labels); bakery then
expands it per platform group like any other image. Platforms, tags, outputs and cache settings of the
imported file are not taken over: bakery owns those.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from bakery.errors import ConfigError
from bakery.oci.reference import NAME_RE

_SIMPLE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
IMPORTED_KEYS = ("context", "dockerfile", "target", "args", "labels")


def import_images(path: Path, root: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise ConfigError(str(path), "images_from", "file not found")
    if path.suffix in (".hcl",):
        return from_bake_hcl(path, root)
    if path.suffix in (".yml", ".yaml"):
        return from_compose(path, root)
    raise ConfigError(str(path), "images_from", "expected a .hcl bake file or a compose .yml/.yaml file")


# --------------------------------------------------------------------------- bake HCL
def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return str(json.loads(value))
    return value


def _hcl_string(value: Any, variables: Mapping[str, str], where: str, source: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(source, where, f"expected a string, got {value!r}")
    raw = value
    if not (len(raw) >= 2 and raw[0] == raw[-1] == '"'):
        raise ConfigError(source, where, f"cannot import the expression {raw!r}; write the value in bakery.yaml")
    text = _unquote(raw).replace("$${", "\0")

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in variables:
            raise ConfigError(source, where, f"uses ${{{name}}}, which has no default to import")
        return variables[name]
    text = _SIMPLE_VAR.sub(sub, text)
    if "${" in text or "%{" in text:
        raise ConfigError(source, where, f"cannot import the template {raw!r}; write the value in bakery.yaml")
    return text.replace("\0", "${")


def _blocks(doc: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in doc.get(kind, []):
        for name, body in block.items():
            out[_unquote(name)] = {k: v for k, v in body.items() if k != "__is_block__"}
    return out


def from_bake_hcl(path: Path, root: Path) -> dict[str, dict[str, Any]]:
    import hcl2  # python-hcl2

    source = str(path)
    try:
        with path.open(encoding="utf-8") as fh:
            doc = hcl2.load(fh)
    except Exception as exc:  # lark raises several unrelated types for syntax errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(source, "", f"HCL syntax error: {first}") from None
    variables: dict[str, str] = {}
    for name, body in _blocks(doc, "variable").items():
        if "default" in body:
            variables[name] = _hcl_string(body["default"], {}, f"variable.{name}.default", source)
    targets = _blocks(doc, "target")

    def resolved(name: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        if name in seen:
            raise ConfigError(source, f"target.{name}.inherits", f"inheritance cycle {' -> '.join(seen + (name,))}")
        if name not in targets:
            raise ConfigError(source, f"target.{seen[-1]}.inherits" if seen else "target",
                              f"target {name!r} is not defined")
        body = targets[name]
        merged: dict[str, Any] = {}
        for parent in body.get("inherits", []):
            for key, value in resolved(_unquote(parent), seen + (name,)).items():
                merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        for key, value in body.items():
            merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
        return merged

    images: dict[str, dict[str, Any]] = {}
    for name in targets:
        if name.startswith("_"):
            continue   # abstract base targets exist only to be inherited
        body = resolved(name)
        entry: dict[str, Any] = {}
        entry["context"] = _hcl_string(body.get("context", '"."'), variables, f"target.{name}.context", source)
        for key in ("dockerfile", "target"):
            if key in body:
                entry[key] = _hcl_string(body[key], variables, f"target.{name}.{key}", source)
        for key in ("args", "labels"):
            if key in body:
                entry[key] = {k: _hcl_string(v, variables, f"target.{name}.{key}.{k}", source)
                              for k, v in body[key].items()}
        images[_image_name(name, source, f"target.{name}")] = entry
    return images


# --------------------------------------------------------------------------- compose
_COMPOSE_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _compose_string(value: Any, where: str, source: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(source, where, f"expected a string, got {value!r}")

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        if m.group(2) is not None:
            return m.group(2)
        name = m.group(1) or m.group(3)
        raise ConfigError(source, where, f"uses ${name} without a default; write the value in bakery.yaml")
    return _COMPOSE_VAR.sub(sub, str(value))


def from_compose(path: Path, root: Path) -> dict[str, dict[str, Any]]:
    source = str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"{source}:{mark.line + 1}" if mark else source, "",
                          f"YAML syntax error: {getattr(exc, 'problem', exc)}") from None
    services = doc.get("services") if isinstance(doc, Mapping) else None
    if not isinstance(services, Mapping):
        raise ConfigError(source, "services", "a compose file needs a services: mapping")
    base = path.parent
    images: dict[str, dict[str, Any]] = {}
    for name, svc in services.items():
        build = (svc or {}).get("build")
        if build is None:
            continue   # an image-only service: nothing to build
        spec = {"context": build} if isinstance(build, str) else dict(build)
        where = f"services.{name}.build"
        ctx = base / _compose_string(spec.get("context", "."), f"{where}.context", source)
        entry: dict[str, Any] = {"context": Path(os.path.relpath(ctx.resolve(), root.resolve())).as_posix()}
        for key in ("dockerfile", "target"):
            if key in spec:
                entry[key] = _compose_string(spec[key], f"{where}.{key}", source)
        for key in ("args", "labels"):
            if key in spec:
                entry[key] = _compose_map(spec[key], f"{where}.{key}", source)
        images[_image_name(str(name), source, f"services.{name}")] = entry
    return images


def _compose_map(value: Any, where: str, source: str) -> dict[str, str]:
    if isinstance(value, list):   # ["KEY=value", ...]
        out = {}
        for item in value:
            key, sep, val = str(item).partition("=")
            if not sep:
                raise ConfigError(source, where, f"{item!r} has no value (an environment lookup cannot be imported)")
            out[key] = _compose_string(val, f"{where}.{key}", source)
        return out
    if isinstance(value, Mapping):
        return {str(k): _compose_string(v, f"{where}.{k}", source) for k, v in value.items()}
    raise ConfigError(source, where, f"expected a list or mapping, got {value!r}")


def _image_name(name: str, source: str, where: str) -> str:
    lowered = name.lower()
    if not NAME_RE.match(lowered):
        raise ConfigError(source, where, f"{name!r} cannot be an image name (lowercase letters and digits "
                                          "separated by . _ or -); rename it")
    return lowered
