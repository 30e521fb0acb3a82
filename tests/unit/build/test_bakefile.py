"""The bake model: naming, groups, variables, cache refs, escaping, determinism, HCL/JSON writers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import pytest

from bakery.build import bakefile
from bakery.build.generate import compare_with_print, evaluate, render_files
from bakery.capabilities import Capabilities
from bakery.config import Config, validate
from bakery.errors import BakeryError


def make_config(tmp_path: Path, **extra: Any) -> Config:
    for name in ("api", "worker", "static"):
        (tmp_path / "svc" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "svc" / name / "Dockerfile").write_text("FROM scratch\n")
    data: dict[str, Any] = {
        "registry": "127.0.0.1:5000/acme",
        "platform_groups": {"amd64": ["linux/amd64"], "arm": ["linux/arm64", "linux/arm/v7"]},
        "images": {"api": {"context": "svc/api"},
                   "worker": {"context": "svc/worker", "target": "runtime", "args": {"GREETING": "hi ${USER}"}},
                   "static": {"context": "svc/static", "platform_groups": ["amd64"]}},
    }
    data.update(extra)
    return validate(data, tmp_path, "bakery.yaml")


def test_one_target_per_image_and_group(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path))
    assert list(doc["target"]) == ["api-amd64", "api-arm", "worker-amd64", "worker-arm", "static-amd64"]
    assert doc["target"]["api-arm"]["platforms"] == ["linux/arm64", "linux/arm/v7"]


def test_groups_per_platform_group_per_image_and_default(tmp_path: Path) -> None:
    groups = bakefile.document(make_config(tmp_path))["group"]
    assert groups["default"]["targets"] == ["api-amd64", "api-arm", "worker-amd64", "worker-arm", "static-amd64"]
    assert groups["arm"]["targets"] == ["api-arm", "worker-arm"]
    assert groups["amd64"]["targets"] == ["api-amd64", "worker-amd64", "static-amd64"]
    assert groups["static"]["targets"] == ["static-amd64"]


def test_variables_default_to_the_config_and_are_namespaced(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path, tag="1.0"))
    assert doc["variable"] == {"BAKERY_REGISTRY": {"default": "127.0.0.1:5000/acme"},
                               "BAKERY_TAG": {"default": "1.0"}, "BAKERY_CACHE_SCOPE": {"default": "main"}}


def test_targets_tag_their_per_group_intermediate_ref(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path))
    assert doc["target"]["api-arm"]["tags"] == ["${BAKERY_REGISTRY}/api:${BAKERY_TAG}-arm"]


def test_each_target_writes_its_own_registry_cache_ref_with_mode_max(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path))
    refs = [t["cache-to"][0] for t in doc["target"].values()]
    assert refs[1] == "type=registry,ref=${BAKERY_REGISTRY}/api:cache-arm-${BAKERY_CACHE_SCOPE},mode=max"
    assert len(set(refs)) == len(refs)   # no two targets share a cache ref


def test_cache_from_reads_own_scope_then_the_fallback_scope(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path, cache={"fallback_scope": "develop"}))
    got = evaluate_expr(doc["target"]["api-amd64"]["cache-from"], scope="feature-x")
    assert got == ["type=registry,ref=127.0.0.1:5000/acme/api:cache-amd64-feature-x",
                   "type=registry,ref=127.0.0.1:5000/acme/api:cache-amd64-develop"]


def evaluate_expr(expr: str, scope: str) -> list[str]:
    """Evaluate the distinct([...]) expression the way bake does, for a unit test."""
    inner = expr[len("${distinct("):-2]
    items = json.loads(inner.replace("${BAKERY_REGISTRY}", "127.0.0.1:5000/acme")
                       .replace("${BAKERY_CACHE_SCOPE}", scope))
    return list(dict.fromkeys(items))


def test_registry_cache_options_go_to_cache_to_only(tmp_path: Path) -> None:
    cache = {"options": {"image-manifest": True, "oci-mediatypes": True, "compression": "zstd"}}
    t = bakefile.document(make_config(tmp_path, cache=cache))["target"]["api-amd64"]
    assert t["cache-to"] == ["type=registry,ref=${BAKERY_REGISTRY}/api:cache-amd64-${BAKERY_CACHE_SCOPE},mode=max,"
                             "compression=zstd,image-manifest=true,oci-mediatypes=true"]
    assert "image-manifest" not in str(t["cache-from"])


def test_gha_caches_one_scope_per_image_group_and_cache_scope_and_reads_the_fallback(tmp_path: Path) -> None:
    t = bakefile.document(make_config(tmp_path, cache={"type": "gha"}))["target"]["api-arm"]
    assert t["cache-to"] == ["type=gha,scope=api-arm-${BAKERY_CACHE_SCOPE},mode=max"]
    assert evaluate_expr(t["cache-from"], scope="pr-7") == ["type=gha,scope=api-arm-pr-7", "type=gha,scope=api-arm-main"]


def test_s3_and_azblob_name_their_caches_and_take_their_connection_options_both_ways(tmp_path: Path) -> None:
    s3 = {"type": "s3", "fallback_scope": None, "options": {"region": "eu-west-1", "bucket": "b", "compression": "zstd"}}
    t = bakefile.document(make_config(tmp_path, cache=s3))["target"]["api-amd64"]
    assert t["cache-from"] == ["type=s3,name=api-amd64-${BAKERY_CACHE_SCOPE},bucket=b,region=eu-west-1"]
    assert t["cache-to"] == ["type=s3,name=api-amd64-${BAKERY_CACHE_SCOPE},mode=max,bucket=b,region=eu-west-1,"
                             "compression=zstd"]
    az = {"type": "azblob", "fallback_scope": None, "options": {"account_url": "https://a.blob.core.windows.net"}}
    t = bakefile.document(make_config(tmp_path, cache=az))["target"]["api-amd64"]
    assert t["cache-from"] == ["type=azblob,name=api-amd64-${BAKERY_CACHE_SCOPE},account_url=https://a.blob.core.windows.net"]


def test_without_a_fallback_scope_cache_from_is_the_own_ref(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path, cache={"fallback_scope": None}))
    assert doc["target"]["api-amd64"]["cache-from"] == [
        "type=registry,ref=${BAKERY_REGISTRY}/api:cache-amd64-${BAKERY_CACHE_SCOPE}"]


@pytest.mark.parametrize("ctype, cache_to, cache_from", [
    ("local", ["type=local,dest=bake/cache/api-arm,mode=max"], ["type=local,src=bake/cache/api-arm"]),
    ("inline", ["type=inline"], ["type=registry,ref=${BAKERY_REGISTRY}/api:${BAKERY_TAG}-arm"]),
])
def test_other_cache_types(tmp_path: Path, ctype: str, cache_to: list[str], cache_from: list[str]) -> None:
    t = bakefile.document(make_config(tmp_path, cache={"type": ctype}))["target"]["api-arm"]
    assert t["cache-to"] == cache_to and t["cache-from"] == cache_from


def test_cache_none_emits_no_cache_attributes(tmp_path: Path) -> None:
    t = bakefile.document(make_config(tmp_path, cache={"type": "none"}))["target"]["api-arm"]
    assert "cache-to" not in t and "cache-from" not in t


def test_provenance_is_explicit(tmp_path: Path) -> None:
    assert bakefile.document(make_config(tmp_path))["target"]["api-arm"]["attest"] == ["type=provenance,mode=min"]
    off = bakefile.document(make_config(tmp_path, provenance=False))["target"]["api-arm"]["attest"]
    assert off == ["type=provenance,disabled=true"]


@pytest.mark.parametrize("raw, escaped", [
    ("${X}", "$${X}"), ("%{ if x }", "%%{ if x }"), ("$${X}", "$$${X}"), ("$", "$"), ("a\"b\\c\nd", "a\"b\\c\nd"),
])
def test_template_sequences_are_escaped(raw: str, escaped: str) -> None:
    assert bakefile.escape(raw) == escaped
    assert evaluate(escaped, {}) == raw


def test_args_and_labels_keys_and_values_are_escaped(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, labels={"k${x}": "v%{y}"})
    t = bakefile.document(cfg)["target"]["worker-arm"]
    assert t["args"] == {"GREETING": "hi $${USER}"}
    assert t["labels"] == {"k$${x}": "v%%{y}"}


def test_output_is_byte_identical_for_the_same_input(tmp_path: Path) -> None:
    a = render_files(make_config(tmp_path, formats=["json", "hcl"]), Capabilities((0, 13, 1)))
    b = render_files(make_config(tmp_path, formats=["json", "hcl"]), Capabilities((0, 13, 1)))
    assert a == b and len(a) == 2


def test_hcl_output_parses_and_matches_the_json_document(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path))
    parsed = hcl2.loads(bakefile.to_hcl(doc))
    targets = {k.strip('"'): v for block in parsed["target"] for k, v in block.items()}
    assert list(targets) == list(doc["target"])
    assert targets["worker-arm"]["args"] == {'"GREETING"': '"hi $${USER}"'}


def test_passthrough_attribute_newer_than_buildx_is_refused(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, images={"api": {"context": "svc/api", "bake": {"network": "host"}}})
    with pytest.raises(BakeryError, match=r"images.api.bake.network: needs buildx >= 0.17, this machine has 0.13.1"):
        bakefile.document(cfg, Capabilities((0, 13, 1)))
    assert bakefile.document(cfg, Capabilities((0, 17, 0)))["target"]["api-amd64"]["network"] == "host"


def test_select_targets_filters_by_group_and_image(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    assert bakefile.select_targets(cfg, ["arm"], []) == ["api-arm", "worker-arm"]
    assert bakefile.select_targets(cfg, [], ["static"]) == ["static-amd64"]
    with pytest.raises(BakeryError, match="--group 'amr' is not a platform group; did you mean arm"):
        bakefile.select_targets(cfg, ["amr"], [])
    with pytest.raises(BakeryError, match="no target matches"):
        bakefile.select_targets(cfg, ["arm"], ["static"])


@pytest.mark.parametrize(("names", "targets"), [
    (["api-arm"], ["api-arm"]),
    (["api"], ["api-amd64", "api-arm"]),
    (["arm"], ["api-arm", "worker-arm"]),
    (["static", "arm"], ["api-arm", "worker-arm", "static-amd64"]),
    (["default"], ["api-amd64", "api-arm", "worker-amd64", "worker-arm", "static-amd64"]),
])
def test_positional_names_select_targets_as_the_bake_files_groups_do(tmp_path: Path, names: list[str],
                                                                     targets: list[str]) -> None:
    cfg = make_config(tmp_path)
    assert bakefile.select_targets(cfg, names=names) == targets
    doc = bakefile.document(cfg, Capabilities((0, 13, 1)))
    named = {t for n in names for t in (doc["group"][n]["targets"] if n in doc["group"] else [n])}
    assert set(targets) == named


def test_positional_names_are_filtered_by_group_and_image(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    assert bakefile.select_targets(cfg, ["arm"], [], ["api", "static"]) == ["api-arm"]


def test_an_unknown_positional_name_is_one_line_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(BakeryError, match="target 'wroker' is no target, image or platform group of this bake "
                                          "file; did you mean worker"):
        bakefile.select_targets(make_config(tmp_path), names=["wroker"])


def test_colliding_target_names_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "svc" / "a").mkdir(parents=True)
    (tmp_path / "svc" / "a" / "Dockerfile").write_text("FROM scratch\n")
    data = {"registry": "r.example/x", "platform_groups": {"b-c": ["linux/amd64"], "c": ["linux/arm64"]},
            "images": {"a-b": {"context": "svc/a", "platform_groups": ["c"]},
                       "a": {"context": "svc/a", "platform_groups": ["b-c"]}}}
    with pytest.raises(BakeryError, match="target name 'a-b-c' is produced twice"):
        validate(data, tmp_path, "bakery.yaml")


def test_print_comparison_reports_dropped_attributes() -> None:
    doc = {"target": {"t": {"context": ".", "network": "host", "args": {"A": "$${X}"}}}}
    printed = {"target": {"t": {"context": ".", "args": {"A": "${X}"}}}}
    assert compare_with_print(doc, printed, {}) == ["target t: attribute 'network' was dropped by this buildx"]


def test_print_comparison_reads_the_object_and_escaped_forms_of_buildx_0_20_and_later() -> None:
    doc = {"target": {"t": {"context": ".", "cache-to": ["type=registry,ref=r/x:c,mode=max"],
                            "attest": ["type=provenance,mode=min"], "args": {"A": "hi $${USER} %%{x}"}}}}
    printed = {"target": {"t": {"context": ".", "cache-to": [{"type": "registry", "ref": "r/x:c", "mode": "max"}],
                                "attest": [{"type": "provenance", "mode": "min"}], "args": {"A": "hi $${USER} %%{x}"}}}}
    assert compare_with_print(doc, printed, {}, Capabilities((0, 29, 1))) == []


def test_print_comparison_still_catches_a_changed_attribute_on_buildx_0_29() -> None:
    doc = {"target": {"t": {"context": ".", "cache-to": ["type=registry,ref=r/x:c,mode=max"], "network": "host"}}}
    printed = {"target": {"t": {"context": ".", "cache-to": [{"type": "registry", "ref": "r/x:c", "mode": "min"}]}}}
    assert compare_with_print(doc, printed, {}, Capabilities((0, 29, 1))) == [
        "target t: cache-to is [{'type': 'registry', 'ref': 'r/x:c', 'mode': 'min'}] in bake, generated "
        "[{'type': 'registry', 'ref': 'r/x:c', 'mode': 'max'}]",
        "target t: attribute 'network' was dropped by this buildx"]


def test_print_comparison_on_buildx_0_13_compares_the_csv_form() -> None:
    doc = {"target": {"t": {"context": ".", "cache-to": ["type=registry,ref=r/x:c,mode=max"]}}}
    printed = {"target": {"t": {"context": ".", "cache-to": [{"type": "registry", "ref": "r/x:c", "mode": "max"}]}}}
    assert compare_with_print(doc, printed, {}, Capabilities((0, 13, 1))) != []
