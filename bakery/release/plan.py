"""The plan of a release, before anything is built: the version and where it came from, the tag set per image
(:func:`plan_tags` from ``release.tags``, or bakery.yaml's ``tags:`` rules for the version tag: :mod:`bakery.release.
tagset`; floating tags never moved back either way), the previous release of each image (to
compare sizes with), and whether the version tag already holds this commit's
release (:func:`already_released`: then it is published again, not rebuilt).

:func:`prepare` and :func:`plan_images` are the first two phases of :func:`bakery.release.run.release`; the rest
is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from bakery.build import bakefile
from bakery.config.model import Config, suggest
from bakery.config.variables import VAR_REGISTRY, bake_variables
from bakery.errors import BakeryError, RegistryError
from bakery.manifest.drafts import attestation_of, entry_platform, short
from bakery.oci.index import Part, is_attestation
from bakery.oci.registry import Manifest, Registry, registry_for
from bakery.process import Runner
from bakery.release.git import GitInfo, git_info
from bakery.release.settings import ReleaseSettings, settings
from bakery.release.tags import (TagError, TagOptions, Version, compute_tags, newest_version, oci_labels,
                                 parse_version, sanitize_tag)
from bakery.release.tagset import TagPlan, TagSource, rule_tags, tag_source

OCI_KEYS = ("org.opencontainers.image.version", "org.opencontainers.image.revision",
            "org.opencontainers.image.source", "org.opencontainers.image.created")


# --------------------------------------------------------------------------- version and tags
def resolve_version(requested: str | None, head_tags: Sequence[str]) -> tuple[Version, str]:
    """The version to release and where it came from (a line for the output)."""
    on_head = newest_version(head_tags)
    if requested:
        version = parse_version(requested)
        if on_head is not None and on_head != version:
            return version, f"--version {version} (note: HEAD is tagged {on_head.raw})"
        return version, f"--version {version}"
    if on_head is None:
        raise BakeryError("no version to release: HEAD has no semver tag (git tag v1.2.3) and --version was not "
                          "given")
    return on_head, f"tag {on_head.raw} on HEAD"


def plan_tags(version: Version, sha: str | None, options: TagOptions, published: Iterable[Version] = (),
              floating: str = "forward") -> TagPlan:
    """The tag set for ``version`` (metadata-action rules), minus floating tags that would move BACK.

    With ``floating: forward``, ``X.Y`` is held when a newer ``X.Y.z`` release is published, ``X`` when a newer
    ``X.y.z`` is, and ``latest`` when any newer release is (prereleases never count: they get no floating
    tags). A raw tag is never held.
    """
    tags = compute_tags(version, sha, options)
    if floating == "always":
        return TagPlan(tuple(tags))
    newer = [p for p in published if not p.is_prerelease and p > version]
    lines: list[tuple[str, Any]] = []
    if not version.is_prerelease:
        lines.append((f"{options.prefix}{version.major}.{version.minor}{options.suffix}",
                      lambda p: (p.major, p.minor) == (version.major, version.minor)))
        if version.major != 0 or options.major_zero:
            lines.append((f"{options.prefix}{version.major}{options.suffix}", lambda p: p.major == version.major))
    lines.append((f"{options.prefix if options.prefix_on_latest else ''}latest"
                  f"{options.suffix if options.suffix_on_latest else ''}", lambda p: True))
    raw = {sanitize_tag(t) for t in options.raw}
    held: list[tuple[str, str]] = []
    for name, same_line in lines:
        name = sanitize_tag(name)
        ahead = [p for p in newer if same_line(p)]
        if name in tags and name not in raw and ahead:
            held.append((name, f"{max(ahead)} is already released"))
    drop = {h for h, _ in held}
    return TagPlan(tuple(t for t in tags if t not in drop), tuple(held))


def intermediate_pattern(config: Config) -> re.Pattern[str]:
    """Matches the per-group tags ``intermediate_tag`` makes (``1.4.2-amd64``), so they are never versions."""
    groups = "|".join(re.escape(g) for g in sorted(config.platform_groups, key=len, reverse=True))
    parts = re.split(r"(\{tag\}|\{group\})", config.intermediate_tag)
    regex = "".join("(?P<tag>.+)" if p == "{tag}" else f"(?:{groups})" if p == "{group}" else re.escape(p)
                    for p in parts)
    return re.compile(regex)


def published_versions(tags: Iterable[str], options: TagOptions, intermediate: re.Pattern[str]) -> dict[Version, str]:
    """Released versions found in a repository's tags: version -> tag (prefix/suffix stripped, per-group
    intermediate tags and partial versions such as ``1.4`` ignored)."""
    out: dict[Version, str] = {}
    for tag in tags:
        if intermediate.fullmatch(tag):
            continue
        core = tag
        if options.prefix:
            if not core.startswith(options.prefix):
                continue
            core = core[len(options.prefix):]
        if options.suffix:
            if not core.endswith(options.suffix):
                continue
            core = core[:-len(options.suffix)]
        try:
            version = parse_version(core)
        except TagError:
            continue
        out.setdefault(version, tag)
    return out


def previous_release(version: Version, published: Mapping[Version, str]) -> tuple[Version, str] | None:
    """The release to compare sizes with: the highest version below ``version`` (for a stable release the
    highest stable one, so 1.5.0 compares with 1.4.x, not with 1.5.0-rc.2)."""
    candidates = [v for v in published if v < version and (version.is_prerelease or not v.is_prerelease)]
    if not candidates:
        return None
    best = max(candidates)
    return best, published[best]


def release_labels(version: Version, git: GitInfo) -> dict[str, str]:
    return oci_labels(version, git.sha, git.source, git.created)


# --------------------------------------------------------------------------- already published?
def reusable(existing: Manifest | None, entries: Sequence[Mapping[str, Any]], annotations: Mapping[str, str],
             attestations: str) -> bool:
    """Whether an already published index is this release: same image entries (digest and platform), same index
    annotations, and attestations per ``attestations`` (one for each image that has one now, none dangling)."""
    old = _entries_if_annotated(existing, annotations)
    if old is None:
        return False

    def images(es: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
        return {(str(e["digest"]), entry_platform(e)) for e in es if not is_attestation(dict(e))}

    def attested(es: Iterable[Mapping[str, Any]]) -> set[str | None]:
        return {attestation_of(e) for e in es if is_attestation(dict(e))}

    if images(old) != images(entries):
        return False
    if attestations == "drop":
        return not attested(old)
    return attested(old) == attested(entries) and attested(old) <= {d for d, _ in images(old)}


def _entries_if_annotated(existing: Manifest | None,
                          annotations: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """The entries of ``existing`` when it is an index annotated exactly with ``annotations``; else None."""
    if existing is None or not existing.is_index:
        return None
    body = existing.json
    if (body.get("annotations") or {}) != dict(annotations):
        return None
    return list(body.get("manifests") or [])


def already_released(existing: Manifest | None, annotations: Mapping[str, str], platforms: Sequence[str],
                     attestations: str) -> bool:
    """Whether the version tag already holds THIS release: an index annotated with the same version, revision,
    source and created (so: the same commit), holding exactly ``platforms``, attestations as configured (none
    with ``drop``; none dangling with ``keep``). A re-run then publishes it again instead of rebuilding."""
    entries = _entries_if_annotated(existing, annotations)
    if entries is None:
        return False
    found = [entry_platform(e) for e in entries if not is_attestation(e)]
    if sorted(found) != sorted(platforms) or len(set(found)) != len(found):
        return False
    images = {str(e["digest"]) for e in entries if not is_attestation(e)}
    attested = [attestation_of(e) for e in entries if is_attestation(e)]
    if attestations == "drop":
        return not attested
    return all(a in images for a in attested)


# --------------------------------------------------------------------------- the phases: prepare, plan images
@dataclass(frozen=True)
class ReleaseRequest:
    version: str | None = None
    groups: tuple[str, ...] = ()          # build only these groups; others are reused from this version's refs
    images: tuple[str, ...] = ()
    cache_scope: str | None = None
    progress: str = "plain"
    allow_dirty: bool = False
    publish: bool = True
    untag_intermediate: bool = False
    rebuild: bool = False                 # build and test again even when this commit's release is published


class ReleaseFailed(BakeryError):
    """A release step failed; nothing public changed."""


@dataclass(frozen=True)
class ReleasePlan:
    """What every later phase of a release works from: settings, git facts, version, the registry."""

    config: Config
    request: ReleaseRequest
    opts: ReleaseSettings
    git: GitInfo
    version: Version
    version_from: str                     # a line for the output: where the version came from
    tag: str                              # the version as a tag (also the per-group refs' {tag})
    registry_host: str                    # bakery.yaml's registry, e.g. 127.0.0.1:5000/acme
    registry: Registry
    prefix: str                           # repository path prefix inside the registry
    labels: Mapping[str, str]             # OCI labels of the build
    annotations: Mapping[str, str]        # the index annotations (the OCI_KEYS of labels)
    images: tuple[str, ...]               # images released, in bakery.yaml's order
    groups: frozenset[str]                # platform groups rebuilt
    dry: bool
    notes: list[str] = field(default_factory=list)    # collected along the way, for the report
    tag_source: TagSource = TagSource()   # where the tag set comes from: release.tags, or the tags: rules

    def repository(self, image: str) -> str:
        repo = self.config.images[image].repository
        return f"{self.prefix}/{repo}" if self.prefix else repo

    def group_ref(self, group: str) -> str:
        return bakefile.intermediate_tag(self.config, group, self.tag)


@dataclass(frozen=True)
class IndexPlan:
    """One image's index as it will be published: its bytes and every tag it goes under."""

    image: str
    repository: str          # repository path in the registry
    name: str                # full name, e.g. 127.0.0.1:5000/acme/api
    tags: tuple[str, ...]
    raw: bytes
    digest: str
    reused: bool             # the version tag already holds this release's images: published as it is
    dropped: tuple[str, ...] = ()
    note: str = ""           # why it was reused, for the output


