"""The tags of this build, decided once: the event read from the environment (:mod:`bakery.tags.event`), the
rules of ``tags:`` (:mod:`bakery.tags.settings`) applied to it (:mod:`bakery.tags.compute`), the OCI labels, and
whether this event may push (pull requests build only unless ``pull_requests: push``; forks never push).

:func:`resolve` is the one place that reads the outside world for it (the environment, the GitHub event payload,
read-only git); :func:`decide` is pure."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bakery.config.model import Config
from bakery.errors import BakeryError
from bakery.process import Runner
from bakery.release.git import checkout
from bakery.build.labels import overlay
from bakery.tags.compute import Tags, compute, oci_labels
from bakery.tags.event import Event, EventError, GitFacts, from_environment
from bakery.tags.settings import TagSettings, settings

__all__ = ["BuildTags", "EventTags", "decide", "for_build", "git_facts", "resolve"]


@dataclass(frozen=True)
class EventTags:
    """What this build is tagged with, and whether it pushes (``why`` says why not)."""

    event: Event
    tags: Tags
    labels: Mapping[str, str] = field(default_factory=dict)
    push: bool = True
    why: str = ""
    epoch: int = 0                 # the commit's time (SOURCE_DATE_EPOCH, created); 0: unknown

    def to_dict(self) -> dict[str, object]:
        e = self.event
        return {"event": {"name": e.name, "ref": e.ref, "sha": e.sha, "default_branch": e.default_branch,
                          "base_ref": e.base_ref, "fork": e.fork, "provider": e.provider},
                "tags": list(self.tags.tags), "version": self.tags.version, "latest": self.tags.latest,
                "labels": dict(self.labels), "push": self.push, "why": self.why}


def decide(tag_settings: TagSettings, event: Event, created: datetime, epoch: int = 0,
           now: datetime | None = None) -> EventTags:
    """Tags, labels and the push decision of ``event`` (pure): ``{{date}}`` is ``now`` (the run's time, as
    metadata-action; ``created`` when not given), the ``created`` label the commit time."""
    tags = compute(tag_settings.rules, tag_settings.flavor, event, now or created)
    labels = oci_labels(tags, event, created)
    push, why = True, ""
    if event.is_pull_request and event.fork:
        push, why = False, "built, never pushed (a pull request from a fork gets no push rights)"
    elif event.is_pull_request and tag_settings.pull_requests != "push":
        push, why = False, "built, not pushed (tags.pull_requests: push to push pull requests)"
    return EventTags(event, tags, labels, push, why, epoch)


def resolve(config: Config, runner: Runner, env: Mapping[str, str] | None = None,
            now: datetime | None = None) -> EventTags | None:
    """The plan for this checkout and environment; None when bakery.yaml has no ``tags:``. ``created`` is the
    commit's time when git knows it (the same commit gives the same labels, so skip and the cache still hit),
    else ``now``; ``{{date}}`` is ``now`` (default: the clock), ``{{commit_date}}`` the commit's time."""
    tag_settings = settings(config)
    if not tag_settings.configured:
        return None
    env = os.environ if env is None else env
    facts, epoch = git_facts(runner, config.root)
    payload = _payload(env)
    try:
        event = from_environment(env, payload=payload, git=facts)
    except EventError as exc:
        raise BakeryError(f"{config.source}: tags: {exc}") from None
    if not event.ref:
        raise BakeryError(f"{config.source}: tags: no branch, tag or pull request to tag (detached HEAD outside "
                          "CI): check out a branch, or set BAKERY_REF=refs/heads/<branch>, or pass --tag")
    run = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    created = datetime.fromtimestamp(epoch, timezone.utc) if epoch else run
    return decide(tag_settings, dataclasses.replace(event, committed=event.committed or epoch), created, epoch, run)


def _payload(env: Mapping[str, str]) -> str | None:
    path = env.get("GITHUB_EVENT_PATH", "")
    if not path or env.get("GITHUB_ACTIONS") != "true":
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BakeryError(f"GITHUB_EVENT_PATH {path}: cannot read the event payload ({exc.strerror})") from None


def git_facts(runner: Runner, root: Path) -> tuple[GitFacts, int]:
    """The checkout's facts (:func:`bakery.release.git.checkout`) as the event reads them, and the commit time;
    empty facts outside a git checkout."""
    found = checkout(runner, root)
    if found is None:
        return GitFacts(), 0
    return GitFacts(found.branch, found.head_tags, found.sha, found.source, found.default_branch), found.epoch


@dataclass(frozen=True)
class BuildTags:
    """What ``build`` and ``stitch`` take from the plan: the main tag (per-group refs ``<tag>-<group>``), the
    other tags the index is also PUT under, the bake overlay with the labels, and whether to push."""

    tag: str
    also: tuple[str, ...]
    overlay: Mapping[str, object]
    push: bool
    note: str = ""
    cache_export: bool = True      # False on an event that does not push: it has no right to write the cache


def for_build(config: Config, plan: EventTags, targets: Sequence[str], push: bool) -> BuildTags:
    """The plan as build arguments: labels and annotations (``org.opencontainers.image.*``) and
    ``SOURCE_DATE_EPOCH`` (the commit time) on ``targets`` through a bake overlay; a pull request's ``--push``
    turned into a build unless ``tags.pull_requests: push`` (a fork's never pushes), and such a build writes no
    cache (it reads the shared one)."""
    if not plan.tags.tags:
        raise BakeryError(f"{config.source}: tags: no rule gives a tag for the {plan.event.describe()}; add one "
                          "(type=sha gives one for every commit) or pass --tag")
    body = overlay(config, targets, plan.labels, plan.epoch)
    if not plan.epoch:     # no commit time known: leave SOURCE_DATE_EPOCH to the user
        for target in body["target"].values():
            target.pop("args", None)
    note = f"{plan.event.describe()}: {plan.why}" if push and not plan.push else ""
    return BuildTags(plan.tags.main, plan.tags.tags[1:], body, push and plan.push, note, plan.push)
