"""A JSON Schema of bakery.yaml for editors (completion, hover, red squiggles), derived from the validator's own
key lists (``*_KEYS`` in :mod:`bakery.config.model`) and the records' field types, so it cannot drift from what
bakery accepts: a key added to the model is in the schema at once.

The schema is a help while typing, not the judge: ``bakery generate`` / ``bakery doctor`` validate (paths inside
the repository, platforms, names); ``release:`` and ``retention:`` are validated by their wings and left open here.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from bakery.config import model
from bakery.oci.reference import NAME_RE

SCHEMA_FILE = "bakery.schema.json"
SCHEMA_ID = "https://github.com/bakery-buildx/bakery/bakery.schema.json"

_STRINGS = {"type": "array", "items": {"type": "string"}}
_SCALARS: dict[str, dict[str, Any]] = {
    "str": {"type": "string"}, "bool": {"type": "boolean"}, "int": {"type": "integer"},
    "tuple[str, ...]": _STRINGS, "Mapping[str, str]": {"type": "object", "additionalProperties": {"type": "string"}},
    "Mapping[str, str | None]": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    "Mapping[str, Any]": {"type": "object"},
}
_ATTEST = {"type": "array", "description": "raw attest entries, one per type: type=provenance,... | type=sbom,...",
           "items": {"type": "string", "pattern": "(^|,)type=(provenance|sbom)(,|$)"}}
# what the field types do not say: the choices the validator accepts, and keys read in another shape than stored
_ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("cache", "type"): model.CACHE_TYPES, ("cache", "mode"): ("min", "max"), ("top", "provenance"): model.PROVENANCE,
    ("builder", "driver"): model.DRIVERS,
}
_SHAPES: dict[tuple[str, str], dict[str, Any]] = {
    ("image", "test"): {"oneOf": [{"type": "string"}, _STRINGS]},
    ("image", "bake"): {"type": "object", "propertyNames": {"enum": list(model.PASSTHROUGH_ATTRS)}},
    ("top", "images_from"): {"description": "bake HCL/JSON or compose file(s) whose targets become images",
                             "oneOf": [{"type": "string"}, _STRINGS, {"type": "object"}]},
    ("top", "formats"): {"type": "array", "items": {"enum": ["json", "hcl"]}},
    ("cache", "options"): {"type": "object", "description": "backend attributes: docs/config.md, Cache backends",
                           "additionalProperties": {"type": ["string", "boolean", "number"]}},
    ("top", "registry"): {"description": "image name prefix; a list: the first is pushed to, the others mirror it",
                          "oneOf": [{"type": "string"}, {**_STRINGS, "minItems": 1}]},
    ("top", "provenance"): {"enum": [*model.PROVENANCE, False, None]},
    ("image", "provenance"): {"enum": [*model.PROVENANCE, False, None]},
    ("image", "sbom"): {"type": "boolean"},
    ("top", "attest"): _ATTEST,
    ("image", "attest"): _ATTEST,
    ("top", "release"): {"type": "object", "description": "docs/release.md"},
    ("top", "retention"): {"type": "object", "description": "docs/clean.md"},
    ("top", "tags"): {"description": "metadata-action tag rules: docs/tags.md",
                      "oneOf": [_STRINGS, {"type": "object", "properties": {
                          "rules": _STRINGS, "flavor": {"type": ["string", "object"]},
                          "pull_requests": {"enum": ["build", "push"]}}, "additionalProperties": False}]},
}


def _field_types(record: type) -> dict[str, str]:
    return {f.name: str(f.type) for f in dataclasses.fields(record)}


def _property(section: str, key: str, annotation: str | None) -> dict[str, Any]:
    """One key's schema: a known shape, else its field type (``X | None`` also takes null)."""
    if (section, key) in _SHAPES:
        return dict(_SHAPES[(section, key)])
    if (section, key) in _ENUMS:
        return {"enum": list(_ENUMS[(section, key)])}
    if annotation is None:
        return {}
    base, _, optional = annotation.partition(" | None")
    found = dict(_SCALARS.get(base.strip(), {}))
    if annotation.endswith(" | None") and "type" in found and isinstance(found["type"], str):
        found["type"] = [found["type"], "null"]
    return found


def _object(section: str, keys: tuple[str, ...], record: type,
            special: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    types = _field_types(record)
    props = {k: (special or {}).get(k) or _property(section, k, types.get(k)) for k in keys}
    return {"type": "object", "properties": props, "additionalProperties": False}


def schema() -> dict[str, Any]:
    """The schema document (JSON Schema draft 2020-12)."""
    node = _object("node", model.NODE_KEYS, model.BuilderNode)
    builder = _object("builder", model.BUILDER_KEYS, model.Builder,
                      {"nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}}})
    group = {"oneOf": [_STRINGS, _object("group", model.GROUP_KEYS, model.PlatformGroup)]}
    image = _object("image", model.IMAGE_KEYS, model.Image)
    named = {"pattern": NAME_RE.pattern}
    top = _object("top", model.TOP_KEYS, model.Config, {
        "platform_groups": {"type": "object", "propertyNames": {"pattern": model.GROUP_RE.pattern},
                            "additionalProperties": {"$ref": "#/$defs/group"}},
        "images": {"type": "object", "propertyNames": named, "additionalProperties": {"$ref": "#/$defs/image"}},
        "cache": {"$ref": "#/$defs/cache"},
        "builders": {"type": "object", "additionalProperties": {"$ref": "#/$defs/builder"}},
    })
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, "title": "bakery.yaml",
            "description": "bakery's configuration (docs/config.md); generated by `bakery schema`",
            **top, "required": ["registry", "platform_groups"],
            "$defs": {"image": image, "group": group, "builder": builder, "node": node,
                      "cache": _object("cache", model.CACHE_KEYS, model.Cache)}}


def schema_text() -> str:
    return json.dumps(schema(), indent=2) + "\n"
