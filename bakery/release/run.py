"""Releases: publish one version of every image as a set of tags on ONE multi-arch index, only after every
platform of every image passed its smoke test.

:func:`release` runs these phases in order, each taking what the ones before returned:

1. **plan** (:mod:`bakery.release.plan`): version (``--version`` or the newest semver tag on HEAD), commit,
   source, created (the commit time), the tag set per image (``release.tags``, or bakery.yaml's ``tags:`` rules
   for the version tag: :mod:`bakery.release.tagset`; floating tags ``X.Y``/``X``/``latest`` never moved back to
   an older version), the previous release of each image;
2. **build**: ``docker buildx bake --push`` of the per-group targets under the version's per-group refs
   (``api:1.4.2-amd64``), with OCI labels/annotations and ``SOURCE_DATE_EPOCH`` = commit time in a bake overlay;
   no public tag is touched; groups not rebuilt (``--group``) are taken from their per-group refs;
3. **load**: per image and platform the manifest its group result holds;
4. **smoke** (:mod:`bakery.release.smoke`): per image and platform, ``docker run --pull always --platform P
   <repo>@<platform digest>`` with the image's ``test`` command (as entrypoint), or a start check without one;
5. **publish** (:mod:`bakery.release.publish`, only when 1-4 passed for everything): per image ONE index stitched
   from the group results by digest (attestations kept or dropped, never dangling), PUT under every tag of the
   set; a tag that fails to move rolls every tag moved by this run back;
6. **mirror** (:func:`bakery.release.publish.mirror_all`): each published index copied to every mirror of a
   ``registry:`` list under every tag of its set (``docker buildx imagetools create``);
7. **report** (:mod:`bakery.release.report`): ``bake/release-<version>.json`` and ``bake/release.json``; a mirror
   that was not copied to fails the release after that, the first registry's tags standing.

Re-running a release is idempotent: when the version tag already holds this commit's release
(:func:`bakery.release.plan.already_released`), the image is not rebuilt and that index is published again as it
is. With ``--rebuild``, an index whose images are unchanged is kept too (:func:`bakery.release.plan.reusable`).
The clock is never read.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

from bakery.build.build import BuildRequest, build
from bakery.config.model import Config, target_name
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.manifest.drafts import entry_platform
from bakery.oci.index import holds_exactly, is_attestation, read_config, read_part
from bakery.build.labels import overlay
from bakery.release.plan import ImageWork, ReleaseFailed, ReleasePlan, ReleaseRequest, plan_images, prepare
from bakery.release.publish import mirror_all, plan_indexes, publish_all
from bakery.release.report import ReleaseReport, dry_run, finish, make_report
from bakery.release.smoke import smoke_all


def release(config: Config, docker: Docker, request: ReleaseRequest, *, out: TextIO = sys.stdout,
            token: str = "0") -> ReleaseReport:
    """Build, push per-group refs, smoke-test every platform, then publish every tag of the set; see the module
    docstring. ``token`` makes container names unique (the caller passes e.g. the pid)."""
    plan = prepare(config, docker.runner, request, out)
    work = plan_images(plan, out)
    reuse_groups(plan, work)
    build_fresh(plan, docker, work, out)
    if plan.dry:
        return dry_run(plan, work.values(), out)
    load_platforms(plan, work)
    results = smoke_all(plan, docker, work.values(), token, out)
    indexes = plan_indexes(plan, work.values())
    report = make_report(plan, work.values(), indexes, results)
    report = publish_all(plan, work.values(), indexes, report, out)
    report = mirror_all(plan, docker, indexes, report, out)
    return finish(plan, report, out)


# --------------------------------------------------------------------------- build
def reuse_groups(plan: ReleasePlan, work: Mapping[str, ImageWork]) -> None:
    """Phase: groups not rebuilt now come from this version's per-group refs, built earlier from the same commit
    (checked by the revision label). In a dry run or with --no-publish a missing ref leaves the group out."""
    optional = plan.dry or not plan.request.publish
    for w in work.values():
        if w.released is not None:
            continue
        for g in plan.config.images[w.name].platform_groups:
            if g not in plan.groups:
                _reuse_group(plan, w, g, optional)
                if g in w.missing:
                    plan.notes.append(f"{w.name}: group {g} neither rebuilt nor found under {plan.group_ref(g)}: "
                                      "not tested, no index planned")


def build_fresh(plan: ReleasePlan, docker: Docker, work: Mapping[str, ImageWork], out: TextIO) -> None:
    """Phase: ``bake --push`` of the rebuilt groups of every image not already released, to the per-group refs
    only (no public tag changes); records each group's digest."""
    config = plan.config
    fresh = [n for n in plan.images if work[n].released is None]
    to_build = [target_name(n, g) for n in fresh for g in config.images[n].platform_groups if g in plan.groups]
    if not to_build:
        return
    refs = ", ".join(sorted({plan.group_ref(g) for g in plan.groups}))
    print(f"== build and push {len(to_build)} target(s) to the per-group refs {refs} (no public tag changes)",
          file=out, flush=True)
    request = BuildRequest(groups=tuple(g for g in config.platform_groups if g in plan.groups), images=tuple(fresh),
                           tag=plan.tag, cache_scope=plan.request.cache_scope, push=True, stitch=False,
                           progress=plan.request.progress,
                           overlay=overlay(config, to_build, plan.labels, plan.git.epoch))
    try:
        result = build(config, docker, request, out=out)
    except BakeryError as exc:
        raise ReleaseFailed(f"release {plan.version} failed at step build: {exc}; nothing was published") from None
    if plan.dry:
        return
    for tname in to_build:
        info = result.targets.get(tname) or {}
        if not info.get("digest"):
            raise ReleaseFailed(f"release {plan.version} failed at step push: bake reported no digest for "
                                f"{tname}; nothing was published")
        work[info["image"]].groups[info["group"]] = info["digest"]


