"""bakery.release.report: size comparison with the previous release, JSON shape, atomic files, table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bakery.config import load
from bakery.humanize import human_bytes
from bakery.release.report import (ImageReport, PlatformReport, ReleaseReport, carry_smoke, compare_sizes, percent,
                                   render_report, report_paths, write_report)
from bakery.release.tags import parse_version


def test_sizes_compare_per_platform_and_warn_above_the_threshold() -> None:
    changes, warnings = compare_sizes({"linux/amd64": 1_200_000, "linux/arm64": 1_050_000},
                                      {"linux/amd64": 1_000_000, "linux/arm64": 1_000_000}, 0.10)
    assert changes == {"linux/amd64": pytest.approx(0.2), "linux/arm64": pytest.approx(0.05)}
    assert warnings == ["linux/amd64 grew +20.0% (1.0 MB -> 1.2 MB), above size_growth_warn 10%"]


def test_growth_exactly_at_the_threshold_does_not_warn() -> None:
    assert compare_sizes({"linux/amd64": 110}, {"linux/amd64": 100}, 0.10)[1] == []


def test_shrinking_never_warns() -> None:
    changes, warnings = compare_sizes({"linux/amd64": 50}, {"linux/amd64": 100}, 0.0)
    assert changes == {"linux/amd64": -0.5} and warnings == []


def test_a_platform_new_in_this_release_has_no_change() -> None:
    changes, warnings = compare_sizes({"linux/riscv64": 100}, {"linux/amd64": 100}, 0.10)
    assert changes == {"linux/riscv64": None} and warnings == []


def test_no_threshold_never_warns() -> None:
    assert compare_sizes({"linux/amd64": 1000}, {"linux/amd64": 1}, None)[1] == []


@pytest.mark.parametrize("n,text", [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (2_876_543, "2.9 MB"),
                                    (5 * 10**9, "5.0 GB")])
def test_human_bytes(n: int, text: str) -> None:
    assert human_bytes(n) == text


@pytest.mark.parametrize("change,text", [(0.2, "+20.0%"), (-0.125, "-12.5%"), (-0.0001, "0.0%"), (0.0004, "0.0%")])
def test_percent_never_shows_a_signed_zero(change: float, text: str) -> None:
    assert percent(change) == text


def report(published: bool = True) -> ReleaseReport:
    api = ImageReport(
        "api", "127.0.0.1:5000/acme/api", ("1.4.2", "1.4", "sha-3f2c1ab"), (("1", "1.5.0 is already released"),),
        "sha256:" + "c" * 64, False, "keep",
        (PlatformReport("linux/amd64", "sha256:" + "a" * 64, 1_200_000, "passed", "test",
                        "smoke test `/app/test/run` exited 0", 1_000_000, 0.2),
         PlatformReport("linux/arm64", "sha256:" + "b" * 64, 900_000, "passed", "test",
                        "smoke test `/app/test/run` exited 0", None, None)),
        {"version": "1.4.1", "tag": "1.4.1", "digest": "sha256:" + "d" * 64},
        ("linux/amd64 grew +20.0% (1.0 MB -> 1.2 MB), above size_growth_warn 10%",))
    return ReleaseReport("1.4.2", False, "3f2c1ab" + "0" * 33, "https://github.com/acme/shop", "2024-05-01T10:00:00Z",
                         "tag v1.4.2 on HEAD", False, published, (api,))


def test_report_json_lists_tags_digests_sizes_smoke_and_previous_per_image() -> None:
    data = report().to_dict()
    api = data["images"]["api"]
    assert api["tags"] == ["1.4.2", "1.4", "sha-3f2c1ab"]
    assert api["index_digest"] == "sha256:" + "c" * 64
    assert api["held_tags"] == [{"tag": "1", "why": "1.5.0 is already released"}]
    assert api["platforms"]["linux/amd64"] == {
        "digest": "sha256:" + "a" * 64, "size": 1_200_000, "smoke": "passed", "smoke_kind": "test",
        "smoke_detail": "smoke test `/app/test/run` exited 0", "previous_size": 1_000_000, "size_change": 0.2}
    assert api["previous"]["version"] == "1.4.1"
    assert data["version"] == "1.4.2" and data["created"] == "2024-05-01T10:00:00Z" and data["published"] is True
    json.dumps(data)    # serialisable as it is


def test_report_warnings_are_prefixed_with_the_image() -> None:
    assert report().warnings == ["api: linux/amd64 grew +20.0% (1.0 MB -> 1.2 MB), above size_growth_warn 10%"]


def test_report_table_shows_each_platform_and_the_published_tags() -> None:
    text = render_report(report())
    lines = text.splitlines()
    assert lines[0].split() == ["IMAGE", "PLATFORM", "DIGEST", "SIZE", "CHANGE", "SMOKE"]
    assert lines[1].split() == ["api", "linux/amd64", "sha256:aaaaaaaaaaaa", "1.2", "MB", "+20.0%", "passed"]
    assert lines[2].split() == ["api", "linux/arm64", "sha256:bbbbbbbbbbbb", "900.0", "kB", "new", "passed"]
    assert f"api: published 127.0.0.1:5000/acme/api@sha256:{'c' * 64}" in text
    assert "  held: 1 stays where it is (1.5.0 is already released)" in text
    assert "  previous release: 1.4.1" in text


def test_report_files_are_the_versioned_one_and_the_latest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text("registry: r.example/acme\nplatform_groups: {amd64: [linux/amd64]}\n"
                                          "images: {api: {context: svc}}\n")
    cfg = load(tmp_path / "bakery.yaml")
    paths = write_report(cfg, parse_version("1.4.2"), report())
    assert paths == report_paths(cfg, parse_version("1.4.2"))
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["bake/release-1.4.2.json", "bake/release.json"]
    assert json.loads(paths[0].read_text()) == json.loads(paths[1].read_text()) == \
        json.loads(json.dumps(report().to_dict()))
    assert not [p for p in (tmp_path / "bake").iterdir() if p.name.endswith(".tmp")]


def test_report_file_name_of_a_version_with_build_metadata_is_a_valid_tag(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text("registry: r.example/acme\nplatform_groups: {amd64: [linux/amd64]}\n"
                                          "images: {api: {context: svc}}\n")
    path, _ = report_paths(load(tmp_path / "bakery.yaml"), parse_version("1.0.0+build.5"))
    assert path.name == "release-1.0.0-build.5.json"


def rerun_report() -> ReleaseReport:
    from dataclasses import replace
    api = report().images[0]
    platforms = tuple(replace(p, smoke="not run", smoke_kind="already-released",
                              smoke_detail="not run again: already released from this commit") for p in api.platforms)
    return replace(report(), images=(replace(api, reused=True, platforms=platforms),))


def test_a_rerun_report_takes_the_smoke_results_of_the_earlier_report_of_the_same_index() -> None:
    carried = carry_smoke(rerun_report(), report().to_dict())
    p = carried.images[0].platforms[0]
    assert (p.smoke, p.smoke_kind, p.smoke_detail) == ("passed", "test",
                                                        "smoke test `/app/test/run` exited 0 (earlier run)")


def test_smoke_results_of_another_index_are_not_carried() -> None:
    earlier = report().to_dict()
    earlier["images"]["api"]["index_digest"] = "sha256:" + "e" * 64
    assert carry_smoke(rerun_report(), earlier) == rerun_report()


def test_without_an_earlier_report_nothing_is_carried() -> None:
    assert carry_smoke(rerun_report(), None) == rerun_report()
