"""bakery.yaml's attestation keys (bakery.config.attest): ``provenance``, ``sbom`` and ``attest`` at the top level and
per image; every bad value is one line naming the file, its line and the key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.config import Config, load
from bakery.config.attest import fields
from bakery.errors import BakeryError, ConfigErrors

HEAD = """\
registry: 127.0.0.1:5000/acme
platform_groups:
  amd64: [linux/amd64]
"""
# line 4 is the first line a test adds at the top level; images start at line 5 + that many lines
IMAGE = """\
images:
  api:
    context: api
"""


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")


def config_text(top: str = "", image: str = "") -> str:
    """HEAD, ``top`` (top-level lines), then image api with ``image`` (lines under it, indented 4)."""
    return HEAD + top + IMAGE + "".join(f"    {line}\n" for line in image.splitlines())


def errors_of(tmp_path: Path, top: str = "", image: str = "") -> list[str]:
    (tmp_path / "bakery.yaml").write_text(config_text(top, image))
    with pytest.raises(BakeryError) as info:
        load(tmp_path / "bakery.yaml")
    err = info.value
    return [str(e) for e in err.errors] if isinstance(err, ConfigErrors) else [str(err)]


def loaded(tmp_path: Path, top: str = "", image: str = "") -> Config:
    (tmp_path / "bakery.yaml").write_text(config_text(top, image))
    return load(tmp_path / "bakery.yaml")


# ----------------------------------------------------------------------------------------------- what is accepted
def test_the_defaults_are_provenance_min_and_no_sbom(tmp_path: Path) -> None:
    cfg = loaded(tmp_path)
    assert (cfg.provenance, cfg.sbom, cfg.attest) == ("min", False, ())
    assert (cfg.images["api"].provenance, cfg.images["api"].sbom, cfg.images["api"].attest) == (None, None, ())


def test_the_keys_are_read_at_both_levels(tmp_path: Path) -> None:
    cfg = loaded(tmp_path, "sbom: true\nattest: ['type=provenance,mode=max']\n",
                 "provenance: false\nsbom: false\n")
    assert (cfg.provenance, cfg.sbom, cfg.attest) == ("min", True, ("type=provenance,mode=max",))
    assert (cfg.images["api"].provenance, cfg.images["api"].sbom) == (False, False)


def test_an_image_provenance_of_null_means_none(tmp_path: Path) -> None:
    assert loaded(tmp_path, image="provenance: null\n").images["api"].provenance is False


def test_an_attest_entry_is_kept_as_written(tmp_path: Path) -> None:
    entry = '"type=sbom","generator=r.example/scan:1",scan-context=true'
    cfg = loaded(tmp_path, image=f"attest: ['{entry}']\n")
    assert cfg.images["api"].attest == (entry,)


def test_fields_are_read_as_buildx_reads_csv() -> None:
    assert fields('type=sbom,"generator=a,b","x=say ""hi"""') == ["type=sbom", "generator=a,b", 'x=say "hi"']


# ----------------------------------------------------------------------------------------------- what is refused
def test_a_top_level_sbom_that_is_not_a_boolean(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "sbom: yes please\n") == \
        ["bakery.yaml:4: sbom: expected true or false, got 'yes please'"]


def test_an_image_sbom_that_is_not_a_boolean(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="sbom: 1\n") == ["bakery.yaml:7: images.api.sbom: expected true or false, got 1"]


def test_an_image_provenance_that_is_not_a_mode_suggests_one(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="provenance: maximum\n") == \
        ["bakery.yaml:7: images.api.provenance: 'maximum' is not one of min, max, false; did you mean max?"]


def test_a_provenance_of_true_asks_for_a_mode(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "provenance: true\n") == \
        ["bakery.yaml:4: provenance: true is not a mode: give min or max (or false for none)"]


