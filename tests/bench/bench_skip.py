"""Benchmark (not a test): what skipping unchanged targets saves, in one run on one machine.

1. No-op: ``bakery build --push`` of the example when nothing changed (every target skipped: lookups, manifest
   copies, stitching) against ``docker buildx bake --push`` of the same generated file, both warm (local and
   registry cache, layers already in the registry).
2. Monorepo: a generated 20-image repository (busybox + one copied file each, platform group amd64); each round
   changes one image's file, then ``bakery build --push`` (builds that one target, skips 19) is timed against
   ``docker buildx bake --push`` of all 20 targets (raw bake cannot know which changed; its local cache is warm).

The two sides alternate (the first of each pair alternates too); each ratio is the median of the per-pair ratios.
The bake side gets the arguments bakery passes (files, targets, ``--progress plain``, ``--metadata-file``).

    python tests/bench/bench_skip.py [--pairs 5] [--images 20] [--runner warm|fresh|both]

Each part runs twice: **warm** (the local build cache kept, as on a long-lived build machine) and **fresh runner**
(before every timed run, untimed: ``docker buildx prune -af`` and bakery's records under ``bake/`` removed, as on a
new CI runner, whose only cache is the registry's).

Needs the stack (``make stack``); ``BAKERY_STACK=current`` selects the current one. Everything runs under a
registry prefix of its own, whose tags are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.bench.bench_overhead import fresh_runner, timed  # noqa: E402  (also selects the stack: BAKERY_STACK)
from bakery.bench.machine import untag  # noqa: E402
from bakery.build import bakefile  # noqa: E402
from bakery.config import load  # noqa: E402
from bakery.config.variables import bake_variables  # noqa: E402
from bakery.docker import Docker  # noqa: E402
from bakery.oci.registry import Registry  # noqa: E402
from bakery.process import Runner  # noqa: E402


def pairs_of(root: Path, pairs: int, tag: str, before: object = None,
             fresh: bool = False) -> tuple[list[float], list[float]]:
    """Alternate ``bakery build --push`` and the raw bake of the same file; ``before(i, side)`` runs untimed first,
    with ``fresh`` so does :func:`fresh_runner`."""
    config = load(root / "bakery.yaml")
    names = bakefile.select_targets(config)
    variables = bake_variables(config, tag, env={})
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bakery_argv = [sys.executable, "-m", "bakery", "build", "--push", "--tag", tag]
    bake_argv = Docker(Runner()).bake_argv([Path("bake/docker-bake.json")], names, push=True, progress="plain",
                                           metadata_file=Path("bake/.metadata-bench.json"))
    timed(bakery_argv, root, env)       # warm-up: builds, pushes and records everything once
    timed(bake_argv, root, {**env, **variables})
    ours: list[float] = []
    raw: list[float] = []
    for i in range(pairs):
        order = [("bakery", bakery_argv, env), ("bake", bake_argv, {**env, **variables})]
        if i % 2:
            order.reverse()
        for side, argv, side_env in order:
            if callable(before):
                before(i, side)
            if fresh:
                fresh_runner(root)
            (ours if side == "bakery" else raw).append(timed(argv, root, side_env))
    return ours, raw


def show(title: str, ours: list[float], raw: list[float], goal: float) -> None:
    ratios = [a / b for a, b in zip(ours, raw)]
    print(f"\n{title}, {len(ours)} alternating pairs:")
    print(f"  bakery build --push     median {statistics.median(ours):6.2f} s  "
          f"(min {min(ours):.2f}, max {max(ours):.2f})")
    print(f"  docker buildx bake      median {statistics.median(raw):6.2f} s  (min {min(raw):.2f}, max {max(raw):.2f})")
    print(f"  ratio bakery/bake       median {statistics.median(ratios):6.3f}   (min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}; goal <= {goal})", flush=True)


WARMTH = {False: "warm", True: "fresh runner (registry-warm: local build cache pruned, bake/ records gone)"}


def example(tmp: Path, prefix: str, pairs: int, fresh: bool) -> None:
    root = tmp / f"example-{'fresh' if fresh else 'warm'}"
    shutil.copytree(REPO / "examples", root / "examples")
    (root / "bakery.yaml").write_text((REPO / "bakery.yaml").read_text().replace("127.0.0.1:5000/acme", prefix))
    ours, raw = pairs_of(root, pairs, "noop", fresh=fresh)
    show(f"no-op build of the example (5 targets, 3 platforms), {WARMTH[fresh]}", ours, raw, 0.1)


def monorepo(tmp: Path, prefix: str, pairs: int, count: int, fresh: bool) -> None:
    root = tmp / f"mono-{'fresh' if fresh else 'warm'}"
    images = {}
    for i in range(count):
        ctx = root / "services" / f"svc{i:02d}"
        ctx.mkdir(parents=True)
        (ctx / "Dockerfile").write_text("FROM 127.0.0.1:5000/base/busybox:1.35\nCOPY file /file\n")
        (ctx / "file").write_text("0\n")
        images[f"svc{i:02d}"] = {"context": f"services/svc{i:02d}"}
    (root / "bakery.yaml").write_text(json.dumps({"registry": f"{prefix}/mono",
                                                  "platform_groups": {"amd64": ["linux/amd64"]}, "images": images}))
    changes = iter(range(1, 10_000))

    def change(i: int, side: str) -> None:       # content no earlier run pushed (the other mode's neither)
        (root / "services" / f"svc{i % count:02d}" / "file").write_text(f"{root.name} {next(changes)}\n")

    ours, raw = pairs_of(root, pairs, "mono", change, fresh)
    show(f"{count}-image repository, one image changed per build, {WARMTH[fresh]}", ours, raw, 0.2)


def cleanup(prefix: str, count: int) -> None:
    host, _, path = prefix.partition("/")
    client = Registry.for_host(host)
    repos = [f"{path}/{name}" for name in ("api", "worker", "static")]
    repos += [f"{path}/mono/svc{i:02d}" for i in range(count)]
    for repo in repos:
        for tag in client.tags(repo):
            untag(client, repo, tag)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5, help="alternating bakery/bake pairs per part (default 5)")
    parser.add_argument("--images", type=int, default=20, help="images of the generated repository (default 20)")
    parser.add_argument("--runner", choices=("warm", "fresh", "both"), default="both",
                        help="warm: local build cache kept between runs; fresh: pruned before each run, as on a new "
                             "CI runner (prunes this daemon's whole build cache); default both")
    args = parser.parse_args()
    modes = {"warm": [False], "fresh": [True], "both": [False, True]}[args.runner]
    prefix = f"127.0.0.1:5000/t-skipbench-{uuid.uuid4().hex[:8]}"
    versions = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True).stdout.strip()
    print(f"bench_skip: {versions}; registry prefix {prefix}", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="bakery-skip-") as tmp:
            for fresh in modes:
                example(Path(tmp), prefix, args.pairs, fresh)
                monorepo(Path(tmp), prefix, args.pairs, args.images, fresh)
    finally:
        cleanup(prefix, args.images)


if __name__ == "__main__":
    main()