# --------------------------------------------------------------------------- load
def load_platforms(plan: ReleasePlan, work: Mapping[str, ImageWork]) -> None:
    """Phase: per platform the manifest each group result holds (checked against the group's platforms), in
    bakery.yaml's platform order; for an image already released, the manifests its published index lists."""
    registry = plan.registry
    for w in work.values():
        if w.released is not None:
            for e in w.released.json.get("manifests") or []:
                if not is_attestation(e):
                    w.platforms[entry_platform(e)] = registry.get_manifest(w.repository, str(e["digest"]))
        for g in plan.config.images[w.name].platform_groups:
            if g not in w.missing and w.released is None:
                _load_group(plan, w, g)
        w.platforms = {p: w.platforms[p] for p in plan.config.platforms_of(w.name) if p in w.platforms}


def _reuse_group(plan: ReleasePlan, w: ImageWork, group: str, optional: bool) -> None:
    """Take a group that is not rebuilt from this version's per-group ref, built from the same commit. A missing
    ref is an error, unless ``optional`` (dry run, --no-publish): then the group is left out."""
    ref = plan.group_ref(group)
    digest = plan.registry.head_manifest(w.repository, ref)
    if digest is None:
        if optional:
            w.missing.add(group)
            return
        raise BakeryError(f"{w.name}: group {group} is not rebuilt (--group) and {w.full_name}:{ref} does not exist; "
                          f"add --group {group}")
    _load_group(plan, w, group, digest)
    sha = plan.git.sha
    for platform, man in w.platforms.items():
        if platform not in plan.config.platform_groups[group].platforms:
            continue
        cfg = read_config(plan.registry, w.repository, man.json)
        revision = ((cfg.get("config") or {}).get("Labels") or {}).get("org.opencontainers.image.revision")
        if revision != sha:
            raise BakeryError(f"{w.name}: {w.full_name}:{ref} ({platform}) was built from "
                              f"{(revision or 'an unlabelled build')[:12]}, not HEAD {sha[:12]}; rebuild it with "
                              f"--group {group}")


def _load_group(plan: ReleasePlan, w: ImageWork, group: str, digest: str | None = None) -> None:
    """Read one group result (once) and the image manifest of each of its platforms."""
    if group in w.parts:
        return
    digest = digest or w.groups[group]
    w.groups[group] = digest
    part = w.parts[group] = read_part(plan.registry, w.repository, digest)
    expected = plan.config.platform_groups[group].platforms
    if not holds_exactly(part.platforms, expected):
        raise BakeryError(f"{w.name}: {w.full_name}@{digest} holds platforms {part.platforms}, group {group} is "
                          f"{list(expected)}")
    for e in part.entries:
        if not is_attestation(e):
            w.platforms[entry_platform(e)] = part.manifest if not part.manifest.is_index else \
                plan.registry.get_manifest(w.repository, str(e["digest"]))
