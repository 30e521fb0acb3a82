"""Benchmark (not a test): the example's release on one engine vs fanned out over two engines.

    python tests/bench/bench_fanout.py [--rounds N] [--what release|build]

Needs the stack (`make stack`); starts and stops the second engine itself. A run is `bakery release --version
1.0.N` of a git-committed copy of the example (build every group, push the per-group refs, smoke-test every
platform, publish the tag set); `--what build` times `bakery build --push` instead. Each run is cold for its
scenario: both engines' build caches are pruned and a fresh cache scope is used, so neither run reads the
registry cache of another. Scenarios alternate across rounds; the printed ratio is median(one engine) /
median(two engines) measured in this one run. On a 2-core machine both engines compete for the same cores: the
gain is bounded.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import tests.conftest  # noqa: E402,F401  (BAKERY_STACK=current selects that stack: docs/stack.md)

FLEET = "\nbuilders:\n  second: {driver: docker, context: bakery-e2}\n"
GIT_ENV = {"GIT_AUTHOR_NAME": "bakery bench", "GIT_AUTHOR_EMAIL": "bench@bakery.invalid",
           "GIT_COMMITTER_NAME": "bakery bench", "GIT_COMMITTER_EMAIL": "bench@bakery.invalid",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
VERSIONS = itertools.count(1)


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=900)


def project(root: Path, prefix: str, fanned: bool) -> Path:
    shutil.copytree(REPO / "examples", root / "examples")
    text = (REPO / "bakery.yaml").read_text().replace("127.0.0.1:5000/acme", prefix)
    if fanned:
        text = text.replace("  arm: [linux/arm64, linux/arm/v7]",
                            "  arm: {platforms: [linux/arm64, linux/arm/v7], builder: second}") + FLEET
    (root / "bakery.yaml").write_text(text)
    (root / ".gitignore").write_text("bake/\n")
    for argv in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *argv], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    return root


def command(what: str, scope: str) -> list[str]:
    if what == "release":
        return ["release", "--version", f"1.0.{next(VERSIONS)}", "--cache-scope", scope]
    return ["build", "--push", "--tag", scope, "--cache-scope", scope]


def run_once(root: Path, what: str, attempts: int = 2) -> float:
    """One cold run; a run that fails (e.g. a transient registry 500) is redone once, and said so."""
    for attempt in range(attempts):
        for ctx in (None, "bakery-e2"):   # the selected stack's engine (its current context) and its second one
            sh("docker", *(["--context", ctx] if ctx else []), "buildx", "prune", "-af")
        scope = f"bench-{uuid.uuid4().hex[:8]}"
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "bakery", *command(what, scope)], cwd=root,
                              capture_output=True, text=True, timeout=1800)
        elapsed = time.monotonic() - start
        if proc.returncode == 0:
            return elapsed
        print(f"  run failed ({proc.stderr.strip().splitlines()[-1][:200]}); "
              f"{'retrying' if attempt + 1 < attempts else 'giving up'}", flush=True)
    raise SystemExit("benchmark run failed twice")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--what", choices=["release", "build"], default="release")
    args = ap.parse_args()
    sh("bash", str(REPO / ".ci" / "stack.sh"), "engine2-start")
    times: dict[str, list[float]] = {"one engine": [], "two engines": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            prefix = f"127.0.0.1:5000/bench-{uuid.uuid4().hex[:8]}"
            roots = {"one engine": project(Path(tmp) / "one", prefix, False),
                     "two engines": project(Path(tmp) / "two", prefix, True)}
            for r in range(args.rounds):
                order = list(roots) if r % 2 == 0 else list(reversed(roots))   # alternate which goes first
                for name in order:
                    times[name].append(run_once(roots[name], args.what))
                    print(f"round {r + 1}: {name:<12} {times[name][-1]:7.1f} s", flush=True)
    finally:
        sh("bash", str(REPO / ".ci" / "stack.sh"), "engine2-stop")
    one, two = (statistics.median(times[k]) for k in ("one engine", "two engines"))
    what = "release (build, smoke tests on 3 platforms, publish)" if args.what == "release" else "build+push"
    print(f"\ncold {what} of the example (3 images, 5 targets, 3 platforms), {args.rounds} rounds, "
          f"{os.cpu_count()} cores:")
    print(f"  one engine  : median {one:6.1f} s  runs {', '.join(f'{t:.1f}' for t in times['one engine'])}")
    print(f"  two engines : median {two:6.1f} s  runs {', '.join(f'{t:.1f}' for t in times['two engines'])}")
    print(f"  ratio one/two: {one / two:.2f}x")


if __name__ == "__main__":
    main()
