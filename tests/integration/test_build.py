"""`bakery build` on the real stack: three platforms, one index per image, registry cache, failures, Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bakery.docker import Docker
from bakery.process import Runner
from tests.conftest import docker, index_platforms, registry_manifest

pytestmark = pytest.mark.stack

EXPECTED = {"api": ["linux/amd64", "linux/arm64", "linux/arm/v7"],
            "worker": ["linux/amd64", "linux/arm64", "linux/arm/v7"],
            "static": ["linux/amd64"]}
UNAME = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm/v7": "armv7l"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, stack: str):
    """The example, built cold for all platforms and pushed once for the whole module."""
    import uuid
    prefix = f"{stack}/t-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("build") / "project"
    repo = Path(__file__).resolve().parents[2]
    shutil.copytree(repo / "examples", root / "examples")
    (root / "bakery.yaml").write_text((repo / "bakery.yaml").read_text().replace("127.0.0.1:5000/acme", prefix))
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", "v1"], cwd=root,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return root, prefix, proc


def test_each_image_is_one_index_holding_exactly_its_platforms(built) -> None:
    _, prefix, _ = built
    for image, platforms in EXPECTED.items():
        index, _ = registry_manifest(f"{prefix}/{image}", "v1")
        assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
        assert sorted(index_platforms(index)) == sorted(platforms)


def test_attestations_are_carried_with_their_subjects(built) -> None:
    _, prefix, _ = built
    index, _ = registry_manifest(f"{prefix}/api", "v1")
    digests = {m["digest"] for m in index["manifests"]}
    subjects = [m["annotations"]["vnd.docker.reference.digest"] for m in index["manifests"]
                if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"]
    assert len(subjects) == 3 and set(subjects) <= digests


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64", "linux/arm/v7"])
def test_the_emulated_run_step_really_ran_on_each_architecture(built, platform: str) -> None:
    _, prefix, _ = built
    out = docker("run", "--rm", "--pull", "always", "--platform", platform, "--entrypoint", "cat",
                 f"{prefix}/api:v1", "/etc/build-arch").stdout.strip()
    assert out == UNAME[platform]


def test_build_args_reach_the_image_literally(built) -> None:
    _, prefix, _ = built
    out = docker("run", "--rm", "--pull", "always", "--platform", "linux/arm64", f"{prefix}/worker:v1").stdout
    assert out.strip() == 'hi ${USER}, 100% "quoted" from aarch64 (built on aarch64)'


def test_results_file_records_every_target_digest_and_the_indexes(built) -> None:
    root, prefix, _ = built
    results = json.loads((root / "bake" / "results.json").read_text())
    assert set(results["targets"]) == {"api-amd64", "api-arm", "worker-amd64", "worker-arm", "static-amd64"}
    for name, target in results["targets"].items():
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", target["digest"]), name
        _, digest = registry_manifest(f"{prefix}/{target['image']}", f"v1-{target['group']}")
        assert digest == target["digest"]
    for image in EXPECTED:
        _, digest = registry_manifest(f"{prefix}/{image}", "v1")
        assert results["images"][image]["digest"] == digest


def rebuild_after_prune(root: Path, tag: str) -> set[str]:
    """Empty the build cache, rebuild and push; the RUN steps that were not CACHED (from the registry cache)."""
    docker("buildx", "prune", "-af")
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", tag, "--no-skip"], cwd=root,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    # several bakes (rounds, or one per target) label their lines "[default 1/2] "; key by both
    run_steps = {(m.group(1) or "", m.group(2)): m.group(3)
                 for m in re.finditer(r"^(?:\[([^\]]+)\] )?#(\d+) \[([^\]]+)\] RUN ", proc.stderr, re.M)}
    assert len(run_steps) >= 8    # go build x3, uname x3, worker's RUNs x6 (some shared)
    cached = set(re.findall(r"^(?:\[([^\]]+)\] )?#(\d+) CACHED$", proc.stderr, re.M))
    return {run_steps[n] for n in set(run_steps) - cached}


def test_rebuild_after_pruning_the_local_cache_hits_the_registry_cache(built) -> None:
    root, prefix, _ = built
    cfg = root / "bakery.yaml"
    before = cfg.read_text()
    if Docker(Runner()).capabilities().shared_context_sessions:
        # the current stack's BuildKit misses cached steps now and then when solves run side by side in one bake,
        # also without a shared session (docs/stack.md); one target per bake, one bake at a time, is whole
        cfg.write_text(before + "builders:\n  default: {driver: docker, max_parallel: 1}\n")
    try:
        missed = rebuild_after_prune(root, "v2")
    finally:
        cfg.write_text(before)
    assert missed == set()
    index, _ = registry_manifest(f"{prefix}/api", "v2")
    assert sorted(index_platforms(index)) == sorted(EXPECTED["api"])


def test_the_rounds_of_one_builder_run_side_by_side(built) -> None:
    root, _, _ = built
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--no-skip"], cwd=root, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    labels = [m.group(1) for m in re.finditer(r"^\[default (\d)/2\] ", proc.stderr, re.M)]
    if not Docker(Runner()).capabilities().shared_context_sessions:      # buildx < 0.17: one bake, no rounds
        assert labels == []
        return
    # both bakes started before either ended: round 2's lines come before round 1's last one
    assert labels.index("2") < len(labels) - 1 - labels[::-1].index("1"), proc.stderr[-4000:]


def test_dry_run_prints_the_exact_commands_and_changes_nothing(built) -> None:
    root, prefix, _ = built
    results = root / "bake" / "results.json"
    before = results.read_text() if results.exists() else None      # whatever an earlier test's run left
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", "dry", "--dry-run",
                           "--group", "arm", "--no-skip"], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (f"+ BAKERY_CACHE_SCOPE=main BAKERY_REGISTRY={prefix} BAKERY_TAG=dry docker buildx bake "
            "-f bake/docker-bake.json --push --metadata-file") in proc.stderr
    assert proc.stderr.rstrip().endswith("api-arm worker-arm") or "api-arm worker-arm" in proc.stderr
    assert f"would stitch {prefix}/api:dry <- {prefix}/api:dry-amd64 {prefix}/api:dry-arm" in proc.stdout
    assert (results.read_text() if results.exists() else None) == before
    resp = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                           f"http://{prefix.split('/')[0]}/v2/{prefix.split('/', 1)[1]}/api/manifests/dry-arm"],
                          capture_output=True, text=True)
    assert resp.stdout == "404"


def test_a_group_pushed_alone_is_stitched_once_all_groups_exist(built) -> None:
    root, prefix, _ = built
    first = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", "fan", "--group", "arm",
                            "--image", "worker"], cwd=root, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "worker: not stitched yet: fan-amd64 missing" in first.stderr
    second = subprocess.run([sys.executable, "-m", "bakery", "build", "--push", "--tag", "fan", "--group", "amd64",
                             "--image", "worker"], cwd=root, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    index, _ = registry_manifest(f"{prefix}/worker", "fan")
    assert sorted(index_platforms(index)) == sorted(EXPECTED["worker"])


FAILING_DOCKERFILE = """\
FROM 127.0.0.1:5000/base/busybox:1.35
RUN if [ "$(uname -m)" = armv7l ]; then echo "no armv7 support" >&2; exit 3; fi
"""


@pytest.fixture
def failing_project(example_project: Path) -> Path:
    (example_project / "examples" / "services" / "worker" / "Dockerfile").write_text(FAILING_DOCKERFILE)
    text = (example_project / "bakery.yaml").read_text().replace("    target: runtime\n", "")
    (example_project / "bakery.yaml").write_text(text)
    return example_project


def test_a_failing_platform_names_target_platform_and_step(failing_project: Path, bakery_cli) -> None:
    proc = bakery_cli(failing_project, "build", "--image", "worker", "--group", "arm", "--push", "--tag", "bad",
                      check=False)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("bakery: build failed: target worker-arm, platform linux/arm/v7, step `RUN if [")
    assert "exit code: 3" in last
    assert "Traceback" not in proc.stderr
    assert not (failing_project / "bake" / "results.json").exists()
    assert not list((failing_project / "bake").glob(".metadata-*"))


def test_a_failed_build_leaves_no_results_of_an_earlier_run(failing_project: Path, bakery_cli) -> None:
    bakery_cli(failing_project, "build", "--image", "static")
    assert (failing_project / "bake" / "results.json").exists()
    proc = bakery_cli(failing_project, "build", "--image", "worker", "--group", "arm", check=False)
    assert proc.returncode != 0
    assert not (failing_project / "bake" / "results.json").exists()     # never the last run's, read as this one's


def sleeping_build(project: Path, *args: str) -> subprocess.Popen[str]:
    """`bakery build` of a worker whose only RUN step sleeps a minute (a new nonce: never cached), returned once
    bake has started that step."""
    (project / "examples" / "services" / "worker" / "Dockerfile").write_text(
        "FROM 127.0.0.1:5000/base/busybox:1.35\nARG NONCE\nRUN echo $NONCE && sleep 60\n")
    text = (project / "bakery.yaml").read_text().replace(
        'args: {GREETING', f'args: {{NONCE: "{time.time()}", GREETING')
    (project / "bakery.yaml").write_text(text)
    # a terminal's foreground job has SIGINT's default action, even when these tests run in a background job
    # (where the shell starts everything with SIGINT ignored, and Python keeps it ignored)
    proc = subprocess.Popen([sys.executable, "-m", "bakery", "build", "--image", "worker", *args],
                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    assert proc.stderr is not None
    while time.time() < deadline and "sleep 60" not in proc.stderr.readline():
        pass
    return proc


def assert_nothing_left(project: Path, proc: subprocess.Popen[str]) -> None:
    assert not list((project / "bake").glob(".metadata-*"))
    assert not list((project / "bake").glob(".overlay-*"))
    assert not (project / "bake" / "results.json").exists()
    # bake's command line carries bakery's pid in its --metadata-file name: none of this run's bakes is left
    assert subprocess.run(["pgrep", "-f", f"buildx bake .*metadata-{proc.pid}-"], capture_output=True).returncode == 1


def test_ctrl_c_stops_buildx_and_leaves_no_partial_files(failing_project: Path) -> None:
    proc = sleeping_build(failing_project, "--group", "amd64")
    os.killpg(proc.pid, signal.SIGINT)    # what a terminal's Ctrl-C does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted" in err
    assert_nothing_left(failing_project, proc)


def test_load_puts_each_groups_multi_platform_image_in_the_local_store(built) -> None:
    root, prefix, _ = built
    proc = subprocess.run([sys.executable, "-m", "bakery", "build", "--load", "--tag", "loaded", "--image", "worker",
                           "--group", "arm"], cwd=root, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for platform, arch in (("linux/arm64", "aarch64"), ("linux/arm/v7", "armv7l")):
        out = docker("run", "--rm", "--pull", "never", "--platform", platform, f"{prefix}/worker:loaded-arm").stdout
        assert out.strip().endswith(f"from {arch} (built on {arch})")
    docker("rmi", f"{prefix}/worker:loaded-arm", check=False)


def test_sigterm_stops_buildx_like_ctrl_c_and_exits_143(failing_project: Path) -> None:
    proc = sleeping_build(failing_project)
    proc.send_signal(signal.SIGTERM)       # what a CI runner's cancel does: bakery alone gets it, not its children
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == "bakery: terminated (SIGTERM); no results written"
    assert_nothing_left(failing_project, proc)
