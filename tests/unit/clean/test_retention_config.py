"""bakery.clean.retention_config: the ``retention:`` section -> Policy, every problem reported at once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bakery.clean.model import Policy, Rule
from bakery.clean.retention_config import parse_duration, parse_policy
from bakery.errors import ConfigError, ConfigErrors


# --- parse_policy --------------------------------------------------------------------------


def test_parse_policy_reads_the_documented_shape() -> None:
    data = {
        "rules": [
            {"match": "v.*", "keep": "all"},
            {"match": "pr-.*", "keep_last": 3, "older_than": "2w", "images": ["web"]},
        ],
        "protect": ["release-.*"],
        "untagged": 2,
    }
    assert parse_policy(data, "bakery.yaml") == Policy(
        rules=(
            Rule("v.*", keep_all=True),
            Rule("pr-.*", keep_last=3, older_than=timedelta(weeks=2), images=("web",)),
        ),
        protect=("release-.*",),
        untagged=2,
    )


def test_parse_policy_of_an_empty_mapping_keeps_everything() -> None:
    assert parse_policy({}, "bakery.yaml") == Policy(rules=(), protect=(), untagged="keep", protect_defaults=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        ("2w", timedelta(weeks=2)),
        ("0d", timedelta(0)),
    ],
)
def test_parse_duration_accepts_minutes_hours_days_weeks(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def config_error(data: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_policy(data, "bakery.yaml")  # type: ignore[arg-type]
    assert info.value.source == "bakery.yaml"
    return info.value


def test_unknown_rule_key_is_rejected_with_the_closest_suggestion() -> None:
    rules = [{"match": "a", "keep": "all"}, {"match": "b", "keep_last": 1}, {"match": ".*", "keep_lats": 3}]
    err = config_error({"rules": rules})
    assert err.key == "retention.rules[2].keep_lats"
    assert "did you mean 'keep_last'?" in err.message


def test_unknown_top_level_key_is_rejected_with_the_closest_suggestion() -> None:
    err = config_error({"protekt": []})
    assert err.key == "retention.protekt"
    assert "did you mean 'protect'?" in err.message


def test_bad_match_regex_is_rejected_with_its_key_path() -> None:
    err = config_error({"rules": [{"match": "v(", "keep_last": 1}]})
    assert err.key == "retention.rules[0].match"
    assert "'v('" in err.message


def test_bad_protect_regex_is_rejected_with_its_key_path() -> None:
    assert config_error({"protect": ["ok", "[x"]}).key == "retention.protect[1]"


@pytest.mark.parametrize("value", ["30", "30 days", "-5d", "1y", 30, "d"])
def test_bad_duration_is_rejected_with_key_path_and_value(value: object) -> None:
    err = config_error({"rules": [{"match": ".*", "older_than": value}]})
    assert err.key == "retention.rules[0].older_than"
    assert repr(value) in err.message


@pytest.mark.parametrize("value", [-1, True, "3", 1.5])
def test_keep_last_must_be_a_non_negative_integer(value: object) -> None:
    err = config_error({"rules": [{"match": ".*", "keep_last": value}]})
    assert err.key == "retention.rules[0].keep_last"
    assert repr(value) in err.message


@pytest.mark.parametrize("value", ["purge", -2, True])
def test_untagged_must_be_keep_delete_or_a_count(value: object) -> None:
    assert config_error({"untagged": value}).key == "retention.untagged"


def test_rule_needs_an_action() -> None:
    err = config_error({"rules": [{"match": "pr-.*"}]})
    assert err.key == "retention.rules[0]"
    assert "keep_last: 0" in err.message


def test_keep_all_cannot_be_combined_with_keep_last() -> None:
    assert config_error({"rules": [{"match": ".*", "keep": "all", "keep_last": 1}]}).key == "retention.rules[0].keep"


def test_rule_without_match_is_rejected() -> None:
    assert config_error({"rules": [{"keep_last": 1}]}).key == "retention.rules[0].match"


def test_key_path_prefix_can_be_chosen_by_the_caller() -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy({"untagged": "x"}, "images.yaml", key="targets.web.retention")
    assert str(info.value).startswith("images.yaml: targets.web.retention.untagged: ")


# --- every problem at once --------------------------------------------------------------------------


def problems(data: object) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        parse_policy(data, "bakery.yaml")  # type: ignore[arg-type]
    return [str(e) for e in info.value.errors]


def test_two_mistakes_in_different_places_are_reported_together() -> None:
    assert problems({"rules": [{"match": "v(", "keep_last": 1}], "untagged": "purge"}) == [
        "bakery.yaml: retention.rules[0].match: invalid regex 'v(': missing ), unterminated subpattern at position 1",
        'bakery.yaml: retention.untagged: expected "keep", "delete" or a non-negative integer, got \'purge\'',
    ]


def test_two_mistakes_in_one_rule_and_one_in_another_are_all_reported() -> None:
    rules = [{"match": ".*", "keep_last": -1, "override_defaults": "yes"}, {"match": "pr-.*", "older_than": "1y"}]
    keys = [line.split(": ")[1] for line in problems({"rules": rules, "protekt": []})]
    assert keys == ["retention.protekt", "retention.rules[0].keep_last", "retention.rules[0].override_defaults",
                    "retention.rules[1].older_than"]


def test_a_misspelt_action_is_one_mistake_not_two() -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy({"rules": [{"match": "pr-.*", "keep_lats": 0}]}, "bakery.yaml")
    assert str(info.value) == ("bakery.yaml: retention.rules[0].keep_lats: unknown key 'keep_lats'; "
                               "did you mean 'keep_last'?")


def test_a_rule_naming_an_unknown_image_is_checked_with_the_rest() -> None:
    data = {"rules": [{"match": ".*", "keep_last": 1, "images": ["web", "apii"]}], "untagged": -1}
    with pytest.raises(ConfigErrors) as info:
        parse_policy(data, "bakery.yaml", images=["api", "web"])
    assert [e.key for e in info.value.errors] == ["retention.rules[0].images[1]", "retention.untagged"]
    assert "unknown image 'apii'; did you mean api?" in str(info.value)
