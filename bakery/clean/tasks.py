"""Task: ``clean``: registry retention (dry run by default) and, with ``--local``, local cleanup.

Parses flags, prints; the work is in :mod:`bakery.clean.policy` (what to clean), :mod:`bakery.clean.execute`
(the registry) and :mod:`bakery.clean.local` (this machine); see docs/clean.md.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from invoke import Context

from bakery.cli import Progress, config_from, docker_from, errors_to_exit, task
from bakery.errors import BakeryError, RegistryError
from bakery.humanize import short_digest, human_bytes as format_bytes

if TYPE_CHECKING:
    from bakery.clean import execute as core
    from bakery.clean.model import Plan

__all__ = ["clean", "format_bytes", "plan_table"]
# the clean core is imported by the task when it runs: `bakery build` does not pay for it


_DIGEST = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")


def _abbreviate(text: str) -> str:
    """Digests shortened to 12 hex digits for the table (--json has them in full)."""
    return _DIGEST.sub(r"sha256:\1", text)


def plan_table(ref: str, plan: Plan, snapshot_tags: int, snapshot_manifests: int,
               platforms: dict[str, str | None] | None = None) -> str:
    """The plan as a table: ACTION, WHAT, FREES, WHY; then what is kept and protected, and the warnings."""
    from bakery.clean.model import DELETE_DIGEST   # imported when the task runs, not when bakery starts
    platforms = platforms or {}
    saved = {p.what: p.why for p in plan.protected}
    rows: list[tuple[str, str, str, str]] = []
    for a in plan.remove_tags:
        if a.method == DELETE_DIGEST:
            how = "goes with its digest"
        else:
            how = f"untag only: {saved.get(a.digest, 'digest stays')}"
        rows.append(("remove tag", a.tag, "", f"{a.reason}; {how}"))
    for d in plan.delete_digests:
        kind = platforms.get(d.digest) or ""
        rows.append(("delete", f"{short_digest(d.digest)} {kind}".rstrip(), format_bytes(d.bytes), d.reason))
    for p in plan.protected:
        rows.append(("protect", short_digest(p.what) if p.what.startswith("sha256:") else p.what, "", p.why))
    for w in plan.warnings:
        rows.append(("warning", "", "", w))
    head = (f"{ref}: {snapshot_tags} tags, {snapshot_manifests} manifests -> remove {len(plan.remove_tags)} tags, "
            f"delete {len(plan.delete_digests)} manifests, frees ~{format_bytes(plan.bytes_freed)}")
    lines = [head]
    if rows:
        width = min(max(len(r[1]) for r in rows), 44)
        lines.append(f"  {'ACTION':<10} {'WHAT':<{width}} {'FREES':>9}  WHY")
        lines += [f"  {a:<10} {w:<{width}} {b:>9}  {_abbreviate(y)}".rstrip() for a, w, b, y in rows]
    keep = list(plan.keep_tags)
    shown = ", ".join(keep[:12]) + (f", ... (+{len(keep) - 12})" if len(keep) > 12 else "")
    lines.append(f"  keep {len(keep)} tags" + (f": {shown}" if keep else ""))
    return "\n".join(lines)


@task(iterable=["image", "filter_", "image_filter"],
      help={"image": "image to clean (repeatable; default all images in bakery.yaml)",
            "yes": "really do it (default: dry run, prints the plan and changes nothing)",
            "json": "print the plan (and with --yes what was done) as JSON on stdout",
            "local": "clean this machine instead of the registry: build cache, stale builders, dangling images",
            "keep-storage": "with --local: keep this much build cache, e.g. 10gb (docker buildx prune --keep-storage)",
            "filter": "with --local: docker buildx prune filter, e.g. until=168h (repeatable)",
            "builder-prefix": "with --local: builders named so and unused by bakery.yaml are stale (default bakery)",
            "image-filter": "with --local: docker image prune filter for dangling images, e.g. until=24h (repeatable)",
            "workers": "concurrent registry requests (default 8)",
            "config": "path of bakery.yaml"})
@errors_to_exit
def clean(c: Context, image: list[str] | None = None, yes: bool = False, json_: bool = False, local: bool = False,
          keep_storage: str | None = None, filter_: list[str] | None = None, builder_prefix: str = "bakery",
          image_filter: list[str] | None = None, workers: int = 8, config: str | None = None) -> None:
    """Apply the retention policy to the registry (dry run unless --yes); --local cleans this machine."""
    cfg = config_from(c, config)
    if not local and (keep_storage or filter_ or image_filter):
        raise BakeryError("--keep-storage, --filter and --image-filter apply to --local only")
    if local:
        if image:
            raise BakeryError("--image applies to registry cleanup, not to --local")
        _local(c, cfg, yes, json_, keep_storage, list(filter_ or ()), builder_prefix, list(image_filter or ()))
        return
    if workers < 1:
        raise BakeryError(f"--workers {workers}: must be at least 1")
    _registry(cfg, list(image or ()), yes, json_, workers)


def _registry(cfg: Any, images: Sequence[str], yes: bool, as_json: bool, workers: int) -> None:
    from bakery.clean import execute as core
    from bakery.clean import policy
    retention = policy.policy_for(cfg)
    chosen = policy.targets(cfg, images)
    registry = policy.registry_client(cfg)
    now = datetime.now(UTC).replace(microsecond=0)
    progress = Progress(sys.stderr)
    report: dict[str, Any] = {"dry_run": not yes, "now": now.isoformat(), "repositories": []}
    failed: list[str] = []
    out = sys.stdout
    for target in chosen:
        progress.label = target.ref
        try:
            repo_plan = core.plan_target(registry, target, retention, now, workers=workers, progress=progress)
        except RegistryError as exc:   # reading failed: nothing was changed in this repository; go on with the rest
            progress.end()
            report["repositories"].append({"image": target.image, "ref": target.ref, "error": str(exc)})
            failed.append(f"{target.ref}: could not read the repository, nothing changed: {exc}")
            if not as_json:
                print(f"{target.ref}: could not read the repository, nothing changed: {exc}", file=out)
            continue
        progress.end()
        snap, plan = repo_plan.snapshot, repo_plan.plan
        entry: dict[str, Any] = {"image": target.image, "ref": target.ref,
                                 "snapshot": {"tags": len(snap.tags), "manifests": len(snap.manifests)},
                                 "plan": plan.to_dict(), "plan_seconds": round(repo_plan.seconds, 3)}
        if not as_json:
            platforms = {d: m.platform for d, m in snap.manifests.items()}
            for d, m in snap.manifests.items():
                if m.children and not m.platform:
                    platforms[d] = "index"
            print(plan_table(target.ref, plan, len(snap.tags), len(snap.manifests), platforms), file=out)
        if yes:
            outcome = core.execute(registry, repo_plan, workers=workers, progress=progress)
            progress.end()
            entry["result"] = outcome.to_dict()
            if not as_json:
                print(_summary(plan, outcome), file=out)
            if not outcome.ok:
                failed.append(_failure(target.ref, outcome))
        report["repositories"].append(entry)
        out.flush()
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True), file=out)
    elif not yes:
        print("dry run: nothing was changed; run with --yes to apply this plan", file=out)
    elif not failed:
        print("space is freed by the registry's garbage collection, see docs/clean.md", file=out)
    if failed:
        raise BakeryError("; ".join(failed))


def _summary(plan: Plan, outcome: core.Outcome) -> str:
    from bakery.clean.model import DELETE_DIGEST   # imported when the task runs, not when bakery starts
    if outcome.refused:
        return "  nothing was changed: the registry refuses DELETE"
    untagged = sum(1 for e in outcome.done if e.action == "untag")
    deleted = {e.what for e in outcome.done if e.action == "delete"}
    with_digest = sum(1 for a in plan.remove_tags if a.method == DELETE_DIGEST and a.digest in deleted)
    lines = [f"  done in {outcome.seconds:.1f}s: removed {with_digest + untagged} tags ({untagged} untag only), "
             f"deleted {len(deleted)} manifests"]
    lines += [f"  skipped {e.what}: {e.detail}" for e in outcome.skipped]
    lines += [f"  FAILED {e.what}: {e.detail}" for e in outcome.failed]
    lines += [f"  INVALID {p}" for p in outcome.problems]
    if outcome.restored:
        lines.append(f"  restored {len(outcome.restored)} manifests deleted while a tag published meanwhile "
                     f"needed them (PUT back from the run's bytes)")
    if outcome.ok:
        tags, manifests = outcome.verified
        lines.append(f"  validated: every kept tag and everything it reaches resolves (all {tags} tags of the "
                     f"repository, {manifests} manifests, read after the last delete)")
    return "\n".join(lines)


def _failure(ref: str, outcome: core.Outcome) -> str:
    if outcome.refused:
        return f"{ref}: {outcome.refused}"
    if not outcome.complete:
        first = outcome.failed[0].detail if outcome.failed else "stopped"
        where = f" (journal {', '.join(outcome.journal)})" if outcome.journal else ""
        return f"{ref}: stopped on an error: {first}; nothing kept was touched{where}; re-run to finish"
    return f"{ref}: validation failed: {outcome.problems[0]}" + \
        (f" (+{len(outcome.problems) - 1} more)" if len(outcome.problems) > 1 else "")


def _local(c: Context, cfg: Any, yes: bool, as_json: bool, keep_storage: str | None, filters: list[str],
           builder_prefix: str, image_filters: list[str]) -> None:
    from bakery.clean import local
    docker = docker_from(c, cfg)
    steps = local.local_steps(docker, cfg, keep_storage=keep_storage, filters=filters,
                             builder_prefix=builder_prefix, image_filters=image_filters)
    report: dict[str, Any] = {"dry_run": not yes, "local": [s.to_dict() for s in steps]}
    if yes:
        report["local"] = local.run_local(docker, steps)
    if as_json:
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    for entry in report["local"]:
        print(f"{'would ' if not yes else ''}{entry['what']}: {' '.join(entry['argv'])}")
        if entry.get("summary"):
            print(f"  {entry['summary']}")
    if not yes:
        print("dry run: nothing was changed; run with --yes to apply")
