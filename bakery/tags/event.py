"""What is being built, read from the CI environment: the event (push, tag, pull request, schedule), the ref, the
commit, the default branch and whether a pull request comes from a fork.

:func:`from_environment` reads GitHub Actions (``GITHUB_*`` and the event payload at ``GITHUB_EVENT_PATH``), GitLab CI
(``CI_*``) or, outside CI, the facts of the local checkout (:class:`GitFacts`, read by the caller). ``BAKERY_EVENT``,
``BAKERY_REF``, ``BAKERY_SHA`` and ``BAKERY_DEFAULT_BRANCH`` override what was read (a job that knows better, or a
test). Pure: the environment, the payload text and the git facts come in as data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bakery.errors import BakeryError

__all__ = ["EVENTS", "Event", "EventError", "GitFacts", "from_environment"]

# GitHub's event names bakery tells apart; other names (workflow_dispatch, release, ...) act as a push of the ref
EVENTS = ("push", "pull_request", "schedule", "workflow_dispatch")
_PR_REF = re.compile(r"^refs/pull/([0-9]+)/(?:merge|head)$")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


class EventError(BakeryError):
    """The CI environment does not say what is being built; the message names the variable."""


@dataclass(frozen=True)
class GitFacts:
    """The local checkout, outside CI: the branch (empty: detached), the tags on HEAD, the commit."""

    branch: str = ""
    head_tags: tuple[str, ...] = ()
    sha: str = ""
    source: str | None = None
    default_branch: str = ""           # origin's HEAD branch, when the clone knows it


@dataclass(frozen=True)
class Event:
    """One build's event. ``ref`` is the full git ref (``refs/heads/main``, ``refs/tags/v1.2.3``,
    ``refs/pull/12/merge``); ``sha`` the commit the tags name (on a pull request: the merge commit, as
    metadata-action, unless ``pr_head_sha`` is asked for)."""

    name: str                      # push | pull_request | schedule | workflow_dispatch | ...
    ref: str
    sha: str
    default_branch: str = ""
    base_ref: str = ""             # a pull request's target branch
    fork: bool = False             # a pull request from another repository: never pushed
    source: str | None = None      # the repository URL (org.opencontainers.image.source)
    provider: str = "git"          # github | gitlab | git
    committed: int = 0             # the commit's time ({{commit_date}}), epoch seconds; 0: unknown

    @property
    def branch(self) -> str:
        return self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else ""

    @property
    def tag(self) -> str:
        return self.ref[len("refs/tags/"):] if self.ref.startswith("refs/tags/") else ""

    @property
    def pr_number(self) -> int | None:
        m = _PR_REF.match(self.ref)
        return int(m.group(1)) if m else None

    @property
    def is_pull_request(self) -> bool:
        return self.name == "pull_request" or self.pr_number is not None

    @property
    def is_default_branch(self) -> bool:
        return bool(self.default_branch) and self.branch == self.default_branch

    def describe(self) -> str:
        what = (f"pull request #{self.pr_number}" + (" from a fork" if self.fork else "") if self.is_pull_request
                else f"{self.name} of {self.ref}")
        return f"{what} at {self.sha[:7] or 'no commit'} ({self.provider})"


def from_environment(env: Mapping[str, str], *, payload: str | None = None, git: GitFacts | None = None) -> Event:
    """The event of this build: GitHub Actions when ``GITHUB_ACTIONS=true``, GitLab CI when ``GITLAB_CI=true``,
    else the local checkout (``git``); then the ``BAKERY_*`` overrides. ``payload``: the text of the file at
    ``GITHUB_EVENT_PATH`` (None when there is none)."""
    if env.get("GITHUB_ACTIONS") == "true":
        event = _github(env, payload)
    elif env.get("GITLAB_CI") == "true":
        event = _gitlab(env)
    else:
        event = _local(git or GitFacts())
    return _overridden(event, env)


def _need(env: Mapping[str, str], name: str, why: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise EventError(f"{name} is not set: {why}")
    return value


def _github(env: Mapping[str, str], payload: str | None) -> Event:
    name = _need(env, "GITHUB_EVENT_NAME", "GitHub Actions sets it for every job")
    ref = env.get("GITHUB_REF", "").strip()
    sha = _need(env, "GITHUB_SHA", "GitHub Actions sets it for every job").lower()
    doc = _payload(env, payload)
    default = str(_obj(doc, "repository").get("default_branch") or "")
    server, slug = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"), env.get("GITHUB_REPOSITORY", "")
    source = f"{server}/{slug}" if slug else None
    base, fork = "", False
    if name in ("pull_request", "pull_request_target"):
        pr = _obj(doc, "pull_request")
        number = pr.get("number") or doc.get("number")
        if not ref.startswith("refs/pull/") and isinstance(number, int):
            ref = f"refs/pull/{number}/merge"        # pull_request_target runs on the base branch's ref
        base = env.get("GITHUB_BASE_REF", "") or str(_obj(pr, "base").get("ref") or "")
        head = _obj(pr, "head")
        head_repo = _obj(head, "repo")
        fork = bool(head_repo.get("fork")) or bool(head_repo.get("full_name") and slug
                                                   and head_repo.get("full_name") != slug)
        name = "pull_request"
        if env.get("DOCKER_METADATA_PR_HEAD_SHA", "").lower() == "true" and head.get("sha"):
            sha = str(head["sha"]).lower()           # metadata-action's switch: tag the PR's head commit
    if not ref:
        raise EventError("GITHUB_REF is not set: bakery cannot tell the branch, tag or pull request")
    return Event(name, ref, sha, default, base, fork, source, "github")


def _obj(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _payload(env: Mapping[str, str], payload: str | None) -> dict[str, Any]:
    if payload is None:
        return {}
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise EventError(f"GITHUB_EVENT_PATH {env.get('GITHUB_EVENT_PATH', '')}: not JSON ({exc})") from None
    return doc if isinstance(doc, dict) else {}


def _gitlab(env: Mapping[str, str]) -> Event:
    sha = _need(env, "CI_COMMIT_SHA", "GitLab CI sets it for every job").lower()
    source, default = env.get("CI_PROJECT_URL") or None, env.get("CI_DEFAULT_BRANCH", "")
    pipeline = env.get("CI_PIPELINE_SOURCE", "push")
    if env.get("CI_MERGE_REQUEST_IID"):
        fork = bool(env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID")) and \
            env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID") != env.get("CI_PROJECT_ID")
        return Event("pull_request", f"refs/pull/{env['CI_MERGE_REQUEST_IID']}/merge", sha, default,
                     env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", ""), fork, source, "gitlab")
    name = "schedule" if pipeline == "schedule" else "push"
    if env.get("CI_COMMIT_TAG"):
        return Event(name, f"refs/tags/{env['CI_COMMIT_TAG']}", sha, default, "", False, source, "gitlab")
    branch = env.get("CI_COMMIT_BRANCH") or env.get("CI_COMMIT_REF_NAME", "")
    if not branch:
        raise EventError("CI_COMMIT_BRANCH, CI_COMMIT_TAG and CI_MERGE_REQUEST_IID are all unset: bakery cannot "
                         "tell what GitLab is building")
    return Event(name, f"refs/heads/{branch}", sha, default, "", False, source, "gitlab")


def _local(git: GitFacts) -> Event:
    if git.branch:
        ref = f"refs/heads/{git.branch}"
    elif git.head_tags:
        ref = f"refs/tags/{sorted(git.head_tags)[0]}"
    else:
        ref = ""
    return Event("push", ref, git.sha.lower(), git.default_branch, "", False, git.source, "git")


def _overridden(event: Event, env: Mapping[str, str]) -> Event:
    name = env.get("BAKERY_EVENT", "").strip() or event.name
    ref = env.get("BAKERY_REF", "").strip() or event.ref
    if ref and not ref.startswith("refs/"):
        raise EventError(f"BAKERY_REF={ref!r}: expected a full ref (refs/heads/B, refs/tags/T or refs/pull/N/merge)")
    sha = (env.get("BAKERY_SHA", "").strip() or event.sha).lower()
    if sha and not _SHA.match(sha):
        raise EventError(f"commit {sha!r} (BAKERY_SHA or the CI's): expected 7 to 64 hex digits")
    default = env.get("BAKERY_DEFAULT_BRANCH", "").strip() or event.default_branch
    return Event(name, ref, sha, default, event.base_ref, event.fork, event.source, event.provider)
