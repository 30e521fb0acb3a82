"""bakery.manifest.drafts, pure parts: index construction from per-arch sources (attestations kept or dropped, never
dangling), platform checks, annotate, inspect rows, the untag placeholder, drafts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakery.manifest import drafts as m
from bakery.errors import BakeryError
from bakery.oci.reference import parse_reference
from bakery.oci.registry import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Manifest, digest_of
from bakery.oci.untag import untag_manifest

IMG_TYPE = "application/vnd.oci.image.manifest.v1+json"


def d(ch: str) -> str:
    return "sha256:" + ch * 64


def image(ch: str, arch: str, variant: str | None = None) -> dict:
    plat = {"architecture": arch, "os": "linux"}
    if variant:
        plat["variant"] = variant
    return {"mediaType": IMG_TYPE, "digest": d(ch), "size": 1000, "platform": plat}


def attestation(ch: str, of: str) -> dict:
    return {"mediaType": IMG_TYPE, "digest": d(ch), "size": 500,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                            "vnd.docker.reference.digest": d(of)}}


AMD, ARM64, ARMV7 = image("a", "amd64"), image("b", "arm64"), image("c", "arm", "v7")
ATT_A, ATT_B, ATT_C = attestation("1", "a"), attestation("2", "b"), attestation("3", "c")


def index(*entries: dict) -> Manifest:
    raw = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()
    return Manifest(digest_of(raw), OCI_INDEX, raw)


# --------------------------------------------------------------------------- sources -> entries
def test_a_buildx_index_contributes_its_images_and_attestations_as_they_are() -> None:
    assert m.source_entries(index(ARM64, ARMV7, ATT_B, ATT_C), None) == [ARM64, ARMV7, ATT_B, ATT_C]


def test_a_single_manifest_becomes_one_entry_with_the_platform_of_its_config() -> None:
    raw = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {}, "layers": []}).encode()
    single = Manifest(digest_of(raw), DOCKER_MANIFEST, raw)
    [entry] = m.source_entries(single, {"architecture": "arm", "os": "linux", "variant": "v7"})
    assert entry == {"mediaType": DOCKER_MANIFEST, "digest": single.digest, "size": len(raw),
                     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}


def test_keep_carries_attestations_over_in_order() -> None:
    sel = m.select_entries([AMD, ATT_A, ARM64, ARMV7, ATT_B, ATT_C], "keep")
    assert list(sel.entries) == [AMD, ATT_A, ARM64, ARMV7, ATT_B, ATT_C] and sel.dropped == ()


def test_drop_leaves_every_attestation_out() -> None:
    sel = m.select_entries([AMD, ATT_A, ARM64, ATT_B], "drop")
    assert list(sel.entries) == [AMD, ARM64]
    assert len(sel.dropped) == 2 and "attestations: drop" in sel.dropped[0]


def test_an_attestation_whose_image_is_missing_is_never_kept() -> None:
    sel = m.select_entries([AMD, ATT_A, ATT_B], "keep")
    assert list(sel.entries) == [AMD, ATT_A]
    assert sel.dropped == ("attestation 222222222222: its image bbbbbbbbbbbb is not in the index",)


def test_a_digest_listed_twice_is_kept_once() -> None:
    assert list(m.select_entries([AMD, ATT_A, AMD, ATT_A], "keep").entries) == [AMD, ATT_A]


def test_an_unknown_attestation_mode_is_an_error() -> None:
    with pytest.raises(BakeryError, match="keep or drop"):
        m.select_entries([AMD], "maybe")


def test_two_images_for_one_platform_are_refused_naming_both_sources() -> None:
    other = image("d", "amd64")
    with pytest.raises(BakeryError, match=r"linux/amd64 is in the index twice \(r/api:a and r/api:d\)"):
        m.check_platforms([AMD, other], {d("a"): "r/api:a", d("d"): "r/api:d"})


def test_an_entry_without_os_or_arch_is_refused_with_the_fix() -> None:
    bare = {**AMD, "platform": {"architecture": "", "os": ""}}
    with pytest.raises(BakeryError, match="manifest.annotate"):
        m.check_platforms([bare])


def test_attestations_do_not_count_as_platforms() -> None:
    m.check_platforms([AMD, ATT_A, ARM64, ATT_B])


def test_index_bytes_are_deterministic_and_an_oci_index() -> None:
    one, two = m.index_bytes([AMD, ATT_A], {"k": "v"}), m.index_bytes([dict(AMD), dict(ATT_A)], {"k": "v"})
    assert one == two
    doc = json.loads(one)
    assert doc["mediaType"] == OCI_INDEX and doc["schemaVersion"] == 2 and doc["annotations"] == {"k": "v"}
    assert [e["digest"] for e in doc["manifests"]] == [d("a"), d("1")]


# --------------------------------------------------------------------------- annotate
def test_annotate_by_platform_sets_the_variant() -> None:
    out = m.annotate([AMD, image("e", "arm")], "linux/arm", variant="v6")
    assert out[1]["platform"] == {"architecture": "arm", "os": "linux", "variant": "v6"}
    assert out[0] == AMD


def test_annotate_by_digest_prefix_overrides_os_and_arch() -> None:
    out = m.annotate([AMD, ARM64], "bbbbbbbbbbbb", os="linux", arch="arm64", variant="v8")
    assert out[1]["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}


def test_annotate_by_source_reference() -> None:
    out = m.annotate([AMD, ARMV7], "r/api:arm", variant="", origins={d("c"): "r/api:arm"})
    assert out[1]["platform"] == {"architecture": "arm", "os": "linux"}


def test_annotate_never_touches_attestations() -> None:
    with pytest.raises(BakeryError, match="no image entry matches"):
        m.annotate([AMD, ATT_A], d("1"), os="linux")


def test_annotate_needs_something_to_set() -> None:
    with pytest.raises(BakeryError, match="nothing to annotate"):
        m.annotate([AMD], "linux/amd64")


def test_annotate_does_not_change_its_input() -> None:
    entries = [image("e", "arm")]
    m.annotate(entries, "linux/arm", variant="v7")
    assert "variant" not in entries[0]["platform"]


# --------------------------------------------------------------------------- inspect
def test_inspect_rows_name_the_image_each_attestation_belongs_to() -> None:
    rows = m.rows_of(index(AMD, ATT_A, ARMV7, ATT_C, attestation("4", "f")))
    assert [(r.platform, r.attestation_of) for r in rows] == [
        ("linux/amd64", ""), ("unknown/unknown", "linux/amd64 (aaaaaaaaaaaa)"), ("linux/arm/v7", ""),
        ("unknown/unknown", "linux/arm/v7 (cccccccccccc)"), ("unknown/unknown", "ffffffffffff (missing)")]
    assert rows[0].size == 1000 and rows[0].media_type == IMG_TYPE


def test_inspect_table_has_one_line_per_entry_under_a_header() -> None:
    text = m.render_rows(m.rows_of(index(AMD, ATT_A)))
    lines = text.splitlines()
    assert lines[0].split() == ["PLATFORM", "DIGEST", "MEDIA", "TYPE", "SIZE", "ATTESTATION", "OF"]
    assert lines[1].split() == ["linux/amd64", d("a"), IMG_TYPE, "1000", "-"]
    assert lines[2].split()[-2:] == ["linux/amd64", "(aaaaaaaaaaaa)"]


def test_inspect_json_lists_entries_with_attestation_of() -> None:
    man = index(AMD, ATT_A)
    data = m.inspect_dict("r/api:1", man, m.rows_of(man))
    assert data["digest"] == man.digest and data["mediaType"] == OCI_INDEX
    assert data["entries"][1] == {"platform": "unknown/unknown", "digest": d("1"), "mediaType": IMG_TYPE, "size": 500,
                                  "attestationOf": "linux/amd64 (aaaaaaaaaaaa)"}


def test_layer_bytes_is_the_sum_of_the_layer_sizes() -> None:
    raw = json.dumps({"config": {"size": 99}, "layers": [{"size": 10}, {"size": 32}]}).encode()
    assert m.layer_bytes(Manifest(digest_of(raw), OCI_MANIFEST, raw)) == 42


# --------------------------------------------------------------------------- untag placeholder
def test_untag_placeholder_is_unique_per_repository_tag_and_previous_digest() -> None:
    one = untag_manifest("acme/api", "1.4.2-amd64", d("a"))
    assert one == untag_manifest("acme/api", "1.4.2-amd64", d("a"))       # deterministic
    others = {untag_manifest("acme/api", "1.4.2-arm", d("a")), untag_manifest("acme/web", "1.4.2-amd64", d("a")),
              untag_manifest("acme/api", "1.4.2-amd64", d("b"))}
    assert one not in others and len(others) == 3


def test_untag_placeholder_is_an_empty_oci_manifest_naming_the_tag() -> None:
    doc = json.loads(untag_manifest("acme/api", "1.4.2-amd64", d("a")))
    assert doc["mediaType"] == OCI_MANIFEST and doc["layers"] == []
    assert doc["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(b"{}"), "size": 2}
    assert doc["annotations"]["dev.bakery.untag"] == "acme/api:1.4.2-amd64"


# --------------------------------------------------------------------------- references and drafts
def test_a_short_name_resolves_under_the_configured_registry() -> None:
    assert str(m.resolve_ref("api:1.4.2", "127.0.0.1:5000/acme")) == "127.0.0.1:5000/acme/api:1.4.2"
    assert str(m.resolve_ref("127.0.0.1:5000/x/api:1", "127.0.0.1:5000/acme")) == "127.0.0.1:5000/x/api:1"


def test_a_short_name_without_a_configured_registry_is_refused() -> None:
    with pytest.raises(BakeryError, match="names no registry"):
        m.resolve_ref("api:1.4.2", None)


def test_a_bad_reference_is_one_clear_error() -> None:
    with pytest.raises(BakeryError, match="path component 'API' is not valid"):
        m.resolve_ref("127.0.0.1:5000/API:1")


def test_draft_round_trips_through_its_file(tmp_path: Path) -> None:
    target = parse_reference("127.0.0.1:5000/acme/api:1.4.2")
    draft = m.Draft(str(target), "keep", [AMD, ATT_A], {d("a"): "api:amd"}, {d("a"): "acme/api"}, {"k": "v"})
    path = m.draft_path(tmp_path, target)
    m.save_draft(path, draft)
    assert path.name == "127.0.0.1_5000_acme_api_1.4.2.json"
    loaded, where = m.load_draft(tmp_path, target)
    assert loaded == draft and where == path
    assert loaded.index() == m.index_bytes([AMD, ATT_A], {"k": "v"})


def test_a_missing_draft_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(BakeryError, match="manifest.create"):
        m.load_draft(tmp_path, parse_reference("r.example/api:1"))


def test_a_corrupt_draft_is_one_clear_error(tmp_path: Path) -> None:
    target = parse_reference("r.example/api:1")
    m.draft_path(tmp_path, target).write_text("{}")
    with pytest.raises(BakeryError, match="not a manifest draft"):
        m.load_draft(tmp_path, target)


def test_a_draft_with_two_images_for_a_platform_cannot_become_an_index() -> None:
    draft = m.Draft("r.example/api:1", "keep", [AMD, image("d", "amd64")])
    with pytest.raises(BakeryError, match="twice"):
        draft.index()