@dataclass
class ImageWork:
    """Working state of one image during a release."""

    name: str
    repository: str
    full_name: str
    plan: TagPlan
    previous: tuple[Version, str] | None
    groups: dict[str, str] = field(default_factory=dict)            # group -> digest of its per-group result
    parts: dict[str, Part] = field(default_factory=dict)            # group -> its result, read
    platforms: dict[str, Manifest] = field(default_factory=dict)     # platform -> its image manifest
    missing: set[str] = field(default_factory=set)                   # groups skipped (--no-publish only)
    released: Manifest | None = None      # the version tag already holds this commit's release (not rebuilt)


def prepare(config: Config, runner: Runner, request: ReleaseRequest, out: TextIO) -> ReleasePlan:
    """Phase 1: settings, selection, git facts (a dirty tree refused unless allowed), the version; one line out."""
    opts = settings(config)
    images = _selected_images(config, request)
    groups = _selected_groups(config, request)
    git = git_info(runner, config.root, config.bake_dir)
    if git.dirty and not request.allow_dirty:
        shown = ", ".join(git.dirty[:5]) + (f" (+{len(git.dirty) - 5} more)" if len(git.dirty) > 5 else "")
        raise BakeryError(f"the working tree has uncommitted changes ({shown}); commit or stash them, or pass "
                          "--allow-dirty (the images would not match the revision they are labelled with)")
    version, version_from = resolve_version(request.version, git.head_tags)
    tag = sanitize_tag(str(version))
    host = bake_variables(config, tag, request.cache_scope)[VAR_REGISTRY]
    registry, prefix = registry_for(host)
    labels = release_labels(version, git)
    annotations = {k: v for k, v in labels.items() if k in OCI_KEYS}
    notes: list[str] = []
    if git.dirty:
        notes.append(f"built from a dirty working tree ({len(git.dirty)} changed path(s)); revision {git.sha[:12]} "
                     "does not describe it exactly")
    source = tag_source(config, git, version)
    if source.unused:
        notes.append(f"{', '.join(source.unused)}: not used, the tags come from tags: (release.tags.floating is)")
    print(f"release {version} ({version_from}), commit {git.sha[:12]}, created {git.created}", file=out)
    print(f"  tag set from {source.origin}", file=out)
    return ReleasePlan(config, request, opts, git, version, version_from, tag, host, registry, prefix, labels,
                       annotations, tuple(images), frozenset(groups), runner.dry_run, notes, source)


