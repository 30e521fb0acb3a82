"""bakery.config.interpolate: ${env:NAME} in bakery.yaml, only where asked; and the environment's overrides."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bakery.cli import env_overrides
from bakery.config.interpolate import interpolate
from bakery.errors import BakeryError, ConfigErrors


def test_env_references_are_filled_and_everything_else_is_left_alone() -> None:
    doc = {"registry": "ghcr.io/${env:OWNER}", "tag": "${env:MISSING:-dev}",
           "images": {"api": {"args": {"GREETING": "${X}", "RAW": "$${env:OWNER}", "N": 3}}}, "list": ["${env:OWNER}"]}
    assert interpolate(doc, {"OWNER": "acme"}, "bakery.yaml") == {
        "registry": "ghcr.io/acme", "tag": "dev",
        "images": {"api": {"args": {"GREETING": "${X}", "RAW": "${env:OWNER}", "N": 3}}}, "list": ["acme"]}


def test_every_unset_variable_is_an_error_naming_its_key() -> None:
    with pytest.raises(ConfigErrors) as err:
        interpolate({"registry": "${env:REG}", "images": {"api": {"args": {"A": "${env:1BAD}"}}}}, {}, "bakery.yaml")
    assert [str(e) for e in err.value.errors] == [
        "bakery.yaml: registry: ${env:REG}: REG is not set (give a default: ${env:REG:-value})",
        "bakery.yaml: images.api.args.A: ${env:1BAD}: '1BAD' is not a variable name"]


@given(st.text())
def test_text_without_an_env_reference_is_never_changed(text: str) -> None:
    if "{env:" not in text:
        assert interpolate({"k": text}, {}, "bakery.yaml") == {"k": text}


def test_overrides_from_the_environment_are_merged_bakery_overrides_last() -> None:
    env = {"INVOKE_BAKERY_OVERRIDES": '{"cache": {"type": "local", "mode": "min"}}',
           "BAKERY_OVERRIDES": "{cache: {type: gha}, tag: ci}"}
    assert env_overrides(env) == {"cache": {"type": "gha", "mode": "min"}, "tag": "ci"}


@pytest.mark.parametrize(("text", "message"), [("[1", "BAKERY_OVERRIDES: not YAML or JSON"),
                                               ("- a", "BAKERY_OVERRIDES: expected a mapping")])
def test_bad_environment_overrides_name_the_variable(text: str, message: str) -> None:
    with pytest.raises(BakeryError, match=message):
        env_overrides({"BAKERY_OVERRIDES": text})
