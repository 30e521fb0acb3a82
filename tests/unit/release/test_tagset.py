"""bakery.release.tagset: a release's tag set is ``release.tags``'s without a ``tags:`` section, and what the
``tags:`` rules give the push of the version tag with one; floating tags that would move back to an older version
are held either way."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from bakery.config import Config, load
from bakery.errors import BakeryError
from bakery.oci.registry import OCI_INDEX
from bakery.release.git import GitInfo
from bakery.release.plan import ReleasePlan, plan_images, plan_tags
from bakery.release.report import dry_run
from bakery.release.tags import TagOptions, parse_version
from bakery.release.tagset import TagSource, hold, rule_tags, tag_source, version_tag
from tests.support.registry import FakeRegistry
from tests.unit.build.test_stitch import image
from tests.unit.release.test_phases import make_plan

SHA = "3f2c1ab9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3"
SEMVER = ["type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}",
          "type=semver,pattern={{major}}", "type=sha"]


@pytest.fixture(autouse=True)
def _in_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)          # messages name bakery.yaml as a user in the project sees it


def config(root: Path, **top: Any) -> Config:
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    doc = {"registry": "registry.test/acme", "platform_groups": {"amd64": ["linux/amd64"]},
           "images": {"app": {"context": "app"}}, **top}
    (root / "bakery.yaml").write_text(json.dumps(doc))
    return load(root / "bakery.yaml")


def git(*head_tags: str, epoch: int = 1_700_000_000) -> GitInfo:
    return GitInfo(SHA, head_tags, "https://example.com/acme/app", epoch, ())


def v(text: str) -> Any:
    return parse_version(text)


def source(tmp_path: Path, rules: list[str], version: str = "1.3.5", flavor: str | None = None) -> TagSource:
    tags: dict[str, Any] = {"rules": rules, **({"flavor": flavor} if flavor is not None else {})}
    return tag_source(config(tmp_path, tags=tags), git(f"v{version}"), v(version))


# --------------------------------------------------------------------------- where the tags come from
def test_without_a_tags_section_the_tag_set_is_release_tags(tmp_path: Path) -> None:
    found = tag_source(config(tmp_path), git("v1.3.5"), v("1.3.5"))
    assert found.event is None and found.tags == ()
    assert found.origin == "release.tags (no tags: section in bakery.yaml)"


def test_with_a_tags_section_the_tag_set_is_what_its_rules_give_the_version_tag(tmp_path: Path) -> None:
    found = source(tmp_path, SEMVER)
    assert found.tags == ("1.3.5", "1.3", "1", "sha-3f2c1ab", "latest")
    assert found.event is not None and (found.event.name, found.event.ref, found.event.sha) == \
        ("push", "refs/tags/v1.3.5", SHA)


def test_the_rules_see_the_commit_time_as_the_events_time(tmp_path: Path) -> None:
    found = tag_source(config(tmp_path, tags=["type=raw,value={{date 'YYYYMMDD'}}"]), git("v1.0.0", epoch=0),
                       v("1.0.0"))
    assert found.tags == ("19700101",)


def test_the_origin_names_the_rules_and_the_event_they_were_applied_to(tmp_path: Path) -> None:
    assert source(tmp_path, SEMVER).origin == "bakery.yaml tags: (rules applied to refs/tags/v1.3.5 at 3f2c1ab)"


def test_the_version_tag_is_the_tag_on_head_that_names_the_version() -> None:
    assert version_tag(("latest-build", "v1.2.3", "v2.0.0"), v("1.2.3")) == "v1.2.3"


def test_without_a_tag_on_head_the_rules_see_the_version_as_it_was_asked_for() -> None:
    assert version_tag(("v2.0.0",), v("1.2.3")) == "1.2.3"


def test_rules_that_give_the_version_tag_nothing_are_one_line_naming_tags(tmp_path: Path) -> None:
    with pytest.raises(BakeryError) as caught:
        source(tmp_path, ["type=ref,event=branch"])
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("bakery.yaml: tags: no rule gives a tag for the push of refs/tags/v1.3.5 at 3f2c1ab")


def test_release_tags_options_the_rules_make_unused_are_named(tmp_path: Path) -> None:
    cfg = config(tmp_path, tags=SEMVER, release={"tags": {"prefix": "v", "floating": "always"}})
    assert tag_source(cfg, git("v1.3.5"), v("1.3.5")).unused == ("release.tags.prefix",)


# --------------------------------------------------------------------------- the hold, on the rules' output
def test_floating_tags_of_the_rules_stay_behind_a_newer_release(tmp_path: Path) -> None:
    plan = rule_tags(source(tmp_path, SEMVER), v("1.3.5"), [v("1.4.0"), v("1.2.0")], "forward")
    assert plan.tags == ("1.3.5", "1.3", "sha-3f2c1ab")
    assert plan.held == (("1", "1.4.0 is already released"), ("latest", "1.4.0 is already released"))


def test_the_rules_hold_what_release_tags_would_hold(tmp_path: Path) -> None:
    published = [v("1.3.7"), v("1.4.0"), v("2.0.0-rc.1")]
    by_rules = rule_tags(source(tmp_path, SEMVER), v("1.3.5"), published, "forward")
    by_options = plan_tags(v("1.3.5"), SHA, TagOptions(), published)
    assert set(by_rules.tags) == set(by_options.tags) and set(by_rules.held) == set(by_options.held)


def test_a_held_tag_names_the_newest_release_that_has_it(tmp_path: Path) -> None:
    plan = rule_tags(source(tmp_path, SEMVER), v("1.3.5"), [v("1.3.7"), v("1.3.6")], "forward")
    assert ("1.3", "1.3.7 is already released") in plan.held


def test_newer_prereleases_hold_nothing(tmp_path: Path) -> None:
    plan = rule_tags(source(tmp_path, SEMVER), v("1.3.5"), [v("1.4.0-rc.1")], "forward")
    assert plan.held == () and "latest" in plan.tags


def test_a_tag_from_a_raw_rule_is_never_held(tmp_path: Path) -> None:
    plan = rule_tags(source(tmp_path, [*SEMVER, "type=raw,value=stable"]), v("1.3.5"), [v("1.4.0")], "forward")
    assert "stable" in plan.tags and "stable" not in dict(plan.held)


def test_the_sha_tag_is_never_held(tmp_path: Path) -> None:
    plan = rule_tags(source(tmp_path, SEMVER), v("1.3.5"), [v("1.4.0")], "forward")
    assert "sha-3f2c1ab" in plan.tags


def test_a_floating_tag_with_the_flavors_prefix_is_held_too(tmp_path: Path) -> None:
    found = source(tmp_path, SEMVER, flavor="prefix=app-")
    plan = rule_tags(found, v("1.3.5"), [v("1.4.0")], "forward")
    assert dict(plan.held) == {"app-1": "1.4.0 is already released", "latest": "1.4.0 is already released"}


def test_floating_always_moves_every_tag_the_rules_give(tmp_path: Path) -> None:
    found = source(tmp_path, SEMVER)
    assert rule_tags(found, v("1.3.5"), [v("1.4.0")], "always").tags == found.tags


def test_hold_keeps_the_order_of_the_tags_it_leaves() -> None:
    plan = hold(["1.3.5", "1.3", "1", "latest"], [], [(v("2.0.0"), ["2.0.0", "2.0", "2", "latest"])])
    assert plan.tags == ("1.3.5", "1.3", "1") and plan.held == (("latest", "2.0.0 is already released"),)


# --------------------------------------------------------------------------- in the plan phase
def with_source(plan: ReleasePlan, found: TagSource) -> ReleasePlan:
    return ReleasePlan(**{**plan.__dict__, "tag_source": found})


def test_the_plan_takes_the_rules_tag_set_and_holds_against_the_registrys_releases(tmp_path: Path) -> None:
    cfg = config(tmp_path, tags={"rules": SEMVER, "flavor": "prefix=app-"})
    reg = FakeRegistry()
    old = image(reg, "amd64", repo="acme/app")
    reg.put_manifest("acme/app", "app-1.4.0", reg.manifests["acme/app"][old].raw, OCI_INDEX)
    plan = with_source(make_plan(cfg, reg, "1.3.5"), tag_source(cfg, git("v1.3.5"), v("1.3.5")))
    out = io.StringIO()
    work = plan_images(plan, out)
    assert work["app"].plan.tags == ("app-1.3.5", "app-1.3", "sha-3f2c1ab")
    assert "  app: app-1 stays where it is (1.4.0 is already released)" in out.getvalue()


def test_without_rules_the_plan_is_release_tags_as_before(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    plan = make_plan(cfg, FakeRegistry(), "1.3.5")
    assert plan_images(plan, io.StringIO())["app"].plan == plan_tags(v("1.3.5"), SHA, TagOptions())


def test_the_report_says_where_the_tags_came_from(tmp_path: Path) -> None:
    cfg = config(tmp_path, tags=SEMVER)
    plan = with_source(make_plan(cfg, FakeRegistry(), "1.3.5"), tag_source(cfg, git("v1.3.5"), v("1.3.5")))
    report = dry_run(plan, plan_images(plan, io.StringIO()).values(), io.StringIO())
    assert report.to_dict()["tags_from"] == "bakery.yaml tags: (rules applied to refs/tags/v1.3.5 at 3f2c1ab)"
