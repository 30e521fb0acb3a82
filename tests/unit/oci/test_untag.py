"""bakery.oci.untag: removing one tag on a registry without tag DELETE, against the in-memory registry."""

from __future__ import annotations

import json
from typing import cast

import pytest

from bakery.errors import BakeryError
from bakery.oci.registry import OCI_INDEX, OCI_MANIFEST, Registry
from bakery.oci.untag import EMPTY_CONFIG, EMPTY_DIGEST, LEFTOVER, ensure_empty_config, untag, untag_manifest
from tests.support.registry import FakeRegistry

REPO = "acme/api"


def seeded() -> tuple[FakeRegistry, str]:
    fake = FakeRegistry()
    image = fake.add_json(REPO, {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}, "latest")
    fake.tag_map[REPO]["1.0-amd64"] = image
    fake.add_json(REPO, {"schemaVersion": 2, "mediaType": OCI_INDEX,
                         "manifests": [{"mediaType": OCI_MANIFEST, "digest": image, "size": 1}]}, "1.0")
    return fake, image


def test_untag_removes_only_the_tag_and_keeps_what_it_pointed_at() -> None:
    fake, image = seeded()
    done = untag(cast(Registry, fake), REPO, "1.0-amd64")
    assert (done.repository, done.tag, done.previous) == (REPO, "1.0-amd64", image)
    assert "1.0-amd64" not in fake.tag_map[REPO]
    assert fake.tag_map[REPO]["latest"] == image and image in fake.manifests[REPO]
    assert done.placeholder not in fake.manifests[REPO]                # the placeholder was deleted by digest
    assert fake.blobs[REPO][EMPTY_DIGEST] == EMPTY_CONFIG


def test_untag_of_a_missing_tag_is_a_one_line_error_and_changes_nothing() -> None:
    fake, _ = seeded()
    before = dict(fake.tag_map[REPO])
    with pytest.raises(BakeryError, match=r"registry.test/acme/api:nope does not exist"):
        untag(cast(Registry, fake), REPO, "nope")
    assert fake.tag_map[REPO] == before and REPO not in fake.blobs


def test_the_empty_config_is_uploaded_once() -> None:
    fake = FakeRegistry()
    ensure_empty_config(cast(Registry, fake), REPO)
    ensure_empty_config(cast(Registry, fake), REPO)
    assert fake.blobs == {REPO: {EMPTY_DIGEST: EMPTY_CONFIG}}


def test_the_placeholder_is_marked_as_a_leftover_clean_removes() -> None:
    doc = json.loads(untag_manifest(REPO, "1.0-amd64", None, nonce="n"))
    assert doc["annotations"][LEFTOVER] == "untag"
    assert doc["annotations"]["dev.bakery.untag.nonce"] == "n"
    assert untag_manifest(REPO, "t", None, nonce="a") != untag_manifest(REPO, "t", None, nonce="b")
