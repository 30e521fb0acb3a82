"""bakery.tags.rules (rule and flavor strings as metadata-action takes them) and bakery.tags.event (the event of a
build read from GitHub Actions, GitLab CI or the checkout)."""

from __future__ import annotations

import json

import pytest

from bakery.tags.event import EventError, GitFacts, from_environment
from bakery.tags.rules import Flavor, RuleError, parse_flavor, parse_rule

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"


def test_a_rule_fills_in_its_type_s_defaults() -> None:
    assert dict(parse_rule("type=sha").attrs) == {"prefix": "sha-", "format": "short"}
    assert parse_rule("type=ref,event=pr").get("prefix") == "pr-"
    assert parse_rule("type=ref,event=pr,prefix=").get("prefix") == ""
    assert parse_rule("type=schedule").get("pattern") == "nightly"
    assert parse_rule("type=semver,pattern={{version}}").priority == 900
    assert parse_rule("type=sha,priority=2000").priority == 2000


def test_a_quoted_field_keeps_its_commas() -> None:
    assert parse_rule(r'type=match,"pattern=v(\d{1,3})",group=1').get("pattern") == r"v(\d{1,3})"


@pytest.mark.parametrize(("text", "message"), [
    ("type=pep440,pattern={{version}}", "type=pep440 is not supported"),
    ("type=semvr,pattern={{version}}", "unknown type 'semvr'"),
    ("type=semver", "type=semver needs pattern="),
    ("type=ref", "type=ref needs event="),
    ("type=ref,event=branches", "event='branches'"),
    ("type=sha,format=medium", "format='medium'"),
    ("type=edge,pattern=x", "type=edge takes no 'pattern'"),
    ("type=raw,value=a,enable=yes", "enable='yes'"),
    ("type=raw,value=a,priority=high", "priority='high' is not a whole number"),
    ("type=match,pattern=(", "pattern is not a regular expression"),
    ("type=match,pattern=v(1),group=2", "group=2 but the pattern has 1 group(s)"),
    ("type=raw,value=a,value=b", "value is given twice"),
])
def test_a_bad_rule_is_one_error_naming_it(text: str, message: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule(text)
    assert repr(text) in str(err.value) and message in str(err.value)


def test_flavor_strings_and_mappings_read_the_same() -> None:
    want = Flavor("false", "app-", True, "-dev", False)
    assert parse_flavor("latest=false\nprefix=app-,onlatest=true\nsuffix=-dev") == want
    assert parse_flavor({"latest": False, "prefix": "app-", "prefix_onlatest": True, "suffix": "-dev"}) == want
    with pytest.raises(RuleError, match="latest='sometimes'"):
        parse_flavor("latest=sometimes")
    with pytest.raises(RuleError, match="'colour'"):
        parse_flavor("colour=red")


def github(name: str, ref: str, payload: dict[str, object] | None = None, **extra: str) -> dict[str, str]:
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": name, "GITHUB_REF": ref, "GITHUB_SHA": SHA,
            "GITHUB_REPOSITORY": "acme/app", "GITHUB_SERVER_URL": "https://github.com", **extra}


def test_a_github_push_to_main_knows_its_default_branch_from_the_payload() -> None:
    e = from_environment(github("push", "refs/heads/main"),
                         payload=json.dumps({"repository": {"default_branch": "main"}}))
    assert (e.name, e.branch, e.is_default_branch, e.source, e.provider) == \
        ("push", "main", True, "https://github.com/acme/app", "github")


def test_a_github_pull_request_from_a_fork_is_marked_so() -> None:
    payload = {"number": 12, "pull_request": {"number": 12, "base": {"ref": "main"},
                                              "head": {"sha": "a" * 40, "repo": {"full_name": "someone/app",
                                                                                  "fork": True}}}}
    e = from_environment(github("pull_request", "refs/pull/12/merge", GITHUB_BASE_REF="main"),
                         payload=json.dumps(payload))
    assert (e.pr_number, e.fork, e.base_ref, e.sha) == (12, True, "main", SHA)
    head = from_environment(github("pull_request", "refs/pull/12/merge", DOCKER_METADATA_PR_HEAD_SHA="true"),
                            payload=json.dumps(payload))
    assert head.sha == "a" * 40


def test_pull_request_target_takes_the_pull_request_s_ref() -> None:
    e = from_environment(github("pull_request_target", "refs/heads/main"),
                         payload=json.dumps({"number": 15, "pull_request": {"number": 15}}))
    assert (e.name, e.ref, e.fork) == ("pull_request", "refs/pull/15/merge", False)


def test_gitlab_merge_requests_tags_and_schedules() -> None:
    base = {"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA, "CI_DEFAULT_BRANCH": "main", "CI_PROJECT_ID": "7",
            "CI_PROJECT_URL": "https://gitlab.com/acme/app"}
    mr = from_environment({**base, "CI_MERGE_REQUEST_IID": "3", "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "9",
                           "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main", "CI_PIPELINE_SOURCE": "merge_request_event"})
    assert (mr.name, mr.pr_number, mr.fork, mr.base_ref) == ("pull_request", 3, True, "main")
    tag = from_environment({**base, "CI_COMMIT_TAG": "v1.2.3", "CI_COMMIT_REF_NAME": "v1.2.3"})
    assert (tag.name, tag.tag) == ("push", "v1.2.3")
    nightly = from_environment({**base, "CI_COMMIT_BRANCH": "main", "CI_PIPELINE_SOURCE": "schedule"})
    assert (nightly.name, nightly.branch, nightly.is_default_branch) == ("schedule", "main", True)


def test_outside_ci_the_checkout_decides_and_bakery_variables_override() -> None:
    local = from_environment({}, git=GitFacts("feature/x", (), SHA, None, "main"))
    assert (local.provider, local.branch, local.default_branch) == ("git", "feature/x", "main")
    tagged = from_environment({}, git=GitFacts("", ("v1.0.0",), SHA))
    assert tagged.tag == "v1.0.0"
    forced = from_environment({"BAKERY_EVENT": "schedule", "BAKERY_REF": "refs/heads/main"},
                              git=GitFacts("feature/x", (), SHA))
    assert (forced.name, forced.branch) == ("schedule", "main")


@pytest.mark.parametrize(("env", "message"), [
    ({"GITHUB_ACTIONS": "true", "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": SHA}, "GITHUB_EVENT_NAME is not set"),
    ({"BAKERY_REF": "main"}, "BAKERY_REF='main': expected a full ref"),
    ({"BAKERY_SHA": "xyz"}, "commit 'xyz'"),
    ({"GITLAB_CI": "true", "CI_COMMIT_SHA": SHA}, "CI_COMMIT_BRANCH, CI_COMMIT_TAG and CI_MERGE_REQUEST_IID"),
])
def test_an_environment_that_does_not_say_what_is_built_is_one_error_naming_the_variable(
        env: dict[str, str], message: str) -> None:
    with pytest.raises(EventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        from_environment(env, git=GitFacts("main", (), SHA))


def test_a_payload_that_is_not_json_names_the_file() -> None:
    with pytest.raises(EventError, match="GITHUB_EVENT_PATH /x/event.json: not JSON"):
        from_environment(github("push", "refs/heads/main", GITHUB_EVENT_PATH="/x/event.json"), payload="{oops")
