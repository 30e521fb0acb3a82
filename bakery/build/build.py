"""Generate and build: writes the bake files, runs ``docker buildx bake`` on them, records digests and
stitches per-group results into one multi-arch index per image.

The bake model lives in :mod:`bakery.build.bakefile`; this module sequences it with the docker and registry adapters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bakery.build import background, bakefile
from bakery.build import fanout
from bakery.build import inputs as inputs_mod
from bakery.build import skip as skip_mod
from bakery.atomic import write_file, write_files
from bakery.build.bakefile import TargetInfo
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG
from bakery.config.model import Config
from bakery.build import entitlements
from bakery.build.generate import JSON_FILE, evaluated_targets, verify, write
from bakery.build.overrides import Overrides, overrides
from bakery.docker import Docker, docker_for
from bakery.errors import BakeryError, RegistryError
from bakery.oci.index import is_attestation, platform_string
from bakery.oci.registry import Registry, registry_for
from bakery.oci.reference import InvalidReference, check_name_prefix, check_tag, split_domain
from bakery.config.variables import bake_variables
from bakery.build import mirror, stitch

RESULTS_FILE = "results.json"


@dataclass(frozen=True)
class BuildRequest:
    groups: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()    # bake's positional names: targets, images, platform groups, default
    tag: str | None = None
    cache_scope: str | None = None
    push: bool = False
    load: bool = False
    no_cache: bool = False
    progress: str = "plain"
    check: bool = True
    stitch: bool = True              # with push: publish the public tag (release pushes first, stitches later)
    overlay: Mapping[str, Any] | None = None   # extra bake document (e.g. labels/annotations), passed with -f
    skip: bool = True                # with push: reuse the result of a target whose inputs did not change
    also: tuple[str, ...] = ()       # with push: more tags the stitched index is PUT under (tags: rules)
    cache_export: bool = True        # False: the targets read the cache and write none (a PR without push rights)
    sets: tuple[str, ...] = ()       # --set PATTERN.KEY=VALUE (build.overrides)
    build_args: tuple[str, ...] = () # --build-arg NAME=VALUE
    provenance: str | None = None    # --provenance / --sbom, as bake takes them
    sbom: str | None = None
    log_groups: bool = False         # GitHub Actions: fold each bake's output in the log (::group::)


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
    message = _located_failure(lines, targets)
    if "buildkit-syft-scanner" in message:      # `sbom: true` pulls BuildKit's default scanner from Docker Hub
        message += ("; the SBOM scanner image cannot be pulled: mirror docker/buildkit-syft-scanner into a "
                    "registry this builder reaches and name it: attest: [\"type=sbom,generator=REF\"]")
    return message


def _located_failure(lines: Sequence[str], targets: Sequence[TargetInfo]) -> str:
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


@dataclass
class BuildRun:
    """What the phases of one build pass on."""
    infos: list[TargetInfo]
    variables: dict[str, str]
    doc: dict[str, Any]
    evaluated: dict[str, Any]
    allow: list[str]
    overrides: Overrides = field(default_factory=Overrides)
    skip: skip_mod.Decision = field(default_factory=skip_mod.Decision)
    where: dict[str, skip_mod.Where] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)   # target -> seconds, steps, cached
    reused: Callable[[], None] | None = None   # waits for the copies of the unchanged results made beside the bake
    client: tuple[Registry, str] | None = None  # the registry client of the run and its repository prefix
    checked: Callable[[], None] = background.passed  # waits for the generated file's --print check


def _registry(run: BuildRun) -> tuple[Registry, str]:
    """The run's one registry client (one connection pool, one token per scope) and its repository prefix."""
    if run.client is None:
        run.client = registry_for(run.variables[VAR_REGISTRY])
    return run.client


Preflight = Callable[[Sequence[TargetInfo]], None]


