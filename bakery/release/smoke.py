"""Smoke tests: every platform of every image is run before anything is published.

Per image and platform: ``docker run --pull always --platform P <repo>@<platform digest>`` with the image's ``test``
command as the entrypoint, or a start check without one (still running after ``start_seconds``, or exited 0); every
line of output labelled ``[image platform]``; the container and the pulled image removed afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TextIO

from bakery.docker import Docker
from bakery.oci.index import read_config
from bakery.release.plan import ImageWork, ReleaseFailed, ReleasePlan


@dataclass(frozen=True)
class SmokeSpec:
    image: str
    platform: str
    ref: str                              # <registry>/<repository>@<platform manifest digest>
    command: tuple[str, ...] | None       # None: start check; (): no smoke test (test: [] in bakery.yaml)
    data_only: bool = False               # no CMD and no ENTRYPOINT (FROM scratch data): nothing to start

    @property
    def kind(self) -> str:
        if self.command is None:
            return "data-only" if self.data_only else "start-check"
        return "test" if self.command else "skipped"

    @property
    def label(self) -> str:
        return f"[{self.image} {self.platform}]"


@dataclass(frozen=True)
class SmokeResult:
    image: str
    platform: str
    kind: str                 # test | start-check | data-only | skipped | already-released
    passed: bool
    exit_code: int | None
    detail: str               # one line: what happened
    output: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        if self.kind in ("skipped", "already-released"):
            return "not run" if self.kind == "already-released" else "skipped"
        return "passed" if self.passed else "failed"


def container_name(spec: SmokeSpec, token: str) -> str:
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", f"{spec.image}-{spec.platform}")
    return f"bakery-smoke-{safe}-{token}"


def judge(spec: SmokeSpec, exit_code: int | None, timeout: float, start_seconds: float) -> tuple[bool, str]:
    """Pass/fail of one smoke run. ``exit_code`` None means the container was still running when we stopped
    waiting (after ``timeout`` for a test, ``start_seconds`` for a start check)."""
    if spec.command:
        shown = " ".join(spec.command)
        if exit_code is None:
            return False, f"smoke test `{shown}` did not finish within {timeout:g}s"
        if exit_code != 0:
            return False, f"smoke test `{shown}` exited {exit_code}"
        return True, f"smoke test `{shown}` exited 0"
    if exit_code is None:
        return True, f"start check: still running after {start_seconds:g}s"
    if exit_code != 0:
        return False, f"start check: the container exited {exit_code}"
    return True, "start check: the container exited 0"


def run_smoke(docker: Docker, spec: SmokeSpec, token: str, timeout: float, start_seconds: float,
              out: TextIO) -> SmokeResult:
    """Run one smoke test for real, print its output labelled, and clean up the container and pulled image."""
    if spec.kind == "skipped":
        print(f"{spec.label} skipped: images.{spec.image}.test is empty", file=out, flush=True)
        return SmokeResult(spec.image, spec.platform, spec.kind, True, None, "skipped (test: [])")
    if spec.kind == "data-only":
        return check_data_only(docker, spec, out)
    name = container_name(spec, token)
    exit_code: int | None = None
    lines: list[str] = []
    try:
        started = docker.run_detached(name, spec.platform, spec.ref, spec.command)
        if started.returncode != 0:
            lines = [ln for ln in started.stderr.splitlines() if ln.strip()]
            for ln in lines:
                print(f"{spec.label} {ln}", file=out, flush=True)
            why = cause(lines) or f"docker run exited {started.returncode}"
            return SmokeResult(spec.image, spec.platform, spec.kind, False, None,
                               f"could not start the container: {why}", tuple(lines))
        exit_code = docker.wait_container(name, timeout if spec.command else start_seconds)
        lines = docker.container_logs(name)
        for ln in lines:
            print(f"{spec.label} {ln}", file=out, flush=True)
    finally:
        docker.remove_container(name)
        docker.remove_image(spec.ref)
    passed, detail = judge(spec, exit_code, timeout, start_seconds)
    print(f"{spec.label} {'passed' if passed else 'FAILED'}: {detail}", file=out, flush=True)
    return SmokeResult(spec.image, spec.platform, spec.kind, passed, exit_code, detail, tuple(lines))


def cause(lines: list[str]) -> str:
    """docker's cause line ("docker: Error response from daemon: no command specified"), not its last one ("Run
    'docker run --help' for more information")."""
    for line in lines:
        if line.startswith("docker: ") or "Error response from daemon" in line or line.startswith("Error"):
            return line.strip()
    useful = [ln for ln in lines if not ln.startswith(("Run 'docker", "See 'docker"))]
    return useful[-1].strip() if useful else ""


