"""The skip phases (bakery.build.skip) against the in-memory registry: record, look up, reuse."""

from __future__ import annotations

import json
from typing import Any

from bakery.build import skip
from bakery.build.inputs import TargetInputs
from bakery.oci.registry import OCI_INDEX, OCI_MANIFEST
from tests.support.registry import FakeRegistry

REPO = "acme/api"
INPUTS = "sha256:" + "ab" * 32


def group_result(reg: FakeRegistry, tag: str, platforms: list[str], stamp: str | None = INPUTS) -> str:
    entries = []
    for p in platforms:
        os_, arch = p.split("/")[:2]
        image = reg.add_json(REPO, {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "arch": arch})
        entries.append({"mediaType": OCI_MANIFEST, "digest": image, "size": 10,
                        "platform": {"os": os_, "architecture": arch}})
    body: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    if stamp:
        body["annotations"] = {skip.ANNOTATION: stamp}
    return reg.add_json(REPO, body, tag)


def where(tag: str = "v2-amd64", platforms: tuple[str, ...] = ("linux/amd64",)) -> skip.Where:
    return skip.Where(REPO, tag, platforms)


def recorded(reg: FakeRegistry, tag: str = "v1-amd64") -> str:
    digest = group_result(reg, tag, ["linux/amd64"])
    m = reg.manifests[REPO][digest]
    skip.record(reg, REPO, "api-amd64", INPUTS, "v1", {"mediaType": m.media_type, "digest": digest,
                                                        "size": len(m.raw)})
    return digest


def test_a_recorded_result_is_found_and_copied_byte_for_byte() -> None:
    reg = FakeRegistry()
    previous = recorded(reg)
    decision = skip.decide(reg, {"api-amd64": where()}, {"api-amd64": TargetInputs("api-amd64", INPUTS)})
    assert list(decision.unchanged) == ["api-amd64"] and decision.unchanged["api-amd64"].since == "v1"
    assert skip.reuse(reg, decision, {"api-amd64": where()}) == {"api-amd64": previous}
    assert reg.tag_map[REPO]["v2-amd64"] == previous
    assert skip.report(decision, dry_run=False) == [
        f"api-amd64: unchanged since v1 (inputs {INPUTS}), not built"]


def test_the_record_is_a_small_artifact_under_a_cache_tag_whose_subject_is_the_result() -> None:
    reg = FakeRegistry()
    previous = recorded(reg)
    tag = skip.lookup_tag(INPUTS)
    assert tag == "cache-inputs-" + "ab" * 32 and len(tag) <= 128
    body = json.loads(reg.get_manifest(REPO, tag).raw)
    assert body["subject"]["digest"] == previous and body["artifactType"] == skip.ARTIFACT_TYPE
    assert body["annotations"] == {skip.ANNOTATION: INPUTS, skip.TAG_ANNOTATION: "v1",
                                   skip.TARGET_ANNOTATION: "api-amd64"}
    assert reg.blobs[REPO][body["config"]["digest"]] == b"{}"


def test_no_record_other_inputs_a_gone_result_or_other_platforms_mean_build() -> None:
    reg = FakeRegistry()
    other = TargetInputs("api-amd64", "sha256:" + "cd" * 32)
    assert skip.find_previous(reg, where(), other) == "no result with these inputs yet"
    previous = recorded(reg)
    assert "holds" in str(skip.find_previous(reg, where(platforms=("linux/arm64",)),
                                             TargetInputs("api-amd64", INPUTS)))
    reg.delete_manifest(REPO, previous)
    assert skip.find_previous(reg, where(), TargetInputs("api-amd64", INPUTS)) == "previous result is gone"
    unseen = TargetInputs("api-amd64", None, ("ADD https://x (remote content)",))
    assert skip.find_previous(reg, where(), unseen) == "inputs bakery cannot see: ADD https://x (remote content)"


def test_a_result_stamped_with_other_inputs_is_not_reused() -> None:
    reg = FakeRegistry()
    digest = group_result(reg, "v1-amd64", ["linux/amd64"], stamp="sha256:" + "ee" * 32)
    m = reg.manifests[REPO][digest]
    skip.record(reg, REPO, "api-amd64", INPUTS, "v1", {"mediaType": m.media_type, "digest": digest,
                                                        "size": len(m.raw)})
    assert "carries other inputs" in str(skip.find_previous(reg, where(), TargetInputs("api-amd64", INPUTS)))


def test_dry_run_says_what_would_be_skipped_and_why_the_rest_is_built() -> None:
    reg = FakeRegistry()
    recorded(reg)
    decision = skip.decide(reg, {"api-amd64": where(), "api-arm": where("v2-arm", ("linux/arm64",))},
                           {"api-amd64": TargetInputs("api-amd64", INPUTS),
                            "api-arm": TargetInputs("api-arm", "sha256:" + "0" * 64)})
    assert skip.report(decision, dry_run=True) == [
        f"would skip api-amd64: unchanged since v1 (inputs {INPUTS}), not built",
        "would build api-arm: no result with these inputs yet"]


def test_the_annotation_overlay_keeps_the_targets_own_annotations_and_marks_only_indexes() -> None:
    targets = {"a": {"platforms": ["linux/amd64", "linux/arm64"], "annotations": ["index:x=1"]},
               "b": {"platforms": ["linux/amd64"], "attest": ["type=provenance,disabled=true"]},
               "c": {"platforms": ["linux/amd64"], "attest": ["type=provenance,mode=min"]}}
    got = {n: TargetInputs(n, INPUTS) for n in targets}
    overlay = skip.annotation_overlay(targets, got, list(targets), {"target": {"c": {"labels": {"l": "v"}}}})
    assert overlay == {"target": {"a": {"annotations": ["index:x=1", f"index:{skip.ANNOTATION}={INPUTS}"]},
                                  "c": {"labels": {"l": "v"}, "annotations": [f"index:{skip.ANNOTATION}={INPUTS}"]}}}
    assert skip.annotation_overlay(targets, {}, list(targets), None) is None


def test_the_subject_comes_from_bake_metadata_or_the_registry() -> None:
    reg = FakeRegistry()
    digest = group_result(reg, "v1-amd64", ["linux/amd64"])
    desc = {"mediaType": OCI_INDEX, "digest": digest, "size": 5}
    assert skip.subject_of(reg, REPO, {"containerimage.descriptor": desc}) == desc
    assert skip.subject_of(reg, REPO, {"containerimage.digest": digest})["digest"] == digest  # type: ignore[index]
    assert skip.subject_of(reg, REPO, {}) is None


def test_the_per_commit_labels_are_no_input_but_the_version_and_the_users_are() -> None:
    overlay = {"target": {"app-amd64": {
        "labels": {"org.opencontainers.image.revision": "abc", "org.opencontainers.image.created": "2026-12-01",
                   "org.opencontainers.image.version": "1.0.0", "team": "core"},
        "annotations": ["org.opencontainers.image.revision=abc", "index:org.opencontainers.image.created=x",
                        "org.opencontainers.image.version=1.0.0"],
        "args": {"SOURCE_DATE_EPOCH": "1764547200", "X": "1"}}}}
    assert skip.commit_free(overlay) == {"target": {"app-amd64": {
        "labels": {"org.opencontainers.image.version": "1.0.0", "team": "core"},
        "annotations": ["org.opencontainers.image.version=1.0.0"], "args": {"X": "1"}}}}
