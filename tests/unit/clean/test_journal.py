"""bakery.clean.journal: the journal index and the untag placeholders a run writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bakery.clean import journal as clean
from bakery.clean.model import Node as Manifest
from bakery.clean.model import Snapshot
from bakery.oci.registry import digest_of
from bakery.oci.untag import EMPTY_DIGEST

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)

# --- journal and placeholder manifests -------------------------------------------------------------


def test_the_journal_lists_what_a_run_will_delete_with_media_types_and_sizes() -> None:
    a = Manifest("sha256:" + "a" * 64, OCI_INDEX, 300)
    b = Manifest("sha256:" + "b" * 64, OCI_MANIFEST, 500)
    snap = Snapshot("acme/api", {}, {a.digest: a, b.digest: b})
    doc = json.loads(clean.journal_index(snap, [a.digest, b.digest], NOW))
    assert doc["mediaType"] == OCI_INDEX
    assert doc["annotations"] == {"dev.bakery.clean": "journal", "org.opencontainers.image.created":
                                  "2024-06-01T12:00:00Z"}
    assert doc["manifests"] == [{"mediaType": OCI_INDEX, "digest": a.digest, "size": 300},
                                {"mediaType": OCI_MANIFEST, "digest": b.digest, "size": 500}]


def test_placeholders_are_unique_tiny_manifests_on_the_empty_config() -> None:
    one, two = clean.placeholder("pr-1"), clean.placeholder("pr-1")
    assert digest_of(one) != digest_of(two) and len(one) < 500
    doc = json.loads(one)
    assert doc["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST,
                             "size": 2}
    assert doc["layers"] == [] and doc["annotations"]["dev.bakery.clean"] == "untag"
    assert EMPTY_DIGEST == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
