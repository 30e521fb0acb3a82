"""bakery.release settings, git, plan and smoke, the pure parts: release settings, version and git facts, tag
planning, bake overlay, smoke commands and verdicts, reuse of an already published index."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import REPO
from bakery.config import Config, load
from bakery.docker import Docker
from bakery.errors import BakeryError, ConfigErrors
from bakery.process import Runner
from bakery.oci.registry import OCI_INDEX, Manifest, digest_of
from bakery.release.git import GitInfo, created_from_epoch, normalize_source, parse_porcelain
from bakery.build.labels import overlay
from bakery.release.plan import (TagPlan, already_released, intermediate_pattern, plan_tags, previous_release,
                                 published_versions, release_labels, resolve_version, reusable)
from bakery.release.settings import settings
from bakery.release.smoke import SmokeSpec, container_name, judge, smoke_argv
from bakery.oci.index import make_index
from bakery.release.tags import TagError, TagOptions, parse_version

SHA = "3f2c1ab9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3"
BASE = """\
registry: 127.0.0.1:5000/acme
platform_groups:
  amd64: [linux/amd64]
  arm: [linux/arm64, linux/arm/v7]
labels: {org.opencontainers.image.source: https://example.com/mine}
images:
  api: {context: services/api, test: [/app/test/run]}
  worker: {context: services/worker, args: {SOURCE_DATE_EPOCH: "0"}}
  static: {context: services/static, platform_groups: [amd64], bake: {annotations: ["index:owner=web"]}}
"""


@pytest.fixture(autouse=True)
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def config(tmp_path: Path, extra: str = "") -> Config:
    for name in ("api", "worker", "static"):
        (tmp_path / "services" / name).mkdir(parents=True, exist_ok=True)
        (tmp_path / "services" / name / "Dockerfile").write_text("FROM scratch\n")
    path = tmp_path / "bakery.yaml"
    path.write_text(BASE + extra)
    return load(path)


def problems(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        settings(config(tmp_path, extra))
    return [str(e) for e in info.value.errors]


def v(text: str):  # type: ignore[no-untyped-def]
    return parse_version(text)


# --------------------------------------------------------------------------- settings
def test_settings_default_when_there_is_no_release_section(tmp_path: Path) -> None:
    s = settings(config(tmp_path))
    assert (s.tags, s.floating, s.attestations, s.size_growth_warn) == (TagOptions(), "forward", "keep", 0.10)
    assert (s.test_timeout, s.start_seconds) == (300.0, 5.0)


def test_settings_read_every_key(tmp_path: Path) -> None:
    s = settings(config(tmp_path, """\
release:
  tags: {latest: false, major_zero: true, prefix: v, suffix: -alpine, sha: false, sha_length: 10,
         raw: [stable], floating: always}
  attestations: drop
  size_growth_warn: 25%
  smoke: {timeout: 60, start_seconds: 2.5}
"""))
    assert s.tags == TagOptions(latest=False, major_zero=True, prefix="v", suffix="-alpine", sha=False,
                                sha_length=10, raw=("stable",))
    assert (s.floating, s.attestations, s.size_growth_warn, s.test_timeout, s.start_seconds) == \
        ("always", "drop", 0.25, 60.0, 2.5)


def test_settings_unknown_key_names_file_line_and_suggests(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, "release:\n  tags:\n    lates: auto\n")
    assert msg == "bakery.yaml:12: release.tags.lates: unknown key 'lates'; did you mean latest?"


def test_settings_bad_attestations_value_lists_the_choices(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, "release:\n  attestations: kept\n")
    assert msg.startswith("bakery.yaml:11: release.attestations: 'kept' is not one of keep, drop")


def test_settings_report_every_problem_at_once(tmp_path: Path) -> None:
    msgs = problems(tmp_path, """\
release:
  tags: {latest: sometimes, sha_length: 0, major_zero: "yes"}
  size_growth_warn: lots
  smoke: {timeout: -1}
""")
    assert sorted(m.split(": ")[1] for m in msgs) == ["release.size_growth_warn", "release.smoke.timeout",
                                                      "release.tags.latest", "release.tags.major_zero",
                                                      "release.tags.sha_length"]


def test_settings_reject_a_raw_tag_that_cannot_be_a_tag(tmp_path: Path) -> None:
    [msg] = problems(tmp_path, "release:\n  tags: {raw: [ok, -bad]}\n")
    assert "release.tags.raw[1]" in msg and "must not start with '.' or '-'" in msg


def test_settings_size_growth_warn_can_be_disabled(tmp_path: Path) -> None:
    assert settings(config(tmp_path, "release: {size_growth_warn: null}\n")).size_growth_warn is None


# --------------------------------------------------------------------------- version and git facts
def test_version_comes_from_the_newest_semver_tag_on_head() -> None:
    version, why = resolve_version(None, ["nightly", "v1.4.1", "v1.4.2", "api/v9.0.0"])
    assert (str(version), why) == ("1.4.2", "tag v1.4.2 on HEAD")


def test_version_flag_wins_and_a_different_head_tag_is_noted() -> None:
    version, why = resolve_version("2.0.0-rc.1", ["v1.4.2"])
    assert str(version) == "2.0.0-rc.1" and "HEAD is tagged v1.4.2" in why


def test_no_version_anywhere_is_a_clear_error() -> None:
    with pytest.raises(BakeryError, match="HEAD has no semver tag"):
        resolve_version(None, ["nightly"])


def test_a_version_flag_that_is_not_semver_is_a_clear_error() -> None:
    with pytest.raises(TagError, match="invalid semantic version '1.4'"):
        resolve_version("1.4", [])


def test_created_is_the_commit_time_in_utc() -> None:
    assert created_from_epoch(1714557600) == "2024-05-01T10:00:00Z"


def test_porcelain_paths_include_renames_and_untracked_files() -> None:
    text = " M a.txt\0R  new.txt\0old.txt\0?? dir/untracked\0"
    assert parse_porcelain(text) == ["a.txt", "new.txt", "dir/untracked"]


@pytest.mark.parametrize("url,expected", [
    ("https://github.com/acme/shop.git", "https://github.com/acme/shop"),
    ("https://user:s3cret@github.com/acme/shop.git", "https://github.com/acme/shop"),
    ("git@github.com:acme/shop.git", "https://github.com/acme/shop"),
    ("ssh://git@gitlab.example.com:2222/acme/shop.git", "https://gitlab.example.com/acme/shop"),
    ("/srv/git/shop.git", None),
    ("", None),
    ("https://github.com/acme/shop.git?access_token=ghp_s3cret", "https://github.com/acme/shop"),
    ("https://oauth2:glpat-x@gitlab.example.com/acme/shop.git#frag?token=t", "https://gitlab.example.com/acme/shop"),
])
def test_source_url_never_carries_credentials(url: str, expected: str | None) -> None:
    assert normalize_source(url) == expected


# --------------------------------------------------------------------------- tag planning
def test_release_gets_version_minor_major_latest_and_sha() -> None:
    assert plan_tags(v("1.4.2"), SHA, TagOptions()) == TagPlan(("1.4.2", "1.4", "1", "latest", "sha-3f2c1ab"))


def test_prerelease_gets_only_itself_and_sha_so_latest_stays() -> None:
    assert plan_tags(v("2.0.0-rc.1"), SHA, TagOptions(), [v("1.4.2")]).tags == ("2.0.0-rc.1", "sha-3f2c1ab")


def test_major_zero_has_no_major_tag_unless_asked() -> None:
    assert plan_tags(v("0.3.1"), None, TagOptions()).tags == ("0.3.1", "0.3", "latest")
    assert plan_tags(v("0.3.1"), None, TagOptions(major_zero=True)).tags == ("0.3.1", "0.3", "0", "latest")


def test_maintenance_release_does_not_move_major_or_latest_back() -> None:
    plan = plan_tags(v("1.3.5"), SHA, TagOptions(), [v("1.3.4"), v("1.4.0"), v("2.0.0-rc.1")])
    assert plan.tags == ("1.3.5", "1.3", "sha-3f2c1ab")
    assert plan.held == (("1", "1.4.0 is already released"), ("latest", "1.4.0 is already released"))


def test_older_minor_line_is_held_only_inside_its_line() -> None:
    plan = plan_tags(v("1.3.5"), None, TagOptions(), [v("1.3.6")])
    assert [h for h, _ in plan.held] == ["1.3", "1", "latest"]


def test_newer_prereleases_never_hold_floating_tags() -> None:
    assert plan_tags(v("1.4.2"), None, TagOptions(), [v("1.5.0-rc.1")]).held == ()


def test_floating_always_moves_tags_like_metadata_action() -> None:
    plan = plan_tags(v("1.3.5"), None, TagOptions(), [v("1.4.0")], floating="always")
    assert plan.tags == ("1.3.5", "1.3", "1", "latest") and plan.held == ()


def test_floating_names_follow_prefix_and_suffix() -> None:
    opts = TagOptions(prefix="v", suffix="-alpine", suffix_on_latest=True)
    plan = plan_tags(v("1.3.5"), None, opts, [v("1.4.0")])
    assert plan.tags == ("v1.3.5-alpine", "v1.3-alpine")
    assert [h for h, _ in plan.held] == ["v1-alpine", "latest-alpine"]


def test_a_raw_tag_is_never_held() -> None:
    plan = plan_tags(v("1.3.5"), None, TagOptions(latest=False, raw=("latest",)), [v("1.4.0")])
    assert "latest" in plan.tags


def test_explicit_latest_true_moves_latest_for_a_prerelease() -> None:
    assert "latest" in plan_tags(v("2.0.0-rc.1"), None, TagOptions(latest=True), [v("1.4.2")]).tags


# --------------------------------------------------------------------------- published versions
def test_published_versions_skip_intermediate_partial_and_foreign_tags(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    tags = ["1.4.2", "1.4", "1", "latest", "1.4.2-amd64", "1.4.2-arm", "2.0.0-rc.1", "2.0.0-rc.1-arm",
            "cache-arm-main", "sha-3f2c1ab", "v1.3.0"]
    found = published_versions(tags, TagOptions(), intermediate_pattern(cfg))
    assert sorted(str(x) for x in found) == ["1.3.0", "1.4.2", "2.0.0-rc.1"]
    assert found[v("1.3.0")] == "v1.3.0"


def test_published_versions_honour_prefix_and_suffix(tmp_path: Path) -> None:
    found = published_versions(["v1.0.0-slim", "1.1.0", "v1.2.0"], TagOptions(prefix="v", suffix="-slim"),
                               intermediate_pattern(config(tmp_path)))
    assert found == {v("1.0.0"): "v1.0.0-slim"}


def test_previous_release_of_a_stable_release_is_the_previous_stable() -> None:
    published = {v("1.4.1"): "1.4.1", v("1.5.0-rc.2"): "1.5.0-rc.2", v("1.5.0"): "1.5.0", v("1.6.0"): "1.6.0"}
    assert previous_release(v("1.5.0"), published) == (v("1.4.1"), "1.4.1")


def test_previous_release_of_a_prerelease_may_be_a_prerelease() -> None:
    published = {v("1.4.1"): "1.4.1", v("1.5.0-rc.1"): "1.5.0-rc.1"}
    assert previous_release(v("1.5.0-rc.2"), published) == (v("1.5.0-rc.1"), "1.5.0-rc.1")


def test_first_release_has_no_previous() -> None:
    assert previous_release(v("0.1.0"), {}) is None


# --------------------------------------------------------------------------- overlay
GIT = GitInfo(SHA, ("v1.4.2",), "https://github.com/acme/shop", 1714557600, ())


def test_overlay_sets_oci_labels_annotations_and_source_date_epoch(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    doc = overlay(cfg, ["api-amd64"], release_labels(v("1.4.2"), GIT), GIT.epoch)
    body = doc["target"]["api-amd64"]
    assert body["labels"] == {"org.opencontainers.image.version": "1.4.2",
                              "org.opencontainers.image.revision": SHA,
                              "org.opencontainers.image.created": "2024-05-01T10:00:00Z"}
    assert "org.opencontainers.image.source=https://github.com/acme/shop" in body["annotations"]
    assert body["args"] == {"SOURCE_DATE_EPOCH": "1714557600"}


def test_overlay_lets_the_users_labels_args_and_annotations_win(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    doc = overlay(cfg, ["worker-arm", "static-amd64"], release_labels(v("1.4.2"), GIT), GIT.epoch)
    assert "org.opencontainers.image.source" not in doc["target"]["worker-arm"]["labels"]   # config labels
    assert "args" not in doc["target"]["worker-arm"]                                        # own SOURCE_DATE_EPOCH
    assert doc["target"]["static-amd64"]["annotations"][0] == "index:owner=web"             # kept, first


def test_overlay_escapes_values_for_bake_templates(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    doc = overlay(cfg, ["api-arm"], {"org.opencontainers.image.version": "${HOME}"}, 0)
    assert doc["target"]["api-arm"]["labels"] == {"org.opencontainers.image.version": "$${HOME}"}


# --------------------------------------------------------------------------- smoke tests
def spec(command: tuple[str, ...] | None) -> SmokeSpec:
    return SmokeSpec("api", "linux/arm/v7", "127.0.0.1:5000/acme/api@sha256:" + "a" * 64, command)


def test_smoke_test_replaces_the_entrypoint_and_runs_the_exact_digest() -> None:
    argv = smoke_argv(Docker(Runner()), spec(("/app/test/run", "--quick")), "n1")
    assert argv == ["docker", "run", "-d", "--name", "n1", "--pull", "always", "--platform", "linux/arm/v7",
                    "--entrypoint", "/app/test/run", "127.0.0.1:5000/acme/api@sha256:" + "a" * 64, "--quick"]


def test_start_check_runs_the_image_as_it_is() -> None:
    argv = smoke_argv(Docker(Runner()), spec(None), "n1")
    assert argv[-1].startswith("127.0.0.1:5000/acme/api@") and "--entrypoint" not in argv


def test_container_names_are_valid_and_name_image_platform_and_run() -> None:
    assert container_name(spec(None), "4242") == "bakery-smoke-api-linux-arm-v7-4242"


@pytest.mark.parametrize("command,exit_code,passed,detail", [
    (("/t",), 0, True, "smoke test `/t` exited 0"),
    (("/t",), 1, False, "smoke test `/t` exited 1"),
    (("/t",), None, False, "smoke test `/t` did not finish within 30s"),
    (None, 0, True, "start check: the container exited 0"),
    (None, None, True, "start check: still running after 5s"),
    (None, 139, False, "start check: the container exited 139"),
])
def test_smoke_verdicts(command: tuple[str, ...] | None, exit_code: int | None, passed: bool, detail: str) -> None:
    assert judge(spec(command), exit_code, 30, 5) == (passed, detail)


def test_an_empty_test_list_means_no_smoke_test() -> None:
    assert spec(()).kind == "skipped" and spec(None).kind == "start-check" and spec(("/t",)).kind == "test"


# --------------------------------------------------------------------------- reuse of a published index
IMG = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64, "size": 10,
       "platform": {"architecture": "amd64", "os": "linux"}}
ATT = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "2" * 64, "size": 5,
       "platform": {"architecture": "unknown", "os": "unknown"},
       "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                       "vnd.docker.reference.digest": "sha256:" + "1" * 64}}
NEW_ATT = {**ATT, "digest": "sha256:" + "3" * 64}
ANN = {"org.opencontainers.image.version": "1.4.2"}


def published(entries: list[dict], annotations: dict[str, str] | None = ANN) -> Manifest:
    raw = make_index(entries, annotations)
    return Manifest(digest_of(raw), OCI_INDEX, raw)


def test_a_rebuild_with_new_provenance_reuses_the_published_index() -> None:
    assert reusable(published([IMG, ATT]), [IMG, NEW_ATT], ANN, "keep")


def test_different_images_are_not_reused() -> None:
    other = {**IMG, "digest": "sha256:" + "9" * 64}
    assert not reusable(published([IMG, ATT]), [other], ANN, "keep")


def test_different_annotations_are_not_reused() -> None:
    assert not reusable(published([IMG, ATT], {"org.opencontainers.image.version": "1.4.1"}), [IMG, NEW_ATT], ANN,
                        "keep")


def test_attestation_mode_must_match_to_reuse() -> None:
    assert not reusable(published([IMG, ATT]), [IMG], ANN, "drop")
    assert not reusable(published([IMG]), [IMG, NEW_ATT], ANN, "keep")
    assert reusable(published([IMG]), [IMG], ANN, "drop")


def test_nothing_published_is_nothing_to_reuse() -> None:
    assert not reusable(None, [IMG], ANN, "keep")


def test_the_settings_example_in_the_docs_parses(tmp_path: Path) -> None:
    docs = REPO / "docs" / "release.md"
    block = docs.read_text().split("```yaml\n# bakery.yaml: release settings\n", 1)[1].split("```", 1)[0]
    s = settings(config(tmp_path, block))
    assert s == settings(config(tmp_path))     # the documented values are the defaults


# --------------------------------------------------------------------------- already released from this commit
PLATFORMS = ["linux/amd64"]


def test_the_same_commits_release_is_recognised_and_not_rebuilt() -> None:
    assert already_released(published([IMG, ATT]), ANN, PLATFORMS, "keep")


def test_another_commit_or_version_is_not_this_release() -> None:
    other = {"org.opencontainers.image.version": "1.4.2", "org.opencontainers.image.revision": "abc"}
    assert not already_released(published([IMG, ATT], other), ANN, PLATFORMS, "keep")


def test_a_changed_platform_list_means_a_new_build() -> None:
    assert not already_released(published([IMG]), ANN, ["linux/amd64", "linux/arm64"], "keep")


def test_the_attestation_policy_must_still_hold() -> None:
    assert not already_released(published([IMG, ATT]), ANN, PLATFORMS, "drop")
    assert not already_released(published([IMG, {**ATT, "annotations": {**ATT["annotations"],
                                                                         "vnd.docker.reference.digest": "x"}}]),
                                ANN, PLATFORMS, "keep")
    assert already_released(published([IMG]), ANN, PLATFORMS, "drop")


# --------------------------------------------------------------------------- git facts from a real repository
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t.invalid", "GIT_AUTHOR_DATE": "2024-05-01T10:00:00Z",
           "GIT_COMMITTER_DATE": "2024-05-01T10:00:00Z", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def git(root: Path, *args: str) -> str:
    import subprocess
    import os
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.txt").write_text("v1\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "one")
    git(root, "tag", "v1.4.2")
    git(root, "remote", "add", "origin", "git@github.com:acme/shop.git")
    return root


def test_git_info_reads_commit_tags_origin_and_commit_time(repo: Path) -> None:
    from bakery.release.git import git_info
    info = git_info(Runner(), repo, "bake")
    assert info.sha == git(repo, "rev-parse", "HEAD") and len(info.sha) == 40
    assert info.head_tags == ("v1.4.2",)
    assert info.source == "https://github.com/acme/shop"
    assert info.created == "2024-05-01T10:00:00Z" and info.dirty == ()


def test_git_info_reports_changes_but_not_the_bake_dir(repo: Path) -> None:
    from bakery.release.git import git_info
    (repo / "bake").mkdir()
    (repo / "bake" / "docker-bake.json").write_text("{}")
    assert git_info(Runner(), repo, "bake").dirty == ()
    (repo / "app.txt").write_text("v2\n")
    (repo / "new.txt").write_text("x\n")
    assert git_info(Runner(), repo, "bake").dirty == ("app.txt", "new.txt")


def test_outside_a_git_repository_the_error_says_why_git_is_needed(tmp_path: Path) -> None:
    from bakery.release.git import git_info
    with pytest.raises(BakeryError, match="release needs a git checkout .* is not in a git repository"):
        git_info(Runner(), tmp_path, "bake")


def test_a_repository_without_commits_is_a_clear_error(tmp_path: Path) -> None:
    from bakery.release.git import git_info
    git(tmp_path, "init", "-q")
    with pytest.raises(BakeryError, match="HEAD has no commit yet"):
        git_info(Runner(), tmp_path, "bake")
