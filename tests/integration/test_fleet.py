"""Platform groups on two Docker engines of this machine, fanned out and merged into one index per image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, docker, index_platforms, registry_manifest

pytestmark = pytest.mark.stack
CONTEXT = "bakery-e2"
FLEET = """
builders:
  second: {driver: docker, context: bakery-e2}
"""



@pytest.fixture(scope="module")
def engine2(stack: str):
    stack_sh("engine2-start")
    yield CONTEXT
    stack_sh("engine2-stop")


def stack_sh(*args: str) -> None:
    proc = subprocess.run(["bash", str(REPO / ".ci" / "stack.sh"), *args], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def fleet_project(example_project: Path, engine2: str) -> Path:
    """The example with the arm group on the second engine and a nonce that makes every RUN step new."""
    cfg = example_project / "bakery.yaml"
    nonce = uuid.uuid4().hex[:12]
    text = cfg.read_text().replace("  arm: [linux/arm64, linux/arm/v7]",
                                   "  arm: {platforms: [linux/arm64, linux/arm/v7], builder: second}")
    text = text.replace('args: {GREETING: "hi ${USER}, 100% \\"quoted\\""}', f'args: {{GREETING: "{nonce}"}}')
    assert nonce in text
    cfg.write_text(text + FLEET)
    return example_project


def images_on(context: str | None, prefix: str) -> set[str]:
    args = (["--context", context] if context else []) + ["images", "--format", "{{.Repository}}:{{.Tag}}"]
    return {ln for ln in docker(*args).stdout.splitlines() if ln.startswith(prefix)}


def test_each_group_builds_on_its_engine_and_the_index_holds_all_platforms(fleet_project: Path, prefix: str,
                                                                         bakery_cli) -> None:
    proc = bakery_cli(fleet_project, "build", "--push", "--tag", "v1", "--image", "worker")
    assert "[second] " in proc.stderr and "[default] " in proc.stderr   # two bakes ran side by side
    index, _ = registry_manifest(f"{prefix}/worker", "v1")
    assert sorted(index_platforms(index)) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    # each engine's own image store holds exactly the group it built
    assert images_on(CONTEXT, prefix) == {f"{prefix}/worker:v1-arm"}
    assert f"{prefix}/worker:v1-arm" not in images_on(None, prefix)
    assert f"{prefix}/worker:v1-amd64" in images_on(None, prefix)
    results = json.loads((fleet_project / "bake" / "results.json").read_text())
    assert results["targets"]["worker-arm"]["builder"] == "second"
    assert results["targets"]["worker-amd64"]["builder"] == "default"


def test_docker_host_and_buildx_builder_in_the_environment_move_no_group(fleet_project: Path, prefix: str,
                                                                        bakery_cli) -> None:
    # the caller's environment names the first engine and the second engine's builder: neither may win over
    # bakery.yaml, which puts arm on the second engine and amd64 on the current context's own builder
    host = docker("context", "inspect", "--format", "{{.Endpoints.docker.Host}}").stdout.strip()
    bakery_cli(fleet_project, "build", "--push", "--tag", "env1", "--image", "worker",
               env={"DOCKER_HOST": host, "BUILDX_BUILDER": CONTEXT})
    assert images_on(CONTEXT, prefix) == {f"{prefix}/worker:env1-arm"}
    assert f"{prefix}/worker:env1-amd64" in images_on(None, prefix)
    index, _ = registry_manifest(f"{prefix}/worker", "env1")
    assert sorted(index_platforms(index)) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]


def test_doctor_checks_every_builder_and_maps_groups(fleet_project: Path, bakery_cli) -> None:
    proc = bakery_cli(fleet_project, "doctor", "--json")
    checks = {c["name"]: c for c in json.loads(proc.stdout)}
    assert checks["builder second"]["ok"] and "context bakery-e2" in checks["builder second"]["detail"]
    assert checks["group arm"]["detail"].endswith(" on second")
    assert checks["group amd64"]["detail"].endswith(" on default")


def test_an_unreachable_builder_fails_before_any_build(fleet_project: Path, bakery_cli) -> None:
    cfg = fleet_project / "bakery.yaml"
    cfg.write_text(cfg.read_text().replace("context: bakery-e2}", "context: bakery-nowhere}"))
    proc = bakery_cli(fleet_project, "build", "--push", "--tag", "v1", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("bakery: builder second: ")
    assert "Traceback" not in proc.stderr
    assert not (fleet_project / "bake" / "results.json").exists()


def test_max_parallel_runs_a_builders_targets_as_separate_bakes(fleet_project: Path, bakery_cli) -> None:
    cfg = fleet_project / "bakery.yaml"
    cfg.write_text(cfg.read_text().replace("{driver: docker, context: bakery-e2}",
                                           "{driver: docker, context: bakery-e2, max_parallel: 1}"))
    proc = bakery_cli(fleet_project, "build", "--group", "arm", "--image", "worker", "--image", "api", "-v")
    bakes = [ln for ln in proc.stderr.splitlines() if ln.startswith("+ ") and "buildx bake" in ln and "--print" not in ln]
    assert len(bakes) == 2 and all("DOCKER_CONTEXT=bakery-e2" in b for b in bakes)
    assert bakes[0].endswith(" api-arm") and bakes[1].endswith(" worker-arm")


def test_killing_the_second_engine_mid_run_fails_cleanly_with_nothing_published(fleet_project: Path, prefix: str,
                                                                             engine2: str) -> None:
    dockerfile = fleet_project / "examples" / "services" / "worker" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM base AS runtime", "FROM base AS runtime\nRUN sleep 30"))
    proc = subprocess.Popen([sys.executable, "-m", "bakery", "build", "--push", "--tag", "killed", "--image", "worker"],
                            cwd=fleet_project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = ""
    deadline = time.time() + 300
    while time.time() < deadline:
        line = proc.stderr.readline()
        seen += line
        if line.startswith("[second] ") and "RUN sleep 30" in line:
            break
    pid = int(Path("/var/run/bakery-engine2.pid").read_text())
    os.kill(pid, signal.SIGKILL)     # the engine dies under the running build
    _, err = proc.communicate(timeout=300)
    try:
        assert proc.returncode == 1, seen[-3000:] + err[-3000:]
        last = err.strip().splitlines()[-1]
        assert last.startswith("bakery: builder second (docker, context bakery-e2): build failed")
        resp = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                               f"http://{prefix.split('/')[0]}/v2/{prefix.split('/', 1)[1]}/worker/manifests/killed"],
                              capture_output=True, text=True)
        assert resp.stdout == "404"      # the public tag was never written
        assert not (fleet_project / "bake" / "results.json").exists()
    finally:
        stack_sh("engine2-start")        # the module's other tests (and teardown) expect it back


def test_setup_creates_the_docker_context_of_an_engine_builder(fleet_project: Path, bakery_cli) -> None:
    context = f"bakery-t-{uuid.uuid4().hex[:8]}"
    cfg = fleet_project / "bakery.yaml"
    cfg.write_text(cfg.read_text().replace("{driver: docker, context: bakery-e2}",
                                           f"{{driver: docker, context: {context}, "
                                           "endpoint: 'unix:///var/run/bakery-engine2.sock'}"))
    try:
        for _ in range(2):    # idempotent
            proc = bakery_cli(fleet_project, "setup")
            assert f"builder second (docker, context {context}): running" in proc.stdout
        assert docker("context", "inspect", context, "--format", "{{.Endpoints.docker.Host}}").stdout.strip() == \
            "unix:///var/run/bakery-engine2.sock"
    finally:
        docker("context", "rm", "-f", context, check=False)


def test_release_fans_out_and_publishes_indexes_holding_every_platform(fleet_project: Path, prefix: str,
                                                                      bakery_cli) -> None:
    from tests.fixtures.release.projects import commit, git
    (fleet_project / ".gitignore").write_text("bake/\n")
    git(fleet_project, "init", "-q", "-b", "main")
    commit(fleet_project, "release", tag="v1.0.0")
    proc = bakery_cli(fleet_project, "release", "--image", "worker")
    assert "[second] " in proc.stderr
    digests = set()
    for tag in ("1.0.0", "1.0", "1", "latest"):
        index, digest = registry_manifest(f"{prefix}/worker", tag)
        assert sorted(index_platforms(index)) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
        digests.add(digest)
    assert len(digests) == 1
    assert images_on(CONTEXT, prefix) == {f"{prefix}/worker:1.0.0-arm"}
