"""Publishing, all or nothing: per image ONE index stitched from its group results (:mod:`bakery.build.stitch`,
the same stitcher as ``build --push``), PUT under every tag of its set only after every platform of every image
passed its smoke test; a tag that fails to move puts every tag this run moved back where it was. Then each
published index is copied to every mirror of ``registry:`` under the same tags (:mod:`bakery.build.mirror`, as
``build --push`` does)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TextIO

from bakery.build.mirror import copy_to_mirrors
from bakery.build.stitch import stitch_parts
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.process import signals_deferred
from bakery.manifest.drafts import short
from bakery.oci.untag import untag
from bakery.oci.registry import OCI_INDEX, Manifest, Registry
from bakery.release.plan import ImageWork, IndexPlan, ReleaseFailed, ReleasePlan, reusable
from bakery.release.report import ReleaseReport, as_stitched, carry_smoke, read_report, report_paths


# --------------------------------------------------------------------------- what to publish
def plan_index(plan: ReleasePlan, w: ImageWork) -> IndexPlan:
    """The index one image is published as: this commit's release again when it is already published, else the
    stitched index of its group results; an index already under the version tag with the same images is kept
    (:func:`bakery.release.plan.reusable`: a rebuild only changes provenance, never the digest)."""
    if w.released is not None:
        return IndexPlan(w.name, w.repository, w.full_name, w.plan.tags, w.released.raw, w.released.digest, True,
                         note="already released from this commit: index kept")
    attestations = plan.opts.attestations
    parts = [w.parts[g] for g in plan.config.images[w.name].platform_groups]
    made = stitch_parts(parts, plan.annotations, attestations)
    registry = plan.registry
    existing = registry.get_manifest(w.repository, plan.tag) if registry.head_manifest(w.repository, plan.tag) \
        else None
    if existing is not None and reusable(existing, made.entries, plan.annotations, attestations):
        return IndexPlan(w.name, w.repository, w.full_name, w.plan.tags, existing.raw, existing.digest, True,
                         made.dropped, "already published with the same images: index kept")
    return IndexPlan(w.name, w.repository, w.full_name, w.plan.tags, made.raw, made.digest, False, made.dropped)


def plan_indexes(plan: ReleasePlan, work: Iterable[ImageWork]) -> list[IndexPlan]:
    """Phase: one index per image that has every group (an image with a group left out gets none)."""
    return [plan_index(plan, w) for w in work if not w.missing]


# --------------------------------------------------------------------------- publish
@dataclass(frozen=True)
class _Previous:
    repository: str
    tag: str
    manifest: Manifest | None


def publish(registry: Registry, plans: Sequence[IndexPlan]) -> None:
    """PUT every plan's index under all its tags; on any failure put every moved tag back as it was."""
    before: dict[tuple[str, str], _Previous] = {}
    for p in plans:
        for tag in p.tags:
            found = registry.head_manifest(p.repository, tag)
            before[(p.repository, tag)] = _Previous(p.repository, tag,
                                                    registry.get_manifest(p.repository, tag) if found else None)
    moved: list[_Previous] = []
    done = 0
    try:
        for p in plans:
            for tag in p.tags:
                moved.append(before[(p.repository, tag)])      # before the PUT: an interrupted PUT may have landed
                registry.put_manifest(p.repository, tag, p.raw, OCI_INDEX)
                done += 1
    except BaseException as exc:     # an error, Ctrl-C or SIGTERM: every tag goes back where it was
        with signals_deferred():
            failed = _roll_back(registry, moved)
        where = f"{done} tag(s) had moved and were put back, nothing of this release is public" if not failed \
            else f"could NOT restore {', '.join(failed)}: check them; the other tags were put back"
        if isinstance(exc, KeyboardInterrupt):
            raise type(exc)(f"publish stopped: {where}") from None
        if isinstance(exc, BakeryError):
            raise BakeryError(f"publish failed: {exc}; {where}") from None
        raise


def _roll_back(registry: Registry, moved: Sequence[_Previous]) -> list[str]:
    failed = []
    for prev in reversed(moved):
        try:
            if prev.manifest is not None:
                registry.put_manifest(prev.repository, prev.tag, prev.manifest.raw, prev.manifest.media_type)
            else:
                untag(registry, prev.repository, prev.tag)
        except BakeryError:
            failed.append(f"{prev.repository}:{prev.tag}")
    return failed


# --------------------------------------------------------------------------- the phase
def publish_all(plan: ReleasePlan, work: Iterable[ImageWork], plans: Sequence[IndexPlan], report: ReleaseReport,
                out: TextIO) -> ReleaseReport:
    """Phase: publish every index (all or nothing), then, if asked, untag the per-group refs; with --no-publish,
    only a note. The report comes back marked published, with earlier smoke results carried over."""
    if not plan.request.publish:
        return replace(report, notes=(*report.notes, "--no-publish: nothing was published"))
    print("== publish", file=out, flush=True)
    try:
        publish(plan.registry, plans)
    except BakeryError as exc:
        raise ReleaseFailed(f"release {plan.version} failed at step publish: {exc}") from None
    report = carry_smoke(replace(report, published=True), read_report(report_paths(plan.config, plan.version)[0]))
    for p in plans:
        again = f" ({p.note})" if p.note else ""
        print(f"  {p.name}@{p.digest} -> {', '.join(p.tags)}{again}", file=out, flush=True)
    if plan.request.untag_intermediate:
        untag_intermediate(plan, work, out)
    return report


def untag_intermediate(plan: ReleasePlan, work: Iterable[ImageWork], out: TextIO) -> None:
    """Remove this version's per-group refs the safe way (:func:`bakery.oci.untag.untag`)."""
    for w in work:
        for g in plan.config.images[w.name].platform_groups:
            ref = plan.group_ref(g)
            try:
                done = untag(plan.registry, w.repository, ref)
            except BakeryError as exc:
                raise BakeryError(f"release {plan.version} is published, but untagging {w.full_name}:{ref} failed: "
                                  f"{exc}; retry with manifest.rm {w.full_name}:{ref}") from None
            print(f"  untagged {w.full_name}:{done.tag} (manifest {short(done.previous or '')} kept)", file=out)


def mirror_all(plan: ReleasePlan, docker: Docker, plans: Sequence[IndexPlan], report: ReleaseReport,
               out: TextIO) -> ReleaseReport:
    """Phase: copy every published index to each mirror of ``registry:`` under every tag of its set
    (:func:`bakery.build.mirror.copy_to_mirrors`: ``docker buildx imagetools create``, every copy tried). The refs
    copied go in the report; the copies that failed too, as one line naming each mirror (:func:`finish` fails
    the release with it once the report is written: the first registry's tags stand)."""
    if not plan.config.mirrors or not report.published:
        return report
    print("== mirror", file=out, flush=True)
    images = {p.image: as_stitched(p.name, p.digest, p.tags) for p in plans if p.tags}
    error = None
    try:
        copy_to_mirrors(plan.config, docker, images, out)
    except BakeryError as exc:
        error = str(exc)
    copied = {name: tuple(info.get("mirrored") or ()) for name, info in images.items()}
    return replace(report, mirror_error=error,
                   images=tuple(replace(i, mirrored=copied.get(i.image, ())) for i in report.images))
