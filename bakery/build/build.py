"""Generate and build: writes the bake files, runs ``docker buildx bake`` on them, records digests and
stitches per-group results into one multi-arch index per image.

The bake model lives in :mod:`bakery.build.bakefile`; this module sequences it with the docker and registry adapters.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bakery.build import bakefile


from bakery.build import fanout
from bakery.atomic import write_file, write_files
from bakery.build.bakefile import TargetInfo
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG
from bakery.config.model import Config, target_name
from bakery.docker import Docker, Version
from bakery.errors import BakeryError
from bakery.oci.reference import InvalidReference, check_name_prefix, check_tag, split_domain
from bakery.config.variables import bake_variables
from bakery.oci.registry import registry_for
from bakery.oci.index import Stitched, stitch

JSON_FILE = "docker-bake.json"
HCL_FILE = "docker-bake.hcl"
RESULTS_FILE = "results.json"


# --------------------------------------------------------------------------- generate
def render_files(config: Config, buildx: Version | None, formats: Sequence[str] | None = None) -> dict[Path, str]:
    """Path -> content of every bake file for this config (pure; byte-identical for the same input)."""
    doc = bakefile.document(config, buildx)
    out_dir = config.root / config.bake_dir
    files: dict[Path, str] = {}
    for fmt in formats or config.formats:
        if fmt == "json":
            files[out_dir / JSON_FILE] = bakefile.to_json(doc)
        elif fmt == "hcl":
            files[out_dir / HCL_FILE] = bakefile.to_hcl(doc)
        else:
            raise BakeryError(f"unknown bake file format {fmt!r}; use json or hcl")
    return files


_TOKEN = re.compile(r"\$\$\{|%%\{|\$\{(\w+)\}")


def evaluate(value: Any, variables: Mapping[str, str]) -> Any:
    """What bake makes of a generated value (escapes and our own ``${VAR}`` references only)."""
    if isinstance(value, bakefile.Expr):
        return None   # evaluated by bake itself; compared by presence only
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            tok = m.group(0)
            if tok == "$${":
                return "${"
            if tok == "%%{":
                return "%{"
            return variables[m.group(1)]
        return _TOKEN.sub(sub, value)
    if isinstance(value, list):
        return [evaluate(v, variables) for v in value]
    if isinstance(value, Mapping):
        return {evaluate(k, variables): evaluate(v, variables) for k, v in value.items()}
    return value


def compare_with_print(doc: Mapping[str, Any], printed: Mapping[str, Any], variables: Mapping[str, str]) -> list[str]:
    """Differences between what we generated and what bake will do; empty means bake understood every attribute."""
    problems = []
    for name, target in doc["target"].items():
        got = printed.get("target", {}).get(name)
        if got is None:
            problems.append(f"target {name}: missing from bake --print")
            continue
        for key, value in target.items():
            if key not in got:
                problems.append(f"target {name}: attribute {key!r} was dropped by this buildx")
                continue
            want = evaluate(value, variables)
            if want is not None and key not in ("context", "dockerfile") and got[key] != want:
                problems.append(f"target {name}: {key} is {got[key]!r} in bake, generated {want!r}")
    return problems


def generate(config: Config, docker: Docker | None, *, formats: Sequence[str] | None = None,
             check: bool = True) -> list[Path]:
    """Write the bake files atomically, then check with ``bake --print`` that buildx reads them as meant.

    If the check fails the previous files are restored, so a bad generation never replaces a good one.
    """
    buildx = docker.buildx_version() if docker is not None else None
    files = render_files(config, buildx, formats)
    if docker is not None and docker.runner.dry_run:
        for path in files:
            print(f"would write {os.path.relpath(path)}")
        return list(files)
    previous = {p: p.read_text(encoding="utf-8") for p in files if p.exists()}
    write_files(files)
    if check and docker is not None:
        doc = bakefile.document(config, buildx)
        variables = bake_variables(config, env={})
        try:
            for path in files:
                printed = docker.bake_print([path.relative_to(config.root)], ["default"], variables, config.root)
                problems = compare_with_print(doc, printed, variables)
                if problems:
                    raise BakeryError(f"{path.name}: buildx does not read it as generated: {problems[0]}"
                                      + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
        except BaseException:
            write_files(previous) if previous else None
            for p in files:
                if p not in previous:
                    p.unlink(missing_ok=True)
            raise
    return list(files)


# --------------------------------------------------------------------------- build
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


def explain_failure(lines: Sequence[str], targets: Sequence[TargetInfo]) -> str:
    """Name the failing target, platform and step from buildx's plain progress output.

    The fatal vertex is the one whose error text the final ``ERROR: failed to solve: ...`` line repeats;
    non-fatal vertex errors (a cache ref that does not exist yet) are passed over. Bake prefixes step labels
    with the target only when it builds more than one target.
    """
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


def build(config: Config, docker: Docker, request: BuildRequest) -> BuildResult:
    """Generate, run bake (one per builder, concurrently, when groups map to several builders), record digests
    and, with push, stitch one index per image. Nothing is stitched when any target fails."""
    names = bakefile.select_targets(config, request.groups, request.images)
    infos = bakefile.target_infos(config, names)
    variables = bake_variables(config, request.tag, request.cache_scope)
    tag = variables[VAR_TAG]
    files = generate(config, docker, formats=["json"], check=request.check)
    out_dir = config.root / config.bake_dir
    bake_files = [files[0].relative_to(config.root)] + overlay_files(config)
    token = str(os.getpid())
    run_overlay = out_dir / f".overlay-{token}.json"
    if request.overlay and not docker.runner.dry_run:
        write_file(run_overlay, bakefile.to_json(request.overlay))
    if request.overlay:
        bake_files.append(run_overlay.relative_to(config.root))
    jobs = fanout.jobs_for(fanout.by_builder(config, infos), config.builders, out_dir, token)
    options = fanout.BakeOptions(tuple(bake_files), variables, config.root, push=request.push, load=request.load,
                                 no_cache=request.no_cache, progress=request.progress)
    result = BuildResult(tag)
    try:
        meta = fanout.run_jobs(docker, jobs, options, explain_failure, config.fanout)
    finally:
        run_overlay.unlink(missing_ok=True)
    if docker.runner.dry_run:
        _plan_stitch(config, infos, tag, request, variables)
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
        _stitch_all(config, infos, result, variables)
    write_results(config, result)
    return result


def overlay_files(config: Config) -> list[Path]:
    """Hand-written overlays next to the generated file, applied after it (in this order) when present."""
    names = ("docker-bake.override.json", "docker-bake.override.hcl")
    return [Path(config.bake_dir) / n for n in names if (config.root / config.bake_dir / n).is_file()]


def _plan_stitch(config: Config, infos: Sequence[TargetInfo], tag: str, request: BuildRequest,
                 variables: Mapping[str, str]) -> None:
    if not (request.push and request.stitch):
        return
    for image in dict.fromkeys(i.image for i in infos):
        img = config.images[image]
        parts = " ".join(f"{variables[VAR_REGISTRY]}/{img.repository}:{bakefile.intermediate_tag(config, g, tag)}"
                         for g in img.platform_groups)
        print(f"would stitch {variables[VAR_REGISTRY]}/{img.repository}:{tag} <- {parts}")


def _stitch_all(config: Config, infos: Sequence[TargetInfo], result: BuildResult,
                variables: Mapping[str, str]) -> None:
    """One index per image under the public tag, from all of the image's groups (built now or earlier)."""
    registry, prefix = registry_for(variables[VAR_REGISTRY])
    tag = result.tag
    for image in dict.fromkeys(i.image for i in infos):
        img = config.images[image]
        repo = f"{prefix}/{img.repository}" if prefix else img.repository
        sources: list[tuple[str, Sequence[str]]] = []
        missing = []
        for group in img.platform_groups:
            built = result.targets.get(target_name(img.name, group))
            digest = built["digest"] if built else registry.head_manifest(
                repo, bakefile.intermediate_tag(config, group, tag))
            if not digest:
                missing.append(bakefile.intermediate_tag(config, group, tag))
            else:
                sources.append((digest, config.platform_groups[group].platforms))
        if missing:
            result.notes.append(f"{image}: not stitched yet: {', '.join(missing)} missing in {repo} "
                                f"(build those groups with the same --tag, then `invoke stitch --tag {tag}`)")
            continue
        done: Stitched = stitch(registry, repo, [tag], sources)
        result.images[image] = {"ref": f"{variables[VAR_REGISTRY]}/{img.repository}:{tag}", "digest": done.digest,
                                "platforms": list(done.platforms), "sources": list(done.sources)}


def stitch_tag(config: Config, tag: str, images: Sequence[str] = ()) -> BuildResult:
    """Stitch already pushed per-group refs of ``tag`` (CI fan-out: one job per group, then this)."""
    variables = bake_variables(config, tag)
    names = bakefile.select_targets(config, (), images)
    infos = bakefile.target_infos(config, names)
    result = BuildResult(variables[VAR_TAG])
    _stitch_all(config, infos, result, variables)
    write_results(config, result)
    return result


def write_results(config: Config, result: BuildResult) -> Path:
    path = config.root / config.bake_dir / RESULTS_FILE
    write_file(path, json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path
