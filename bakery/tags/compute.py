"""The tags and OCI labels an event gets from tag rules, with docker/metadata-action's semantics (the parity table
is docs/tags.md). Pure: rules, flavor, event and the time come in, tags and labels go out.

- Rules run by priority (highest first; equal priorities keep their order). The first tag made is the *main*
  one (the per-group refs and the version label use it), the others follow once each, then ``latest``.
- ``schedule`` only on a schedule event (``pattern``, default ``nightly``, may hold ``{{date 'YYYYMMDD'}}``);
  ``semver`` and ``match`` only on a tag (or on ``value=``); ``edge`` on a push to ``branch`` (default: the default
  branch); ``ref`` on its event (a branch, a tag, a pull request: ``pr-<N>``); ``raw`` always; ``sha`` always.
- ``semver`` patterns take ``{{raw}}``, ``{{version}}`` (no build metadata), ``{{major}}``, ``{{minor}}``,
  ``{{patch}}``; a prerelease only ever gives ``{{version}}`` (or ``{{raw}}`` when the pattern is exactly that).
- ``latest=auto``: the first rule that gives a tag decides: a release's semver, a match or a git tag's ``ref``
  add ``latest`` (last); every other rule does not.
- Values, prefixes, suffixes and ``enable`` take ``{{branch}}``, ``{{tag}}``, ``{{sha}}``, ``{{base_ref}}``,
  ``{{is_default_branch}}``, ``{{date 'FORMAT'}}`` (the run's time) and ``{{commit_date 'FORMAT'}}`` (the commit's;
  moment.js tokens: YYYY YY MM DD HH mm ss, with an optional ``tz='Area/City'``).
- Every tag has the characters a docker tag cannot hold replaced by ``-``; one that is still no valid tag is a
  :class:`RuleError` naming the rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bakery.release.tags import TagError, parse_version, sanitize_tag
from bakery.tags.event import Event
from bakery.tags.rules import DEFAULT_RULES, Flavor, Rule, RuleError

__all__ = ["Tags", "compute", "expand", "oci_labels"]

_VAR = re.compile(r"\{\{\s*([a-z_]+)((?:\s+[^}]*)?)\s*\}\}")
_DATE_ARGS = re.compile(r"""^\s*(['"])(?P<fmt>.*?)\1(?:\s+tz=(['"])(?P<tz>[^'"]+)\3)?\s*$""")
_MOMENT = re.compile(r"YYYY|YY|MM|DD|HH|mm|ss|SSS")
_STRFTIME = {"YYYY": "%Y", "YY": "%y", "MM": "%m", "DD": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_NOT_TAG = re.compile(r"[^a-zA-Z0-9._-]+")
_SEMVER_VARS = ("raw", "version", "major", "minor", "patch")


@dataclass(frozen=True)
class Tags:
    """What an event gets: ``tags`` in output order (empty: no rule applies), the main one first."""

    tags: tuple[str, ...] = ()
    version: str = ""          # the main tag before sanitising (org.opencontainers.image.version)
    latest: bool = False

    @property
    def main(self) -> str:
        return self.tags[0] if self.tags else ""


def compute(rules: Sequence[Rule], flavor: Flavor, event: Event, now: datetime) -> Tags:
    """The tags of ``event`` under ``rules`` (empty: metadata-action's defaults) and ``flavor``."""
    made: list[tuple[str, Rule]] = []
    latest: bool | None = None
    for rule in sorted(rules or DEFAULT_RULES, key=lambda r: -r.priority):
        enable = expand(rule.get("enable", "true"), event, now, rule)
        if enable not in ("true", "false"):
            raise RuleError(f"tag rule {rule.text!r}: enable is {enable!r}, expected true or false")
        if enable == "false":
            continue
        values, release = _values(rule, event, now)
        made += [(v, rule) for v in values]
        if values and latest is None:      # the first rule that gives a tag decides (metadata-action)
            latest = release
    if not made:
        return Tags()
    want_latest = {"true": True, "false": False}.get(flavor.latest, bool(latest))
    out = [_tag(_affixed(v, r, flavor, event, now), r) for v, r in made]
    if want_latest:
        name = ((flavor.prefix if flavor.prefix_onlatest else "") + "latest" +
                (flavor.suffix if flavor.suffix_onlatest else ""))
        out.append(_tag(expand(name, event, now), None))
    version = _affixed(made[0][0], made[0][1], flavor, event, now)
    return Tags(tuple(dict.fromkeys(out)), version, want_latest)


def _values(rule: Rule, event: Event, now: datetime) -> tuple[list[str], bool]:
    """The bare values (before prefix/suffix) one rule gives, and whether they ask for ``latest`` under
    ``latest=auto`` (a release's semver, a match, a git tag's ref)."""
    kind = rule.type
    if kind == "schedule":
        return ([expand(rule.get("pattern"), event, now, rule)] if event.name == "schedule" else []), False
    if kind == "semver":
        return _semver(rule, event, now)
    if kind == "match":
        return _match(rule, event, now)
    if kind == "edge":
        branch = rule.get("branch") or event.default_branch
        return (["edge"] if event.branch and event.branch == branch else []), False
    if kind == "ref":
        which = rule.get("event")
        if which == "branch" and event.branch:
            return [event.branch], False
        if which == "tag" and event.tag:
            return [event.tag], True
        if which == "pr" and event.pr_number is not None:
            return [str(event.pr_number)], False
        return [], False
    if kind == "raw":
        return [expand(rule.get("value"), event, now, rule)], False
    if kind == "sha":
        if not event.sha:
            return [], False
        return [event.sha if rule.get("format") == "long" else event.sha[:7]], False
    raise RuleError(f"tag rule {rule.text!r}: unknown type {kind!r}")   # parse_rule admits none


def _semver(rule: Rule, event: Event, now: datetime) -> tuple[list[str], bool]:
    raw = _subject(rule, event, now)
    if rule.get("match"):
        found = re.search(rule.get("match"), raw)
        if found is not None and found.groups():
            raw = found.group(1) or raw
    raw = raw.replace("/", "-")
    if not raw or raw.startswith("V"):   # node-semver's strict check takes 'v1.2.3' but not 'V1.2.3'
        return [], False
    try:
        version = parse_version(raw)
    except TagError:
        return [], False                 # not a version: metadata-action leaves it to the other rules
    core = f"{version.major}.{version.minor}.{version.patch}" + (
        "-" + ".".join(version.prerelease) if version.prerelease else "")   # {{version}}: no build metadata
    pattern = rule.get("pattern")
    if version.is_prerelease:
        return [raw if pattern.strip().replace(" ", "") == "{{raw}}" else core], False
    fields = {"raw": raw, "version": core, "major": str(version.major), "minor": str(version.minor),
              "patch": str(version.patch)}
    return [_fill(pattern, fields, rule)], True


def _subject(rule: Rule, event: Event, now: datetime) -> str:
    """What semver and match read: ``value=`` (expanded) when given, else the git tag (empty: not a tag)."""
    return expand(rule.get("value"), event, now, rule) if rule.get("value") else event.tag


def _fill(pattern: str, fields: dict[str, str], rule: Rule) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(1) not in fields:
            raise RuleError(f"tag rule {rule.text!r}: {{{{{m.group(1)}}}}} is not one of "
                            f"{', '.join('{{' + k + '}}' for k in _SEMVER_VARS)}")
        return fields[m.group(1)]
    return _VAR.sub(one, pattern)


def _match(rule: Rule, event: Event, now: datetime) -> tuple[list[str], bool]:
    raw = _subject(rule, event, now)
    if not raw:
        return [], False
    found = _regex(rule.get("pattern")).search(raw)
    group = int(rule.get("group", "0"))
    if found is None or group > len(found.groups()) or found.group(group) is None:
        return [], False
    return [found.group(group)], True


def _regex(pattern: str) -> re.Pattern[str]:
    """A match pattern; ``/re/i`` (a JavaScript literal, as metadata-action takes it) honours the ``i`` flag."""
    literal = re.fullmatch(r"/(.*)/([a-z]*)", pattern, re.S)
    if literal:
        return re.compile(literal.group(1), re.I if "i" in literal.group(2) else 0)
    return re.compile(pattern)


def _affixed(value: str, rule: Rule, flavor: Flavor, event: Event, now: datetime) -> str:
    prefix = rule.get("prefix") if rule.has("prefix") else flavor.prefix
    suffix = rule.get("suffix") if rule.has("suffix") else flavor.suffix
    return expand(prefix, event, now, rule) + value + expand(suffix, event, now, rule)


def _tag(text: str, rule: Rule | None) -> str:
    try:
        return sanitize_tag(_NOT_TAG.sub("-", text))
    except TagError as exc:
        raise RuleError(f"tag rule {rule.text if rule else 'latest'!r} gives no valid tag: {exc}") from None


def expand(text: str, event: Event, now: datetime, rule: Rule | None = None) -> str:
    """``text`` with the global expressions filled in (see the module docstring)."""
    def one(m: re.Match[str]) -> str:
        name, args = m.group(1), m.group(2)
        if name == "date":
            return _date(args, now, rule)
        if name == "commit_date":            # the commit's time; the reference time when git does not know it
            return _date(args, datetime.fromtimestamp(event.committed, timezone.utc) if event.committed else now,
                         rule, name)
        values = {"branch": event.branch, "tag": event.tag, "sha": event.sha[:7], "base_ref": event.base_ref,
                  "is_default_branch": "true" if event.is_default_branch or event.name == "schedule" else "false",
                  "is_not_default_branch": "false" if event.is_default_branch or event.name == "schedule"
                  else "true"}
        if name in _SEMVER_VARS and rule is not None and rule.type == "semver":
            return m.group(0)            # the semver pattern's own fields, filled by _fill
        if name not in values or args.strip():
            where = f"tag rule {rule.text!r}" if rule else "tags"
            raise RuleError(f"{where}: unknown expression {m.group(0)!r}; expected {{{{branch}}}}, {{{{tag}}}}, "
                            "{{sha}}, {{base_ref}}, {{is_default_branch}}, {{date 'YYYYMMDD'}} or "
                            "{{commit_date 'YYYYMMDD'}}")
        return values[name]
    return _VAR.sub(one, text)


def _date(args: str, now: datetime, rule: Rule | None, name: str = "date") -> str:
    m = _DATE_ARGS.match(args)
    where = f"tag rule {rule.text!r}" if rule else "tags"
    if m is None:
        raise RuleError(f"{where}: {{{{{name}{args}}}}}: expected {{{{{name} 'YYYYMMDD'}}}} or "
                        f"{{{{{name} 'YYYYMMDD' tz='Europe/Paris'}}}}")
    when = now
    if m.group("tz"):
        try:
            when = now.astimezone(ZoneInfo(m.group("tz")))
        except (ZoneInfoNotFoundError, ValueError):
            raise RuleError(f"{where}: unknown time zone {m.group('tz')!r}") from None
    return _MOMENT.sub(lambda t: when.strftime(_STRFTIME[t.group(0)]) if t.group(0) != "SSS"
                       else f"{when.microsecond // 1000:03d}", m.group("fmt"))


def oci_labels(tags: Tags, event: Event, now: datetime) -> dict[str, str]:
    """``org.opencontainers.image.*`` for every build, as metadata-action sets them: created (``now``, RFC 3339
    UTC), revision (the commit), source (the repository URL), version (the main tag; none without tags)."""
    labels = {"org.opencontainers.image.created": now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "org.opencontainers.image.revision": event.sha, "org.opencontainers.image.source": event.source or "",
              "org.opencontainers.image.version": tags.version}
    return {k: v for k, v in labels.items() if v}
