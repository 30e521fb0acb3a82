"""bakery.release, one test group per phase of ``release()``, against the in-memory registry (and a scripted
docker for the smoke tests): planning and already-released detection, taking groups that are not rebuilt, loading
the platform manifests, smoke tests, publishing all or nothing, the report."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bakery.config import Config, load
from bakery.docker import Docker
from bakery.errors import BakeryError, RegistryError, Terminated
from bakery.oci.registry import OCI_INDEX, OCI_MANIFEST
from bakery.process import Result
from bakery.release.git import GitInfo
from bakery.release.plan import (OCI_KEYS, ImageWork, ReleaseFailed, ReleasePlan, ReleaseRequest, plan_images,
                                 release_labels)
from bakery.release.plan import IndexPlan
from bakery.release.publish import plan_indexes, publish_all
from bakery.release.report import ReleaseReport, dry_run, finish, make_report
from bakery.release.run import load_platforms, reuse_groups
from bakery.release.settings import settings
from bakery.release.smoke import smoke_all
from bakery.release.tags import parse_version, sanitize_tag
from tests.support.registry import FakeRegistry
from tests.unit.build.test_stitch import attestation, entry, group_index, image

SHA = "3f2c1ab9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3"
HOST = "registry.test/acme"
CONFIG = f"""\
registry: {HOST}
platform_groups:
  amd64: [linux/amd64]
  arm: [linux/arm64, linux/arm/v7]
images:
  api: {{context: api, test: [/test, --quick]}}
  web: {{context: web, platform_groups: [amd64]}}
