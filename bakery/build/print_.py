"""``build --print``: the definition a build would hand to bake, as bake itself prints it.

The build's own preparation (:func:`bakery.build.build.prepare`: the targets selected, the variables, the generated
file written and checked, the ``--set``/``--build-arg``/``--provenance``/``--sbom`` overrides checked) and its own
files and flags (:func:`bakery.build.build.bake_options`: the generated file, the hand-written overlays, the run's
overlay, ``--push``/``--load``/``--no-cache``), run once as ``docker buildx bake ... --print <targets>``. Nothing is
built or pushed. Not in it: what a build only decides on the way (which targets the skip leaves out and their
input-digest annotations, and a cache export turned off for want of push rights): those need registry requests.
"""

from __future__ import annotations

import os
from typing import TextIO

from bakery.build import build as build_mod
from bakery.config.model import Config
from bakery.docker import Docker
from bakery.errors import CommandError


def definition(config: Config, docker: Docker, request: build_mod.BuildRequest, out: TextIO) -> str:
    """bake's JSON for the request's targets, every bakery override applied (``out`` gets generation's notes)."""
    run = build_mod.prepare(config, docker, request, out)
    run.checked()
    options, overlay = build_mod.bake_options(config, docker, request, run, run.infos, f"print-{os.getpid()}")
    try:
        argv = options.argv(docker, [i.name for i in run.infos], print_only=True)
        res = docker.runner.run(argv, env={**(docker.env or {}), **options.variables}, cwd=options.cwd, check=False)
    finally:
        overlay.unlink(missing_ok=True)
    if res.returncode != 0:
        raise CommandError(res.argv, res.returncode, res.stderr, "docker buildx bake --print rejected the definition")
    return res.stdout
