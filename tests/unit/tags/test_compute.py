"""bakery.tags.compute against docker/metadata-action's documented examples (its README tables and its
__tests__/meta.test.ts, commit dc80280; numbers as in docs/tags.md): event, ref, rules and flavor in, tags out."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bakery.tags.compute import compute, oci_labels
from bakery.tags.event import Event
from bakery.tags.rules import Flavor, RuleError, parse_flavor, parse_rules

NOW = datetime(2020, 1, 10, 0, 30, tzinfo=UTC)
SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
README = ("type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}",
          "type=semver,pattern={{major}}.{{minor}}")


def ev(ref: str, name: str = "push", sha: str = SHA, default: str = "master") -> Event:
    return Event(name, ref, sha, default_branch=default, provider="github")


CASES = [
    # (id, event, ref, rules, flavor, tags)
    ("readme-pr", "pull_request", "refs/pull/2/merge", (), "", ["pr-2"]),
    ("readme-branch", "push", "refs/heads/master", (), "", ["master"]),
    ("readme-slash", "push", "refs/heads/releases/v1", (), "", ["releases-v1"]),
    ("readme-tag", "push", "refs/tags/v1.2.3", (), "", ["v1.2.3", "latest"]),
    ("readme-prerelease-tag", "push", "refs/tags/v2.0.8-beta.67", (), "", ["v2.0.8-beta.67", "latest"]),
    ("readme-semver", "push", "refs/tags/v1.2.3", README, "", ["1.2.3", "1.2", "latest"]),
    ("readme-semver-pre", "push", "refs/tags/v2.0.8-beta.67", README, "", ["2.0.8-beta.67"]),
    ("readme-sha", "push", "refs/tags/v1.2.3", README + ("type=sha",), "", ["1.2.3", "1.2", "sha-860c190", "latest"]),
    ("tag11", "push", "refs/tags/v1.1.1", ("type=semver,pattern={{version}}", "type=semver,pattern={{major}}.{{minor}}",
                                           "type=semver,pattern={{major}}"), "", ["1.1.1", "1.1", "1", "latest"]),
    ("tag13", "push", "refs/tags/v2.0.8-beta.67", ("type=semver,pattern={{major}}.{{minor}}",
                                                   "type=semver,pattern={{major}}"), "", ["2.0.8-beta.67"]),
    ("tag31", "push", "refs/tags/v2.0.8-beta.67", ("type=semver,pattern={{raw}}",), "", ["v2.0.8-beta.67"]),
    ("tag07", "push", "refs/tags/v2.0.8-beta.67", (r"type=match,pattern=\d.\d.\d-(alpha|beta).\d+",), "",
     ["2.0.8-beta.67", "latest"]),
    ("tag15", "push", "refs/tags/v2.0.8-beta.67", ("type=raw,priority=2000,foo", "type=semver,pattern={{version}}",
                                                   r"type=match,pattern=\d.\d"), "", ["foo", "2.0.8-beta.67", "2.0"]),
    ("tag34", "push", "refs/tags/p1/v1.0.0", (r"type=semver,pattern={{version}},match=v(\d.\d.\d)$",), "",
     ["1.0.0", "latest"]),
    ("push14", "push", "refs/heads/master", ("type=semver,pattern={{version}},value=v1.2.3", "type=edge"), "",
     ["1.2.3", "edge", "latest"]),
    ("push13", "push", "refs/heads/master", ("type=ref,priority=2000,event=branch", "type=edge"), "",
     ["master", "edge"]),
    ("push10", "push", "refs/heads/master", ("type=edge,branch=dev", "type=sha"), "", ["sha-860c190"]),
    ("pr03", "pull_request", "refs/pull/15/merge", ("type=ref,event=pr", "type=sha"), "", ["pr-15", "sha-860c190"]),
    ("pr05", "pull_request", "refs/pull/15/merge", ("type=ref,event=pr",), "prefix=glo-,suffix=-bal", ["pr-15-bal"]),
    ("pr06", "pull_request", "refs/pull/15/merge", ("type=ref,event=pr,prefix=",), "prefix=glo-,suffix=-bal",
     ["15-bal"]),
    ("schedule01", "schedule", "refs/heads/master", (), "", ["nightly", "master"]),
    ("schedule-date", "schedule", "refs/heads/master",
     ("type=schedule,pattern={{date 'YYYYMMDD-HHmmss' tz='Asia/Tokyo'}}",), "", ["20200110-093000"]),
    ("tag22", "push", "refs/tags/v1.1.1", ("type=semver,pattern={{version}}",
                                           "type=semver,pattern={{major}}.{{minor}}.{{patch}}"),
     "prefix=foo-,onlatest=true,suffix=-dev,onlatest=true", ["foo-1.1.1-dev", "foo-latest-dev"]),
    ("tag19", "push", "refs/tags/p1/v1.0.0", (r"type=match,pattern=p1/v(\d.\d.\d),group=1",
                                              r"type=match,pattern=p1/v(\d.\d),group=1,suffix=", "type=ref,event=pr",
                                              "type=sha"), "suffix=-dev",
     ["1.0.0-dev", "1.0", "sha-860c190-dev", "latest"]),
    ("raw07", "push", "refs/heads/dev", ("type=ref,priority=90,event=branch", "type=raw,value=my",
                                         "type=raw,value=custom", "type=raw,value=tags"), "latest=true",
     ["my", "custom", "tags", "dev", "latest"]),
    ("latest-on-default", "push", "refs/heads/master", ("type=raw,value=latest,enable={{is_default_branch}}",), "",
     ["latest"]),
    ("latest-not-on-feature", "push", "refs/heads/feature", ("type=raw,value=latest,enable={{is_default_branch}}",
                                                             "type=ref,event=branch"), "", ["feature"]),
    ("sha-long", "push", "refs/heads/master", ("type=sha,format=long",), "", [f"sha-{SHA}"]),
    ("bare-word-is-raw", "push", "refs/heads/master", ("edge-build",), "", ["edge-build"]),
    ("major-zero", "push", "refs/tags/v0.1.2", ("type=semver,pattern={{major}}",), "", ["0", "latest"]),
    ("not-semver", "push", "refs/tags/release1", ("type=semver,pattern={{version}}",), "", []),
    ("build-metadata", "push", "refs/tags/v1.2.3+build.5", ("type=semver,pattern={{version}}",
                                                            "type=semver,pattern={{raw}}"), "",
     ["1.2.3", "v1.2.3-build.5", "latest"]),
    ("branch-chars", "push", "refs/heads/my/feature#1245", (), "", ["my-feature-1245"]),
]


@pytest.mark.parametrize(("name", "event", "ref", "rules", "flavor", "tags"), CASES, ids=[c[0] for c in CASES])
def test_metadata_action_example(name: str, event: str, ref: str, rules: tuple[str, ...], flavor: str,
                                 tags: list[str]) -> None:
    got = compute(parse_rules(rules), parse_flavor(flavor or None), ev(ref, event), NOW)
    assert list(got.tags) == tags


def test_the_first_tag_is_the_main_one_and_the_version_label() -> None:
    got = compute(parse_rules(README), Flavor(), ev("refs/tags/v1.2.3"), NOW)
    assert got.main == "1.2.3" and got.version == "1.2.3" and got.latest
    labels = oci_labels(got, Event("push", "refs/tags/v1.2.3", SHA, source="https://github.com/acme/app"), NOW)
    assert labels == {"org.opencontainers.image.created": "2020-01-10T00:30:00Z",
                      "org.opencontainers.image.revision": SHA,
                      "org.opencontainers.image.source": "https://github.com/acme/app",
                      "org.opencontainers.image.version": "1.2.3"}


def test_no_rule_applying_gives_no_tags_and_no_latest() -> None:
    got = compute(parse_rules(("type=ref,event=tag",)), parse_flavor("latest=true"), ev("refs/heads/main"), NOW)
    assert got.tags == () and not got.latest


def test_expressions_fill_values_prefixes_and_suffixes() -> None:
    rules = parse_rules(("type=raw,value={{branch}}-{{sha}},suffix=-{{date 'YYYYMMDD'}}",))
    assert compute(rules, Flavor(), ev("refs/heads/main"), NOW).tags == ("main-860c190-20200110",)


@pytest.mark.parametrize(("rule", "message"), [
    ("type=raw,value={{nope}}", "unknown expression '{{nope}}'"),
    ("type=semver,pattern={{branch}}", "{{branch}} is not one of"),
    ("type=raw,value=-leading", "must not start with"),
])
def test_a_rule_that_cannot_give_a_tag_is_one_error_naming_it(rule: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        compute(parse_rules((rule,)), Flavor(), ev("refs/tags/v1.0.0"), NOW)
    assert rule in str(err.value) and message in str(err.value)


def test_commit_date_is_the_commits_time_and_date_the_runs() -> None:
    committed = int(datetime(2019, 12, 24, 18, 0, tzinfo=UTC).timestamp())
    event = Event("schedule", "refs/heads/master", SHA, "master", committed=committed)
    rules = parse_rules(["type=schedule,pattern={{date 'YYYYMMDD'}}-{{commit_date 'YYYYMMDD-HHmm'}}"])
    assert compute(rules, Flavor(), event, NOW).tags == ("20200110-20191224-1800",)


def test_commit_date_without_a_known_commit_time_is_the_runs() -> None:
    rules = parse_rules(["type=raw,value=at-{{commit_date 'YYYYMMDD'}}"])
    assert compute(rules, Flavor(), ev("refs/heads/master"), NOW).tags == ("at-20200110",)
