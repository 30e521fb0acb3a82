"""``tags:`` rules end to end on the real stack: ``bakery build --push`` and ``bakery stitch`` under GitHub Actions'
environment for a push to the default branch, a tag and a pull request from a fork, read back from the registry
(and the step outputs and job summary the job gets)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bakery.oci.registry import Registry
from tests.integration.seed import digest_at, tags_of
from tests.support.project import committed, git, one_image

pytestmark = pytest.mark.stack
Cli = Callable[..., subprocess.CompletedProcess[str]]
RULES = ["type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}",
         "type=semver,pattern={{major}}.{{minor}}", "type=sha", "type=raw,value=latest,enable={{is_default_branch}}"]


@pytest.fixture
def repo_root(tmp_path: Path, prefix: str) -> Path:
    """A git repository with one image `app` (amd64) and the rules above."""
    return committed(one_image(tmp_path / "repo", prefix, tags={"rules": RULES}))


def github(root: Path, event: str, ref: str, payload: dict[str, object]) -> dict[str, str]:
    path = root.parent / f"event-{event}.json"
    path.write_text(json.dumps({"repository": {"default_branch": "main"}, **payload}))
    return {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_REF": ref, "GITHUB_SHA": git(root, "rev-parse", "HEAD"),
            "GITHUB_REPOSITORY": "acme/app", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_EVENT_PATH": str(path)}


def image_tags(host: str, repo: str) -> list[str]:
    """The repository's tags but the build cache's."""
    return sorted(t for t in tags_of(host, repo) if not t.startswith("cache-"))


def labels_of(host: str, repo: str, tag: str) -> dict[str, str]:
    client = Registry(host, insecure=True)
    index = client.get_manifest(repo, tag).json
    image = next(m for m in index["manifests"] if m.get("platform", {}).get("os") != "unknown")
    config = json.loads(client.get_blob(repo, client.get_manifest(repo, image["digest"]).json["config"]["digest"]))
    return dict(config["config"].get("Labels") or {})


def test_a_push_to_the_default_branch_publishes_every_tag_its_rules_give_with_oci_labels(
        bakery_cli: Cli, repo_root: Path, prefix: str) -> None:
    host, name = prefix.split("/", 1)
    env = github(repo_root, "push", "refs/heads/main", {})
    sha = env["GITHUB_SHA"]
    listed = bakery_cli(repo_root, "tags", env=env).stdout.split()
    assert listed == ["main", "latest", f"sha-{sha[:7]}"]      # by priority: ref 600, raw 200, sha 100
    outputs, summary = repo_root.parent / "github-output", repo_root.parent / "step-summary"
    built = bakery_cli(repo_root, "build", "--push", env={**env, "GITHUB_OUTPUT": str(outputs),
                                                           "GITHUB_STEP_SUMMARY": str(summary)})
    assert "tags: main, latest, sha-" in built.stderr
    assert "::group::bake app-amd64\n" in built.stderr and "::endgroup::" in built.stderr   # the log, folded
    repo = f"{name}/app"
    digests = {t: digest_at(host, repo, t) for t in listed}
    assert len(set(digests.values())) == 1 and None not in digests.values(), digests
    written = outputs.read_text()
    assert f"app-digest={digests['main']}\n" in written and "version=main\n" in written
    assert "\n".join(f"{prefix}/app:{t}" for t in listed) in written
    assert f"| app | linux/amd64 | `{digests['main']}` | `main`, `latest`, `sha-{sha[:7]}` |" in summary.read_text()
    labels = labels_of(host, repo, "main")
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == "https://github.com/acme/app"
    assert labels["org.opencontainers.image.version"] == "main"


def test_a_tag_fanned_out_then_stitched_gets_the_semver_tags_and_latest(bakery_cli: Cli, repo_root: Path,
                                                                          prefix: str) -> None:
    host, name = prefix.split("/", 1)
    git(repo_root, "tag", "v1.2.3")
    env = github(repo_root, "push", "refs/tags/v1.2.3", {})
    bakery_cli(repo_root, "build", "--push", "--no-stitch", env=env)
    main = bakery_cli(repo_root, "tags", "--main", env=env).stdout.strip()
    assert main == "1.2.3"
    assert image_tags(host, f"{name}/app") == ["1.2.3-amd64"]          # only the per-group ref so far
    stitched = json.loads(bakery_cli(repo_root, "stitch", main, "--json", env=env).stdout)   # stdout: JSON only
    sha = env["GITHUB_SHA"][:7]
    assert stitched["images"]["app"]["tags"] == ["1.2.3", "1.2", f"sha-{sha}", "latest"]
    assert image_tags(host, f"{name}/app") == sorted(["1.2.3-amd64", "1.2.3", "1.2", f"sha-{sha}", "latest"])


def test_a_pull_request_from_a_fork_builds_and_never_pushes(bakery_cli: Cli, repo_root: Path, prefix: str) -> None:
    host, name = prefix.split("/", 1)
    payload = {"number": 7, "pull_request": {"number": 7, "base": {"ref": "main"},
                                             "head": {"repo": {"full_name": "someone/app", "fork": True}}}}
    env = github(repo_root, "pull_request", "refs/pull/7/merge", payload)
    assert bakery_cli(repo_root, "tags", env=env).stdout.split() == ["pr-7", f"sha-{env['GITHUB_SHA'][:7]}"]
    built = bakery_cli(repo_root, "build", "--push", env=env)
    assert "pull request #7 from a fork" in built.stderr and "never pushed" in built.stderr
    assert tags_of(host, f"{name}/app") == []             # no image, and no cache written either


def test_a_bad_rule_is_one_line_naming_the_file_and_key(bakery_cli: Cli, repo_root: Path) -> None:
    doc = json.loads((repo_root / "bakery.yaml").read_text())
    doc["tags"]["rules"].append("type=semver")
    (repo_root / "bakery.yaml").write_text(json.dumps(doc, indent=2))
    failed = bakery_cli(repo_root, "build", "--push", check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "bakery.yaml" in failed.stderr and "tags.rules[6]" in failed.stderr and "needs pattern=" in failed.stderr


def test_a_new_commit_that_changes_no_context_reuses_the_image_and_a_release_tag_rebuilds_it(
        bakery_cli: Cli, repo_root: Path, prefix: str) -> None:
    """The per-commit labels (revision, created, SOURCE_DATE_EPOCH) are not inputs: the image built for the last
    commit is reused under the new commit's tags, labels and all. The version label is: a tag's build is its own."""
    host, name = prefix.split("/", 1)
    first = bakery_cli(repo_root, "build", "--push", env=github(repo_root, "push", "refs/heads/main", {}))
    assert "unchanged since" not in first.stdout
    (repo_root / "README").write_text("outside every context\n")
    git(repo_root, "add", "README")
    git(repo_root, "commit", "-qm", "docs")
    env = github(repo_root, "push", "refs/heads/main", {})
    again = bakery_cli(repo_root, "build", "--push", env=env)
    assert "app-amd64: unchanged since main (inputs sha256:" in again.stdout
    assert digest_at(host, f"{name}/app", f"sha-{env['GITHUB_SHA'][:7]}") == digest_at(host, f"{name}/app", "main")
    git(repo_root, "tag", "v1.0.0")
    tagged = bakery_cli(repo_root, "build", "--push", env=github(repo_root, "push", "refs/tags/v1.0.0", {}))
    assert "unchanged since" not in tagged.stdout
    assert labels_of(host, f"{name}/app", "1.0.0")["org.opencontainers.image.version"] == "1.0.0"


def test_without_tags_rules_a_build_of_a_git_checkout_carries_the_commits_labels(
        bakery_cli: Cli, tmp_path: Path, prefix: str) -> None:
    host, name = prefix.split("/", 1)
    root = committed(one_image(tmp_path / "plain", prefix))
    git(root, "remote", "add", "origin", "git@github.com:Acme/Plain.git")
    bakery_cli(root, "build", "--push", "--tag", "t1")
    labels = labels_of(host, f"{name}/app", "t1")
    assert labels["org.opencontainers.image.revision"] == git(root, "rev-parse", "HEAD")
    assert labels["org.opencontainers.image.source"] == "https://github.com/Acme/Plain"
    epoch = int(git(root, "log", "-1", "--format=%ct"))
    assert labels["org.opencontainers.image.created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    assert "org.opencontainers.image.version" not in labels       # no rules, no version (as metadata-action)
