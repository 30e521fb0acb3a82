"""Hostile bakery.yaml files: every one is a one-line error naming the file and key, fast, and nothing is written
outside the repository (no traceback, no hang, no RecursionError)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakery.config import load
from bakery.errors import BakeryError
from bakery.oci.reference import InvalidReference, check_name_prefix, check_tag

BASE = "registry: 127.0.0.1:5000/acme\nplatform_groups: {amd64: [linux/amd64]}\nimages:\n  app: {context: app}\n"


def project(root: Path, text: str) -> Path:
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "bakery.yaml").write_text(text)
    return root / "bakery.yaml"


def one_line_error(path: Path) -> str:
    start = time.monotonic()
    with pytest.raises(BakeryError) as err:
        load(path)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert "Traceback" not in message and "bakery.yaml" in message
    return message


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8))
    message = one_line_error(project(tmp_path, BASE + "labels:\n  bomb: 1\nrelease:\n  x:\n" +
                                     "".join("    " + ln + "\n" for ln in bomb.splitlines())))
    assert "expands to more than 20000 values (YAML aliases?)" in message


def test_a_self_referencing_alias_is_one_line(tmp_path: Path) -> None:
    message = one_line_error(project(tmp_path, BASE + "release: &r {loop: *r}\n"))
    assert "YAML alias refers to itself" in message or "nested deeper" in message


def test_deep_nesting_is_one_line(tmp_path: Path) -> None:
    message = one_line_error(project(tmp_path, BASE + "release: " + "[" * 5000 + "]" * 5000 + "\n"))
    assert "nested deeper" in message


def test_an_integer_of_thousands_of_digits_is_one_line(tmp_path: Path) -> None:
    message = one_line_error(project(tmp_path, BASE + "fanout: " + "9" * 5000 + "\n"))
    assert "has a value YAML cannot read" in message


@pytest.mark.parametrize("bake_dir", ["../outside", "/tmp/elsewhere", "a/../../b", "link"])
def test_bake_dir_stays_inside_the_repository(tmp_path: Path, bake_dir: str) -> None:
    root = tmp_path / "repo"
    path = project(root, BASE + f"bake_dir: {bake_dir}\n")
    (root / "link").symlink_to(tmp_path)
    message = one_line_error(path)
    assert "bake_dir" in message and ("outside the repository" in message or "is absolute" in message)


def test_a_nul_byte_in_a_path_is_one_line(tmp_path: Path) -> None:
    assert "contains a NUL character" in one_line_error(project(tmp_path, BASE + 'bake_dir: "a\\0b"\n'))


def test_an_over_long_context_is_one_line(tmp_path: Path) -> None:
    text = BASE.replace("context: app", "context: " + "x" * 5000)
    assert "is 5000 characters long; at most 1024 are allowed" in one_line_error(project(tmp_path, text))


def test_a_megabyte_registry_is_one_short_line(tmp_path: Path) -> None:
    message = one_line_error(project(tmp_path, BASE.replace("127.0.0.1:5000/acme", "r" * (1 << 20))))
    assert len(message) < 300


@pytest.mark.parametrize("tag", ["ü", "версия", "-x", ".x", "x" * 129])
def test_tags_follow_the_oci_grammar_exactly(tag: str) -> None:
    with pytest.raises(InvalidReference):
        check_tag(tag)


def test_an_image_name_with_a_dot_is_refused_as_bake_cannot_name_its_targets(tmp_path: Path) -> None:
    text = BASE.replace("  app: {context: app}", "  a.b: {context: app}")
    assert "image name 'a.b' must be lowercase letters and digits separated by _ or -" in \
        one_line_error(project(tmp_path, text))


@pytest.mark.parametrize("registry", ["127.0.0.1:99999/x", "localhost:0/x"])
def test_a_port_out_of_range_is_refused(registry: str) -> None:
    with pytest.raises(InvalidReference, match="is not in 1-65535"):
        check_name_prefix(registry)


yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30)
keys = st.sampled_from(["registry", "platform_groups", "cache", "images", "tag", "intermediate_tag", "bake_dir",
                        "formats", "provenance", "sbom", "attest", "builders", "default_builder", "fanout", "labels",
                        "release", "retention", "images_from", "nonsense"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(keys, yaml_values, max_size=8))
def test_any_document_loads_or_fails_with_a_message_and_writes_nothing(tmp_path: Path, doc: dict) -> None:
    root = tmp_path / "fuzz"
    path = project(root, yaml.safe_dump(doc))
    before = set(os.listdir(tmp_path)), set(os.listdir(root))
    try:
        load(path)
    except BakeryError as exc:
        assert str(exc) and "Traceback" not in str(exc)
    assert (set(os.listdir(tmp_path)), set(os.listdir(root))) == before
