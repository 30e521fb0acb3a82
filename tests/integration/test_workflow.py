"""The CI files a consumer copies: docs/ci-workflow.example.yml, action.yml and docs/gitlab-ci.example.yml validate
against GitHub's and GitLab's schemas (check-jsonschema's vendored copies), and the workflow's own ``bakery`` steps,
run with GitHub's environment for a push to main, a pull request from a fork, a schedule and a tag v1.2.3 on the
real stack, tag, push (or not) and write the step outputs and job summary as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.seed import tags_of
from tests.support.paths import REPO
from tests.support.project import committed, git, one_image

pytestmark = pytest.mark.stack
WORKFLOW = REPO / "docs" / "ci-workflow.example.yml"


@pytest.mark.parametrize(("path", "schema"), [(WORKFLOW, "vendor.github-workflows"),
                                              (REPO / "action.yml", "vendor.github-actions"),
                                              (REPO / "docs" / "gitlab-ci.example.yml", "vendor.gitlab-ci")])
def test_the_ci_files_validate_against_their_schema(path: Path, schema: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def bakery_steps(job: str) -> list[str]:
    """The job's `run:` steps that are bakery commands, in order (the install, login and checkout steps are what
    the machine already has here)."""
    steps: list[dict[str, Any]] = yaml.safe_load(WORKFLOW.read_text())["jobs"][job]["steps"]
    return [s["run"] for s in steps if str(s.get("run", "")).startswith("bakery ")]


@pytest.fixture
def consumer(tmp_path: Path, prefix: str) -> Path:
    """A consumer repository: one image, the rules the workflow's header suggests, a git history."""
    rules = ["type=schedule", "type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}",
             "type=semver,pattern={{major}}.{{minor}}", "type=semver,pattern={{major}}", "type=sha"]
    return committed(one_image(tmp_path / "consumer", "ghcr.io/acme", 'COPY stamp /stamp\nCMD ["sh", "-c", "test -f /stamp"]\n',
                               stamp=prefix, tags={"rules": rules}))


def run_job(root: Path, prefix: str, job: str, event: str, ref: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Run the job's bakery steps as the runner would (bash, the job's environment); what they left."""
    files = {name: root.parent / f"{event}-{name}" for name in ("event", "output", "summary")}
    files["event"].write_text(json.dumps({"repository": {"default_branch": "main"}, **payload}))
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_REF": ref,
           "GITHUB_REF_NAME": ref.split("/", 2)[2], "GITHUB_HEAD_REF": "", "GITHUB_SHA": git(root, "rev-parse", "HEAD"),
           "GITHUB_REPOSITORY": "acme/app", "GITHUB_SERVER_URL": "https://github.com",
           "GITHUB_EVENT_PATH": str(files["event"]), "GITHUB_OUTPUT": str(files["output"]),
           "GITHUB_STEP_SUMMARY": str(files["summary"]),
           "BAKERY_REGISTRY": prefix}            # what the workflow's registry step sets, for this machine
    if event == "pull_request":
        env["GITHUB_HEAD_REF"] = "feature/x"
    logs = []
    for step in bakery_steps(job):
        proc = subprocess.run(["bash", "-e", "-c", step], cwd=root, capture_output=True, text=True, timeout=900,
                              env={**os.environ, **env})
        assert proc.returncode == 0, (step, proc.stdout[-2000:], proc.stderr[-3000:])
        logs.append(proc.stdout + proc.stderr)
    out = files["output"].read_text() if files["output"].exists() else ""
    summary = files["summary"].read_text() if files["summary"].exists() else ""
    return {"log": "\n".join(logs), "output": out, "summary": summary, "sha": env["GITHUB_SHA"][:7]}


def pushed(prefix: str) -> list[str]:
    host, name = prefix.split("/", 1)
    return sorted(t for t in tags_of(host, f"{name}/app") if not t.startswith("cache-"))


def test_a_push_to_main_is_tagged_pushed_and_summarised(consumer: Path, prefix: str) -> None:
    got = run_job(consumer, prefix, "build", "push", "refs/heads/main", {})
    assert pushed(prefix) == sorted(["main", "main-amd64", f"sha-{got['sha']}"])
    assert f"{prefix}/app:main\n{prefix}/app:sha-{got['sha']}" in got["output"]
    assert "version=main\n" in got["output"] and "app-digest=sha256:" in got["output"]
    assert "| app | linux/amd64 |" in got["summary"]


def test_a_pull_request_from_a_fork_is_built_and_never_pushed(consumer: Path, prefix: str) -> None:
    payload = {"number": 7, "pull_request": {"number": 7, "base": {"ref": "main"},
                                             "head": {"repo": {"full_name": "someone/app", "fork": True}}}}
    got = run_job(consumer, prefix, "build", "pull_request", "refs/pull/7/merge", payload)
    assert "pull request #7 from a fork" in got["log"] and "never pushed" in got["log"]
    host, name = prefix.split("/", 1)
    assert tags_of(host, f"{name}/app") == []              # no image, and no cache written
    assert "nothing stitched" in got["summary"]


def test_a_schedule_is_tagged_nightly(consumer: Path, prefix: str) -> None:
    got = run_job(consumer, prefix, "build", "schedule", "refs/heads/main", {})
    assert pushed(prefix) == sorted(["nightly", "nightly-amd64", "main", f"sha-{got['sha']}"])
    assert "version=nightly\n" in got["output"]


def test_a_tag_v1_2_3_is_released_with_its_semver_tags(consumer: Path, prefix: str) -> None:
    git(consumer, "tag", "v1.2.3")
    got = run_job(consumer, prefix, "release", "push", "refs/tags/v1.2.3", {})
    assert {"1.2.3", "1.2", "1", "latest"} <= set(pushed(prefix)), (pushed(prefix), got["log"][-2000:])
