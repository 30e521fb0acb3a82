"""Unit tests for bakery.release.tags: semver parsing/ordering, tag computation, sanitising, OCI labels."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bakery.errors import BakeryError
from bakery.release.tags import (
    TagError,
    TagOptions,
    Version,
    compute_tags,
    newest_version,
    oci_labels,
    parse_version,
    sanitize_tag,
)

TAG_GRAMMAR = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
SHA = "0123456789abcdef0123456789abcdef01234567"


# --- parse_version -------------------------------------------------------------------------


def test_parse_version_reads_major_minor_patch() -> None:
    v = parse_version("1.4.2")
    assert (v.major, v.minor, v.patch, v.prerelease, v.build) == (1, 4, 2, (), ())


@pytest.mark.parametrize("text", ["v1.4.2", "V1.4.2"])
def test_parse_version_accepts_leading_v(text: str) -> None:
    assert parse_version(text) == Version(1, 4, 2)


def test_parse_version_keeps_raw_text() -> None:
    assert parse_version("v1.4.2").raw == "v1.4.2"


def test_parse_version_splits_prerelease_identifiers() -> None:
    assert parse_version("2.0.0-rc.1").prerelease == ("rc", "1")


def test_parse_version_splits_build_metadata() -> None:
    assert parse_version("1.0.0+build.5").build == ("build", "5")


def test_parse_version_reads_prerelease_and_build_together() -> None:
    v = parse_version("1.0.0-alpha.1+exp.sha.5114f85")
    assert (v.prerelease, v.build) == (("alpha", "1"), ("exp", "sha", "5114f85"))


def test_str_drops_the_v_prefix() -> None:
    assert str(parse_version("v1.4.2")) == "1.4.2"


def test_str_keeps_prerelease_and_build_metadata() -> None:
    assert str(parse_version("v1.0.0-rc.1+build.5")) == "1.0.0-rc.1+build.5"


def test_is_prerelease_true_for_prerelease() -> None:
    assert parse_version("2.0.0-rc.1").is_prerelease


def test_is_prerelease_false_for_build_metadata_only() -> None:
    assert not parse_version("1.0.0+build.5").is_prerelease


def test_parse_version_accepts_hyphens_and_leading_zero_alphanumerics_in_prerelease() -> None:
    assert parse_version("1.0.0-x-y.0a.--").prerelease == ("x-y", "0a", "--")


def test_parse_version_accepts_leading_zeros_in_build_metadata() -> None:
    assert parse_version("1.0.0+001").build == ("001",)


@pytest.mark.parametrize(
    "text",
    [
        "01.2.3",
        "1.02.3",
        "1.2.03",
        "1.2.3-01",
        "1.2",
        "1.2.3.4",
        "1",
        "",
        "v",
        "vv1.2.3",
        " 1.2.3",
        "1.2.3\n",
        "1.2.3-",
        "1.2.3+",
        "1.2.3-rc..1",
        "1.2.3-rc_1",
        "1.2.3+build..1",
        "latest",
        "release-1.2.3",
        "1.2.3-beta!",
        "-1.2.3",
        "\u0661.2.3",
    ],
)
def test_parse_version_rejects_invalid_semver(text: str) -> None:
    with pytest.raises(TagError):
        parse_version(text)


def test_parse_version_rejects_leading_zero_with_value_in_message() -> None:
    with pytest.raises(TagError, match=re.escape("'01.2.3'")):
        parse_version("01.2.3")


def test_tag_error_is_a_bakery_error() -> None:
    with pytest.raises(BakeryError):
        parse_version("nope")


def test_error_message_is_one_line_even_for_multiline_input() -> None:
    with pytest.raises(TagError) as info:
        parse_version("1.2.3\nrm -rf")
    assert "\n" not in str(info.value)


# --- ordering ------------------------------------------------------------------------------


def test_prerelease_chain_orders_per_semver_spec() -> None:
    chain = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ]
    versions = [parse_version(t) for t in chain]
    assert all(a < b for a, b in zip(versions, versions[1:]))
    assert sorted(reversed(versions)) == versions


def test_release_outranks_its_prerelease() -> None:
    assert parse_version("1.0.0-rc.1") < parse_version("1.0.0")


def test_numeric_parts_compare_numerically() -> None:
    assert parse_version("1.10.0") > parse_version("1.9.0")


def test_numeric_prerelease_identifiers_compare_numerically() -> None:
    assert parse_version("1.0.0-2") < parse_version("1.0.0-10")


def test_numeric_prerelease_identifier_ranks_below_alphanumeric() -> None:
    assert parse_version("1.0.0-1") < parse_version("1.0.0-alpha")


def test_alphanumeric_prerelease_identifiers_compare_in_ascii_order() -> None:
    assert parse_version("1.0.0-Beta") < parse_version("1.0.0-alpha")


def test_longer_prerelease_wins_when_prefix_equal() -> None:
    assert parse_version("1.0.0-alpha") < parse_version("1.0.0-alpha.1")


def test_build_metadata_is_ignored_for_precedence() -> None:
    a, b = parse_version("1.0.0+a"), parse_version("1.0.0+b")
    assert not a < b and not b < a
    assert a <= b and a >= b


def test_versions_with_different_build_metadata_are_not_equal() -> None:
    assert parse_version("1.0.0+a") != parse_version("1.0.0+b")


def test_equality_ignores_the_v_prefix() -> None:
    assert parse_version("v1.2.3") == parse_version("1.2.3")


def test_comparing_with_non_version_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        _ = parse_version("1.0.0") < "2.0.0"  # type: ignore[operator]


# --- newest_version ------------------------------------------------------------------------


def test_newest_version_picks_highest_precedence() -> None:
    assert newest_version(["v1.2.0", "v1.10.0", "v1.9.9"]) == Version(1, 10, 0)


def test_newest_version_ignores_non_semver_tags() -> None:
    assert newest_version(["nightly", "v1.0.0", "release-9.9.9", "v2", "latest"]) == Version(1, 0, 0)


def test_newest_version_prefers_release_over_its_prerelease() -> None:
    assert str(newest_version(["v2.0.0-rc.1", "v2.0.0", "v2.0.0-rc.2"])) == "2.0.0"


def test_newest_version_may_be_a_prerelease() -> None:
    assert str(newest_version(["v1.9.0", "v2.0.0-rc.1"])) == "2.0.0-rc.1"


def test_newest_version_keeps_raw_tag_name() -> None:
    newest = newest_version(["v0.1.0", "v0.2.0"])
    assert newest is not None and newest.raw == "v0.2.0"


def test_newest_version_is_none_without_semver_tags() -> None:
    assert newest_version(["main", "nightly"]) is None


def test_newest_version_is_none_for_no_tags() -> None:
    assert newest_version([]) is None


def test_newest_version_accepts_any_iterable() -> None:
    assert newest_version(t for t in ["v1.0.0"]) == Version(1, 0, 0)


# --- compute_tags: semver ------------------------------------------------------------------


def test_release_gets_full_minor_major_and_latest() -> None:
    assert compute_tags(parse_version("v1.4.2"), None) == ["1.4.2", "1.4", "1", "latest"]


def test_prerelease_gets_only_its_full_version() -> None:
    assert compute_tags(parse_version("2.0.0-rc.1"), None) == ["2.0.0-rc.1"]


def test_latest_true_forces_latest_on_prerelease() -> None:
    assert compute_tags(parse_version("2.0.0-rc.1"), None, TagOptions(latest=True)) == ["2.0.0-rc.1", "latest"]


def test_latest_false_never_adds_latest() -> None:
    assert compute_tags(parse_version("1.4.2"), None, TagOptions(latest=False)) == ["1.4.2", "1.4", "1"]


def test_major_zero_version_omits_bare_zero_by_default() -> None:
    assert compute_tags(parse_version("0.3.1"), None) == ["0.3.1", "0.3", "latest"]


def test_major_zero_option_adds_bare_zero() -> None:
    assert compute_tags(parse_version("0.3.1"), None, TagOptions(major_zero=True)) == ["0.3.1", "0.3", "0", "latest"]


def test_build_metadata_plus_is_sanitised_to_hyphen() -> None:
    assert compute_tags(parse_version("1.0.0+build.5"), None) == ["1.0.0-build.5", "1.0", "1", "latest"]


def test_full_version_tag_drops_the_v_prefix() -> None:
    assert compute_tags(parse_version("v3.0.0"), None, TagOptions(latest=False))[0] == "3.0.0"


def test_semver_disabled_emits_no_semver_tags_and_no_auto_latest() -> None:
    assert compute_tags(parse_version("1.4.2"), SHA, TagOptions(semver=False)) == ["sha-0123456"]


# --- compute_tags: prefix / suffix ---------------------------------------------------------


def test_prefix_and_suffix_wrap_semver_tags_but_not_latest_by_default() -> None:
    options = TagOptions(prefix="app-", suffix="-alpine")
    assert compute_tags(parse_version("1.4.2"), None, options) == [
        "app-1.4.2-alpine",
        "app-1.4-alpine",
        "app-1-alpine",
        "latest",
    ]


def test_prefix_on_latest_prefixes_latest() -> None:
    options = TagOptions(prefix="app-", prefix_on_latest=True)
    assert compute_tags(parse_version("1.4.2"), None, options)[-1] == "app-latest"


def test_suffix_on_latest_suffixes_latest() -> None:
    options = TagOptions(suffix="-alpine", suffix_on_latest=True)
    assert compute_tags(parse_version("1.4.2"), None, options)[-1] == "latest-alpine"


def test_prefix_and_suffix_on_latest_together() -> None:
    options = TagOptions(prefix="app-", suffix="-alpine", prefix_on_latest=True, suffix_on_latest=True)
    assert compute_tags(parse_version("1.4.2"), None, options)[-1] == "app-latest-alpine"


def test_prefix_is_not_applied_to_sha_or_raw_tags() -> None:
    options = TagOptions(prefix="app-", suffix="-x", latest=False, raw=("edge",))
    assert compute_tags(parse_version("1.4.2"), SHA, options)[-2:] == ["sha-0123456", "edge"]


def test_prefix_with_invalid_characters_is_sanitised() -> None:
    options = TagOptions(prefix="team/app:", latest=False)
    assert compute_tags(parse_version("1.4.2"), None, options)[0] == "team-app-1.4.2"


def test_prefix_that_makes_tag_invalid_raises() -> None:
    with pytest.raises(TagError, match="start with"):
        compute_tags(parse_version("1.4.2"), None, TagOptions(prefix="-"))


# --- compute_tags: sha ---------------------------------------------------------------------


def test_sha_tag_uses_first_seven_hex_chars() -> None:
    assert compute_tags(None, SHA) == ["sha-0123456"]


def test_sha_tag_follows_latest() -> None:
    assert compute_tags(parse_version("1.4.2"), SHA) == ["1.4.2", "1.4", "1", "latest", "sha-0123456"]


def test_sha_length_option_controls_length() -> None:
    assert compute_tags(None, SHA, TagOptions(sha_length=12)) == ["sha-0123456789ab"]


def test_sha_prefix_option_replaces_prefix() -> None:
    assert compute_tags(None, SHA, TagOptions(sha_prefix="git-")) == ["git-0123456"]


def test_empty_sha_prefix_gives_bare_short_sha() -> None:
    assert compute_tags(None, SHA, TagOptions(sha_prefix="")) == ["0123456"]


def test_sha_tag_is_lowercased() -> None:
    assert compute_tags(None, "ABCDEF0123") == ["sha-abcdef0"]


def test_sha_disabled_emits_no_sha_tag() -> None:
    assert compute_tags(None, SHA, TagOptions(sha=False)) == []


def test_sha_exactly_sha_length_long_is_accepted() -> None:
    assert compute_tags(None, "abcdef0") == ["sha-abcdef0"]


def test_sha_shorter_than_sha_length_raises_with_value() -> None:
    with pytest.raises(TagError, match=r"'abc123'.*at least 7"):
        compute_tags(None, "abc123")


@pytest.mark.parametrize("sha", ["g123456789", "0123456 89", "", "0x12345678"])
def test_non_hex_sha_raises_with_value(sha: str) -> None:
    with pytest.raises(TagError, match=re.escape(repr(sha))):
        compute_tags(None, sha)


@pytest.mark.parametrize("length", [0, -1, True])
def test_sha_length_must_be_a_positive_integer(length: int) -> None:
    with pytest.raises(TagError, match="sha_length"):
        TagOptions(sha_length=length)


def test_latest_option_must_be_bool_or_auto() -> None:
    with pytest.raises(TagError, match="'always'"):
        TagOptions(latest="always")  # type: ignore[arg-type]


def test_raw_option_must_not_be_a_bare_string() -> None:
    with pytest.raises(TagError, match="'edge'"):
        TagOptions(raw="edge")  # type: ignore[arg-type]


# --- compute_tags: no version, raw, ordering -----------------------------------------------


def test_no_version_gives_only_sha_and_raw() -> None:
    assert compute_tags(None, SHA, TagOptions(raw=("edge",))) == ["sha-0123456", "edge"]


def test_no_version_and_no_sha_gives_no_tags() -> None:
    assert compute_tags(None, None) == []


def test_no_version_with_latest_true_still_adds_latest() -> None:
    assert compute_tags(None, SHA, TagOptions(latest=True)) == ["latest", "sha-0123456"]


def test_raw_tags_come_last_in_given_order() -> None:
    options = TagOptions(raw=("edge", "nightly"))
    assert compute_tags(parse_version("1.4.2"), SHA, options) == [
        "1.4.2",
        "1.4",
        "1",
        "latest",
        "sha-0123456",
        "edge",
        "nightly",
    ]


def test_raw_tags_are_sanitised() -> None:
    assert compute_tags(None, None, TagOptions(raw=("feature/x",))) == ["feature-x"]


def test_invalid_raw_tag_raises() -> None:
    with pytest.raises(TagError, match="'.hidden'"):
        compute_tags(None, None, TagOptions(raw=(".hidden",)))


def test_duplicate_tags_are_dropped_keeping_first() -> None:
    options = TagOptions(raw=("latest", "1.4", "edge", "edge"))
    assert compute_tags(parse_version("1.4.2"), None, options) == ["1.4.2", "1.4", "1", "latest", "edge"]


def test_tags_that_collide_after_sanitising_are_deduplicated() -> None:
    assert compute_tags(None, None, TagOptions(raw=("a/b", "a:b", "a-b"))) == ["a-b"]


def test_compute_tags_is_deterministic() -> None:
    options = TagOptions(raw=("edge",), major_zero=True)
    first = compute_tags(parse_version("0.1.0"), SHA, options)
    assert all(compute_tags(parse_version("0.1.0"), SHA, options) == first for _ in range(5))


# --- sanitize_tag --------------------------------------------------------------------------


def test_sanitize_keeps_valid_tag_unchanged() -> None:
    assert sanitize_tag("v1.2.3_rc-1") == "v1.2.3_rc-1"


def test_sanitize_replaces_slash_with_hyphen() -> None:
    assert sanitize_tag("feature/x") == "feature-x"


def test_sanitize_replaces_each_invalid_character() -> None:
    assert sanitize_tag("a b:c@d+e") == "a-b-c-d-e"


def test_sanitize_replaces_non_ascii_characters() -> None:
    assert sanitize_tag("caf\u00e9") == "caf-"


def test_sanitize_allows_leading_underscore() -> None:
    assert sanitize_tag("_tmp") == "_tmp"


def test_sanitize_accepts_exactly_128_characters() -> None:
    assert sanitize_tag("a" * 128) == "a" * 128


def test_sanitize_rejects_empty_tag() -> None:
    with pytest.raises(TagError, match="empty"):
        sanitize_tag("")


def test_sanitize_rejects_129_characters_instead_of_truncating() -> None:
    with pytest.raises(TagError, match="at most 128"):
        sanitize_tag("a" * 129)


@pytest.mark.parametrize("text", [".hidden", "-dash", "/feature", " space"])
def test_sanitize_rejects_leading_dot_or_hyphen_naming_the_value(text: str) -> None:
    with pytest.raises(TagError, match=re.escape(repr(text))):
        sanitize_tag(text)


# --- oci_labels ----------------------------------------------------------------------------

CREATED = "2024-01-31T12:00:00Z"


def test_oci_labels_with_version_revision_and_source() -> None:
    labels = oci_labels(parse_version("v1.4.2"), SHA, "https://github.com/acme/app", CREATED)
    assert labels == {
        "org.opencontainers.image.version": "1.4.2",
        "org.opencontainers.image.revision": SHA,
        "org.opencontainers.image.source": "https://github.com/acme/app",
        "org.opencontainers.image.created": CREATED,
    }


def test_oci_version_label_keeps_build_metadata() -> None:
    labels = oci_labels(parse_version("1.0.0+build.5"), None, None, CREATED)
    assert labels["org.opencontainers.image.version"] == "1.0.0+build.5"


def test_oci_version_label_falls_back_to_short_sha() -> None:
    assert oci_labels(None, SHA, None, CREATED)["org.opencontainers.image.version"] == "0123456"


def test_oci_labels_omit_none_values() -> None:
    assert oci_labels(None, None, None, CREATED) == {"org.opencontainers.image.created": CREATED}


def test_oci_labels_omit_source_when_none() -> None:
    assert "org.opencontainers.image.source" not in oci_labels(None, SHA, None, CREATED)


@pytest.mark.parametrize("created", ["2024-01-31T12:00:00.123+02:00", "2024-01-31t12:00:00z"])
def test_oci_created_accepts_rfc3339_variants(created: str) -> None:
    assert oci_labels(None, None, None, created)["org.opencontainers.image.created"] == created


@pytest.mark.parametrize("created", ["2024-01-31", "2024-01-31 12:00:00", "yesterday", ""])
def test_oci_created_rejects_non_rfc3339_naming_the_value(created: str) -> None:
    with pytest.raises(TagError, match=re.escape(repr(created))):
        oci_labels(None, None, None, created)


# --- properties ----------------------------------------------------------------------------


@given(st.text(alphabet=string.printable, max_size=200))
def test_sanitize_tag_raises_or_returns_grammar_match(text: str) -> None:
    try:
        tag = sanitize_tag(text)
    except TagError:
        return
    assert TAG_GRAMMAR.fullmatch(tag)


@given(
    major=st.integers(min_value=0, max_value=10**9),
    minor=st.integers(min_value=0, max_value=10**9),
    patch=st.integers(min_value=0, max_value=10**9),
    v_prefix=st.booleans(),
    latest=st.sampled_from([True, False, "auto"]),
    major_zero=st.booleans(),
    sha=st.none() | st.text(alphabet="0123456789abcdef", min_size=7, max_size=40),
)
def test_compute_tags_for_any_semver_triple_match_grammar(
    major: int, minor: int, patch: int, v_prefix: bool, latest: bool | str, major_zero: bool, sha: str | None
) -> None:
    version = parse_version(f"{'v' if v_prefix else ''}{major}.{minor}.{patch}")
    options = TagOptions(latest=latest, major_zero=major_zero)  # type: ignore[arg-type]
    tags = compute_tags(version, sha, options)
    assert tags and all(TAG_GRAMMAR.fullmatch(tag) for tag in tags)
    assert len(tags) == len(set(tags))
