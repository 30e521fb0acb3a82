"""The release report: per image the tags, the index digest, per platform the digest, compressed size (sum of the
layer sizes), smoke result and size change against the previous release; written as ``bake/release-<version>.json``
and ``bake/release.json`` (atomically together) and printed as a table."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from bakery.atomic import write_files
from bakery.build.mirror import mirror_refs
from bakery.config.model import Config
from bakery.humanize import human_bytes
from bakery.manifest.drafts import entry_platform, layer_bytes
from bakery.oci.index import config_platform, is_attestation
from bakery.oci.registry import Manifest, Registry
from bakery.release.plan import ImageWork, IndexPlan, ReleaseFailed, ReleasePlan
from bakery.release.smoke import SmokeResult
from bakery.release.tags import Version, sanitize_tag

REPORT_LATEST = "release.json"


# --------------------------------------------------------------------------- sizes
def compare_sizes(current: Mapping[str, int], previous: Mapping[str, int],
                  threshold: float | None) -> tuple[dict[str, float | None], list[str]]:
    """Per platform: relative change against the previous release (None when the platform is new), and a
    warning for each platform that grew more than ``threshold`` (a fraction; None: never warn)."""
    changes: dict[str, float | None] = {}
    warnings: list[str] = []
    for platform, size in current.items():
        old = previous.get(platform)
        if not old:
            changes[platform] = None
            continue
        change = (size - old) / old
        changes[platform] = round(change, 4)
        if threshold is not None and change > threshold:
            warnings.append(f"{platform} grew {percent(change)} ({human_bytes(old)} -> {human_bytes(size)}), "
                            f"above size_growth_warn {threshold:.0%}")
    return changes, warnings


def percent(change: float) -> str:
    """``+20.0%``; a change that rounds to zero is ``0.0%`` (never ``-0.0%``)."""
    text = f"{change:+.1%}"
    return "0.0%" if text in ("+0.0%", "-0.0%") else text


@dataclass(frozen=True)
class PlatformReport:
    platform: str
    digest: str
    size: int                       # compressed: sum of the layer sizes in the manifest
    smoke: str                      # passed | failed | skipped | not run (already released from this commit)
    smoke_kind: str                 # test | start-check | skipped
    smoke_detail: str
    previous_size: int | None = None
    size_change: float | None = None


@dataclass(frozen=True)
class ImageReport:
    image: str
    name: str                       # registry/repository
    tags: tuple[str, ...]
    held_tags: tuple[tuple[str, str], ...]
    index_digest: str | None
    reused: bool
    attestations: str
    platforms: tuple[PlatformReport, ...]
    previous: dict[str, str] | None = None      # {"version", "tag", "digest"}
    warnings: tuple[str, ...] = ()
    mirrored: tuple[str, ...] = ()              # mirror/repository:tag refs the index was copied to

    @property
    def size(self) -> int:
        return sum(p.size for p in self.platforms)


@dataclass(frozen=True)
class ReleaseReport:
    version: str
    prerelease: bool
    revision: str
    source: str | None
    created: str
    version_from: str
    dirty: bool
    published: bool
    images: tuple[ImageReport, ...]
    notes: tuple[str, ...] = ()
    tags_from: str = "release.tags"             # where the tag sets came from (release.tags or the tags: rules)
    mirror_error: str | None = None             # the mirrors not copied to, and why (the primary is published)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images"] = {i.image: {**{k: v for k, v in asdict(i).items() if k != "image"},
                                    "held_tags": [{"tag": t, "why": w} for t, w in i.held_tags],
                                    "platforms": {p.platform: {k: v for k, v in asdict(p).items() if k != "platform"}
                                                  for p in i.platforms}}
                          for i in self.images}
        normal: dict[str, Any] = json.loads(json.dumps(data))     # tuples as lists, as the file holds them
        return normal

    @property
    def warnings(self) -> list[str]:
        return [f"{i.image}: {w}" for i in self.images for w in i.warnings]


def carry_smoke(report: ReleaseReport, earlier: Mapping[str, Any] | None) -> ReleaseReport:
    """For images published again without a new smoke test (already released from this commit), take the smoke
    results of the earlier report of this version when it describes the same index."""
    if not earlier:
        return report
    images = []
    for i in report.images:
        old = (earlier.get("images") or {}).get(i.image) or {}
        if not i.reused or old.get("index_digest") != i.index_digest:
            images.append(i)
            continue
        platforms = []
        for p in i.platforms:
            was = (old.get("platforms") or {}).get(p.platform) or {}
            if p.smoke == "not run" and was.get("digest") == p.digest and was.get("smoke") not in (None, "not run"):
                p = replace(p, smoke=was["smoke"], smoke_kind=was.get("smoke_kind", ""),
                            smoke_detail=f"{was.get('smoke_detail', '')} (earlier run)")
            platforms.append(p)
        images.append(replace(i, platforms=tuple(platforms)))
    return replace(report, images=tuple(images))


def read_report(path: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError):
        return None


def report_paths(config: Config, version: Version) -> tuple[Path, Path]:
    base = config.root / config.bake_dir
    return base / f"release-{sanitize_tag(str(version))}.json", base / REPORT_LATEST


def write_report(config: Config, version: Version, report: ReleaseReport) -> tuple[Path, Path]:
    """Both report files, atomically together."""
    text = json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    paths = report_paths(config, version)
    write_files({p: text for p in paths})
    return paths


def render_report(report: ReleaseReport) -> str:
    """The summary table printed at the end of a release."""
    rows = [("IMAGE", "PLATFORM", "DIGEST", "SIZE", "CHANGE", "SMOKE")]
    for i in report.images:
        for p in i.platforms:
            change = "new" if p.size_change is None and i.previous else \
                "-" if p.size_change is None else percent(p.size_change)
            rows.append((i.image, p.platform, p.digest[:19], human_bytes(p.size), change, p.smoke))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
    for i in report.images:
        state = "published" if report.published else "not published"
        digest = i.index_digest or "-"
        again = " (already published: index kept)" if i.reused else ""
        lines.append(f"{i.image}: {state} {i.name}@{digest}{again}")
        lines.append(f"  tags: {', '.join(i.tags)}")
        for tag, why in i.held_tags:
            lines.append(f"  held: {tag} stays where it is ({why})")
        if i.mirrored:
            lines.append(f"  mirrored: {', '.join(i.mirrored)}")
        if i.previous:
            lines.append(f"  previous release: {i.previous['version']} ({i.previous['digest'][:19]})")
    return "\n".join(lines)



# --------------------------------------------------------------------------- the phases
def make_report(plan: ReleasePlan, work: Iterable[ImageWork], plans: Sequence[IndexPlan],
                results: Sequence[SmokeResult]) -> ReleaseReport:
    """Phase: the report of a release about to be published. Everything it needs is read now: after publishing,
    only the untagging talks to the registry."""
    registry, opts = plan.registry, plan.opts
    images = []
    by_plan = {p.image: p for p in plans}
    smoke = {(r.image, r.platform): r for r in results}
    for w in work:
        sizes = {p: layer_bytes(m) for p, m in w.platforms.items()}
        prev_sizes: dict[str, int] = {}
        previous = None
        if w.previous:
            pv, ptag = w.previous
            prev_man = registry.get_manifest(w.repository, ptag)
            previous = {"version": str(pv), "tag": ptag, "digest": prev_man.digest}
            prev_sizes = _sizes(registry, w.repository, prev_man)
        changes, warnings = compare_sizes(sizes, prev_sizes, opts.size_growth_warn) if w.previous else ({}, [])
        platforms = []
        for p, m in w.platforms.items():
            r = smoke.get((w.name, p))
            platforms.append(PlatformReport(p, m.digest, sizes[p], r.status if r else "not run",
                                            r.kind if r else "", r.detail if r else "",
                                            prev_sizes.get(p) if w.previous else None, changes.get(p)))
        index = by_plan.get(w.name)
        images.append(ImageReport(w.name, w.full_name, w.plan.tags, w.plan.held, index.digest if index else None,
                                  bool(index and index.reused), opts.attestations, tuple(platforms), previous,
                                  tuple(warnings)))
    return _release_report(plan, False, tuple(images))


def _release_report(plan: ReleasePlan, published: bool, images: tuple[ImageReport, ...]) -> ReleaseReport:
    git, version = plan.git, plan.version
    return ReleaseReport(str(version), version.is_prerelease, git.sha, git.source, git.created, plan.version_from,
                         bool(git.dirty), published, images, tuple(plan.notes), plan.tag_source.origin)


def _sizes(registry: Registry, repo: str, man: Manifest) -> dict[str, int]:
    """Per platform compressed size of a published release (an index, or a single manifest)."""
    if not man.is_index:
        return {platform_of_manifest(registry, repo, man): layer_bytes(man)}
    out = {}
    for e in man.json.get("manifests") or []:
        if is_attestation(e):
            continue
        out[entry_platform(e)] = layer_bytes(registry.get_manifest(repo, str(e["digest"])))
    return out


def platform_of_manifest(registry: Registry, repo: str, man: Manifest) -> str:
    return entry_platform({"platform": config_platform(registry, repo, man.json)})


def finish(plan: ReleasePlan, report: ReleaseReport, out: TextIO) -> ReleaseReport:
    """Last phase: print the table, warnings and notes; write both report files when the release is published. A
    mirror not copied to fails the release then, the report written (the first registry's tags stand)."""
    print("== report", file=out)
    print(render_report(report), file=out)
    for warning in report.warnings:
        print(f"warning: {warning}", file=out)
    for note in report.notes:
        print(f"note: {note}", file=out)
    if report.published:
        paths = write_report(plan.config, plan.version, report)
        print(f"report: {', '.join(str(p.relative_to(plan.config.root)) for p in paths)}", file=out, flush=True)
    if report.mirror_error:
        raise ReleaseFailed(f"release {plan.version} is published in {plan.registry_host}, but "
                            f"{report.mirror_error}; run it again to retry the copies")
    return report


def as_stitched(name: str, digest: str, tags: Sequence[str]) -> dict[str, Any]:
    """One published index as :mod:`bakery.build.mirror` takes it (``ref``, ``digest``, ``tags``)."""
    return {"ref": f"{name}:{tags[0]}", "digest": digest, "tags": list(tags)}


def dry_run(plan: ReleasePlan, work: Iterable[ImageWork], out: TextIO) -> ReleaseReport:
    """The end of a dry run (after the build's dry run): what would be tested, published and written."""
    config, request, opts = plan.config, plan.request, plan.opts
    work = list(work)
    for w in work:
        if w.released is not None:
            print(f"would publish {w.full_name}@{w.released.digest} again (already released from this commit)",
                  file=out)
            continue
        img = config.images[w.name]
        kind = "start check" if img.test is None else "no smoke test (test: [])" if not img.test else \
            f"smoke test `{' '.join(img.test)}`"
        for p in config.platforms_of(w.name):
            print(f"would run {kind} on {w.name} {p} ({w.full_name}@<digest of {p}>)", file=out)
    for w in work:
        if request.publish and w.released is None:
            print(f"would publish one index ({', '.join(config.platforms_of(w.name))}, attestations "
                  f"{opts.attestations}) as {w.full_name}:{{{','.join(w.plan.tags)}}}", file=out)
    if request.publish:
        indexes = {w.name: as_stitched(w.full_name, w.released.digest if w.released else "<index digest>", w.plan.tags)
                   for w in work if w.plan.tags}
        for _, source, targets in mirror_refs(config, indexes):
            print(f"would copy {source} to {', '.join(targets)} (docker buildx imagetools create)", file=out)
        print(f"would write {', '.join(str(p.relative_to(config.root)) for p in report_paths(config, plan.version))}",
              file=out)
    for note in plan.notes:
        print(f"note: {note}", file=out)
    return _release_report(plan, False, tuple(ImageReport(w.name, w.full_name, w.plan.tags, w.plan.held, None, False,
                                                          opts.attestations, ()) for w in work))