def test_attest_that_is_not_a_list(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: type=sbom\n") == \
        ["bakery.yaml:7: images.api.attest: expected a list of attest entries such as ['type=sbom'], got str "
         "'type=sbom'"]


def test_an_entry_that_is_not_a_string(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "attest: [{type: sbom}]\n") == \
        ["bakery.yaml:4: attest[0]: expected a string such as 'type=sbom,generator=IMAGE', got dict {'type': 'sbom'}"]


def test_an_entry_without_a_type(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['mode=max']\n") == \
        ["bakery.yaml:7: images.api.attest[0]: 'mode=max' has no type=; start it with type=provenance or type=sbom"]


def test_an_entry_of_an_unknown_type_suggests_one(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=sbon']\n") == \
        ["bakery.yaml:7: images.api.attest[0]: type='sbon' is not an attestation type; did you mean sbom?"]


def test_a_field_that_is_not_key_value(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=sbom,generator']\n") == \
        ["bakery.yaml:7: images.api.attest[0]: 'type=sbom,generator': 'generator' is not KEY=VALUE"]


def test_a_quote_inside_a_field_is_buildx_s_csv_error(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, image="attest: ['type=sbom,generator=\"a,b\"']\n")
    assert msg.startswith("bakery.yaml:7: images.api.attest[0]: 'type=sbom,generator=\"a,b\"': "
                          'bare " in non-quoted-field')


def test_a_key_given_twice_in_an_entry(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=sbom,generator=a,generator=b']\n") == \
        ["bakery.yaml:7: images.api.attest[0]: 'type=sbom,generator=a,generator=b': key 'generator' is given twice "
         "(buildx keeps the last silently)"]


def test_a_key_with_spaces_around_it(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, image="attest: ['type=sbom, generator=a']\n")
    assert msg.endswith("key ' generator' has spaces around it")


def test_an_entry_of_two_lines(tmp_path: Path) -> None:
    [msg] = errors_of(tmp_path, image='attest: ["type=sbom\\ngenerator=a"]\n')
    assert msg.startswith("bakery.yaml:7: images.api.attest[0]: ") and msg.endswith("an attest entry is one line")


def test_a_provenance_entry_with_a_bad_mode(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=provenance,mode=mx']\n") == \
        ["bakery.yaml:7: images.api.attest[0]: mode='mx' is not one of min, max; did you mean max?"]


def test_a_disabled_that_is_not_a_boolean(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=sbom,disabled=yes']\n") == \
        ["bakery.yaml:7: images.api.attest[0]: disabled='yes': expected true or false"]


def test_a_type_given_twice_in_one_list(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=sbom', 'type=sbom,generator=x']\n") == \
        ["bakery.yaml:7: images.api.attest[1]: type=sbom is given twice (also images.api.attest[0]); bake would "
         "keep only the last"]


def test_an_image_sbom_and_an_sbom_entry_of_the_same_image(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="sbom: true\nattest: ['type=sbom,generator=x']\n") == \
        ["bakery.yaml:7: images.api.sbom: type=sbom is also given by images.api.attest[0]; keep one of them"]


def test_a_top_level_provenance_and_a_top_level_provenance_entry(tmp_path: Path) -> None:
    assert errors_of(tmp_path, "provenance: max\nattest: ['type=provenance,mode=min']\n") == \
        ["bakery.yaml:4: provenance: type=provenance is also given by attest[0]; keep one of them"]


def test_attest_and_bake_attest_on_one_image(tmp_path: Path) -> None:
    assert errors_of(tmp_path, image="attest: ['type=sbom']\nbake: {attest: ['type=sbom']}\n") == \
        ["bakery.yaml:8: images.api.bake.attest: images.api.attest is given too; keep the entries in images.api.attest"]


def test_every_bad_value_is_reported_together(tmp_path: Path) -> None:
    assert len(errors_of(tmp_path, "sbom: 2\n", "provenance: mid\nattest: ['type=x']\n")) == 3