def _selected_images(config: Config, request: ReleaseRequest) -> list[str]:
    for i in request.images:
        if i not in config.images:
            raise BakeryError(f"--image {i!r} is not an image; {suggest(i, list(config.images))}")
    return [n for n in config.images if not request.images or n in request.images]


def _selected_groups(config: Config, request: ReleaseRequest) -> set[str]:
    for g in request.groups:
        if g not in config.platform_groups:
            raise BakeryError(f"--group {g!r} is not a platform group; {suggest(g, list(config.platform_groups))}")
    return set(request.groups) or set(config.platform_groups)


def plan_images(plan: ReleasePlan, out: TextIO) -> dict[str, ImageWork]:
    """Phase 2: per image the tag set (``release.tags`` or the ``tags:`` rules, floating tags held against newer
    releases), the previous release, and whether this commit's release is already published (then it is not
    rebuilt: :func:`already_released`)."""
    work: dict[str, ImageWork] = {}
    pattern = intermediate_pattern(plan.config)
    opts, version, registry, source = plan.opts, plan.version, plan.registry, plan.tag_source
    for name in plan.images:
        repo = plan.repository(name)
        try:
            published = published_versions(registry.tags(repo), source.version_options(opts.tags), pattern)
        except RegistryError as exc:
            if not plan.dry:
                raise
            plan.notes.append(f"{name}: registry not reachable ({exc}); floating tags planned without it")
            published = {}
        tags = plan_tags(version, plan.git.sha, opts.tags, published, opts.floating) if source.event is None \
            else rule_tags(source, version, published, opts.floating)
        w = work[name] = ImageWork(name, repo, f"{plan.registry_host}/{plan.config.images[name].repository}", tags,
                                   previous_release(version, published))
        print(f"  {name}: {w.full_name}: {' '.join(tags.tags)}", file=out)
        for held, why in tags.held:
            print(f"  {name}: {held} stays where it is ({why})", file=out)
        if not plan.request.rebuild and version in published:
            existing = registry.get_manifest(repo, published[version])
            if already_released(existing, plan.annotations, plan.config.platforms_of(name), opts.attestations):
                w.released = existing
                print(f"  {name}: {version} is already released from this commit ({short(existing.digest)}): "
                      "not rebuilt, its index is published again (--rebuild to build and test again)", file=out)
    return work