"""
LABELS = {"org.opencontainers.image.revision": SHA}


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    for name in ("api", "web"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text(CONFIG)
    return load(tmp_path / "bakery.yaml")


@pytest.fixture
def reg() -> FakeRegistry:
    return FakeRegistry()


def make_plan(cfg: Config, reg: FakeRegistry, version: str = "1.2.0", groups: tuple[str, ...] = (),
              **request: Any) -> ReleasePlan:
    ver = parse_version(version)
    git = GitInfo(SHA, (f"v{version}",), "https://example.com/acme", 1_700_000_000, ())
    labels = release_labels(ver, git)
    return ReleasePlan(cfg, ReleaseRequest(groups=groups, **request), settings(cfg), git, ver,
                       f"tag v{version} on HEAD", sanitize_tag(str(ver)), HOST, reg, "acme",  # type: ignore[arg-type]
                       labels, {k: v for k, v in labels.items() if k in OCI_KEYS}, tuple(cfg.images),
                       frozenset(groups or cfg.platform_groups), False)


def build_groups(reg: FakeRegistry, revision: str = SHA) -> dict[str, dict[str, str]]:
    """What bake --push leaves: image -> group -> digest (api arm: an index with an attested arm64)."""
    labels = {"org.opencontainers.image.revision": revision}
    api_amd64 = image(reg, "amd64", repo="acme/api", labels=labels)
    arm64 = image(reg, "arm64", repo="acme/api", labels=labels)
    v7 = image(reg, "arm", "v7", repo="acme/api", labels=labels)
    api_arm = group_index(reg, [entry(reg, arm64, {"os": "linux", "architecture": "arm64"}, "acme/api"),
                                entry(reg, v7, {"os": "linux", "architecture": "arm", "variant": "v7"}, "acme/api"),
                                attestation(reg, arm64, "acme/api")], repo="acme/api")
    web = image(reg, "amd64", repo="acme/web", labels=labels)
    return {"api": {"amd64": api_amd64, "arm": api_arm}, "web": {"amd64": web}}


def built(plan: ReleasePlan, out: io.StringIO | None = None) -> dict[str, ImageWork]:
    """Phases plan and build (the bake replaced by seeding the registry), then load."""
    work = plan_images(plan, out or io.StringIO())
    for name, digests in build_groups(plan.registry).items():   # type: ignore[arg-type]
        if work[name].released is None:
            work[name].groups.update(digests)
    load_platforms(plan, work)
    return work


def published(plan: ReleasePlan, out: io.StringIO | None = None) -> dict[str, ImageWork]:
    work = built(plan)
    indexes = plan_indexes(plan, work.values())
    report = make_report(plan, work.values(), indexes, [])
    publish_all(plan, work.values(), indexes, report, out or io.StringIO())
    return work


# --------------------------------------------------------------------------- plan
def test_plan_holds_latest_behind_a_newer_release_and_finds_the_previous_one(cfg: Config, reg: FakeRegistry) -> None:
    old = image(reg, "amd64", repo="acme/api")
    for tag in ("1.1.0", "2.0.0", "1.1.0-arm"):
        reg.put_manifest("acme/api", tag, reg.manifests["acme/api"][old].raw, OCI_INDEX)
    out = io.StringIO()
    work = plan_images(make_plan(cfg, reg), out)
    api = work["api"]
    assert api.plan.tags[:3] == ("1.2.0", "1.2", "1") and "latest" not in api.plan.tags
    assert api.plan.held == (("latest", "2.0.0 is already released"),)
    assert api.previous == (parse_version("1.1.0"), "1.1.0")
    assert api.full_name == "registry.test/acme/api" and api.repository == "acme/api"
    assert "  api: latest stays where it is (2.0.0 is already released)" in out.getvalue()
    assert "latest" in work["web"].plan.tags and work["web"].previous is None


def test_an_unreachable_registry_is_an_error_except_in_a_dry_run(cfg: Config, reg: FakeRegistry,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def down(repo: str, page: int = 1000) -> list[str]:
        raise RegistryError("registry.test: connection refused")
    monkeypatch.setattr(reg, "tags", down)
    with pytest.raises(RegistryError):
        plan_images(make_plan(cfg, reg), io.StringIO())
    plan = make_plan(cfg, reg)
    plan = ReleasePlan(**{**plan.__dict__, "dry": True})
    plan_images(plan, io.StringIO())
    assert plan.notes[0].startswith("api: registry not reachable (registry.test: connection refused)")


def test_this_commits_release_already_published_is_detected_and_not_rebuilt(cfg: Config, reg: FakeRegistry) -> None:
    first = published(make_plan(cfg, reg))
    out = io.StringIO()
    again = plan_images(make_plan(cfg, reg), out)
    assert again["api"].released is not None
    assert again["api"].released.digest == reg.tag_map["acme/api"]["1.2.0"]
    assert "api: 1.2.0 is already released from this commit" in out.getvalue()
    assert plan_images(make_plan(cfg, reg, rebuild=True), io.StringIO())["api"].released is None
    other = ReleasePlan(**{**make_plan(cfg, reg).__dict__, "annotations": {
        **make_plan(cfg, reg).annotations, "org.opencontainers.image.revision": "0" * 40}})
    assert plan_images(other, io.StringIO())["api"].released is None      # another commit's 1.2.0
    assert first["api"].released is None


# --------------------------------------------------------------------------- groups not rebuilt, load
def test_a_group_not_rebuilt_comes_from_its_per_group_ref_built_from_head(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg, groups=("amd64",))
    digests = build_groups(reg)
    reg.put_manifest("acme/api", "1.2.0-arm", reg.manifests["acme/api"][digests["api"]["arm"]].raw, OCI_INDEX)
    work = plan_images(plan, io.StringIO())
    reuse_groups(plan, work)
    assert work["api"].groups == {"arm": digests["api"]["arm"]}
    assert sorted(work["api"].platforms) == ["linux/arm/v7", "linux/arm64"]


def test_a_group_not_rebuilt_from_another_commit_is_refused(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg, groups=("amd64",))
    digests = build_groups(reg, revision="9" * 40)
    reg.put_manifest("acme/api", "1.2.0-arm", reg.manifests["acme/api"][digests["api"]["arm"]].raw, OCI_INDEX)
    with pytest.raises(BakeryError, match=r"was built from 999999999999, not HEAD 3f2c1ab9e8d7; rebuild it"):
        reuse_groups(plan, plan_images(plan, io.StringIO()))


def test_a_missing_per_group_ref_is_an_error_unless_nothing_is_published(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg, groups=("amd64",))
    with pytest.raises(BakeryError, match=r"api: group arm is not rebuilt \(--group\) and .*:1.2.0-arm does not"):
        reuse_groups(plan, plan_images(plan, io.StringIO()))
    plan = make_plan(cfg, reg, groups=("amd64",), publish=False)
    work = plan_images(plan, io.StringIO())
    reuse_groups(plan, work)
    assert work["api"].missing == {"arm"}
    assert plan.notes == ["api: group arm neither rebuilt nor found under 1.2.0-arm: not tested, no index planned"]
    work["api"].groups["amd64"] = build_groups(reg)["api"]["amd64"]
    work["web"].groups["amd64"] = build_groups(reg)["web"]["amd64"]
    load_platforms(plan, work)
    assert [p.image for p in plan_indexes(plan, work.values())] == ["web"]


def test_load_gives_every_platform_in_config_order_and_checks_each_group(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg)
    work = built(plan)
    assert list(work["api"].platforms) == ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    assert list(work["web"].platforms) == ["linux/amd64"]
    wrong = plan_images(plan, io.StringIO())
    wrong["api"].groups.update({"amd64": work["api"].groups["arm"], "arm": work["api"].groups["amd64"]})
    with pytest.raises(BakeryError, match=r"holds platforms \['linux/arm64', 'linux/arm/v7'\], group amd64 is"):
        load_platforms(plan, {"api": wrong["api"]})


# --------------------------------------------------------------------------- smoke
@dataclass
class ScriptedRunner:
    """Stands in for :class:`bakery.process.Runner`: ``docker wait`` answers the exit code per platform."""

    exits: dict[str, int]
    dry_run: bool = False
    verbose: bool = False
    calls: list[list[str]] = field(default_factory=list)
    _names: dict[str, str] = field(default_factory=dict)

    def run(self, argv: list[str], **kwargs: Any) -> Result:
        self.calls.append(argv)
        if argv[1] == "run":
            self._names[argv[argv.index("--name") + 1]] = argv[argv.index("--platform") + 1]
        if argv[1] == "wait":
            return Result(argv, 0, f"{self.exits.get(self._names[argv[2]], 0)}\n", "")
        return Result(argv, 0, "hello\n" if argv[1] == "logs" else "", "")


def test_smoke_runs_every_platform_and_cleans_up(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg)
    runner = ScriptedRunner({})
    out = io.StringIO()
    work = built(plan)
    api_amd64 = work["api"].platforms["linux/amd64"].digest
    results = smoke_all(plan, Docker(runner), work.values(), "7", out)  # type: ignore[arg-type]
    assert [(r.image, r.platform, r.kind, r.status) for r in results] == [
        ("api", "linux/amd64", "test", "passed"), ("api", "linux/arm64", "test", "passed"),
        ("api", "linux/arm/v7", "test", "passed"), ("web", "linux/amd64", "start-check", "passed")]
    runs = [c for c in runner.calls if c[1] == "run"]
    assert runs[0][runs[0].index("--entrypoint") + 1:] == ["/test", f"registry.test/acme/api@{api_amd64}", "--quick"]
    assert "--entrypoint" not in runs[3] and runs[3][-1].startswith("registry.test/acme/web@sha256:")
    assert len([c for c in runner.calls if c[1:3] == ["rm", "-f"]]) == 4
    assert len([c for c in runner.calls if c[1:3] == ["image", "rm"]]) == 4
    assert "[api linux/arm/v7] hello" in out.getvalue()


def test_a_failing_platform_fails_the_release_before_publishing(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg)
    work = built(plan)
    runner = ScriptedRunner({"linux/arm/v7": 3})
    with pytest.raises(ReleaseFailed, match=r"failed at step smoke test: api linux/arm/v7: smoke test `/test "
                                            r"--quick` exited 3; nothing was published"):
        smoke_all(plan, Docker(runner), work.values(), "7", io.StringIO())  # type: ignore[arg-type]
    assert "1.2.0" not in reg.tag_map.get("acme/api", {})


def test_a_data_only_image_is_pulled_and_inspected_per_platform_not_started() -> None:
    from bakery.release.smoke import SmokeSpec, run_smoke

    class Inspecting(ScriptedRunner):
        def run(self, argv: list[str], **kwargs: Any) -> Result:
            self.calls.append(argv)
            if argv[1:3] == ["image", "inspect"]:
                return Result(argv, 0, "linux/arm64\n", "")
            return Result(argv, 0, "", "")
    runner = Inspecting({})
    spec = SmokeSpec("data", "linux/arm64", "registry.test/acme/data@sha256:" + "1" * 64, None, data_only=True)
    result = run_smoke(Docker(runner), spec, "7", 60, 2, io.StringIO())  # type: ignore[arg-type]
    assert (result.kind, result.passed) == ("data-only", True)
    assert result.detail == "data-only image (no CMD or ENTRYPOINT): pulled and inspected as linux/arm64"
    assert [c[1] for c in runner.calls] == ["pull", "image", "image"]        # pull, inspect, rm: never run


def test_a_container_that_cannot_start_is_reported_with_dockers_cause_line() -> None:
    from bakery.release.smoke import cause
    lines = ["docker: Error response from daemon: no command specified", "Run 'docker run --help' for more information"]
    assert cause(lines) == "docker: Error response from daemon: no command specified"


# --------------------------------------------------------------------------- publish
def test_publish_puts_one_index_with_every_platform_under_every_tag(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg)
    work = built(plan)
    indexes = plan_indexes(plan, work.values())
    out = io.StringIO()
    report = publish_all(plan, work.values(), indexes, make_report(plan, work.values(), indexes, []), out)
    assert report.published
    for name, platforms in (("api", ["linux/amd64", "linux/arm64", "linux/arm/v7"]), ("web", ["linux/amd64"])):
        tags = reg.tag_map[f"acme/{name}"]
        digests = {tags[t] for t in work[name].plan.tags}
        assert len(digests) == 1
        body = json.loads(reg.manifests[f"acme/{name}"][digests.pop()].raw)
        assert body["annotations"] == dict(plan.annotations)
        listed = [e["platform"] for e in body["manifests"] if "annotations" not in e]
        assert ["/".join(filter(None, (p["os"], p["architecture"], p.get("variant")))) for p in listed] == platforms
    api = json.loads(reg.manifests["acme/api"][reg.tag_map["acme/api"]["latest"]].raw)
    assert len(api["manifests"]) == 4                    # the arm64 attestation is kept
    assert f"  registry.test/acme/api@{indexes[0].digest} -> 1.2.0, 1.2, 1, latest" in out.getvalue()


def test_a_rebuild_with_the_same_images_keeps_the_published_index(cfg: Config, reg: FakeRegistry) -> None:
    published(make_plan(cfg, reg))
    before = reg.tag_map["acme/api"]["1.2.0"]
    plan = make_plan(cfg, reg, rebuild=True)
    indexes = plan_indexes(plan, built(plan).values())
    assert indexes[0].reused and indexes[0].digest == before
    assert indexes[0].note == "already published with the same images: index kept"


@dataclass
class FailingRegistry(FakeRegistry):
    fail: tuple[str, str] = ("", "")      # (repo, tag) whose first PUT fails

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> str:
        if (repo, ref) == self.fail:
            self.fail = ("", "")
            raise RegistryError(f"{self.host}: PUT {repo}:{ref}: 500 internal error", status=500)
        return super().put_manifest(repo, ref, raw, media_type)


def ready_to_publish(cfg: Config, reg: FakeRegistry) -> tuple[ReleasePlan, dict[str, ImageWork], list[IndexPlan],
                                                                 ReleaseReport]:
    """A release of acme/web that already has tags 1 and latest from an older image, built and smoke-tested."""
    old = image(reg, "amd64", repo="acme/web")
    for tag in ("1", "latest"):
        reg.put_manifest("acme/web", tag, reg.manifests["acme/web"][old].raw, OCI_INDEX)
    plan = make_plan(cfg, reg)
    work = built(plan)
    indexes = plan_indexes(plan, work.values())
    return plan, work, indexes, make_report(plan, work.values(), indexes, [])


def test_a_failing_put_leaves_nothing_half_published(cfg: Config) -> None:
    reg = FailingRegistry()
    plan, work, indexes, report = ready_to_publish(cfg, reg)
    tags_before = copy.deepcopy(reg.tag_map)
    reg.fail = ("acme/web", "latest")
    with pytest.raises(ReleaseFailed, match=r"failed at step publish: publish failed: .*PUT acme/web:latest: 500.*; "
                                            r"8 tag\(s\) had moved and were put back, nothing of this release is public"):
        publish_all(plan, work.values(), indexes, report, io.StringIO())
    assert {repo: tags for repo, tags in reg.tag_map.items() if tags} == tags_before   # new tags gone, old back
    assert not (Path(cfg.root) / cfg.bake_dir / "release.json").exists()


def test_no_publish_changes_no_tag_and_says_so(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg, publish=False)
    work = built(plan)
    indexes = plan_indexes(plan, work.values())
    reg.calls.clear()
    report = publish_all(plan, work.values(), indexes, make_report(plan, work.values(), indexes, []), io.StringIO())
    assert not report.published and report.notes[-1] == "--no-publish: nothing was published"
    assert not [c for c in reg.calls if c[0] == "PUT"]


def test_untag_intermediate_removes_the_per_group_refs(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg, untag_intermediate=True)
    digests = build_groups(reg)
    reg.put_manifest("acme/api", "1.2.0-arm", reg.manifests["acme/api"][digests["api"]["arm"]].raw, OCI_INDEX)
    for name, groups in digests.items():
        raw = reg.manifests[f"acme/{name}"][groups["amd64"]].raw
        reg.put_manifest(f"acme/{name}", "1.2.0-amd64", raw, OCI_MANIFEST)
    out = io.StringIO()
    published(plan, out)
    assert not {"1.2.0-amd64", "1.2.0-arm"} & set(reg.tag_map["acme/api"])
    assert "  untagged registry.test/acme/web:1.2.0-amd64 (manifest " in out.getvalue()


# --------------------------------------------------------------------------- report
def test_the_report_is_written_only_when_published(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg)
    work = built(plan)
    indexes = plan_indexes(plan, work.values())
    report = make_report(plan, work.values(), indexes, [])
    out = io.StringIO()
    finish(plan, report, out)
    assert not (cfg.root / cfg.bake_dir / "release.json").exists() and "== report" in out.getvalue()
    report = publish_all(plan, work.values(), indexes, report, io.StringIO())
    finish(plan, report, out)
    written = json.loads((cfg.root / cfg.bake_dir / "release.json").read_text())
    assert written["images"]["api"]["index_digest"] == indexes[0].digest
    assert sorted(written["images"]["api"]["platforms"]) == ["linux/amd64", "linux/arm/v7", "linux/arm64"]


def test_a_dry_run_says_what_it_would_do(cfg: Config, reg: FakeRegistry) -> None:
    plan = make_plan(cfg, reg)
    out = io.StringIO()
    report = dry_run(plan, plan_images(plan, io.StringIO()).values(), out)
    text = out.getvalue()
    assert "would run smoke test `/test --quick` on api linux/arm/v7 (registry.test/acme/api@<digest of " in text
    assert "would run start check on web linux/amd64" in text
    assert "would publish one index (linux/amd64, linux/arm64, linux/arm/v7, attestations keep) as " \
           "registry.test/acme/api:{1.2.0,1.2,1,latest," in text
    assert not report.published and report.images[0].index_digest is None


class InterruptedRegistry(FakeRegistry):
    """A registry during whose n-th PUT the user presses Ctrl-C (or the CI runner sends SIGTERM)."""
    at: int = 0                                      # 0: never
    signal: type[KeyboardInterrupt] = KeyboardInterrupt

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> str:
        self.at -= 1
        if self.at == 0:
            super().put_manifest(repo, ref, raw, media_type)     # the PUT landed, then the signal came
            raise self.signal()
        return super().put_manifest(repo, ref, raw, media_type)


@pytest.mark.parametrize("signal", [KeyboardInterrupt, Terminated])
def test_an_interrupt_inside_publish_puts_every_tag_back_and_says_so(cfg: Config, signal: type) -> None:
    reg = InterruptedRegistry()
    plan, work, indexes, report = ready_to_publish(cfg, reg)
    tags_before = copy.deepcopy(reg.tag_map)
    reg.at, reg.signal = 3, signal
    with pytest.raises(signal, match=r"publish stopped: 2 tag\(s\) had moved and were put back, nothing of this "
                                     r"release is public"):
        publish_all(plan, work.values(), indexes, report, io.StringIO())
    assert {repo: tags for repo, tags in reg.tag_map.items() if tags} == tags_before
