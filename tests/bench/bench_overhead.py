"""Benchmark (not a test): what bakery itself costs on top of ``docker buildx bake``.

1. ``bakery build`` against ``docker buildx bake`` on the same generated file with a warm cache: after one untimed
   warm-up build, the two commands alternate (the first of each pair alternates too) and the median of the
   per-pair wall-time ratios is reported, with each side's median. Where bakery bakes in rounds (buildx >= 0.17, docs/stack.md), the same
   rounds run raw, side by side, are a third side: bakery's own cost apart from the rounds.  ``bakery build`` includes everything a user
   waits for: Python start-up, config loading, generating and checking the bake file (``bake --print``), the
   preflight (engine, buildx, builder, QEMU, registry), the bake itself and writing ``bake/results.json``.  The bake
   side gets the same arguments bakery passes (targets, ``--progress plain``, ``--metadata-file``).
2. The time to turn a synthetic config of 100 images x 4 platform groups (contexts in a temporary directory) into a
   bake document and render it as JSON and HCL (pure: ``bakery.config.model.validate``, ``bakery.build.bakefile.document``,
   ``to_json``, ``to_hcl``).

    python tests/bench/bench_overhead.py [--pairs 7] [--reps 20] [--skip-build] [--runner warm|fresh|both]

Part 1 runs twice: **warm** (the local build cache kept between runs) and **fresh runner** (before every timed
run, untimed: ``docker buildx prune -af`` and bakery's records under ``bake/`` removed, as on a new CI runner whose
only cache is the registry's).

Part 1 needs the stack (``make stack``) and uses its own registry prefix; every image tag and registry cache tag it
creates is removed at the end.
"""

from __future__ import annotations

import argparse
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
from bakery.build import bakefile, fanout  # noqa: E402
from bakery.capabilities import Capabilities  # noqa: E402
from bakery.bench.machine import untag  # noqa: E402
from bakery.config.variables import VAR_SCOPE, VAR_TAG, bake_variables  # noqa: E402
from bakery.config import load, validate  # noqa: E402
from bakery.docker import Docker  # noqa: E402
from bakery.process import Runner  # noqa: E402
from bakery.oci.reference import parse_reference  # noqa: E402
from bakery.oci.registry import Registry  # noqa: E402


def timed_together(argvs: list[list[str]], cwd: Path, env: dict[str, str]) -> float:
    """Wall time of running every argv at once (bakery's rounds run side by side)."""
    if len(argvs) == 1:
        return timed(argvs[0], cwd, env)
    started = time.monotonic()
    procs = [subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for argv in argvs]
    errors = [p.communicate()[1] for p in procs]
    elapsed = time.monotonic() - started
    for argv, p, err in zip(argvs, procs, errors):
        if p.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:4])} failed: {err[-2000:]}")
    return elapsed


def timed(argv: list[str], cwd: Path, env: dict[str, str], attempts: int = 3) -> float:
    """Wall time of one successful run. A failed run (registry 2.8 answers a push with 500 now and then) is
    said and run again, up to ``attempts`` runs; only the successful run is timed."""
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        elapsed = time.monotonic() - started
        if proc.returncode == 0:
            return elapsed
        errors = [line for line in proc.stderr.splitlines() if "ERROR" in line or "error" in line.lower()]
        print(f"  ({' '.join(argv[:4])} failed, run {attempt} of {attempts}: "
              f"{(errors or proc.stderr.splitlines() or ['no output'])[-1][:300]})", flush=True)
    raise SystemExit(f"{' '.join(argv[:4])} failed {attempts} times: {proc.stderr[-2000:]}")


def fresh_runner(root: Path) -> None:
    """What a new CI runner starts from, untimed: no local build cache (the registry's cache stays) and a fresh
    checkout (bakery's machine-local records under bake/ gone)."""
    Docker(Runner()).prune_build_cache()
    for record in (root / "bake").glob(".*.json"):
        record.unlink()