def build(config: Config, docker: Docker, request: BuildRequest, out: TextIO = sys.stdout,
          preflight: Preflight | None = None) -> BuildResult:
    """Generate, look unchanged targets up (``--push``), run bake on the rest (one per builder, concurrently, when
    groups map to several builders), record digests and, with push, stitch one index per image. Nothing is
    stitched when any target fails. ``preflight`` judges the machine for the targets that are built. The previous
    run's ``results.json`` goes first: it is written again only when this run finishes."""
    docker.capabilities()       # buildx is read once, before anything runs at the same time
    if not docker.runner.dry_run:
        (config.root / config.bake_dir / RESULTS_FILE).unlink(missing_ok=True)
    skipping = request.push and request.skip and config.skip and not request.no_cache
    infos = bakefile.target_infos(config, bakefile.select_targets(config, request.groups, request.images, request.targets))
    judged = _early(None if skipping else preflight, infos)
    run = prepare(config, docker, request, out)
    if skipping:
        _decide_skip(config, docker, run, request.overlay, out)
    todo = [i for i in run.infos if i.name not in run.skip.unchanged]
    if todo and skipping:
        judged = _early(preflight, todo)
    if todo and not request.push and request.cache_export and not docker.runner.dry_run:
        request = _cache_rights(config, run, request, out)
    if todo and run.skip.unchanged and not docker.runner.dry_run:
        run.reused = background.start(lambda: _reuse(run), "reuse")
    try:
        meta = _bake(config, docker, request, run, todo, background.both(judged, run.checked)) if todo else {}
        run.checked()                                 # nothing is recorded or stitched from an unchecked file
    except BakeryError:
        if run.reused is not None:                 # the copies end before the error is told (it is the bake's)
            with contextlib.suppress(BakeryError):
                run.reused()
        raise
    if request.load and request.tag and todo:
        _tag_loaded(config, docker, run, todo, request.tag, out)
    result = BuildResult(run.variables[VAR_TAG])
    if docker.runner.dry_run:
        if request.push and request.stitch:
            for line in stitch.plan_lines(config, _images(run.infos), result.tag, run.variables[VAR_REGISTRY],
                                          request.also):
                print(line, file=out)
            for mirrored in config.mirrors:
                print(f"would copy each index to {mirrored} (docker buildx imagetools create)", file=out)
        return result
    _record_targets(config, run, meta, result)
    if request.push:
        _reuse_and_record(config, run, meta, result, out)
        _record_sizes(config, run, result)
    if request.push and request.stitch:
        built = {name: t["digest"] for name, t in result.targets.items()}
        reused = {u.part.digest: u.part for u in run.skip.unchanged.values()}
        _record(result, stitch.stitch_images(config, _images(run.infos), result.tag, run.variables[VAR_REGISTRY],
                                             built, request.also, reused, _registry(run)))
    write_results(config, result)
    if result.images and config.mirrors:
        mirror.copy_to_mirrors(config, docker, result.images, out)
    return result


def _early(preflight: Preflight | None, infos: Sequence[TargetInfo]) -> Callable[[], None]:
    """Start the preflight at once, in the background: its docker probes overlap generation, the lookups and the
    bake itself. The callable waits for it and raises what it found; the bake phase calls it beside the bakes
    (:func:`bakery.build.fanout.run_jobs` stops them when it raises). Nobody waits when nothing is built."""
    if preflight is None:
        return background.passed
    return background.start(lambda: preflight(infos), "preflight")


def _reuse(run: BuildRun) -> None:
    """Point every unchanged result at this run's per-group ref (a manifest copy)."""
    registry, _ = _registry(run)
    skip_mod.reuse(registry, run.skip, run.where)


def prepare(config: Config, docker: Docker, request: BuildRequest, out: TextIO) -> BuildRun:
    """Phase: the targets, the bake document (built once), the generated file and the grants. The file's
    ``--print`` check starts in the background (:attr:`BuildRun.checked` waits for it): it runs beside the
    lookups and the bake, and what it finds stops the bake."""
    names = bakefile.select_targets(config, request.groups, request.images, request.targets)
    infos = bakefile.target_infos(config, names)
    variables = bake_variables(config, request.tag, request.cache_scope)
    caps = docker.capabilities()
    doc = bakefile.document(config, caps)
    written = write(config, docker, out, formats=["json"], doc=doc)
    checked = background.start(lambda: verify(config, docker, written), "print-check") \
        if request.check and written.wrote else background.passed
    evaluated = evaluated_targets(doc, variables)
    if not docker.runner.dry_run:
        for directory in entitlements.cache_dirs(evaluated, names, config.root):
            directory.mkdir(parents=True, exist_ok=True)
    allow = entitlements.grants(evaluated, names, config.root, caps)
    given = overrides(request.sets, request.build_args, names, caps, request.provenance, request.sbom)
    return BuildRun(infos, variables, doc, evaluated, allow, given, checked=checked)


