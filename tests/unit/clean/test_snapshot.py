"""bakery.clean.snapshot: turning fetched manifests into planner records, image ages, the bounded thread pool.

Reading a real registry is covered by tests/integration/test_clean.py; here the Reader is filled with bytes."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from bakery.oci.registry import Manifest as Fetched
from bakery.oci.registry import digest_of
from bakery.clean.snapshot import Reader, build_snapshot, created_of, parallel, parse_time

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def fetched(doc: dict[str, Any], media_type: str) -> Fetched:
    raw = json.dumps(doc, sort_keys=True).encode()
    return Fetched(digest_of(raw), media_type, raw)


def image_doc(config: str, layers: list[tuple[str, int]], annotations: dict[str, str] | None = None,
              subject: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config,
                                      "size": 7},
                           "layers": [{"mediaType": LAYER, "digest": d, "size": s} for d, s in layers]}
    if annotations:
        doc["annotations"] = annotations
    if subject:
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1}
    return doc


def reader_with(*items: Fetched, configs: dict[str, dict[str, Any] | None] | None = None) -> Reader:
    reader = Reader(None, "acme/api")  # type: ignore[arg-type]  # no request is made when everything is known
    for f in items:
        reader.fetched[f.digest] = f
    reader.configs.update(configs or {})
    return reader


BLOB = {c: "sha256:" + c * 64 for c in "abcdef"}


def platform_image(arch: str, config: str) -> Fetched:
    return fetched(image_doc(config, [(BLOB["a"], 100), (BLOB[arch[0]], 5)]), OCI_MANIFEST)


def multi(*entries: tuple[Fetched, dict[str, Any]], annotations: dict[str, str] | None = None) -> Fetched:
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": [{"mediaType": f.media_type, "digest": f.digest, "size": len(f.raw), **extra}
                                         for f, extra in entries]}
    if annotations:
        doc["annotations"] = annotations
    return fetched(doc, OCI_INDEX)


# --- ages ------------------------------------------------------------------------------------------


def test_parse_time_reads_rfc3339_with_nanoseconds_and_takes_naive_as_utc() -> None:
    assert parse_time("2026-11-27T19:38:38.412825467Z") == datetime(2026, 11, 27, 19, 38, 38, 412825, tzinfo=UTC)
    assert parse_time("2024-01-01T00:00:00") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


def test_created_prefers_the_annotation_then_the_label_then_the_config() -> None:
    config = {"created": "2024-01-01T00:00:00Z",
              "config": {"Labels": {"org.opencontainers.image.created": "2024-02-01T00:00:00Z"}}}
    annotations = {"org.opencontainers.image.created": "2024-03-01T00:00:00Z"}
    assert created_of(annotations, config) == datetime(2024, 3, 1, tzinfo=UTC)
    assert created_of({}, config) == datetime(2024, 2, 1, tzinfo=UTC)
    assert created_of({}, {"created": "2024-01-01T00:00:00Z"}) == datetime(2024, 1, 1, tzinfo=UTC)
    assert created_of({}, None) is None


def test_created_skips_a_placeholder_for_a_real_time_but_reports_it_when_there_is_nothing_else() -> None:
    config = {"created": "2024-01-01T00:00:00Z",
              "config": {"Labels": {"org.opencontainers.image.created": "1970-01-01T00:00:00Z"}}}
    assert created_of({}, config) == datetime(2024, 1, 1, tzinfo=UTC)
    assert created_of({}, {"created": "1970-01-01T00:00:00Z"}) == datetime(1970, 1, 1, tzinfo=UTC)


# --- graph records ---------------------------------------------------------------------------------


def test_index_children_are_its_manifest_descriptors_with_their_platforms() -> None:
    amd, arm = platform_image("amd64", BLOB["c"]), platform_image("arm64", BLOB["d"])
    idx = multi((amd, {"platform": {"os": "linux", "architecture": "amd64"}}),
                (arm, {"platform": {"os": "linux", "architecture": "arm", "variant": "v7"}}))
    snap = build_snapshot(reader_with(amd, arm, idx), "acme/api", {"v1": idx.digest}, {}, need_created=False)
    assert snap.manifests[idx.digest].children == (amd.digest, arm.digest)
    assert snap.manifests[amd.digest].platform == "linux/amd64"
    assert snap.manifests[arm.digest].platform == "linux/arm/v7"
    assert snap.tags == {"v1": idx.digest}


def test_a_cache_index_lists_layers_which_are_not_children() -> None:
    cache = fetched({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": LAYER, "digest": BLOB["a"], "size": 10},
        {"mediaType": "application/vnd.buildkit.cacheconfig.v0", "digest": BLOB["b"], "size": 3}]}, OCI_INDEX)
    snap = build_snapshot(reader_with(cache), "acme/api", {"cache-amd64-main": cache.digest}, {}, need_created=False)
    assert snap.manifests[cache.digest].children == ()
    assert set(snap.manifests) == {cache.digest}


def test_attestation_entries_are_children_of_their_index_not_referrers_of_the_image() -> None:
    img = platform_image("amd64", BLOB["c"])
    att = fetched(image_doc(BLOB["e"], [(BLOB["f"], 9)]), OCI_MANIFEST)
    idx = multi((img, {"platform": {"os": "linux", "architecture": "amd64"}}),
                (att, {"platform": {"os": "unknown", "architecture": "unknown"},
                       "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                       "vnd.docker.reference.digest": img.digest}}))
    snap = build_snapshot(reader_with(img, att, idx), "acme/api", {"v1": idx.digest}, {}, need_created=False)
    record = snap.manifests[att.digest]
    assert record.is_attestation and record.platform == "unknown/unknown"
    assert record.subject is None
    assert att.digest in snap.manifests[idx.digest].children


def test_an_oci_subject_and_a_referrers_scheme_tag_both_make_a_subject_edge() -> None:
    img = platform_image("amd64", BLOB["c"])
    sbom = fetched(image_doc(BLOB["e"], [], subject=img.digest), OCI_MANIFEST)
    sig = fetched(image_doc(BLOB["f"], [], annotations={"n": "sig"}), OCI_MANIFEST)
    tag = f"sha256-{img.digest.split(':')[1]}.sig"
    snap = build_snapshot(reader_with(img, sbom, sig), "acme/api", {"v1": img.digest, tag: sig.digest},
                          {sig.digest: img.digest}, need_created=False)
    assert snap.manifests[sbom.digest].subject == img.digest
    assert snap.manifests[sig.digest].subject == img.digest


def test_image_records_list_their_blobs_and_layer_bytes() -> None:
    img = platform_image("amd64", BLOB["c"])
    snap = build_snapshot(reader_with(img), "acme/api", {"v1": img.digest}, {}, need_created=False)
    record = snap.manifests[img.digest]
    assert record.blobs == ((BLOB["c"], 7), (BLOB["a"], 100), (BLOB["a"], 5))
    assert record.layer_bytes == 112
    assert record.size == len(img.raw)


def test_bakery_clean_leftovers_are_recognised_by_their_annotation() -> None:
    placeholder = fetched(image_doc(BLOB["e"], [], annotations={"dev.bakery.clean": "untag"}), OCI_MANIFEST)
    journal = fetched({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [],
                       "annotations": {"dev.bakery.clean": "journal"}}, OCI_INDEX)
    snap = build_snapshot(reader_with(placeholder, journal), "acme/api",
                          {"pr-1": placeholder.digest, "bakery-clean-journal-x": journal.digest}, {},
                          need_created=False)
    assert snap.manifests[placeholder.digest].leftover == "untag placeholder"
    assert snap.manifests[journal.digest].leftover == "journal"


def test_an_index_is_as_old_as_its_newest_image_unless_it_says_otherwise() -> None:
    amd, arm = platform_image("amd64", BLOB["c"]), platform_image("arm64", BLOB["d"])
    plain = multi((amd, {}), (arm, {}))
    annotated = multi((amd, {}), annotations={"org.opencontainers.image.created": "2020-05-05T00:00:00Z"})
    configs = {BLOB["c"]: {"created": "2024-01-01T00:00:00Z"}, BLOB["d"]: {"created": "2024-03-01T00:00:00Z"}}
    reader = reader_with(amd, arm, plain, annotated, configs=configs)
    snap = build_snapshot(reader, "acme/api", {"a": plain.digest, "b": annotated.digest}, {})
    assert snap.manifests[plain.digest].created == datetime(2024, 3, 1, tzinfo=UTC)
    assert snap.manifests[annotated.digest].created == datetime(2020, 5, 5, tzinfo=UTC)
    assert snap.manifests[amd.digest].created == datetime(2024, 1, 1, tzinfo=UTC)


def test_without_need_created_no_age_is_recorded() -> None:
    img = platform_image("amd64", BLOB["c"])
    snap = build_snapshot(reader_with(img, configs={BLOB["c"]: {"created": "2024-01-01T00:00:00Z"}}), "acme/api",
                          {"v1": img.digest}, {}, need_created=False)
    assert snap.manifests[img.digest].created is None


# --- the bounded pool ------------------------------------------------------------------------------


def test_parallel_keeps_the_order_of_results_and_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    run = parallel(lambda x: x * 2, [3, 1, 2], workers=2, progress=lambda d, t: seen.append((d, t)))
    assert run.results == [6, 2, 4] and not run.errors
    assert seen[0] == (0, 3) and seen[-1] == (3, 3)


def test_parallel_never_runs_more_than_workers_at_once() -> None:
    lock, state = threading.Lock(), {"now": 0, "max": 0}

    def work(_: int) -> None:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1

    parallel(work, list(range(30)), workers=3)
    assert state["max"] <= 3


def test_parallel_stops_on_the_first_error_and_says_what_never_started() -> None:
    def work(x: int) -> int:
        if x == 0:
            raise ValueError("boom")
        time.sleep(0.05)
        return x

    run = parallel(work, list(range(20)), workers=1)
    assert isinstance(run.errors[0], ValueError)
    assert run.not_started and 19 in run.not_started
    assert all(run.results[i] is None for i in run.not_started)


def test_parallel_can_collect_every_error_instead() -> None:
    run = parallel(lambda x: 1 // x, [1, 0, 2, 0], workers=2, stop_on_error=False)
    assert sorted(run.errors) == [1, 3] and run.results[0] == 1 and run.results[2] == 0


def test_reader_map_raises_the_first_error() -> None:
    reader = Reader(None, "x")  # type: ignore[arg-type]
    with pytest.raises(ZeroDivisionError):
        reader.map("phase", lambda x: 1 // x, [1, 0])