def overhead(pairs: int, fresh: bool = False) -> None:
    prefix = f"127.0.0.1:5000/t-ovh-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="bakery-overhead-") as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(REPO / "examples", root / "examples")
        (root / "bakery.yaml").write_text((REPO / "bakery.yaml").read_text().replace("127.0.0.1:5000/acme", prefix))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        config = load(root / "bakery.yaml")
        docker = Docker(Runner())
        names = bakefile.select_targets(config)
        variables = bake_variables(config, env={})
        bakery_argv = [sys.executable, "-m", "bakery", "build"]
        bake_argv = docker.bake_argv([Path("bake/docker-bake.json")], names, progress="plain",
                                     metadata_file=Path("bake/.metadata-overhead.json"))
        # where buildx shares the session of targets with one context, bakery bakes them in rounds
        # (docs/stack.md): the same bakes run raw, side by side as bakery runs them, are the third side
        infos = bakefile.target_infos(config, names)
        split = [list(j.targets) for j in fanout.jobs_for(
            fanout.by_builder(config, infos), config.builders, root, "bench",
            {i.name: config.images[i.image].context for i in infos}
            if docker.capabilities().shared_context_sessions else None)]
        rounds_argvs = [docker.bake_argv([Path("bake/docker-bake.json")], [t.name for t in chunk], progress="plain",
                                         metadata_file=Path(f"bake/.metadata-overhead-{i}.json"))
                        for i, chunk in enumerate(split)]
        sides: dict[str, list[list[str]]] = {"bakery": [bakery_argv], "bake": [bake_argv]}
        if len(rounds_argvs) > 1:
            sides["rounds"] = rounds_argvs
        times: dict[str, list[float]] = {side: [] for side in sides}
        try:
            print(f"warming the cache: bakery build of {len(names)} targets ({prefix}) ...", flush=True)
            timed(bakery_argv, root, {**env, **variables})
            for i in range(pairs):
                order = list(sides)
                order = order[i % len(order):] + order[:i % len(order)]
                for name in order:
                    if fresh:
                        fresh_runner(root)
                    times[name].append(timed_together(sides[name], root, {**env, **variables}))
            bakery_s, bake_s = times["bakery"], times["bake"]
            ratios = [a / b for a, b in zip(bakery_s, bake_s)]
            warmth = "fresh runner (registry-warm: local build cache pruned, bake/ records gone)" if fresh \
                else "warm"
            print(f"\n{warmth} build of the example ({len(names)} targets), {pairs} alternating pairs:")
            print(f"  bakery build            median {statistics.median(bakery_s):6.2f} s  "
                  f"(min {min(bakery_s):.2f}, max {max(bakery_s):.2f})")
            print(f"  docker buildx bake      median {statistics.median(bake_s):6.2f} s  "
                  f"(min {min(bake_s):.2f}, max {max(bake_s):.2f})")
            print(f"  ratio bakery/bake       median {statistics.median(ratios):6.3f}   "
                  f"(min {min(ratios):.3f}, max {max(ratios):.3f}); "
                  f"median difference {statistics.median(a - b for a, b in zip(bakery_s, bake_s)):.2f} s")
            if "rounds" in times:
                rounds_s = times["rounds"]
                own = [a / b for a, b in zip(bakery_s, rounds_s)]
                print(f"  bake in bakery's {len(rounds_argvs)} rounds median {statistics.median(rounds_s):6.2f} s  "
                      f"(min {min(rounds_s):.2f}, max {max(rounds_s):.2f}): "
                      + " | ".join(" ".join(a[a.index("plain") + 1:]) for a in rounds_argvs))
                print(f"  ratio bakery/rounds     median {statistics.median(own):6.3f}   "
                      f"(min {min(own):.3f}, max {max(own):.3f}); "
                      f"median difference {statistics.median(a - b for a, b in zip(bakery_s, rounds_s)):.2f} s")
        finally:
            cleanup(config, docker, names, variables, prefix)


def cleanup(config, docker: Docker, names: list[str], variables: dict[str, str], prefix: str) -> None:  # type: ignore[no-untyped-def]
    infos = bakefile.target_infos(config, names)
    tag = variables[VAR_TAG]
    for info in infos:
        repo = config.images[info.image].repository
        ref = f"{prefix}/{repo}:{bakefile.intermediate_tag(config, info.group, tag)}"
        subprocess.run(["docker", "image", "rm", ref], capture_output=True)
        cache = parse_reference(bakefile.cache_ref(config, config.images[info.image], info.group,
                                                   variables[VAR_SCOPE], prefix))
        untag(Registry.for_host(cache.domain), cache.path, cache.tag)


def generation(reps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bakery-gen-") as tmp:
        root = Path(tmp)
        images = {}
        for i in range(100):
            ctx = root / "services" / f"svc{i:03d}"
            ctx.mkdir(parents=True)
            (ctx / "Dockerfile").write_text("FROM scratch\n")
            images[f"svc{i:03d}"] = {"context": f"services/svc{i:03d}", "args": {"VERSION": "1.0", "NAME": f"svc{i}"},
                                     "labels": {"team": "t"}}
        data = {"registry": "127.0.0.1:5000/acme",
                "platform_groups": {"amd64": ["linux/amd64"], "arm64": ["linux/arm64"], "armv7": ["linux/arm/v7"],
                                    "ppc": ["linux/ppc64le", "linux/s390x"]},
                "cache": {"type": "registry", "scope": "main"}, "images": images}
        validate_s, doc_s, json_s, hcl_s = [], [], [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            config = validate(data, root, "bakery.yaml")
            t1 = time.perf_counter()
            doc = bakefile.document(config, Capabilities((0, 13, 1)))
            t2 = time.perf_counter()
            text_json = bakefile.to_json(doc)
            t3 = time.perf_counter()
            text_hcl = bakefile.to_hcl(doc)
            t4 = time.perf_counter()
            validate_s.append(t1 - t0)
            doc_s.append(t2 - t1)
            json_s.append(t3 - t2)
            hcl_s.append(t4 - t3)
        total = [a + b + c + d for a, b, c, d in zip(validate_s, doc_s, json_s, hcl_s)]
        ms = 1000.0
        print(f"\nbake document for 100 images x 4 groups ({len(doc['target'])} targets, JSON {len(text_json) // 1024} "
              f"KiB, HCL {len(text_hcl) // 1024} KiB), median of {reps}:")
        print(f"  validate {statistics.median(validate_s) * ms:7.1f} ms   document {statistics.median(doc_s) * ms:7.1f} ms"
              f"   to_json {statistics.median(json_s) * ms:7.1f} ms   to_hcl {statistics.median(hcl_s) * ms:7.1f} ms")
        print(f"  total    {statistics.median(total) * ms:7.1f} ms (min {min(total) * ms:.1f}, max {max(total) * ms:.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=7, help="alternating bakery/bake pairs (default 7)")
    parser.add_argument("--reps", type=int, default=20, help="repetitions of the generation timing (default 20)")
    parser.add_argument("--skip-build", action="store_true", help="only the pure generation timing")
    parser.add_argument("--runner", choices=("warm", "fresh", "both"), default="both",
                        help="warm: local build cache kept between runs; fresh: pruned before each run, as on a new "
                             "CI runner (prunes this daemon's whole build cache); default both")
    args = parser.parse_args()
    if not args.skip_build:
        for fresh in {"warm": [False], "fresh": [True], "both": [False, True]}[args.runner]:
            overhead(args.pairs, fresh)
    generation(args.reps)


if __name__ == "__main__":
    main()
