"""Task: ``release``. It parses flags and calls :func:`bakery.release.run.release`; every decision lives there."""

from __future__ import annotations

import json
import os
import sys

from invoke import Context

from bakery.cli import config_from, docker_from, errors_to_exit, task
from bakery.doctor.checks import preflight

# the release core (plan, tag sets, smoke tests, publish) is imported when the task runs: `bakery build` does not
# pay for it


@task(iterable=["group", "image"],
      help={"version": "version to release (default: the newest semver tag on HEAD, `v` prefix allowed)",
            "group": "rebuild only this platform group (repeatable); the others are reused from this version's "
                     "per-group refs, built earlier from the same commit",
            "image": "release only this image (repeatable; default all)",
            "dry-run": "print the plan and the exact commands; build, test and publish nothing",
            "verbose": "echo every command",
            "allow-dirty": "release from a working tree with uncommitted changes",
            "publish": "publish the tags (--no-publish: build, push per-group refs and smoke-test only)",
            "untag-intermediate": "after publishing, remove the per-group refs the safe way (manifest.rm)",
            "rebuild": "build and smoke-test again even if this commit's release of the version is published",
            "cache-scope": "cache ref scope, e.g. the branch (default: cache.scope, or BAKERY_CACHE_SCOPE)",
            "progress": "buildx progress: plain (default), tty, rawjson, quiet",
            "json": "print the release report's document on stdout (everything else goes to stderr)",
            "config": "path of bakery.yaml"})
@errors_to_exit
def release(c: Context, group: list[str] | None = None, image: list[str] | None = None, dry_run: bool = False,
            verbose: bool = False, version: str | None = None, allow_dirty: bool = False, publish: bool = True,
            untag_intermediate: bool = False, rebuild: bool = False, cache_scope: str | None = None,
            progress: str = "plain", config: str | None = None, json_: bool = False) -> None:
    """Publish a version: build all platform groups, smoke-test every platform, then tag one index per image."""
    from bakery.release.plan import ReleaseRequest
    from bakery.release.run import release as run_release
    from bakery.release.settings import settings
    cfg = config_from(c, config)
    docker = docker_from(c, cfg, verbose=verbose, dry_run=dry_run, record=True)
    request = ReleaseRequest(version=version, groups=tuple(group or ()), images=tuple(image or ()),
                             cache_scope=cache_scope, progress=progress, allow_dirty=allow_dirty,
                             publish=publish, untag_intermediate=untag_intermediate, rebuild=rebuild)
    settings(cfg)                # a bad `release:` section fails before anything runs
    if not dry_run:
        preflight(cfg, docker, request.groups, request.images)
    report = run_release(cfg, docker, request, out=sys.stderr if json_ else sys.stdout, token=str(os.getpid()))
    if json_:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