def _decide_skip(config: Config, docker: Docker, run: BuildRun, overlay: Mapping[str, Any] | None, out: TextIO) -> None:
    """Phase (``--push``, skip on): input digests, then the registry lookups; prints what is not built."""
    registry, prefix = _registry(run)
    for info in run.infos:
        repository = config.images[info.image].repository
        run.where[info.name] = skip_mod.Where(f"{prefix}/{repository}" if prefix else repository,
                                              bakefile.intermediate_tag(config, info.group, run.variables[VAR_TAG]),
                                              info.platforms)
    cache_path = config.root / config.bake_dir / inputs_mod.STAT_CACHE
    cache = inputs_mod.StatCache.load(cache_path)
    extra: dict[str, Any] = {
        "overlay": skip_mod.commit_free(overlay or {}),
        "overrides": {p.name: inputs_mod.json_digest((config.root / p).read_bytes().decode("utf-8", "replace"))
                      for p in overlay_files(config)}}
    if not run.overrides.empty:                          # --set/--build-arg/--provenance/--sbom change the result
        extra["cli"] = run.overrides.fingerprint()
    targets = run.evaluated["target"]
    run.inputs = inputs_mod.compute(config.root, targets, [i.name for i in run.infos],
                                    inputs_mod.registry_resolver(), cache, {**os.environ, **(docker.env or {})}, extra)
    if not docker.runner.dry_run:
        cache.save(cache_path, [str(config.root / str(targets[n].get("context") or ".")) for n in run.inputs])
    run.skip = skip_mod.decide(registry, run.where, run.inputs)
    for line in skip_mod.report(run.skip, docker.runner.dry_run):
        print(line, file=out, flush=True)


def _bake(config: Config, docker: Docker, request: BuildRequest, run: BuildRun,
          todo: Sequence[TargetInfo], judged: Callable[[], None]) -> dict[str, Any]:
    """Phase: bake the targets that are built (overlay with the input annotations), per builder. On the
    current context's own builder alone the bake starts while the preflight (``judged``) finishes: what it finds
    stops the bake and is the error. With other builders (a fleet) the preflight passes first: an unreachable
    remote fails the build before any group is built."""
    if not all(config.builder_of(i.group).implicit for i in todo):
        judged()
        judged = background.passed
    token = str(os.getpid())
    options, run_overlay = bake_options(config, docker, request, run, todo, token)
    jobs = fanout.jobs_for(fanout.by_builder(config, todo), config.builders, config.root / config.bake_dir, token,
                           _shared_contexts(config, docker, run, todo))
    try:
        return fanout.run_jobs(docker, jobs, options, explain_failure, config.fanout, run.stats, beside=judged)
    finally:
        run_overlay.unlink(missing_ok=True)


def _shared_contexts(config: Config, docker: Docker, run: BuildRun,
                     todo: Sequence[TargetInfo]) -> dict[str, str] | None:
    """Target -> build context when targets that share one must go to separate bakes (rounds): buildx shares
    their session (>= 0.17) and a cache is configured (docs/stack.md); None otherwise (one bake per builder)."""
    if not docker.capabilities().shared_context_sessions or config.cache.type == "none":
        return None
    return {i.name: str(run.evaluated["target"][i.name].get("context")) for i in todo}


