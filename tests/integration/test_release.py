"""`bakery release` on the real stack: the full tag set on one index per image, smoke tests on every platform,
nothing public on a failing platform, `latest` kept by a prerelease, idempotent re-runs, and intermediate refs
removed the documented way (manifest.rm) leaving every published index pullable.

One example project is released for the whole module (1.4.2, the same again, then 2.0.0-rc.1); the failing
platform case uses the tiny probe fixture (tests/fixtures/release/armfail)."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import index_platforms, pull_every_platform, registry_manifest
from tests.fixtures.release.projects import armfail_project, bakery, commit, example_project, new_prefix, set_fail_on

pytestmark = pytest.mark.stack

EXPECTED = {"api": ["linux/amd64", "linux/arm64", "linux/arm/v7"],
            "worker": ["linux/amd64", "linux/arm64", "linux/arm/v7"],
            "static": ["linux/amd64"]}
UNAME = {"linux/amd64": "x86_64", "linux/arm64": "aarch64", "linux/arm/v7": "armv7l"}
RELEASE_YAML = "release:\n  smoke: {start_seconds: 2}\n"


def tags_of(prefix: str, repo: str) -> set[str]:
    host, _, path = f"{prefix}/{repo}".partition("/")
    resp = requests.get(f"http://{host}/v2/{path}/tags/list", timeout=30)
    if resp.status_code == 404:
        return set()
    resp.raise_for_status()
    return set(resp.json().get("tags") or [])


def digest_of(prefix: str, repo: str, tag: str) -> str:
    return registry_manifest(f"{prefix}/{repo}", tag)[1]


def attestation_subjects(index: dict) -> list[str]:
    return [m["annotations"]["vnd.docker.reference.digest"] for m in index["manifests"]
            if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"]


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory, stack: str):
    """The example at a commit tagged v1.4.2, released once: (root, prefix, sha, process)."""
    prefix = new_prefix(stack)
    root = example_project(tmp_path_factory.mktemp("release") / "project", prefix, RELEASE_YAML)
    sha = commit(root, "release 1.4.2", tag="v1.4.2")
    proc = bakery(root, "release")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-4000:]
    return root, prefix, sha, proc


@pytest.fixture(scope="module")
def rerun(released):
    """The same release run again, with the digests of every tag before it."""
    root, prefix, sha, _ = released
    before = {(i, t): digest_of(prefix, i, t) for i in EXPECTED for t in ("1.4.2", "1.4", "1", "latest",
                                                                         f"sha-{sha[:7]}")}
    proc = bakery(root, "release")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return before, proc


@pytest.fixture(scope="module")
def prerelease(released, rerun):
    """2.0.0-rc.1 released from the same commit with --version, after 1.4.2 (and its re-run)."""
    root, prefix, _, _ = released
    before = {i: digest_of(prefix, i, "latest") for i in EXPECTED}
    proc = bakery(root, "release", "--version", "2.0.0-rc.1")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return before, proc


# --------------------------------------------------------------------------- 1.4.2
def test_every_image_gets_the_full_tag_set_on_one_index(released) -> None:
    _, prefix, sha, _ = released
    for image in EXPECTED:
        wanted = {"1.4.2", "1.4", "1", "latest", f"sha-{sha[:7]}"}
        assert wanted <= tags_of(prefix, image)
        assert len({digest_of(prefix, image, t) for t in wanted}) == 1, f"{image}: tags on different digests"


def test_each_tags_index_holds_exactly_the_images_platforms(released) -> None:
    _, prefix, sha, _ = released
    for image, platforms in EXPECTED.items():
        for tag in ("1.4.2", "latest", f"sha-{sha[:7]}"):
            index, _ = registry_manifest(f"{prefix}/{image}", tag)
            assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
            assert sorted(index_platforms(index)) == sorted(platforms)


def test_attestations_are_carried_over_and_none_dangles(released) -> None:
    _, prefix, _, _ = released
    index, _ = registry_manifest(f"{prefix}/api", "1.4.2")
    subjects = attestation_subjects(index)
    assert len(subjects) == 3 and set(subjects) <= {m["digest"] for m in index["manifests"]}


@pytest.mark.parametrize("platform", list(UNAME))
def test_the_smoke_test_ran_on_every_platform_and_shows_its_architecture(released, platform: str) -> None:
    out = released[3].stdout
    arch = UNAME[platform]
    assert f"[api {platform}] built on: {arch}, running on: {arch}" in out
    assert f"[api {platform}] passed: smoke test `/app/test/run` exited 0" in out
    assert f"from {arch} (built on {arch})" in out.split(f"[worker {platform}] ", 1)[1].splitlines()[0]
    assert f"[worker {platform}] passed: start check: the container exited 0" in out


def test_a_server_image_without_a_test_passes_the_start_check_by_staying_up(released) -> None:
    assert "[static linux/amd64] passed: start check: still running after 2s" in released[3].stdout


def test_the_images_carry_the_oci_labels_of_the_release(released) -> None:
    root, prefix, sha, _ = released
    index, _ = registry_manifest(f"{prefix}/api", "1.4.2")
    arm = next(m for m in index["manifests"] if m["platform"].get("variant") == "v7")
    manifest, _ = registry_manifest(f"{prefix}/api", arm["digest"])
    host, _, path = f"{prefix}/api".partition("/")
    config = requests.get(f"http://{host}/v2/{path}/blobs/{manifest['config']['digest']}", timeout=30).json()
    assert config["config"]["Labels"] == {
        "org.opencontainers.image.version": "1.4.2", "org.opencontainers.image.revision": sha,
        "org.opencontainers.image.source": "https://git.example.com/acme/shop",
        "org.opencontainers.image.created": "2024-05-01T10:00:00Z"}
    assert config["created"] == "2024-05-01T10:00:00Z"          # SOURCE_DATE_EPOCH = commit time
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1.4.2"
    assert index["annotations"]["org.opencontainers.image.revision"] == sha


def test_the_report_matches_the_registry(released) -> None:
    root, prefix, sha, _ = released
    report = json.loads((root / "bake" / "release-1.4.2.json").read_text())
    assert report == json.loads((root / "bake" / "release.json").read_text())
    assert (report["version"], report["revision"], report["published"]) == ("1.4.2", sha, True)
    for image, platforms in EXPECTED.items():
        entry = report["images"][image]
        assert entry["index_digest"] == digest_of(prefix, image, "1.4.2")
        assert entry["tags"] == ["1.4.2", "1.4", "1", "latest", f"sha-{sha[:7]}"]
        assert sorted(entry["platforms"]) == sorted(platforms)
        for platform, p in entry["platforms"].items():
            manifest, digest = registry_manifest(f"{prefix}/{image}", p["digest"])
            assert digest == p["digest"]
            assert p["size"] == sum(layer["size"] for layer in manifest["layers"]) > 0
            assert p["smoke"] == "passed"
        assert entry["previous"] is None


# --------------------------------------------------------------------------- the same release again
def test_rerunning_the_same_release_changes_no_digest(released, rerun) -> None:
    _, prefix, _, _ = released
    before, proc = rerun
    assert {key: digest_of(prefix, *key) for key in before} == before
    assert proc.stdout.count("(already released from this commit: index kept)") == len(EXPECTED)
    assert "== build" not in proc.stdout and "== smoke tests" not in proc.stdout


def test_a_rerun_keeps_the_smoke_results_of_the_first_run_in_the_report(released, rerun) -> None:
    root = released[0]
    report = json.loads((root / "bake" / "release-1.4.2.json").read_text())
    smoke = {p["smoke"] for i in report["images"].values() for p in i["platforms"].values()}
    assert smoke == {"passed"} and all(i["reused"] for i in report["images"].values())


# --------------------------------------------------------------------------- a prerelease
def test_a_prerelease_leaves_latest_and_the_floating_tags_where_they_were(released, prerelease) -> None:
    _, prefix, _, _ = released
    before, _ = prerelease
    for image in EXPECTED:
        assert digest_of(prefix, image, "latest") == before[image] == digest_of(prefix, image, "1.4.2")
        assert digest_of(prefix, image, "1") == before[image]
        assert digest_of(prefix, image, "2.0.0-rc.1") != before[image]
        assert not {"2", "2.0"} & tags_of(prefix, image)


def test_a_prerelease_is_compared_with_the_previous_release(released, prerelease) -> None:
    root, _, _, _ = released
    report = json.loads((root / "bake" / "release-2.0.0-rc.1.json").read_text())
    assert report["prerelease"] is True
    assert report["images"]["api"]["tags"][0] == "2.0.0-rc.1"
    assert report["images"]["api"]["previous"]["version"] == "1.4.2"
    assert all(p["size_change"] is not None for p in report["images"]["api"]["platforms"].values())
    assert json.loads((root / "bake" / "release.json").read_text())["version"] == "2.0.0-rc.1"


# --------------------------------------------------------------------------- removing intermediate refs
def test_removing_the_per_group_refs_the_documented_way_keeps_every_index_pullable(released, prerelease) -> None:
    root, prefix, _, _ = released
    for image in EXPECTED:
        groups = ["amd64"] if image == "static" else ["amd64", "arm"]
        for version in ("1.4.2", "2.0.0-rc.1"):
            for group in groups:
                proc = bakery(root, "manifest.rm", f"{prefix}/{image}:{version}-{group}")
                assert proc.returncode == 0, proc.stderr
        assert not {t for t in tags_of(prefix, image) if t.endswith(("-amd64", "-arm"))}
    for image, platforms in EXPECTED.items():
        for tag in ("latest", "2.0.0-rc.1"):
            pull_every_platform(f"{prefix}/{image}:{tag}", platforms)


# --------------------------------------------------------------------------- a failing platform
@pytest.fixture(scope="module")
def armfail(tmp_path_factory: pytest.TempPathFactory, stack: str):
    """The probe project released as 0.9.0 (passing), then 1.0.0 from a commit whose smoke test fails on armv7l."""
    prefix = new_prefix(stack)
    root = armfail_project(tmp_path_factory.mktemp("armfail") / "project", prefix)
    commit(root, "good", tag="v0.9.0")
    good = bakery(root, "release")
    assert good.returncode == 0, good.stderr[-4000:]
    before = {t: digest_of(prefix, "probe", t) for t in ("0.9.0", "0.9", "latest")}
    set_fail_on(root, "armv7l")
    sha = commit(root, "breaks armv7l", tag="v1.0.0")
    return root, prefix, sha, before, bakery(root, "release")


def test_a_failing_smoke_test_on_one_platform_fails_the_release_naming_image_platform_and_step(armfail) -> None:
    proc = armfail[4]
    assert proc.returncode != 0
    assert "release 1.0.0 failed at step smoke test: probe linux/arm/v7: smoke test `/probe/test --verbose` exited 1" \
        in proc.stderr
    assert "nothing was published" in proc.stderr


def test_the_other_platforms_were_tested_and_the_failure_output_is_shown(armfail) -> None:
    out = armfail[4].stdout
    assert "[probe linux/amd64] probe running on x86_64 (--verbose)" in out
    assert "[probe linux/arm64] passed" in out
    assert "[probe linux/arm/v7] probe: armv7l is broken in this build" in out
    assert "[probe linux/arm/v7] FAILED: smoke test `/probe/test --verbose` exited 1" in out


def test_a_failing_platform_publishes_nothing(armfail) -> None:
    root, prefix, sha, before, _ = armfail
    tags = tags_of(prefix, "probe")
    assert not {"1.0.0", "1.0", "1", f"sha-{sha[:7]}"} & tags
    assert {t: digest_of(prefix, "probe", t) for t in before} == before     # latest still 0.9.0
    assert json.loads((root / "bake" / "release.json").read_text())["version"] == "0.9.0"
    assert not (root / "bake" / "release-1.0.0.json").exists()


# --------------------------------------------------------------------------- --group: rebuild some groups only
@pytest.fixture(scope="module")
def regrouped(armfail):
    """On a new commit tagged v1.0.1 (armv7l fixed): `--group arm` before the amd64 ref exists, a full release,
    then `--rebuild --group arm` (amd64 reused from the full release's per-group ref)."""
    root, prefix, _, _, _ = armfail
    set_fail_on(root, "none")
    commit(root, "fixes armv7l", tag="v1.0.1")
    early = bakery(root, "release", "--group", "arm")
    full = bakery(root, "release")
    assert full.returncode == 0, full.stderr[-4000:]
    digest = digest_of(prefix, "probe", "1.0.1")
    again = bakery(root, "release", "--rebuild", "--group", "arm", "--untag-intermediate")
    return prefix, early, digest, again


def test_group_without_the_other_groups_refs_fails_before_building(regrouped) -> None:
    _, early, _, _ = regrouped
    assert early.returncode != 0
    assert "probe: group amd64 is not rebuilt (--group) and" in early.stderr and ":1.0.1-amd64 does not exist" \
        in early.stderr
    assert "== build" not in early.stdout


def test_group_rebuilds_one_group_and_reuses_the_others_ref(regrouped) -> None:
    prefix, _, digest, again = regrouped
    assert again.returncode == 0, again.stderr[-3000:]
    assert "== build and push 1 target(s) to the per-group refs 1.0.1-arm" in again.stdout
    assert "[probe linux/amd64] passed" in again.stdout          # the reused group is tested too
    assert digest_of(prefix, "probe", "1.0.1") == digest == digest_of(prefix, "probe", "latest")


# --------------------------------------------------------------------------- publish is all or nothing
def test_a_tag_that_fails_to_move_puts_every_moved_tag_back(stack: str) -> None:
    from bakery.manifest.drafts import copy_manifest, index_bytes
    from bakery.oci.registry import Registry
    from bakery.release.plan import IndexPlan
    from bakery.release.publish import publish
    from bakery.oci.registry import digest_of as sha256
    from bakery.errors import BakeryError
    from tests.integration.faultproxy import Fault, FaultProxy

    repo = new_prefix(stack).split("/", 1)[1] + "/rollback"
    direct = Registry.for_host(stack)
    old = direct.get_manifest("base/busybox", "1.35")
    copy_manifest(direct, "base/busybox", repo, old.digest)
    for tag in ("1", "latest"):
        direct.put_manifest(repo, tag, old.raw, old.media_type)
    new_raw = index_bytes(old.json["manifests"][:1])
    plan = IndexPlan("probe", repo, f"{stack}/{repo}", ("1.1.0", "1", "latest"), new_raw, sha256(new_raw), False)
    with FaultProxy(stack, [Fault("500", method="PUT", path=r"/manifests/latest$", limit=1)]) as proxy:
        registry = Registry(proxy.host, insecure=True, retries=0)
        with pytest.raises(BakeryError, match=r"publish failed: .*2 tag\(s\) had moved and were put back"):
            publish(registry, [plan])
    assert direct.head_manifest(repo, "1") == old.digest
    assert direct.head_manifest(repo, "latest") == old.digest
    assert direct.head_manifest(repo, "1.1.0") is None


def test_untag_intermediate_removes_the_per_group_refs_after_publishing(regrouped) -> None:
    prefix, _, digest, again = regrouped
    assert not {"1.0.1-amd64", "1.0.1-arm"} & tags_of(prefix, "probe")
    assert f"untagged {prefix}/probe:1.0.1-arm (manifest " in again.stdout
    pull_every_platform(f"{prefix}/probe:1.0.1", list(UNAME))


def test_dry_run_prints_the_plan_and_publishes_nothing(armfail) -> None:
    root, prefix, _, _, _ = armfail
    proc = bakery(root, "release", "--dry-run", "--version", "3.0.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"  probe: {prefix}/probe: 3.0.0 3.0 3 latest sha-" in proc.stdout
    assert "would run smoke test `/probe/test --verbose` on probe linux/arm/v7" in proc.stdout
    assert f"would publish one index (linux/amd64, linux/arm64, linux/arm/v7, attestations keep) as {prefix}/probe:" \
        in proc.stdout
    assert "docker buildx bake" in proc.stderr and "--push" in proc.stderr
    assert not {t for t in tags_of(prefix, "probe") if t.startswith("3.")}


# --------------------------------------------------------------------------- fan-out: per-group jobs, then publish
@pytest.fixture(scope="module")
def fanned_out(regrouped, armfail):
    """v1.0.2: `--group arm --no-publish` (the arm job), then `--group amd64` (the final job)."""
    root, prefix, _, _, _ = armfail
    (root / "probe" / "NOTES").write_text("1.0.2\n")
    commit(root, "1.0.2", tag="v1.0.2")
    arm_job = bakery(root, "release", "--group", "arm", "--no-publish")
    tags_between = tags_of(prefix, "probe")
    final = bakery(root, "release", "--group", "amd64")
    return prefix, arm_job, tags_between, final


def test_a_no_publish_group_job_tests_its_group_and_publishes_nothing(fanned_out) -> None:
    _, arm_job, tags_between, _ = fanned_out
    assert arm_job.returncode == 0, arm_job.stderr[-3000:]
    assert "[probe linux/arm/v7] passed" in arm_job.stdout and "[probe linux/amd64]" not in arm_job.stdout
    assert "note: probe: group amd64 neither rebuilt nor found under 1.0.2-amd64" in arm_job.stdout
    assert "1.0.2-arm" in tags_between and not {"1.0.2", "1.0.2-amd64"} & tags_between


def test_the_final_job_reuses_the_other_groups_and_publishes_all_platforms(fanned_out) -> None:
    prefix, _, _, final = fanned_out
    assert final.returncode == 0, final.stderr[-3000:]
    assert all(f"[probe {p}] passed" in final.stdout for p in UNAME)
    index, digest = registry_manifest(f"{prefix}/probe", "1.0.2")
    assert sorted(index_platforms(index)) == sorted(UNAME)
    assert digest == digest_of(prefix, "probe", "latest")


# --------------------------------------------------------------------------- SIGTERM
def test_sigterm_during_the_smoke_tests_leaves_no_container_and_publishes_nothing(tmp_path: Path, stack: str) -> None:
    import signal
    import subprocess
    import sys
    import time
    prefix = new_prefix(stack)
    root = armfail_project(tmp_path / "project", prefix)
    probe = root / "probe" / "test"
    probe.write_text(probe.read_text().replace('echo "probe ok"', 'sleep 60\necho "probe ok"'))
    commit(root, "slow smoke test", tag="v3.0.0")
    proc = subprocess.Popen([sys.executable, "-m", "bakery", "release"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.time() + 600
    seen = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        seen += line
        if "== smoke tests" in line or not line:
            break
    time.sleep(8)       # the first platform's container is up and sleeping
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, seen[-2000:] + out[-2000:] + err[-2000:]
    assert "bakery: terminated (SIGTERM)" in err and "Traceback" not in err
    names = subprocess.run(["docker", "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True).stdout
    assert not [n for n in names.split() if n.startswith("bakery-smoke-") and str(proc.pid) in n]
    assert not {"3.0.0", "3.0", "3", "latest"} & tags_of(prefix, "probe")


def test_a_data_only_image_is_released_after_a_pull_and_inspect_per_platform(tmp_path: Path, stack: str) -> None:
    prefix = new_prefix(stack)
    root = armfail_project(tmp_path / "project", prefix)
    (root / "data").mkdir()
    (root / "data" / "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
    (root / "data" / "payload").write_text("static data\n")
    cfg = root / "bakery.yaml"
    cfg.write_text(cfg.read_text().replace("images:\n", "images:\n  data: {context: data}\n"))
    commit(root, "data image", tag="v4.0.0")
    proc = bakery(root, "release", "--image", "data")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for platform in ("linux/amd64", "linux/arm64", "linux/arm/v7"):
        assert f"[data {platform}] passed: data-only image (no CMD or ENTRYPOINT): pulled and inspected as " \
               f"{platform}" in proc.stdout
    assert {"4.0.0", "latest"} <= tags_of(prefix, "data")
