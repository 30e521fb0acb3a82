"""bakery.clean.policy: what clean derives from bakery.yaml (targets, the retention policy with the project's
built-in tags, whether ages are needed) and the checks of the --local flags."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bakery.clean import policy as clean
from bakery.clean.model import Policy, Rule
from bakery.config import Config, load
from bakery.errors import BakeryError, ConfigError, ConfigErrors

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BASE = """
registry: 127.0.0.1:5000/acme
platform_groups:
  amd64: [linux/amd64]
  arm: [linux/arm64, linux/arm/v7]
images:
  api: {context: api}
  worker: {context: worker, repository: team/worker}
"""


def project(tmp_path: Path, extra: str = "") -> Config:
    for name in ("api", "worker"):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text(BASE + extra)
    return load(tmp_path / "bakery.yaml")


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BAKERY_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)


# --- from bakery.yaml ------------------------------------------------------------------------------


def test_policy_knows_the_projects_intermediate_refs_and_cache_tags(tmp_path: Path) -> None:
    policy = clean.policy_for(project(tmp_path))
    assert policy.intermediate == ("{tag}-amd64", "{tag}-arm")
    (pattern,) = policy.builtin
    assert re.fullmatch(pattern, "cache-arm-main") and re.fullmatch(pattern, "cache-amd64-feature.x")
    assert not re.fullmatch(pattern, "cache-riscv-main")


def test_a_custom_cache_ref_and_intermediate_tag_shape_the_built_in_tags(tmp_path: Path) -> None:
    extra = ('cache: {ref: "{registry}/{repository}:bc.{scope}.{group}"}\n'
             'intermediate_tag: "{group}--{tag}"\n')
    policy = clean.policy_for(project(tmp_path, extra))
    assert policy.intermediate == ("amd64--{tag}", "arm--{tag}")
    assert re.fullmatch(policy.builtin[0], "bc.main.amd64")


def test_retention_is_read_from_bakery_yaml(tmp_path: Path) -> None:
    policy = clean.policy_for(project(tmp_path, "retention:\n  rules:\n    - {match: 'pr-.*', keep_last: 0}\n"))
    assert policy.rules == (Rule("pr-.*", keep_last=0),)


def test_a_rule_naming_an_unknown_image_is_a_config_error(tmp_path: Path) -> None:
    cfg = project(tmp_path, "retention:\n  rules:\n    - {match: '.*', keep_last: 1, images: [apii]}\n")
    with pytest.raises(ConfigError) as info:
        clean.policy_for(cfg)
    assert str(info.value) == ("bakery.yaml: retention.rules[0].images[0]: unknown image 'apii'; "
                               "did you mean api?")


def test_every_retention_mistake_in_bakery_yaml_is_reported_at_once(tmp_path: Path) -> None:
    cfg = project(tmp_path, "retention:\n  untagged: purge\n  rules:\n"
                            "    - {match: '.*', keep_last: 1, images: [apii]}\n    - {match: '(', keep_last: 1}\n")
    with pytest.raises(ConfigErrors) as info:
        clean.policy_for(cfg)
    assert str(info.value).splitlines() == [
        "bakery.yaml: retention.rules[0].images[0]: unknown image 'apii'; did you mean api?",
        "bakery.yaml: retention.rules[1].match: invalid regex '(': missing ), unterminated subpattern at position 0",
        'bakery.yaml: retention.untagged: expected "keep", "delete" or a non-negative integer, got \'purge\'',
    ]


def test_targets_are_the_image_repositories_under_the_registry(tmp_path: Path) -> None:
    got = clean.targets(project(tmp_path))
    assert got == [clean.Target("api", "127.0.0.1:5000/acme/api", "acme/api"),
                   clean.Target("worker", "127.0.0.1:5000/acme/team/worker", "acme/team/worker")]


def test_image_flag_narrows_the_targets_and_names_a_typo(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert [t.image for t in clean.targets(cfg, ["worker"])] == ["worker"]
    with pytest.raises(BakeryError, match="--image wroker: no such image in bakery.yaml; did you mean worker"):
        clean.targets(cfg, ["wroker"])


def test_targets_follow_bakery_registry_like_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKERY_REGISTRY", "127.0.0.1:5001/other")
    assert clean.targets(project(tmp_path), ["api"])[0].ref == "127.0.0.1:5001/other/api"


@pytest.mark.parametrize(("policy", "needed"), [
    (Policy(), False),
    (Policy((Rule("pr-.*", keep_last=0),)), False),
    (Policy((Rule("pr-.*", keep_last=0),), untagged="delete"), False),
    (Policy((Rule(".*", keep_last=3),)), True),
    (Policy((Rule(".*", older_than=NOW - NOW),)), True),
    (Policy(untagged=2), True),
])
def test_configs_are_read_only_when_a_decision_depends_on_age(policy: Policy, needed: bool) -> None:
    assert clean.needs_created(policy) is needed


# --- local cleanup flags ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["10gb", "512MB", "1.5g", "1000000", "20GiB"])
def test_keep_storage_accepts_sizes(size: str) -> None:
    assert clean.check_size(size) == size


@pytest.mark.parametrize("size", ["ten", "10 parsecs", "-1gb", ""])
def test_keep_storage_rejects_what_is_not_a_size(size: str) -> None:
    with pytest.raises(BakeryError, match="--keep-storage"):
        clean.check_size(size)


def test_filters_must_be_key_value() -> None:
    assert clean.check_filter("until=24h", "--filter") == "until=24h"
    with pytest.raises(BakeryError, match="--filter 'until': expected KEY=VALUE"):
        clean.check_filter("until", "--filter")