def bake_options(config: Config, docker: Docker, request: BuildRequest, run: BuildRun, todo: Sequence[TargetInfo],
                 token: str) -> tuple[fanout.BakeOptions, Path]:
    """What every bake of this run is given (also what ``build --print`` shows, :mod:`bakery.build.print_`): the
    generated file, the hand-written overlays and the run's overlay (the request's, with ``--push`` the input
    annotations of ``todo``), written to the returned path, which the caller removes; flags and variables."""
    out_dir = config.root / config.bake_dir
    files = [out_dir.relative_to(config.root) / JSON_FILE] + overlay_files(config)
    run_overlay = out_dir / f".overlay-{token}.json"
    overlay = skip_mod.annotation_overlay(run.evaluated["target"], run.inputs, [i.name for i in todo],
                                          request.overlay) if request.push else request.overlay
    if overlay and not docker.runner.dry_run:
        write_file(run_overlay, bakefile.to_json(overlay))
    if overlay:
        files.append(run_overlay.relative_to(config.root))
    options = fanout.BakeOptions(tuple(files), run.variables, config.root, push=request.push, load=request.load,
                                 no_cache=request.no_cache, progress=request.progress, allow=tuple(run.allow),
                                 cache_export=request.cache_export, sets=run.overrides.sets,
                                 provenance=run.overrides.provenance, sbom=run.overrides.sbom,
                                 log_groups=request.log_groups)
    return options, run_overlay


def _tag_loaded(config: Config, docker: Docker, run: BuildRun, todo: Sequence[TargetInfo], tag: str,
                out: TextIO) -> None:
    """Phase (``--load --tag X``): ``<registry>/<image>:X`` names each loaded image, so ``docker run`` finds it
    under the tag asked for. An image loaded from several groups takes the group that runs natively here."""
    native = docker.engine().os_arch
    chosen: dict[str, TargetInfo] = {}
    for info in todo:
        if info.image not in chosen or (native in info.platforms and native not in chosen[info.image].platforms):
            chosen[info.image] = info
    registry = run.variables[VAR_REGISTRY]
    for image, info in chosen.items():
        repository = f"{registry}/{config.images[image].repository}"
        source = f"{repository}:{bakefile.intermediate_tag(config, info.group, run.variables[VAR_TAG])}"
        docker_for(docker, config.builder_of(info.group)).tag_image(source, f"{repository}:{tag}")
        if not docker.runner.dry_run:
            print(f"loaded {repository}:{tag} ({', '.join(info.platforms)})", file=out)


def _record_targets(config: Config, run: BuildRun, meta: Mapping[str, Any], result: BuildResult) -> None:
    """Phase: each target's ``results.json`` record (digest from bake, or the unchanged previous result)."""
    for info in run.infos:
        entry = meta.get(info.name, {})
        unchanged = run.skip.unchanged.get(info.name)
        result.targets[info.name] = {
            "image": info.image, "group": info.group, "platforms": list(info.platforms),
            "builder": config.builder_of(info.group).name,
            "digest": unchanged.part.digest if unchanged else entry.get("containerimage.digest"),
            "ref": f"{run.variables[VAR_REGISTRY]}/{config.images[info.image].repository}:"
                   f"{bakefile.intermediate_tag(config, info.group, run.variables[VAR_TAG])}",
        }
        result.targets[info.name].update(run.stats.get(info.name, {}))
        if info.name in run.inputs and run.inputs[info.name].digest:
            result.targets[info.name]["inputs"] = run.inputs[info.name].digest
        if unchanged:
            result.targets[info.name]["unchanged_since"] = unchanged.since


def _cache_rights(config: Config, run: BuildRun, request: BuildRequest, out: TextIO) -> BuildRequest:
    """Phase (a build that does not push, registry cache): without push rights to the registry the cache export
    would fail the build; it is turned off, with a note (the cache is still read)."""
    if config.cache.type != "registry" or not run.infos:
        return request
    registry, prefix = _registry(run)
    repo = config.images[run.infos[0].image].repository
    try:
        refused = registry.push_refused(f"{prefix}/{repo}" if prefix else repo)
    except RegistryError:
        return request                   # unreachable: the build says so itself, and reads no cache either
    if refused is None:
        return request
    print(f"note: no push rights to {run.variables[VAR_REGISTRY]} ({refused}): building without writing the cache "
          "(it is still read)", file=out, flush=True)
    return dataclasses.replace(request, cache_export=False)


