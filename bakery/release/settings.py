"""The ``release:`` section of bakery.yaml: tag rules, floating-tag policy, attestations, size warning, smoke-test
timings. Parsed once, before anything runs, so a bad section fails the release with every problem listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bakery.config.model import Config
from bakery.config.validate import Validator, validator_for
from bakery.errors import ConfigErrors
from bakery.manifest.drafts import ATTESTATION_MODES
from bakery.release.tags import TagError, TagOptions, sanitize_tag

RELEASE_KEYS = ("tags", "attestations", "size_growth_warn", "smoke")
TAG_KEYS = ("latest", "major_zero", "prefix", "suffix", "prefix_on_latest", "suffix_on_latest", "sha", "sha_length",
            "sha_prefix", "raw", "floating")
SMOKE_KEYS = ("timeout", "start_seconds")
FLOATING = ("forward", "always")


@dataclass(frozen=True)
class ReleaseSettings:
    """``release:`` in bakery.yaml."""

    tags: TagOptions = TagOptions()
    floating: str = "forward"          # forward: X.Y, X and latest never move to an older version; always
    attestations: str = "keep"         # keep: carry attestation manifests into the index; drop: leave them out
    size_growth_warn: float | None = 0.10   # warn when a platform grows more than this since the previous release
    test_timeout: float = 300.0        # seconds a smoke test may run (emulated platforms are slow)
    start_seconds: float = 5.0         # start check: a container still running after this long has started


def settings(config: Config) -> ReleaseSettings:
    """Parse ``release:`` from the merged document; every problem is one line naming file, line and key, and all of
    them are reported together (the collect-all :class:`Validator`)."""
    raw = (config.raw or {}).get("release")
    v = validator_for(config)
    data = v.mapping(raw, "release", RELEASE_KEYS)
    tags = v.mapping(data.get("tags"), "release.tags", TAG_KEYS)
    smoke = v.mapping(data.get("smoke"), "release.smoke", SMOKE_KEYS)
    d = ReleaseSettings()
    texts = _tag_texts(v, tags)
    floating = v.choice(tags.get("floating"), "release.tags.floating", FLOATING, d.floating)
    attestations = v.choice(data.get("attestations"), "release.attestations", ATTESTATION_MODES, d.attestations)
    growth = _fraction(v, data.get("size_growth_warn", d.size_growth_warn), "release.size_growth_warn")
    timeout = _seconds(v, smoke.get("timeout"), "release.smoke.timeout", d.test_timeout)
    start = _seconds(v, smoke.get("start_seconds"), "release.smoke.start_seconds", d.start_seconds)
    flags = _tag_flags(v, tags)           # checked last: the order the problems are listed in
    options = TagOptions(latest=texts["latest"], major_zero=flags["major_zero"], prefix=texts["prefix"],
                         suffix=texts["suffix"], prefix_on_latest=flags["prefix_on_latest"],
                         suffix_on_latest=flags["suffix_on_latest"], sha=flags["sha"], sha_length=texts["sha_length"],
                         sha_prefix=texts["sha_prefix"], raw=texts["raw"])
    if v.errors:
        raise ConfigErrors(v.errors)
    return ReleaseSettings(options, floating, attestations, growth, timeout, start)


def _tag_texts(v: Validator, tags: Mapping[str, Any]) -> dict[str, Any]:
    """The non-flag ``release.tags`` options: problems go to ``v``, the default stands in for a bad value."""
    dt = TagOptions()
    latest: Any = tags.get("latest", dt.latest)
    if latest not in (True, False, "auto"):
        v.err("release.tags.latest", f"{latest!r} is not auto, true or false")
        latest = dt.latest
    sha_length = tags.get("sha_length", dt.sha_length)
    if isinstance(sha_length, bool) or not isinstance(sha_length, int) or not 1 <= sha_length <= 40:
        v.err("release.tags.sha_length", f"expected a number of hex digits from 1 to 40, got {sha_length!r}")
        sha_length = dt.sha_length
    raw_tags = v.string_list(tags.get("raw"), "release.tags.raw")
    for i, t in enumerate(raw_tags):
        try:
            sanitize_tag(t)
        except TagError as exc:
            v.err(f"release.tags.raw[{i}]", str(exc))
    texts = {}
    for key, default in (("prefix", dt.prefix), ("suffix", dt.suffix), ("sha_prefix", dt.sha_prefix)):
        value = tags.get(key)
        texts[key] = default if value is None else (v.string(value, f"release.tags.{key}") or "")
    try:
        sanitize_tag(f"{texts['prefix']}0.0.0{texts['suffix']}")
        sanitize_tag(f"{texts['sha_prefix']}0000000")
    except TagError as exc:
        v.err("release.tags", f"prefix/suffix/sha_prefix give no valid tag: {exc}")
    return {"latest": latest, "sha_length": sha_length, "raw": tuple(raw_tags), **texts}


def _tag_flags(v: Validator, tags: Mapping[str, Any]) -> dict[str, bool]:
    """The true/false ``release.tags`` options, checked in this order."""
    flags = {}
    for key, default in (("major_zero", False), ("prefix_on_latest", False), ("suffix_on_latest", False),
                         ("sha", True)):
        value = tags.get(key)
        if value is not None and not isinstance(value, bool):
            v.err(f"release.tags.{key}", f"expected true or false, got {value!r}")
            value = None
        flags[key] = default if value is None else value
    return flags


def _fraction(v: Validator, value: Any, key: str) -> float | None:
    if value in (None, False):
        return None
    text = str(value).strip()
    try:
        number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        number = -1.0
    if isinstance(value, bool) or number < 0:
        v.err(key, f"expected a fraction such as 0.10 or a percentage such as 10%, got {value!r}")
        return None
    return number


def _seconds(v: Validator, value: Any, key: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        v.err(key, f"expected a positive number of seconds, got {value!r}")
        return default
    return float(value)
