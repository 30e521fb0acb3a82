"""Where a release's tag set comes from, and the floating tags it holds back.

Without a ``tags:`` section in bakery.yaml, the set is ``release.tags``'s (:func:`bakery.release.plan.plan_tags`).
With one, it is what those rules (:mod:`bakery.tags`, the same as ``build --push``) give the tag event of the
version tag: a push of ``refs/tags/v1.2.3`` (the tag on HEAD that names the version; without one, the version as
``--version`` gave it) at the checkout's commit and commit time (:func:`tag_source`). ``release.tags.floating``
applies to that output as to ``release.tags``'s (:func:`hold`): with ``forward``, a tag the same rules also give a
newer published release (``1.4``, ``1``, ``latest`` for 1.3.5 after 1.4.0) stays where it is; a tag a ``type=raw``
rule gives is never held, and prereleases never hold anything.

Pure but :func:`tag_source`, which reads the ``tags:`` section."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from bakery.config.model import Config
from bakery.errors import BakeryError
from bakery.release.git import GitInfo
from bakery.release.tags import TagError, TagOptions, Version, parse_version
from bakery.tags.compute import compute
from bakery.tags.event import Event
from bakery.tags.rules import DEFAULT_RULES, Flavor, Rule, RuleError
from bakery.tags.settings import settings as tag_settings

__all__ = ["RELEASE_TAGS", "TagPlan", "TagSource", "hold", "rule_tags", "tag_source", "version_tag"]

RELEASE_TAGS = "release.tags"


@dataclass(frozen=True)
class TagPlan:
    tags: tuple[str, ...]
    held: tuple[tuple[str, str], ...] = ()     # floating tags left where they are: (tag, why)


@dataclass(frozen=True)
class TagSource:
    """The rules of ``tags:`` and the event they are applied to, with what they gave it; ``event`` None: the tag
    set is ``release.tags``'s."""

    rules: tuple[Rule, ...] = ()
    flavor: Flavor = Flavor()
    event: Event | None = None
    created: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, timezone.utc))
    tags: tuple[str, ...] = ()                 # what the rules give ``event``, before any is held
    raw: frozenset[str] = frozenset()          # those a type=raw rule gives (never held)
    config_source: str = "bakery.yaml"
    unused: tuple[str, ...] = ()               # release.tags keys the rules make unused (all but floating)

    @property
    def origin(self) -> str:
        """Where the tags come from, for the output and the report."""
        if self.event is None:
            return f"{RELEASE_TAGS} (no tags: section in {self.config_source})"
        return f"{self.config_source} tags: (rules applied to {self.event.ref} at {self.event.sha[:7]})"

    def version_options(self, options: TagOptions) -> TagOptions:
        """What a released version's tag looks like in a repository (for ``published_versions``): the flavor's
        prefix and suffix with rules, else ``release.tags``'s."""
        if self.event is None:
            return options
        return TagOptions(prefix=self.flavor.prefix, suffix=self.flavor.suffix)


def version_tag(head_tags: Iterable[str], version: Version) -> str:
    """The git tag on HEAD that names ``version`` (``v1.2.3``); without one, the version as it was asked for."""
    for tag in sorted(head_tags):
        try:
            if parse_version(tag) == version:
                return tag
        except TagError:
            continue
    return version.raw or str(version)


def tag_source(config: Config, git: GitInfo, version: Version) -> TagSource:
    """The rules of ``tags:`` applied to the push of the version tag, at HEAD and its commit time; ``release.tags``
    when bakery.yaml has no ``tags:``. Rules that give that event no tag are an error, before anything runs."""
    found = tag_settings(config)
    if not found.configured:
        return TagSource(config_source=config.source)
    event = Event("push", f"refs/tags/{version_tag(git.head_tags, version)}", git.sha.lower(), source=git.source,
                  committed=git.epoch)
    created = datetime.fromtimestamp(git.epoch, timezone.utc)
    tags = compute(found.rules, found.flavor, event, created).tags
    if not tags:
        raise BakeryError(f"{config.source}: tags: no rule gives a tag for the {event.describe()}, the version tag "
                          f"of release {version}; add one (type=semver,pattern={{{{version}}}}) or remove tags: to "
                          f"use {RELEASE_TAGS}")
    raws = [r for r in found.rules if r.type == "raw"]
    raw = compute(raws, replace(found.flavor, latest="false"), event, created).tags if raws else ()
    return TagSource(found.rules, found.flavor, event, created, tags, frozenset(raw), config.source,
                     _unused(config))


def _unused(config: Config) -> tuple[str, ...]:
    section = (config.raw or {}).get("release")
    options = section.get("tags") if isinstance(section, dict) else None
    return tuple(f"{RELEASE_TAGS}.{k}" for k in options if k != "floating") if isinstance(options, dict) else ()


def rule_tags(source: TagSource, version: Version, published: Iterable[Version], floating: str) -> TagPlan:
    """The rules' tags for the version tag, minus the floating ones a newer release holds (:func:`hold`)."""
    if floating == "always" or source.event is None:
        return TagPlan(source.tags)
    return hold(source.tags, source.raw, _theirs(source, source.event, version, published))


def hold(tags: Sequence[str], raw: Iterable[str], newer: Iterable[tuple[Version, Iterable[str]]]) -> TagPlan:
    """``tags`` without those that a newer release also has (``newer``: each newer release and its tags), but the
    ``raw`` ones (never held); why, per tag held: the newest release that has it."""
    never = set(raw)
    ahead: dict[str, Version] = {}
    for other, theirs in newer:
        for tag in set(theirs) & set(tags) - never:
            ahead[tag] = max(ahead[tag], other) if tag in ahead else other
    held = tuple((t, f"{ahead[t]} is already released") for t in tags if t in ahead)
    return TagPlan(tuple(t for t in tags if t not in ahead), held)


def _theirs(source: TagSource, ours: Event, version: Version,
            published: Iterable[Version]) -> list[tuple[Version, list[str]]]:
    """Each newer stable release and the tags the same rules give its version tag (with a ``v`` when ours has one;
    no commit: a ``type=sha`` tag is never shared). Raw rules are left out (their tags are never held)."""
    name = ours.tag
    lead = name[:-len(str(version))] if name.endswith(str(version)) else ""
    rules = [r for r in source.rules or DEFAULT_RULES if r.type != "raw"]
    out: list[tuple[Version, list[str]]] = []
    for other in sorted({p for p in published if not p.is_prerelease and p > version}):
        if not rules:
            break
        event = replace(ours, ref=f"refs/tags/{lead}{other}", sha="")
        try:
            out.append((other, list(compute(rules, source.flavor, event, source.created).tags)))
        except RuleError:
            continue          # a rule that gives that version no valid tag shares none with it
    return out
