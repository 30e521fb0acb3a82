"""Image tags and OCI labels from a version and a commit, following docker/metadata-action.

Pure functions only: no I/O, no clock, no global mutable state.

* ``parse_version`` / ``newest_version`` read SemVer 2.0.0 (optional leading ``v``/``V``)
  and order versions by SemVer precedence (§11; build metadata is ignored).
* ``compute_tags`` mirrors metadata-action's ``type=semver`` (``{{version}}``,
  ``{{major}}.{{minor}}``, ``{{major}}``), ``type=sha``, ``type=raw`` and the ``latest``,
  ``prefix``/``suffix`` flavors.
* ``sanitize_tag`` maps a string onto the docker tag grammar ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``.

Note: like metadata-action's ``{{version}}``, the full version keeps its build metadata
(``1.0.0+build.5``); ``+`` is not allowed in a docker tag, so the tag becomes
``1.0.0-build.5``. The ``org.opencontainers.image.version`` label keeps the ``+``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from bakery.errors import BakeryError

__all__ = [
    "TagError",
    "TagOptions",
    "Version",
    "compute_tags",
    "newest_version",
    "oci_labels",
    "parse_version",
    "sanitize_tag",
]

_NUM = r"0|[1-9][0-9]*"
_PRE_ID = rf"(?:{_NUM}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
_SEMVER = re.compile(
    rf"[vV]?(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    rf"(?:\+(?P<build>{_BUILD_ID}(?:\.{_BUILD_ID})*))?"
)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_NOT_TAG_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
_HEX = re.compile(r"[0-9a-fA-F]+")
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_MAX_TAG_LENGTH = 128
_SHORT_SHA_LENGTH = 7


class TagError(BakeryError):
    """A version, commit sha, tag or tag option that cannot be used; the message names the value."""


@dataclass(frozen=True)
class Version:
    """A parsed SemVer 2.0.0 version.

    ``==`` compares the version itself (``raw``, the text it was parsed from, is ignored);
    ``<``/``<=``/``>``/``>=`` compare SemVer precedence, which also ignores build metadata,
    so ``1.0.0+a`` and ``1.0.0+b`` are neither equal nor ordered.
    """

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: tuple[str, ...] = ()
    raw: str = field(default="", compare=False)

    @property
    def is_prerelease(self) -> bool:
        return bool(self.prerelease)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + ".".join(self.build)
        return text

    def _precedence(self) -> tuple[object, ...]:
        # SemVer §11: a release outranks its prereleases; numeric identifiers compare
        # numerically and rank below alphanumeric ones; a longer identifier list wins a tie.
        pre: tuple[object, ...] = (1,)
        if self.prerelease:
            ids = tuple((0, int(i), "") if i.isdigit() else (1, 0, i) for i in self.prerelease)
            pre = (0, ids)
        return (self.major, self.minor, self.patch, pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() < other._precedence()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() <= other._precedence()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() > other._precedence()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._precedence() >= other._precedence()


@dataclass(frozen=True)
class TagOptions:
    """What ``compute_tags`` emits; defaults match metadata-action's defaults.

    ``latest``: ``"auto"`` adds ``latest`` for a non-prerelease version, ``True`` always,
    ``False`` never. ``prefix``/``suffix`` wrap the semver tags (and ``latest`` when
    ``prefix_on_latest``/``suffix_on_latest``). ``raw`` tags are only sanitised.
    """

    latest: bool | Literal["auto"] = "auto"
    major_zero: bool = False
    prefix: str = ""
    suffix: str = ""
    prefix_on_latest: bool = False
    suffix_on_latest: bool = False
    sha: bool = True
    sha_length: int = 7
    sha_prefix: str = "sha-"
    raw: tuple[str, ...] = ()
    semver: bool = True

    def __post_init__(self) -> None:
        if self.latest not in (True, False, "auto"):
            raise TagError(f"invalid latest option {self.latest!r}: expected true, false or 'auto'")
        if isinstance(self.sha_length, bool) or not isinstance(self.sha_length, int) or self.sha_length < 1:
            raise TagError(f"invalid sha_length {self.sha_length!r}: expected a positive integer")
        if isinstance(self.raw, str):
            raise TagError(f"invalid raw tags {self.raw!r}: expected a tuple of strings, not a string")


def parse_version(text: str) -> Version:
    """Parse a SemVer 2.0.0 version with an optional leading ``v``/``V``; raise TagError otherwise."""
    match = _SEMVER.fullmatch(text)
    if match is None:
        raise TagError(
            f"invalid semantic version {text!r}: expected MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] "
            "without leading zeros, optionally prefixed with 'v'"
        )
    pre, build = match["pre"], match["build"]
    return Version(
        major=int(match["major"]),
        minor=int(match["minor"]),
        patch=int(match["patch"]),
        prerelease=tuple(pre.split(".")) if pre else (),
        build=tuple(build.split(".")) if build else (),
        raw=text,
    )


def newest_version(tags: Iterable[str]) -> Version | None:
    """The highest-precedence semver among ``tags`` (other names are ignored); first wins a tie."""
    newest: Version | None = None
    for tag in tags:
        try:
            version = parse_version(tag)
        except TagError:
            continue
        if newest is None or version > newest:
            newest = version
    return newest


def sanitize_tag(text: str) -> str:
    """Replace characters outside ``[A-Za-z0-9_.-]`` with ``-``; raise TagError if still not a valid tag."""
    tag = _NOT_TAG_CHAR.sub("-", text)
    if not tag:
        raise TagError(f"invalid docker tag {text!r}: a tag must not be empty")
    if len(tag) > _MAX_TAG_LENGTH:
        raise TagError(f"invalid docker tag {text!r}: a tag must be at most {_MAX_TAG_LENGTH} characters")
    if not _TAG.fullmatch(tag):
        raise TagError(f"invalid docker tag {text!r}: a tag must not start with '.' or '-'")
    return tag


def _short_sha(sha: str, length: int) -> str:
    if not _HEX.fullmatch(sha):
        raise TagError(f"invalid commit sha {sha!r}: expected hexadecimal digits")
    if len(sha) < length:
        raise TagError(f"invalid commit sha {sha!r}: expected at least {length} hex digits")
    return sha[:length].lower()


def compute_tags(version: Version | None, sha: str | None, options: TagOptions = TagOptions()) -> list[str]:
    """Tags for an image, de-duplicated, in order: semver (most specific first), latest, sha, raw."""
    tags: list[str] = []
    if version is not None and options.semver:
        semver = [str(version)]
        if not version.is_prerelease:
            semver.append(f"{version.major}.{version.minor}")
            if version.major != 0 or options.major_zero:
                semver.append(f"{version.major}")
        tags += [sanitize_tag(f"{options.prefix}{tag}{options.suffix}") for tag in semver]

    auto_latest = version is not None and options.semver and not version.is_prerelease
    if options.latest is True or (options.latest == "auto" and auto_latest):
        prefix = options.prefix if options.prefix_on_latest else ""
        suffix = options.suffix if options.suffix_on_latest else ""
        tags.append(sanitize_tag(f"{prefix}latest{suffix}"))

    if sha is not None and options.sha:
        tags.append(sanitize_tag(options.sha_prefix + _short_sha(sha, options.sha_length)))

    tags += [sanitize_tag(tag) for tag in options.raw]
    return list(dict.fromkeys(tags))


def oci_labels(version: Version | None, revision: str | None, source: str | None, created: str) -> dict[str, str]:
    """``org.opencontainers.image.*`` labels; ``created`` is an RFC 3339 timestamp from the caller.

    The version label is the full version, or the short revision when there is no version.
    Keys whose value would be None are omitted.
    """
    if not _RFC3339.fullmatch(created):
        raise TagError(f"invalid created timestamp {created!r}: expected RFC 3339, e.g. 2024-01-31T12:00:00Z")
    if version is not None:
        version_label: str | None = str(version)
    elif revision is not None:
        version_label = revision[:_SHORT_SHA_LENGTH]
    else:
        version_label = None
    labels = {
        "org.opencontainers.image.version": version_label,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.created": created,
    }
    return {key: value for key, value in labels.items() if value is not None}
