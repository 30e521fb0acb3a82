"""Generate and build: writes the bake files, runs ``docker buildx bake`` on them, records digests and
stitches per-group results into one multi-arch index per image.

The bake model lives in :mod:`bakery.build.bakefile`; this module sequences it with the docker and registry adapters.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bakery.build import bakefile


from bakery.build import fanout
from bakery.atomic import write_file, write_files
from bakery.build.bakefile import TargetInfo
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG
from bakery.config.model import Config
from bakery.build import entitlements
from bakery.build.generate import evaluated_targets, generate
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.oci.reference import InvalidReference, check_name_prefix, check_tag, split_domain
from bakery.config.variables import bake_variables
from bakery.build import stitch

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class BuildRequest:
    groups: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    tag: str | None = None
    cache_scope: str | None = None
    push: bool = False
    load: bool = False
    no_cache: bool = False
    progress: str = "plain"
    check: bool = True
    stitch: bool = True              # with push: publish the public tag (release pushes first, stitches later)
    overlay: Mapping[str, Any] | None = None   # extra bake document (e.g. labels/annotations), passed with -f


@dataclass
class BuildResult:
    tag: str
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


_VERTEX = re.compile(r"^#(\d+) \[([^\]]+)\] (.*)$")
_VERTEX_ERR = re.compile(r"^#(\d+) ERROR: (.*)$")
_BAKE_ERR = re.compile(r"^ERROR: (?:target ([\w.-]+): )?(.*)$")
_GRANTS = re.compile(r'^Pass "(--allow=[^"]+)" to grant requested privileges')


def _missing_grants(lines: Sequence[str]) -> str:
    """bake (0.20+) stopped for entitlements bakery did not derive from the file: name them and where they go."""
    for line in lines:
        if m := _GRANTS.match(line.strip()):
            return (f"build failed: buildx asks for {m.group(1)} (bakery grants only what its file needs: contexts "
                    "and local cache dirs outside the repository, `network: host`, `entitlements`); add the "
                    "grant to the image's `bake: {entitlements: [...]}` or move the path inside the repository")
    return ""


def explain_failure(lines: Sequence[str], targets: Sequence[TargetInfo]) -> str:
    """Name the failing target, platform and step from buildx's plain progress output.

    The fatal vertex is the one whose error text the final ``ERROR: failed to solve: ...`` line repeats;
    non-fatal vertex errors (a cache ref that does not exist yet) are passed over. Bake prefixes step labels
    with the target only when it builds more than one target.
    """
    if grants := _missing_grants(lines):
        return grants
    names: dict[str, tuple[str, str]] = {}
    errors: list[tuple[str, str, str]] = []
    final = ""
    for line in lines:
        if m := _VERTEX.match(line):
            names[m.group(1)] = (m.group(2), m.group(3))   # shared vertexes are relabelled: last one wins
        elif m := _VERTEX_ERR.match(line):
            label, step = names.get(m.group(1), ("", ""))
            errors.append((label, step, m.group(2)))
        elif m := _BAKE_ERR.match(line):
            final = line[len("ERROR: "):]
    fatal = [e for e in errors if final and e[2] in final] or \
        [e for e in errors if "cache importer" not in e[2] and "importing cache" not in e[1]]
    if not fatal:
        return f"build failed: {final}" if final else \
            "build failed: docker buildx bake exited non-zero (see its output above)"
    label, step, why = fatal[0]
    parts = label.split()
    known = {t.name: t for t in targets}
    target = next((p for p in parts if p in known), "")
    if not target and len(targets) == 1:
        target = targets[0].name
    platform = next((p for p in parts if p.count("/") >= 1 and p.split("/")[0].isalpha()), "")
    if not platform and target:
        platform = ", ".join(known[target].platforms)
    plat_word = "platforms" if "," in platform else "platform"
    where = ", ".join(x for x in (f"target {target}" if target else "", f"{plat_word} {platform}" if platform else "",
                                  f"step `{step}`" if step else "") if x)
    return f"build failed: {where}: {why}"


def build(config: Config, docker: Docker, request: BuildRequest, out: TextIO = sys.stdout) -> BuildResult:
    """Generate, run bake (one per builder, concurrently, when groups map to several builders), record digests
    and, with push, stitch one index per image. Nothing is stitched when any target fails."""
    names = bakefile.select_targets(config, request.groups, request.images)
    infos = bakefile.target_infos(config, names)
    variables = bake_variables(config, request.tag, request.cache_scope)
    tag = variables[VAR_TAG]
    caps = docker.capabilities()
    doc = bakefile.document(config, caps)
    files = generate(config, docker, out, formats=["json"], check=request.check, doc=doc)
    evaluated = evaluated_targets(doc, variables)
    if not docker.runner.dry_run:
        for directory in entitlements.cache_dirs(evaluated, names, config.root):
            directory.mkdir(parents=True, exist_ok=True)
    allow = entitlements.grants(evaluated, names, config.root, caps)
    out_dir = config.root / config.bake_dir
    bake_files = [files[0].relative_to(config.root)] + overlay_files(config)
    token = str(os.getpid())
    run_overlay = out_dir / f".overlay-{token}.json"
    if request.overlay and not docker.runner.dry_run:
        write_file(run_overlay, bakefile.to_json(request.overlay))
    if request.overlay:
        bake_files.append(run_overlay.relative_to(config.root))
    contexts = {n: str(evaluated["target"][n].get("context")) for n in names} \
        if caps.shared_context_sessions and config.cache.type != "none" else None
    jobs = fanout.jobs_for(fanout.by_builder(config, infos), config.builders, out_dir, token, contexts)
    options = fanout.BakeOptions(tuple(bake_files), variables, config.root, push=request.push, load=request.load,
                                 no_cache=request.no_cache, progress=request.progress, allow=tuple(allow))
    result = BuildResult(tag)
    try:
        meta = fanout.run_jobs(docker, jobs, options, explain_failure, config.fanout)
    finally:
        run_overlay.unlink(missing_ok=True)
    if docker.runner.dry_run:
        if request.push and request.stitch:
            for line in stitch.plan_lines(config, _images(infos), tag, variables[VAR_REGISTRY]):
                print(line, file=out)
        return result
    for info in infos:
        entry = meta.get(info.name, {})
        result.targets[info.name] = {
            "image": info.image, "group": info.group, "platforms": list(info.platforms),
            "builder": config.builder_of(info.group).name,
            "digest": entry.get("containerimage.digest"),
            "ref": f"{variables[VAR_REGISTRY]}/{config.images[info.image].repository}:"
                   f"{bakefile.intermediate_tag(config, info.group, tag)}",
        }
    if request.push and request.stitch:
        built = {name: t["digest"] for name, t in result.targets.items()}
        _record(result, stitch.stitch_images(config, _images(infos), tag, variables[VAR_REGISTRY], built))
    write_results(config, result)
    return result


def overlay_files(config: Config) -> list[Path]:
    """Hand-written overlays next to the generated file, applied after it (in this order) when present."""
    names = ("docker-bake.override.json", "docker-bake.override.hcl")
    return [Path(config.bake_dir) / n for n in names if (config.root / config.bake_dir / n).is_file()]


def _images(infos: Sequence[TargetInfo]) -> list[str]:
    return list(dict.fromkeys(i.image for i in infos))


def _record(result: BuildResult, done: stitch.Stitching) -> None:
    result.images.update(done.images)
    result.notes.extend(done.notes)


def stitch_tag(config: Config, tag: str, images: Sequence[str] = ()) -> BuildResult:
    """Stitch already pushed per-group refs of ``tag`` (CI fan-out: one job per group, then this)."""
    variables = bake_variables(config, tag)
    names = bakefile.select_targets(config, (), images)
    infos = bakefile.target_infos(config, names)
    result = BuildResult(variables[VAR_TAG])
    _record(result, stitch.stitch_images(config, _images(infos), result.tag, variables[VAR_REGISTRY], {}))
    write_results(config, result)
    return result


def write_results(config: Config, result: BuildResult) -> Path:
    path = config.root / config.bake_dir / RESULTS_FILE
    write_file(path, json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path