def _record_sizes(config: Config, run: BuildRun, result: BuildResult) -> None:
    """Phase (``--push``): each target built and pushed now gets its compressed size per platform (config and
    layers, as the registry stores them) in its record as ``sizes``; an unchanged target costs no request (a no-op
    build stays a few lookups), and a lookup that fails leaves it out (never fails the build)."""
    registry, prefix = _registry(run)
    for name, record in result.targets.items():
        if not record.get("digest") or record.get("unchanged_since"):
            continue
        repo = config.images[record["image"]].repository
        try:
            record["sizes"] = platform_sizes(registry, f"{prefix}/{repo}" if prefix else repo, record["digest"])
        except (RegistryError, KeyError, TypeError, ValueError):   # unreachable, or not a shape sizes are read from
            continue


def platform_sizes(registry: Registry, repo: str, digest: str) -> dict[str, int]:
    """{platform: bytes of its config and layers} of the index (or single image) at ``digest``."""
    found = registry.get_manifest(repo, digest)
    if not found.is_index:
        body = found.json
        return {"": int(body["config"]["size"]) + sum(int(layer["size"]) for layer in body.get("layers") or [])}
    sizes = {}
    for entry in found.json.get("manifests") or []:
        if is_attestation(entry):
            continue
        image = registry.get_manifest(repo, entry["digest"]).json
        sizes[platform_string(entry.get("platform") or {})] = (
            int(image["config"]["size"]) + sum(int(layer["size"]) for layer in image.get("layers") or []))
    return sizes


def _reuse_and_record(config: Config, run: BuildRun, meta: Mapping[str, Any], result: BuildResult,
                      out: TextIO) -> None:
    """Phase: point unchanged results at this run's per-group refs (done beside the bake when one ran, as bake
    pushes each target it built); record the inputs of what was built (a record that cannot be written is a
    note, never a failure: the next run builds again)."""
    if not run.where:
        return
    registry, _ = _registry(run)
    if run.reused is not None:
        run.reused()
    else:
        _reuse(run)
    for name, w in run.where.items():
        got = run.inputs.get(name)
        if name in run.skip.unchanged or got is None or got.digest is None or name not in meta:
            continue
        try:
            subject = skip_mod.subject_of(registry, w.repository, meta[name])
            if subject is not None:
                skip_mod.record(registry, w.repository, name, got.digest, result.tag, subject)
        except RegistryError as exc:
            result.notes.append(f"{name}: inputs not recorded ({exc}); the next build of it is not skipped")


def overlay_files(config: Config) -> list[Path]:
    """Hand-written overlays next to the generated file, applied after it (in this order) when present."""
    names = ("docker-bake.override.json", "docker-bake.override.hcl")
    return [Path(config.bake_dir) / n for n in names if (config.root / config.bake_dir / n).is_file()]


def _images(infos: Sequence[TargetInfo]) -> list[str]:
    return list(dict.fromkeys(i.image for i in infos))


def _record(result: BuildResult, done: stitch.Stitching) -> None:
    result.images.update(done.images)
    result.notes.extend(done.notes)


def stitch_tag(config: Config, tag: str, images: Sequence[str] = (), also: Sequence[str] = (),
               docker: Docker | None = None, out: TextIO = sys.stdout) -> BuildResult:
    """Stitch already pushed per-group refs of ``tag`` (CI fan-out: one job per group, then this); with
    ``docker``, copy what was stitched to the mirrors."""
    variables = bake_variables(config, tag)
    names = bakefile.select_targets(config, (), images)
    infos = bakefile.target_infos(config, names)
    result = BuildResult(variables[VAR_TAG])
    _record(result, stitch.stitch_images(config, _images(infos), result.tag, variables[VAR_REGISTRY], {}, also))
    write_results(config, result)
    if docker is not None and result.images and config.mirrors:
        mirror.copy_to_mirrors(config, docker, result.images, out)
    return result


def write_results(config: Config, result: BuildResult) -> Path:
    path = config.root / config.bake_dir / RESULTS_FILE
    write_file(path, json.dumps(asdict(result), indent=2, sort_keys=True) + "\n")
    return path