def check_data_only(docker: Docker, spec: SmokeSpec, out: TextIO) -> SmokeResult:
    """An image with nothing to run (no CMD, no ENTRYPOINT, no test): pulled for its platform and inspected."""
    try:
        pulled = docker.pull_platform(spec.ref, spec.platform)
        if pulled.returncode != 0:
            lines = [ln for ln in pulled.stderr.splitlines() if ln.strip()]
            why = cause(lines) or f"docker pull exited {pulled.returncode}"
            return SmokeResult(spec.image, spec.platform, spec.kind, False, None, f"data-only image: pull failed: {why}",
                               tuple(lines))
        found = docker.image_platform(spec.ref)
    finally:
        docker.remove_image(spec.ref)
    passed = docker.runner.dry_run or found == spec.platform
    detail = f"data-only image (no CMD or ENTRYPOINT): pulled and inspected as {found or '?'}" + \
        ("" if passed else f", expected {spec.platform}")
    print(f"{spec.label} {'passed' if passed else 'FAILED'}: {detail}", file=out, flush=True)
    return SmokeResult(spec.image, spec.platform, spec.kind, passed, None, detail)


def smoke_argv(docker: Docker, spec: SmokeSpec, name: str) -> list[str]:
    """``docker run`` for one smoke test: detached, named (to wait, read logs and remove), always pulled, the test
    command replacing the entrypoint (so an image whose ENTRYPOINT is a server still runs the test)."""
    return docker.run_detached_argv(name, spec.platform, spec.ref, spec.command)


def _runs_nothing(config: dict[str, object]) -> bool:
    """An image config that was read and names neither CMD nor ENTRYPOINT ({} when unreadable: not known)."""
    if not config.get("os"):
        return False
    inner = config.get("config")
    settings = inner if isinstance(inner, dict) else {}
    return not settings.get("Cmd") and not settings.get("Entrypoint")


# --------------------------------------------------------------------------- the phase
def smoke_all(plan: ReleasePlan, docker: Docker, work: Iterable[ImageWork], token: str,
              out: TextIO) -> list[SmokeResult]:
    """Phase: smoke-test every platform of every image not already released (those are reported as not run
    again); any failure fails the release before anything is published."""
    work = list(work)
    results: list[SmokeResult] = []
    if any(w.released is None for w in work):
        print("== smoke tests (every platform of every image)", file=out, flush=True)
    for w in work:
        if w.released is not None:
            results.extend(SmokeResult(w.name, p, "already-released", True, None,
                                       "not run again: already released from this commit") for p in w.platforms)
            continue
        command = plan.config.images[w.name].test
        for platform, man in w.platforms.items():
            data_only = command is None and _runs_nothing(read_config(plan.registry, w.repository, man.json))
            spec = SmokeSpec(w.name, platform, f"{w.full_name}@{man.digest}", command, data_only)
            results.append(run_smoke(docker, spec, token, plan.opts.test_timeout, plan.opts.start_seconds, out))
    failed = [r for r in results if not r.passed]
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more: " + ", ".join(f"{r.image} {r.platform}" for r in failed[1:]) + ")" \
            if len(failed) > 1 else ""
        refs = ", ".join(sorted({plan.group_ref(g) for g in plan.groups}))
        raise ReleaseFailed(f"release {plan.version} failed at step smoke test: {first.image} {first.platform}: "
                            f"{first.detail}{more}; nothing was published (per-group refs {refs} were pushed)")
    return results
