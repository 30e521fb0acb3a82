"""Tests for bakery.bench.rawjson (stream decoding, timestamps) against hand-made input and the real buildx 0.13.1
bake streams described in tests/unit/bench/streams.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bakery.errors import BakeryError
from bakery.bench.rawjson import RawJsonError, iter_status, parse_timestamp
from tests.unit.bench.streams import OBJ_A, OBJ_B, OBJ_C, SCENARIOS, STREAM, fixture_text, pretty


# ------------------------------------------------------------------------------------------------
# decoder


def test_decodes_pretty_printed_objects_fed_whole() -> None:
    assert STREAM.count("\n") > 20  # really multi-line
    assert list(iter_status([STREAM])) == [OBJ_A, OBJ_B, OBJ_C]


def test_decodes_line_by_line_and_char_by_char() -> None:
    assert list(iter_status(STREAM.splitlines(keepends=True))) == [OBJ_A, OBJ_B, OBJ_C]
    assert list(iter_status(iter(STREAM))) == [OBJ_A, OBJ_B, OBJ_C]


def test_every_single_split_point() -> None:
    for cut in range(len(STREAM) + 1):
        assert list(iter_status([STREAM[:cut], STREAM[cut:]])) == [OBJ_A, OBJ_B, OBJ_C], cut


def test_one_object_per_line_and_concatenated_objects() -> None:
    compact = "".join(json.dumps(o) + "\n" for o in (OBJ_A, OBJ_B, OBJ_C))  # buildx >= 0.15 framing
    assert list(iter_status([compact])) == [OBJ_A, OBJ_B, OBJ_C]
    glued = json.dumps(OBJ_A) + json.dumps(OBJ_B) + "  " + json.dumps(OBJ_C, indent=2)
    assert list(iter_status([glued[:7], glued[7:]])) == [OBJ_A, OBJ_B, OBJ_C]


def test_crlf_and_blank_lines_between_objects() -> None:
    text = "\r\n\n" + pretty(OBJ_A).replace("\n", "\r\n") + "\n   \n\t\n" + pretty(OBJ_B)
    assert list(iter_status([text])) == [OBJ_A, OBJ_B]


def test_garbage_lines_between_objects_are_skipped_and_reported() -> None:
    garbage = [
        "ERROR: failed to solve: process \"/bin/sh -c false\" did not complete successfully: exit code: 1",
        "{this is not json}",
        "{\"unterminated\": [1, 2",
        "    {\"indented\": \"so not an object start\"}",
        "}",
        "WARNING: something { with braces }",
    ]
    text = pretty(OBJ_A) + "\n".join(garbage) + "\n" + pretty(OBJ_B) + "trailing text without newline"
    skipped: list[str] = []
    for chunks in ([text], text.splitlines(keepends=True), list(text)):
        skipped.clear()
        assert list(iter_status(chunks, on_skip=skipped.append)) == [OBJ_A, OBJ_B]
        assert skipped == [*garbage, "trailing text without newline"]


def test_text_after_an_object_on_the_same_line_is_skipped() -> None:
    skipped: list[str] = []
    text = json.dumps(OBJ_A) + " <- done\n" + json.dumps(OBJ_B) + "\n"
    assert list(iter_status([text], on_skip=skipped.append)) == [OBJ_A, OBJ_B]
    assert skipped == ["<- done"]


def test_malformed_object_start_does_not_swallow_the_next_object() -> None:
    text = '{"vertexes": [\n  oops\n' + pretty(OBJ_A)
    skipped: list[str] = []
    assert list(iter_status(text.splitlines(keepends=True), on_skip=skipped.append)) == [OBJ_A]
    assert skipped == ['{"vertexes": [', "  oops"]


@pytest.mark.parametrize("cut", [1, 10, 40, -30, -3, -2])  # [:-1] would only drop the final newline
def test_truncated_object_at_end_raises(cut: int) -> None:
    text = pretty(OBJ_A) + pretty(OBJ_B)[:cut]
    got: list[dict[str, Any]] = []
    with pytest.raises(RawJsonError) as info:
        for obj in iter_status([text]):
            got.append(obj)
    assert got == [OBJ_A]  # everything complete was delivered first
    assert "\n" not in str(info.value)
    assert f"line {pretty(OBJ_A).count(chr(10)) + 1}" in str(info.value)
    assert isinstance(info.value, BakeryError)


@pytest.mark.parametrize("tail", ['{"a": tr', '{"a": 1.', '{"a": "xy', '{"a": "\\u00', '{"a": [1, '])
def test_truncated_tokens_at_end_raise(tail: str) -> None:
    with pytest.raises(RawJsonError, match="truncated"):
        list(iter_status([pretty(OBJ_A) + tail]))


def test_malformed_brace_line_at_end_is_skipped_not_truncated() -> None:
    skipped: list[str] = []
    assert list(iter_status([pretty(OBJ_A) + "{oops"], on_skip=skipped.append)) == [OBJ_A]
    assert skipped == ["{oops"]


def test_rejects_bytes_chunks() -> None:
    with pytest.raises(RawJsonError, match="must be str"):
        list(iter_status([b"{}"]))  # type: ignore[list-item]


def test_empty_stream() -> None:
    assert list(iter_status([])) == []
    assert list(iter_status(["", "\n", ""])) == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_fixture_object_count_matches_its_framing(name: str) -> None:
    text = fixture_text(name)
    statuses = list(iter_status([text]))
    # buildx 0.13 starts every pretty-printed SolveStatus with a lone "{" line
    assert len(statuses) == sum(1 for line in text.splitlines() if line == "{")
    assert all(set(s) <= {"vertexes", "statuses", "logs", "warnings"} for s in statuses)


FIXTURE_WHOLE = {name: list(iter_status([fixture_text(name)])) for name in SCENARIOS}


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(SCENARIOS), cuts=st.lists(st.floats(0, 1), max_size=60))
def test_random_chunking_of_recorded_stream_gives_same_statuses(name: str, cuts: list[float]) -> None:
    text = fixture_text(name)
    points = sorted({int(c * len(text)) for c in cuts})
    chunks = [text[a:b] for a, b in zip([0, *points], [*points, len(text)])]
    assert "".join(chunks) == text
    assert list(iter_status(chunks)) == FIXTURE_WHOLE[name]


@settings(max_examples=40, deadline=None, database=None)
@given(
    garbage=st.lists(
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\n\r"), max_size=30).filter(
            lambda s: not s.startswith("{")
        ),
        max_size=5,
    ),
    where=st.integers(0, 127),
)
def test_random_garbage_lines_lose_no_objects(garbage: list[str], where: int) -> None:
    text = fixture_text("cold")
    starts = [i for i in range(len(text)) if text.startswith("\n{", i)]
    at = starts[where % len(starts)] + 1
    noisy = text[:at] + "".join(g + "\n" for g in garbage) + text[at:]
    skipped: list[str] = []
    assert list(iter_status([noisy], on_skip=skipped.append)) == FIXTURE_WHOLE["cold"]
    assert skipped == [g for g in garbage if g.strip()]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T19:32:54.056436967Z", datetime(2026, 11, 27, 19, 32, 54, 56436, tzinfo=timezone.utc)),
        ("2026-11-27T19:33:06.79764867Z", datetime(2026, 11, 27, 19, 33, 6, 797648, tzinfo=timezone.utc)),
        ("2026-11-27T19:33:06.5Z", datetime(2026, 11, 27, 19, 33, 6, 500000, tzinfo=timezone.utc)),
        ("2026-11-27T19:33:06Z", datetime(2026, 11, 27, 19, 33, 6, tzinfo=timezone.utc)),
        ("2026-11-27T20:33:06.25+01:00", datetime(2026, 11, 27, 19, 33, 6, 250000, tzinfo=timezone.utc)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-27 19:33:06Z", "2026-11-27T19:33:06"])
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(RawJsonError, match="timestamp"):
        parse_timestamp(text)
