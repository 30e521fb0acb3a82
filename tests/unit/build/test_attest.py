"""A target's ``attest`` list from bakery.yaml's ``provenance``/``sbom``/``attest`` (image over top level, type by
type), as bake reads it on each buildx (the ``--print`` check), and as the skip's input digest sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bakery.build import bakefile, inputs
from bakery.build.generate import compare_with_print, evaluate, evaluated_targets
from bakery.capabilities import Capabilities, attest_entry
from bakery.config import Config, validate

OLD, NEW = Capabilities((0, 13, 1)), Capabilities((0, 29, 1))
VARIABLES = {"BAKERY_REGISTRY": "127.0.0.1:5000/acme", "BAKERY_TAG": "t", "BAKERY_CACHE_SCOPE": "main"}


def make_config(tmp_path: Path, image: dict[str, Any] | None = None, **top: Any) -> Config:
    (tmp_path / "api").mkdir(exist_ok=True)
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    data = {"registry": "127.0.0.1:5000/acme", "platform_groups": {"amd64": ["linux/amd64"]},
            "images": {"api": {"context": "api", **(image or {})}, "web": {"context": "api"}}, **top}
    return validate(data, tmp_path, "bakery.yaml")


def attest_of(config: Config, target: str = "api-amd64") -> list[Any]:
    return list(bakefile.document(config)["target"][target]["attest"])


def test_without_keys_a_target_attests_provenance_min_only(tmp_path: Path) -> None:
    assert attest_of(make_config(tmp_path)) == ["type=provenance,mode=min"]


def test_a_top_level_sbom_adds_an_sbom_entry_to_every_target(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, sbom=True)
    assert attest_of(cfg) == attest_of(cfg, "web-amd64") == ["type=provenance,mode=min", "type=sbom"]


def test_an_image_sbom_overrides_the_top_level(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"sbom": False}, sbom=True)
    assert attest_of(cfg) == ["type=provenance,mode=min"]
    assert attest_of(cfg, "web-amd64") == ["type=provenance,mode=min", "type=sbom"]


def test_an_image_provenance_overrides_the_top_level(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"provenance": "max"}, provenance=False)
    assert attest_of(cfg) == ["type=provenance,mode=max"]
    assert attest_of(cfg, "web-amd64") == ["type=provenance,disabled=true"]


def test_an_image_provenance_false_disables_it(tmp_path: Path) -> None:
    assert attest_of(make_config(tmp_path, {"provenance": False})) == ["type=provenance,disabled=true"]


def test_attest_entries_are_carried_verbatim_provenance_first(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"attest": ["type=sbom,generator=r.example/scan:1", "type=provenance,mode=max"]})
    assert attest_of(cfg) == ["type=provenance,mode=max", "type=sbom,generator=r.example/scan:1"]


def test_top_level_attest_entries_apply_to_every_image_unless_it_sets_that_type(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"sbom": False}, attest=["type=sbom,generator=r.example/scan:1"])
    assert attest_of(cfg) == ["type=provenance,mode=min"]
    assert attest_of(cfg, "web-amd64") == ["type=provenance,mode=min", "type=sbom,generator=r.example/scan:1"]


def test_an_image_attest_entry_overrides_the_top_level_shorthand(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"attest": ["type=provenance,mode=max,builder-id=ci"]}, provenance="min", sbom=True)
    assert attest_of(cfg) == ["type=provenance,mode=max,builder-id=ci", "type=sbom"]


def test_an_entry_reaches_buildkit_unchanged_through_bakes_templates(tmp_path: Path) -> None:
    entry = "type=sbom,generator=r.example/scan:${X}"
    cfg = make_config(tmp_path, {"attest": [entry]})
    assert attest_of(cfg)[1] == "type=sbom,generator=r.example/scan:$${X}"
    assert evaluate(attest_of(cfg), VARIABLES)[1] == entry


def test_an_imported_bake_attest_entry_replaces_bakerys_entry_of_its_type(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"bake": {"attest": [{"type": "sbom", "generator": "x"}]}}, sbom=True)
    assert attest_of(cfg) == ["type=provenance,mode=min", {"type": "sbom", "generator": "x"}]


def printed(doc: dict[str, Any], caps: Capabilities) -> dict[str, Any]:
    """What that buildx's ``--print`` shows for the document (from the evaluated targets, in its form)."""
    targets = evaluated_targets(doc, VARIABLES)["target"]
    return {"target": {n: {k: caps.printed(k, v) for k, v in t.items()} for n, t in targets.items()}}


def test_the_print_check_accepts_every_attest_form_on_both_buildx_versions(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, {"provenance": False, "attest": ["type=sbom,generator=r.example/s:1,disabled=false"]},
                      sbom=True)
    doc = bakefile.document(cfg)
    for caps in (OLD, NEW):
        assert compare_with_print(doc, printed(doc, caps), VARIABLES, caps) == []


def test_0_20_prints_disabled_as_a_boolean_shown_only_when_true() -> None:
    assert attest_entry("type=provenance,disabled=true") == {"type": "provenance", "disabled": True}
    assert attest_entry("type=provenance,mode=max,disabled=false") == {"type": "provenance", "mode": "max"}
    assert NEW.printed("attest", ["type=sbom,\"generator=a,b\""]) == [{"type": "sbom", "generator": "a,b"}]


def test_the_print_check_catches_an_sbom_entry_bake_did_not_read(tmp_path: Path) -> None:
    doc = bakefile.document(make_config(tmp_path, sbom=True))
    shown = printed(doc, NEW)
    shown["target"]["api-amd64"]["attest"] = [{"type": "provenance", "mode": "min"}]
    assert compare_with_print(doc, shown, VARIABLES, NEW) == [
        "target api-amd64: attest is [{'type': 'provenance', 'mode': 'min'}] in bake, generated "
        "[{'type': 'provenance', 'mode': 'min'}, {'type': 'sbom'}]"]


def test_turning_the_sbom_on_changes_the_input_digest(tmp_path: Path) -> None:
    def digest(cfg: Config) -> str | None:
        targets = evaluated_targets(bakefile.document(cfg), VARIABLES)["target"]
        found = inputs.compute(tmp_path, targets, ["api-amd64"], lambda ref: None, inputs.StatCache(), {})
        return found["api-amd64"].digest
    plain, with_sbom = digest(make_config(tmp_path)), digest(make_config(tmp_path, {"sbom": True}))
    assert plain and with_sbom and plain != with_sbom
