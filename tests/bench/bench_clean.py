#!/usr/bin/env python3
"""Benchmark (not a test): bakery clean vs a ``skopeo delete`` loop on a large multi-arch repository.

It starts a private Debian ``docker-registry`` (deletion enabled) on a free 127.0.0.1 port, unless
``--registry HOST`` names one, and seeds two identical repositories through the registry API:

- ``--tags`` build tags ``build-NNNN`` (default 2000), each an OCI index of two platform images (amd64, arm64),
  each with a BuildKit-style attestation entry; the images of one build have their own config (``created``
  one hour apart) and share one layer with every other build; builds ``2k`` and ``2k+1`` share their arm64
  image (an unchanged platform reused by the next build);
- every 10th build is also tagged ``release-NNNN``: a kept tag on the same digest as a removed one.

Then, in one run:

1. bakery: ``python -m bakery clean --yes --json`` with the policy ``build-.*: keep_last --keep`` on one
   repository (snapshot, plan, journal, untag/delete, validation: wall time of the whole command);
2. skopeo: ``skopeo delete --tls-verify=false docker://HOST/REPO:TAG`` for each tag of the SAME set (the tags the
   bakery plan removed) on the other repository, one after the other;
3. what it would take skopeo to reach bakery's end state: ``skopeo delete docker://HOST/REPO@DIGEST`` of the
   children the tag loop left behind, timed on a sample (``--sample``) and extrapolated;
4. correctness of both, read straight from the registry: kept tags lost, kept indexes with a missing child,
   manifests left behind untagged (children of deleted indexes that nothing references: disk space that even
   ``garbage-collect`` without ``--delete-untagged`` never frees).

With a private registry the second repository is a copy of the first one's directory in the registry's
storage (a repository holds only links), so both start byte-identical and seeding takes half the time.

Usage: ``python tests/bench/bench_clean.py [--tags 2000] [--keep 500] [--workers 8] [--json FILE]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(REPO_ROOT))   # run as a script: make `tests` importable

from tests.conftest import docker_config_dir  # noqa: E402  (importing it applies BAKERY_STACK)
from tests.integration.seed import ACCEPT, MultiArch, Seeder, private_registry  # noqa: E402

from bakery.oci.registry import Registry  # noqa: E402


def seed_repo(registry: Registry, repo: str, tags: int, workers: int) -> dict[str, Any]:
    """Push the repository shape described in the module docstring; returns what was pushed (by tag)."""
    seeder = Seeder(registry, repo)
    base = time.time() - tags * 3600

    def created(i: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i * 3600))

    def pair(k: int) -> list[MultiArch]:
        first = seeder.multiarch(None, created=created(2 * k), nonce=f"{repo}-{2 * k}", unique_blobs=False)
        out = [first]
        if 2 * k + 1 < tags:
            out.append(seeder.multiarch(None, created=created(2 * k + 1), nonce=f"{repo}-{2 * k + 1}",
                                        shared={"arm64": first.images[1]}, unique_blobs=False))
        return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        builds = [b for chunk in pool.map(pair, range((tags + 1) // 2)) for b in chunk]

        def tag(i: int) -> None:
            seeder.tag(f"build-{i:04d}", builds[i].index)
            if i % 10 == 0:
                seeder.tag(f"release-{i:04d}", builds[i].index)

        list(pool.map(tag, range(tags)))
    return {f"build-{i:04d}": b for i, b in enumerate(builds)}


def project(root: Path, host: str, repo: str, keep: int) -> Path:
    (root / "ctx").mkdir(parents=True, exist_ok=True)
    (root / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    prefix, name = repo.rsplit("/", 1)
    doc = {"registry": f"{host}/{prefix}", "platform_groups": {"amd64": ["linux/amd64"], "arm": ["linux/arm64"]},
           "images": {name: {"context": "ctx"}},
           "retention": {"rules": [{"match": "build-.*", "keep_last": keep}]}}
    (root / "bakery.yaml").write_text(json.dumps(doc, indent=2))
    return root


def head(host: str, repo: str, ref: str, session: requests.Session) -> str | None:
    resp = session.head(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=30)
    return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None


def tag_list(host: str, repo: str) -> list[str]:
    resp = requests.get(f"http://{host}/v2/{repo}/tags/list", timeout=60)
    return sorted(resp.json().get("tags") or []) if resp.status_code == 200 else []


def audit(host: str, repo: str, builds: dict[str, MultiArch], removed: set[str], workers: int) -> dict[str, int]:
    """Straight from the registry: what a correct cleanup keeps, breaks and leaves behind."""
    tags = set(tag_list(host, repo))
    expected_kept = {t for t in builds if t not in removed} | \
        {f"release-{int(t[6:]):04d}" for t in builds if int(t[6:]) % 10 == 0}
    kept_indexes = {b.index.digest for t, b in builds.items() if t not in removed or int(t[6:]) % 10 == 0}
    needed = {c.digest for t, b in builds.items() if b.index.digest in kept_indexes for c in b.children}
    leftovers = {c.digest for b in builds.values() if b.index.digest not in kept_indexes for c in b.children} - needed
    session = requests.Session()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        missing_children = sum(1 for d in pool.map(lambda d: head(host, repo, d, session), sorted(needed))
                               if d is None)
        left_behind = sum(1 for d in pool.map(lambda d: head(host, repo, d, session), sorted(leftovers))
                          if d is not None)
    return {"tags_left": len(tags), "kept_tags_lost": len(expected_kept - tags),
            "missing_children_of_kept_indexes": missing_children, "untagged_manifests_left_behind": left_behind}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tags", type=int, default=2000, help="build tags to seed (default 2000)")
    ap.add_argument("--keep", type=int, default=500, help="keep_last for build-.* (default 500)")
    ap.add_argument("--workers", type=int, default=8, help="concurrency for seeding and for bakery (default 8)")
    ap.add_argument("--registry", help="an existing registry HOST (deletion enabled) instead of a private one")
    ap.add_argument("--sample", type=int, default=200,
                    help="skopeo child deletes to time for the same-end-state estimate (default 200)")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = ap.parse_args()
    if args.tags < 2 or not 0 <= args.keep < args.tags:
        ap.error("need --tags >= 2 and 0 <= --keep < --tags")
    command = " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    started = time.monotonic()
    figures: dict[str, Any] = {"command": f"python {command}", "tags": args.tags, "keep": args.keep,
                               "workers": args.workers}
    ctx = nullcontext(None) if args.registry else private_registry()
    with ctx as private, tempfile.TemporaryDirectory(prefix="bench-clean-") as tmp:
        host = args.registry or private.host
        run_id = f"bench{int(time.time())}"
        repos = {"bakery": f"{run_id}/bakery", "skopeo": f"{run_id}/skopeo"}
        registry = Registry.for_host(host)
        print(f"registry {host}; seeding {args.tags} multi-arch build tags (+{(args.tags + 9) // 10} release tags) "
              f"into {repos['bakery']} and {repos['skopeo']} ...", flush=True)
        t = time.monotonic()
        if private is not None:
            # one repository through the API; the other is a byte-identical copy of its directory (a repository
            # holds only links; the blobs are shared), so both start equal
            seeded = seed_repo(registry, repos["bakery"], args.tags, args.workers)
            storage = private.root / "data/docker/registry/v2/repositories"
            shutil.copytree(storage / repos["bakery"], storage / repos["skopeo"])
            builds = {"bakery": seeded, "skopeo": seeded}
        else:
            with ThreadPoolExecutor(max_workers=2) as pool:
                futures = {name: pool.submit(seed_repo, registry, repo, args.tags, args.workers)
                           for name, repo in repos.items()}
                builds = {name: fut.result() for name, fut in futures.items()}
        figures["seed_seconds"] = round(time.monotonic() - t, 1)
        manifests = args.tags * 5 - args.tags // 2
        print(f"  seeded in {figures['seed_seconds']}s ({manifests} manifests per repository)", flush=True)

        # 1. bakery
        root = project(Path(tmp) / "project", host, repos["bakery"], args.keep)
        env = {**os.environ, "DOCKER_CONFIG": str(docker_config_dir(Path(tmp) / "docker")), "BAKERY_REGISTRY": ""}
        env.pop("BAKERY_REGISTRY")
        t = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "bakery", "clean", "--yes", "--json",
                               "--workers", str(args.workers)], cwd=root, capture_output=True, text=True, env=env)
        bakery_wall = time.monotonic() - t
        if proc.returncode != 0:
            print(proc.stdout[-2000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        report = json.loads(proc.stdout)["repositories"][0]
        plan, result = report["plan"], report["result"]
        removed = {a["tag"] for a in plan["remove_tags"]}
        retagged = sum(1 for a in plan["remove_tags"] if a["method"] == "retag-then-delete")
        figures["bakery"] = {"wall_seconds": round(bakery_wall, 1), "plan_seconds": report["plan_seconds"],
                             "execute_and_validate_seconds": result["seconds"], "tags_removed": len(removed),
                             "tags_untagged_only": retagged, "manifests_deleted": len(plan["delete_digests"]),
                             "ok": result["ok"]}
        print(f"bakery: {bakery_wall:.1f}s wall (snapshot+plan {report['plan_seconds']:.1f}s, execute+validate "
              f"{result['seconds']:.1f}s): removed {len(removed)} tags ({retagged} untag-only), deleted "
              f"{len(plan['delete_digests'])} manifests", flush=True)

        # 2. skopeo over the same tags
        tags = sorted(removed)
        t = time.monotonic()
        failures = 0
        for tag in tags:
            res = subprocess.run(["skopeo", "delete", "--tls-verify=false", f"docker://{host}/{repos['skopeo']}:{tag}"],
                                 capture_output=True, text=True)
            failures += res.returncode != 0
        skopeo_wall = time.monotonic() - t
        figures["skopeo"] = {"wall_seconds": round(skopeo_wall, 1), "deletes": len(tags), "failures": failures}
        print(f"skopeo: {skopeo_wall:.1f}s wall for {len(tags)} `skopeo delete` calls ({failures} failed)", flush=True)

        # what it would take skopeo to reach bakery's end state: also delete, by digest, the children the tag
        # deletes left behind. Measured on a sample, extrapolated to all of them.
        kept_indexes = {b.index.digest for t, b in builds["skopeo"].items() if t not in removed or int(t[6:]) % 10 == 0}
        needed = {c.digest for b in builds["skopeo"].values() if b.index.digest in kept_indexes for c in b.children}
        orphans = sorted({c.digest for b in builds["skopeo"].values() if b.index.digest not in kept_indexes
                          for c in b.children} - needed)
        sample = orphans[:: max(1, len(orphans) // args.sample)][: args.sample]
        t = time.monotonic()
        for digest in sample:
            subprocess.run(["skopeo", "delete", "--tls-verify=false", f"docker://{host}/{repos['skopeo']}@{digest}"],
                           capture_output=True, text=True)
        per_call = (time.monotonic() - t) / max(1, len(sample))
        figures["skopeo"]["children_sample"] = len(sample)
        figures["skopeo"]["children_seconds_per_call"] = round(per_call, 3)
        figures["skopeo"]["children_left"] = len(orphans)
        figures["skopeo"]["same_end_state_seconds_estimate"] = round(skopeo_wall + per_call * len(orphans), 1)
        print(f"skopeo: {per_call * 1000:.0f} ms per child delete (sample of {len(sample)}): reaching bakery's end "
              f"state (all {len(orphans)} children deleted too) would take ~{figures['skopeo']['same_end_state_seconds_estimate']}s",
              flush=True)

        # 3. correctness (the skopeo repository as the tag loop left it, plus the sampled child deletes)
        for name in ("bakery", "skopeo"):
            figures[name].update(audit(host, repos[name], builds[name], removed, args.workers))
        figures["skopeo"]["untagged_manifests_left_behind"] += len(sample)
    figures["total_seconds"] = round(time.monotonic() - started, 1)

    rows = [("", "bakery clean", "skopeo delete loop"),
            ("wall time (s)", figures["bakery"]["wall_seconds"], figures["skopeo"]["wall_seconds"]),
            ("tags left", figures["bakery"]["tags_left"], figures["skopeo"]["tags_left"]),
            ("kept tags lost", figures["bakery"]["kept_tags_lost"], figures["skopeo"]["kept_tags_lost"]),
            ("children missing from kept indexes", figures["bakery"]["missing_children_of_kept_indexes"],
             figures["skopeo"]["missing_children_of_kept_indexes"]),
            ("untagged manifests left behind", figures["bakery"]["untagged_manifests_left_behind"],
             figures["skopeo"]["untagged_manifests_left_behind"]),
            ("manifests deleted", figures["bakery"]["manifests_deleted"], len(tags)),
            ("time to bakery's end state (s)", figures["bakery"]["wall_seconds"],
             f"~{figures['skopeo']['same_end_state_seconds_estimate']} (est.)")]
    print()
    print(f"{args.tags} build tags + {(args.tags + 9) // 10} release tags, keep_last {args.keep}: "
          f"{len(removed)} tags removed")
    for label, a, b in rows:
        print(f"  {label:<36} {a!s:>14} {b!s:>20}")
    figures["load_average"] = os.getloadavg()
    print(f"\ncommand: {figures['command']}  (total {figures['total_seconds']}s, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.1f}' for x in figures['load_average'])})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
