"""The user-facing shape: invoke plugin, console script, config overrides, errors, setup and doctor."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bakery.capabilities import parse_version
from bakery.docker import Docker
from bakery.process import Runner
from tests.support.project import BASE, one_image

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parents[2]


def run(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_a_consumer_tasks_py_is_one_import(example_project: Path) -> None:
    (example_project / "tasks.py").write_text("from bakery import ns\n")
    listed = run(example_project, "invoke", "--list")
    assert listed.returncode == 0, listed.stderr
    for name in ("build", "generate", "setup", "doctor", "stitch"):
        assert f"\n  {name} " in listed.stdout
    gen = run(example_project, "invoke", "generate", "--hcl")
    assert gen.returncode == 0, gen.stderr
    assert gen.stdout.splitlines() == ["wrote bake/docker-bake.json", "wrote bake/docker-bake.hcl"]


def test_the_console_script_runs_the_same_tasks_without_tasks_py(example_project: Path) -> None:
    exe = shutil.which("bakery") or pytest.fail("the bakery console script is not installed")
    gen = run(example_project, exe, "generate")
    assert gen.returncode == 0, gen.stderr
    assert (example_project / "bake" / "docker-bake.json").is_file()


def test_generation_is_byte_identical_across_runs(example_project: Path) -> None:
    run(example_project, sys.executable, "-m", "bakery", "generate", "--hcl")
    first = {p.name: p.read_bytes() for p in (example_project / "bake").iterdir()}
    run(example_project, sys.executable, "-m", "bakery", "generate", "--hcl")
    assert {p.name: p.read_bytes() for p in (example_project / "bake").iterdir()} == first


def test_invalid_config_is_one_line_per_problem_and_writes_nothing(example_project: Path) -> None:
    run(example_project, sys.executable, "-m", "bakery", "generate")
    before = (example_project / "bake" / "docker-bake.json").read_bytes()
    cfg = example_project / "bakery.yaml"
    cfg.write_text(cfg.read_text().replace("linux/arm64,", "linux/arm65,").replace("platform_groups: [amd64]",
                                                                                   "platfrom_groups: [amd64]"))
    proc = run(example_project, sys.executable, "-m", "bakery", "generate", "--hcl")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "bakery: bakery.yaml:5: platform_groups.arm[0]: platform 'linux/arm65': unknown architecture 'arm65'; "
        "did you mean 'linux/arm64'?",
        "bakery: bakery.yaml:20: images.static.platfrom_groups: unknown key 'platfrom_groups'; "
        "did you mean platform_groups?",
    ]
    assert (example_project / "bake" / "docker-bake.json").read_bytes() == before
    assert not (example_project / "bake" / "docker-bake.hcl").exists()


def test_invoke_config_and_environment_override_keys(example_project: Path) -> None:
    (example_project / "tasks.py").write_text("from bakery import ns\n")
    (example_project / "invoke.yaml").write_text("bakery:\n  registry: 127.0.0.1:5000/from-invoke-yaml\n"
                                                 "  overrides: {cache: {type: local}}\n")
    proc = run(example_project, "invoke", "generate", env={"INVOKE_BAKERY_TAG": "from-env"})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((example_project / "bake" / "docker-bake.json").read_text())
    assert doc["variable"]["BAKERY_REGISTRY"]["default"] == "127.0.0.1:5000/from-invoke-yaml"
    assert doc["variable"]["BAKERY_TAG"]["default"] == "from-env"
    assert doc["target"]["api-arm"]["cache-to"] == ["type=local,dest=bake/cache/api-arm,mode=max"]


def test_bake_variables_from_the_environment_win_at_build_time(example_project: Path) -> None:
    proc = run(example_project, sys.executable, "-m", "bakery", "build", "--dry-run", "--image", "static",
               env={"BAKERY_REGISTRY": "127.0.0.1:5000/elsewhere", "BAKERY_CACHE_SCOPE": "feature-1"})
    assert proc.returncode == 0, proc.stderr
    assert "BAKERY_CACHE_SCOPE=feature-1 BAKERY_REGISTRY=127.0.0.1:5000/elsewhere BAKERY_TAG=latest" in proc.stderr


def test_a_bad_tag_flag_is_refused_before_anything_runs(example_project: Path) -> None:
    proc = run(example_project, sys.executable, "-m", "bakery", "build", "--tag", "-bad", "--dry-run")
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("bakery: BAKERY_TAG: tag '-bad' is not valid: use up to 128 of [A-Za-z0-9_.-], "
                                   "not starting with . or -")


def test_setup_is_idempotent_and_doctor_reports_every_group(example_project: Path) -> None:
    for _ in range(2):
        proc = run(example_project, sys.executable, "-m", "bakery", "setup")
        assert proc.returncode == 0, proc.stderr
        assert "qemu: all handlers present" in proc.stdout
    doc = run(example_project, sys.executable, "-m", "bakery", "doctor", "--json")
    assert doc.returncode == 0, doc.stdout + doc.stderr
    checks = {c["name"]: c for c in json.loads(doc.stdout)}
    assert checks["image store"]["detail"] == "containerd"
    assert checks["group arm"]["ok"] and "linux/arm/v7" in checks["group arm"]["detail"]
    assert {"engine", "buildx", "builder default", "registry", "emulation", "group amd64"} <= set(checks)


def test_doctor_names_a_group_that_cannot_be_built_with_its_fix(example_project: Path) -> None:
    cfg = example_project / "bakery.yaml"
    cfg.write_text(cfg.read_text().replace("amd64: [linux/amd64]", "amd64: [linux/amd64]\n  win: [windows/amd64]"))
    proc = run(example_project, sys.executable, "-m", "bakery", "doctor")
    assert proc.returncode == 1
    assert "FAIL  group win          cannot build windows/amd64" in proc.stdout
    assert "fix: add a builder node that runs windows/amd64 natively" in proc.stdout
    build = run(example_project, sys.executable, "-m", "bakery", "build", "--group", "win")
    assert build.returncode == 1
    last = build.stderr.strip().splitlines()[-1]
    assert last.startswith("bakery: group win: cannot build windows/amd64; fix: add a builder node")
    assert not (example_project / "bake" / "results.json").exists()


def test_a_failed_preflight_stops_the_bake_it_runs_beside(tmp_path: Path) -> None:
    """The preflight runs while the bake starts; when it finds a platform that cannot be built, it stops the bake
    (which would otherwise run its 60 s step on the build platform) and its verdict is the error."""
    root = one_image(tmp_path, "127.0.0.1:5000/t-beside", groups={"mixed": ["linux/amd64", "windows/amd64"]},
                     steps="")
    (root / "app" / "Dockerfile").write_text(f"FROM --platform=$BUILDPLATFORM {BASE}\n"
                                             f"RUN echo {uuid.uuid4().hex} && sleep 60\n")     # never cached
    started = time.monotonic()
    build = run(root, sys.executable, "-m", "bakery", "build")
    assert build.returncode == 1
    assert time.monotonic() - started < 45
    assert build.stderr.strip().splitlines()[-1].startswith("bakery: group mixed: cannot build windows/amd64")
    assert not (root / "bake" / "results.json").exists()


def test_a_branch_name_is_a_valid_cache_scope(example_project: Path) -> None:
    proc = run(example_project, sys.executable, "-m", "bakery", "build", "--dry-run", "--image", "static",
               "--cache-scope", "feature/JIRA-1 fix")
    assert proc.returncode == 0, proc.stderr
    assert "BAKERY_CACHE_SCOPE=feature-JIRA-1-fix " in proc.stderr


def test_a_build_reads_each_engine_fact_once_and_shows_every_command(example_project: Path) -> None:
    proc = run(example_project, sys.executable, "-m", "bakery", "build", "--image", "static", "-v")
    assert proc.returncode == 0, proc.stderr[-3000:]
    echoed = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("+ ")]
    assert sum(line.startswith("+ docker info ") for line in echoed) == 1, echoed
    assert sum(line == "+ docker buildx version" for line in echoed) == 1, echoed
    assert not any(line.startswith("+ docker buildx inspect") for line in echoed), echoed   # the engine is the builder
    assert any(" docker buildx bake -f bake/docker-bake.json " in line and line.endswith(" static-amd64")
               for line in echoed), echoed


def test_the_buildx_version_is_probed_once_then_read_from_its_record(example_project: Path) -> None:
    def probes() -> int:
        proc = run(example_project, sys.executable, "-m", "bakery", "build", "--image", "static", "-v")
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stderr.splitlines().count("+ docker buildx version")
    record = example_project / "bake" / ".buildx-version.json"
    assert probes() == 1
    installed = parse_version(subprocess.run(["docker", "buildx", "version"], capture_output=True,
                                             text=True).stdout.split()[1])
    assert parse_version(json.loads(record.read_text())["version"]) == installed
    assert probes() == 0
    record.write_text(json.dumps({"key": "another docker", "version": "0.1.0"}))     # docker or buildx changed
    assert probes() == 1


def test_targets_given_bare_after_build_are_what_bake_builds(example_project: Path) -> None:
    proc = run(example_project, sys.executable, "-m", "bakery", "build", "static", "arm", "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    bake = [line for line in proc.stderr.splitlines() if " docker buildx bake -f " in line]
    assert len(bake) == 1 and bake[0].endswith(" api-arm worker-arm static-amd64"), bake


def test_targets_that_share_a_context_are_baked_in_rounds_where_buildx_shares_their_session(
        example_project: Path) -> None:
    proc = run(example_project, sys.executable, "-m", "bakery", "build", "--dry-run")
    assert proc.returncode == 0, proc.stderr[-3000:]
    bakes = [line.rsplit(" --progress plain ", 1)[1] for line in proc.stderr.splitlines()
             if " docker buildx bake -f " in line]
    if Docker(Runner()).capabilities().shared_context_sessions:     # buildx >= 0.17: docs/stack.md
        assert bakes == ["api-amd64 worker-amd64 static-amd64", "api-arm worker-arm"]
    else:
        assert bakes == ["api-amd64 api-arm worker-amd64 worker-arm static-amd64"]


def test_a_file_buildx_reads_otherwise_stops_the_build_and_the_previous_file_stays(example_project: Path) -> None:
    bake_dir = example_project / "bake"
    first = bakery(example_project, "generate")
    assert first.returncode == 0, first.stderr
    good = (bake_dir / "docker-bake.json").read_text()
    # bakery believes the other stack's buildx: it generates and compares in that version's form, which the
    # installed buildx prints otherwise (the check runs beside the bake and stops it)
    record = json.loads((bake_dir / ".buildx-version.json").read_text())
    record["version"] = "0.29.1" if record["version"].startswith("0.13.") else "0.13.1"
    (bake_dir / ".buildx-version.json").write_text(json.dumps(record))
    (bake_dir / ".print-checked.json").unlink()
    proc = bakery(example_project, "build")
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("bakery: docker-bake.json: buildx does not read it as generated: target "), last
    assert "Traceback" not in proc.stderr
    assert (bake_dir / "docker-bake.json").read_text() == good
    assert not (bake_dir / "results.json").exists() and not (bake_dir / ".print-checked.json").exists()


def bakery(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, sys.executable, "-m", "bakery", *argv)


def test_a_value_flag_given_no_value_is_one_line_and_builds_nothing(example_project: Path) -> None:
    for argv in (["build", "--group"], ["build", "--group", "--dry-run"], ["build", "--tag="]):
        proc = bakery(example_project, *argv)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [f"bakery: build {argv[1].rstrip('=')} needs a value "
                                                    f"(e.g. {argv[1].rstrip('=')}=VALUE)"]
        assert proc.stdout == ""


def test_help_works_for_every_task(example_project: Path) -> None:
    listed = bakery(example_project, "--list").stdout
    names = [line.split()[0] for line in listed.splitlines()[1:] if line.startswith("  ") and line[2] != " "]
    assert {"build", "init", "schema", "manifest.create", "stitch", "import"} <= set(names)
    for name in names:
        proc = bakery(example_project, name, "--help")
        assert proc.returncode == 0, (name, proc.stderr)
        assert proc.stdout.startswith(f"Usage: bakery [--core-opts] {name} "), name


def test_a_closed_pipe_ends_quietly(example_project: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bakery", "--help"], cwd=example_project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_doctor_without_a_config_checks_the_machine(tmp_path: Path) -> None:
    proc = bakery(tmp_path, "doctor", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {c["name"] for c in json.loads(proc.stdout)} == {"engine", "image store", "buildx", "emulation"}
    assert "registry, builder and platform group checks skipped (`bakery init` writes one)" in proc.stderr


def test_init_writes_a_commented_config_with_a_schema_and_never_overwrites_unasked(tmp_path: Path,
                                                                                    prefix: str) -> None:
    for d in ("services/api", "worker"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    proc = bakery(tmp_path, "init", "--registry", prefix, "--platforms", "linux/amd64")
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "bakery.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=bake/bakery.schema.json\n")
    assert json.loads((tmp_path / "bake" / "bakery.schema.json").read_text())["title"] == "bakery.yaml"
    assert "  # from worker/Dockerfile\n  worker:\n    context: worker\n" in text
    again = bakery(tmp_path, "init")
    assert again.returncode == 1
    assert again.stderr.strip() == "bakery: bakery.yaml exists; pass --force to overwrite it"
    assert (tmp_path / "bakery.yaml").read_text() == text
    assert bakery(tmp_path, "init", "--force", "--registry", prefix).returncode == 0
    assert "arm64: [linux/arm64]" in (tmp_path / "bakery.yaml").read_text()
    gen = bakery(tmp_path, "generate")
    assert gen.returncode == 0, gen.stderr
    assert set(json.loads((tmp_path / "bake" / "docker-bake.json").read_text())["target"]) == {
        "api-amd64", "api-arm64", "worker-amd64", "worker-arm64"}
    (tmp_path / "bake" / "bakery.schema.json").unlink()
    wrote = bakery(tmp_path, "schema", "--write")
    assert wrote.stdout.strip() == f"wrote {os.path.join('bake', 'bakery.schema.json')}"
    assert json.loads(bakery(tmp_path, "schema").stdout) == json.loads(
        (tmp_path / "bake" / "bakery.schema.json").read_text())


def test_init_imports_an_existing_compose_file(tmp_path: Path, prefix: str) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build: ./web\n  db:\n    image: postgres\n")
    proc = bakery(tmp_path, "init", "--registry", prefix, "--platforms", "linux/amd64")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "wrote bakery.yaml: 1 image(s) from compose.yaml: web"
    assert "  # from compose.yaml:2\n  web:\n    context: web\n" in (tmp_path / "bakery.yaml").read_text()


def test_load_with_a_tag_names_the_loaded_image_so(example_project: Path, prefix: str) -> None:
    proc = bakery(example_project, "build", "--image", "static", "--load", "--tag", "mine")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"loaded {prefix}/static:mine (linux/amd64)" in proc.stdout
    inspect = run(example_project, "docker", "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}",
                  f"{prefix}/static:mine")
    assert inspect.stdout.strip() == "linux/amd64", inspect.stderr
    for ref in (f"{prefix}/static:mine", f"{prefix}/static:mine-amd64"):
        run(example_project, "docker", "image", "rm", ref)
