"""Tasks: ``generate``, ``build`` and ``stitch``. They parse flags, call :mod:`bakery.build` and print."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from invoke import Context, Exit

from bakery.build import build as build_mod
from bakery.build import github
from bakery.build import labels
from bakery.build import generate as generate_mod
from bakery.build import print_ as print_mod
from bakery.build import bakefile
from bakery.build.bakefile import TargetInfo
from bakery.build.overrides import one_builder
from bakery.cli import config_from, docker_from, errors_to_exit, task
from bakery.doctor.checks import preflight
from bakery.config.model import Config
from bakery.errors import BakeryError
from bakery.process import Runner


@task(help={"hcl": "also write bake/docker-bake.hcl", "config": "path of bakery.yaml",
            "check": "verify the files with `docker buildx bake --print` (default on)"})
@errors_to_exit
def generate(c: Context, hcl: bool = False, config: str | None = None, check: bool = True) -> None:
    """Write bake/docker-bake.json (and .hcl) from bakery.yaml."""
    cfg = config_from(c, config)
    formats = list(cfg.formats) + (["hcl"] if hcl and "hcl" not in cfg.formats else [])
    docker = docker_from(c, cfg, record=True) if check else None
    for path in generate_mod.generate(cfg, docker, sys.stdout, formats=formats, check=check):
        print(f"wrote {path.relative_to(cfg.root)}")


@task(iterable=["group", "image", "target", "set_", "build_arg"],
      help={"group": "platform group to build (repeatable; default all)", "image": "image to build (repeatable)",
            "target": "what to build, as bake's positional names: a target (api-amd64), an image, a platform group "
                      "or default (repeatable; `bakery build api arm` gives them bare)",
            "set": "override a target attribute, as bake's --set: PATTERN.KEY=VALUE, e.g. '*.args.X=1' (repeatable)",
            "build-arg": "NAME=VALUE for every target's args (repeatable)",
            "provenance": "bake's --provenance (true, false, mode=max, ...)", "sbom": "bake's --sbom (true, false)",
            "builder": "build every group on this existing buildx builder (as bake's --builder; default: builders:)",
            "tag": "tag of the final multi-arch index (default: the `tags:` rules for this CI event, else config "
                   "`tag`, or BAKERY_TAG)",
            "push": "push per-group results and stitch one index per image under --tag",
            "no-stitch": "with --push: push only the per-group refs (CI fan-out; publish later with `stitch`)",
            "load": "load the per-group images into the local image store",
            "no-cache": "build without the build cache", "dry-run": "print the exact commands, change nothing",
            "verbose": "echo every command", "progress": "buildx progress: plain (default), tty, rawjson, quiet",
            "cache-scope": "cache ref scope, e.g. the branch (default: cache.scope, or BAKERY_CACHE_SCOPE)",
            "no-skip": "with --push: build every target, even those whose inputs match a pushed result",
            "print": "print the JSON definition bake would build (`docker buildx bake --print`, every override "
                     "applied); build nothing",
            "json": "print bake/results.json's document on stdout (everything else goes to stderr)",
            "config": "path of bakery.yaml"})
@errors_to_exit
def build(c: Context, group: list[str] | None = None, image: list[str] | None = None, tag: str | None = None,
          push: bool = False, no_stitch: bool = False, load: bool = False, no_cache: bool = False,
          dry_run: bool = False,
          verbose: bool = False, progress: str = "plain", cache_scope: str | None = None,
          config: str | None = None, no_skip: bool = False, json_: bool = False, set_: list[str] | None = None,
          build_arg: list[str] | None = None, provenance: str | None = None, sbom: str | None = None,
          builder: str | None = None, target: list[str] | None = None, print_: bool = False) -> None:
    """Generate the bake file and build it; with --push, one multi-arch index per image."""
    if push and load:
        raise BakeryError("--push and --load exclude each other: push, then pull what you need")
    if print_ and (dry_run or json_):
        raise BakeryError(f"--print and {'--dry-run' if dry_run else '--json'} exclude each other: --print builds "
                          "nothing and its JSON is bake's")
    cfg = config_from(c, config)
    docker = docker_from(c, cfg, verbose=verbose, dry_run=dry_run, record=True)
    if builder:
        found = docker.builder_info(builder)
        if found is None:
            raise BakeryError(f"--builder {builder}: no such buildx builder (`docker buildx ls` lists them)")
        cfg = one_builder(cfg, builder, found.driver)
    request = build_mod.BuildRequest(groups=tuple(group or ()), images=tuple(image or ()),
                                     targets=tuple(target or ()), tag=tag,
                                     cache_scope=cache_scope, push=push, load=load, no_cache=no_cache,
                                     progress=progress, stitch=not no_stitch, skip=not no_skip,
                                     sets=tuple(set_ or ()), build_args=tuple(build_arg or ()), provenance=provenance,
                                     sbom=sbom, log_groups=os.environ.get("GITHUB_ACTIONS") == "true")
    if tag is None:                                  # `tags:` rules, when bakery.yaml has them
        request = _event_tagged(cfg, request)
    request = _commit_labelled(cfg, request)         # else (or with --tag) the commit's labels
    if print_:
        sys.stdout.write(print_mod.definition(cfg, docker, request, sys.stderr))
        return

    def judge(todo: Sequence[TargetInfo]) -> None:      # only what is built needs a working builder
        if not dry_run:
            preflight(cfg, docker, tuple(dict.fromkeys(t.group for t in todo)), ())
    human = sys.stderr if json_ else sys.stdout
    result = build_mod.build(cfg, docker, request, human, preflight=judge)
    if dry_run:
        return
    for name, t in result.targets.items():
        print(f"{name:<24} {t['digest'] or '-':<73} {','.join(t['platforms'])}", file=human)
    _show(result, json_)
    print(f"results: {Path(cfg.bake_dir) / build_mod.RESULTS_FILE}", file=human)
    github.append(os.environ, result)


def _show(result: build_mod.BuildResult, json_: bool) -> None:
    """The stitched images and the notes; with --json the result's document is stdout's only content."""
    human = sys.stderr if json_ else sys.stdout
    for name, i in result.images.items():
        print(f"{name}: {i['ref']}@{i['digest']} ({', '.join(i['platforms'])})", file=human)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if json_:
        print(json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True))


def _event_tagged(cfg: Config, request: build_mod.BuildRequest) -> build_mod.BuildRequest:
    """The request with the tags, labels and push decision of this CI event (``tags:``); as it was without."""
    if "tags" not in cfg.raw:
        return request
    from bakery.tags import plan as tags_plan         # only a config with `tags:` pays for it
    plan = tags_plan.resolve(cfg, Runner())
    if plan is None:
        return request
    targets = bakefile.select_targets(cfg, request.groups, request.images, request.targets)
    made = tags_plan.for_build(cfg, plan, targets, request.push)
    print(f"tags: {', '.join(plan.tags.tags)} ({plan.event.describe()})", file=sys.stderr)
    if made.note:
        print(f"note: {made.note}", file=sys.stderr)
    return dataclasses.replace(request, tag=made.tag, also=made.also, push=made.push, overlay=made.overlay,
                               cache_export=made.cache_export)


def _commit_labelled(cfg: Config, request: build_mod.BuildRequest) -> build_mod.BuildRequest:
    """The request with the commit's labels (revision, source, created, ``SOURCE_DATE_EPOCH``) when the
    repository is a git checkout and the ``tags:`` rules gave none."""
    if request.overlay is not None:
        return request
    targets = bakefile.select_targets(cfg, request.groups, request.images, request.targets)
    made = labels.commit_overlay(cfg, Runner(), targets)
    return request if made is None else dataclasses.replace(request, overlay=made)


@task(iterable=["group", "image"],
      help={"group": "platform group to check (repeatable; default all)", "image": "image to check (repeatable)",
            "strict": "exit 1 when any check finds something", "config": "path of bakery.yaml"})
@errors_to_exit
def check(c: Context, group: list[str] | None = None, image: list[str] | None = None, strict: bool = False,
          config: str | None = None) -> None:
    """Run the Dockerfile build checks of every target (buildx >= 0.16): Dockerfile:LINE: rule: message."""
    cfg = config_from(c, config)
    docker = docker_from(c, cfg)
    from bakery.build import check as check_mod     # only `check` needs it: `build` starts without it
    found = check_mod.run_checks(cfg, docker, sys.stderr, tuple(group or ()), tuple(image or ()))
    if found is None:
        print(f"bakery: {check_mod.unavailable(docker)}", file=sys.stderr)
        return
    for warning in found:
        print(warning)
    print(f"{len(found)} finding(s)" if found else "no findings", file=sys.stderr)
    if found and strict:
        raise Exit(code=1)


@task(iterable=["image"], help={"tag": "the tag whose per-group refs to stitch", "image": "image (repeatable)",
                                "json": "print the result's document on stdout (everything else to stderr)"})
@errors_to_exit
def stitch(c: Context, tag: str, image: list[str] | None = None, config: str | None = None,
           json_: bool = False) -> None:
    """Stitch pushed per-group refs of TAG into one index per image (after fanned-out CI jobs); when the `tags:`
    rules give this CI event TAG as its main tag (`bakery stitch "$(bakery tags --main)"`), their other tags too."""
    cfg = config_from(c, config)
    from bakery.tags import plan as tags_plan
    try:
        plan = tags_plan.resolve(cfg, Runner())
    except BakeryError as exc:          # TAG is given: the rules only add tags, and cannot here
        print(f"note: only {tag}: {exc}", file=sys.stderr)
        plan = None
    also = plan.tags.tags[1:] if plan is not None and plan.tags.main == tag else ()
    docker = docker_from(c, cfg) if cfg.mirrors else None
    result = build_mod.stitch_tag(cfg, tag, tuple(image or ()), also, docker, sys.stderr if json_ else sys.stdout)
    _show(result, json_)
    github.append(os.environ, result, "bakery stitch")
    if result.notes:
        raise BakeryError(f"{len(result.notes)} image(s) not stitched")
