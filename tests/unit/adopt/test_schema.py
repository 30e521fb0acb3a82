"""bakery.yaml's JSON Schema: generated from the validator's key lists, so it accepts what bakery accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bakery.adopt.schema import schema, schema_text
from bakery.config import model
from tests.support.paths import REPO


def _validator() -> jsonschema.Draft202012Validator:
    doc = schema()
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def test_every_key_of_every_section_is_in_the_schema() -> None:
    doc = schema()
    assert set(doc["properties"]) == set(model.TOP_KEYS)
    assert set(doc["$defs"]["image"]["properties"]) == set(model.IMAGE_KEYS)
    assert set(doc["$defs"]["cache"]["properties"]) == set(model.CACHE_KEYS)
    assert set(doc["$defs"]["builder"]["properties"]) == set(model.BUILDER_KEYS)
    assert set(doc["$defs"]["node"]["properties"]) == set(model.NODE_KEYS)
    assert doc["$defs"]["cache"]["properties"]["type"] == {"enum": list(model.CACHE_TYPES)}


def _documented() -> list[dict[str, Any]]:
    texts = [(REPO / "bakery.yaml").read_text()]
    for md in ("README.md", "docs/config.md", "docs/fleet.md", "docs/release.md", "docs/clean.md"):
        texts += re.findall(r"```yaml\n(.*?)```", (REPO / md).read_text(), re.S)
    docs = []
    for text in texts:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and "registry" in data:
            docs.append(data)
    return docs


def test_the_repository_config_and_the_documented_examples_validate() -> None:
    docs = _documented()
    assert docs
    v = _validator()
    for data in docs:
        assert [e.message for e in v.iter_errors(data)] == []


@pytest.mark.parametrize("bad", [
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "imagez": {}},
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "cache": {"type": "gha-typo"}},
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "images": {"api": {"contxt": "."}}},
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "images": {"a.b": {"context": "."}}},
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "sbom": "yes"},
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "images": {"api": {"attest": ["type=sbon"]}}},
    {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "images": {"api": {"provenance": "mid"}}},
])
def test_typos_and_unknown_choices_are_flagged(bad: dict[str, Any]) -> None:
    assert list(_validator().iter_errors(bad))


def test_the_attestation_keys_are_in_the_schema_at_both_levels() -> None:
    data = {"registry": "r/x", "platform_groups": {"a": ["linux/amd64"]}, "sbom": True,
            "attest": ["mode=max,type=provenance"],
            "images": {"api": {"context": ".", "sbom": False, "provenance": False,
                               "attest": ['type=sbom,"generator=r.example/scan:1"']}}}
    assert [e.message for e in _validator().iter_errors(data)] == []


def test_the_text_is_the_schema_as_json(tmp_path: Path) -> None:
    assert json.loads(schema_text()) == schema()
