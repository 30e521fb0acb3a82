"""bakery clean against the real local registry (distribution 2.8, deletion enabled), a private htpasswd
registry, a fault-injecting proxy, real buildx pushes, and the local docker engine.

Graph shapes are pushed straight through the registry API (fast); one test builds real multi-arch images with
attestations through ``bakery build --push``. Every test works under its own registry prefix. What a test
checks about the registry it reads directly over HTTP, not through bakery."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.faultproxy import Fault, FaultProxy
from tests.integration.seed import MultiArch, Pushed, Seeder, digest_at, exists, private_registry, tags_of

from bakery.clean import execute as clean  # noqa: E402
from bakery.clean.policy import Target  # noqa: E402
from bakery.errors import BakeryError, RegistryError  # noqa: E402
from bakery.oci.registry import Registry  # noqa: E402
from bakery.clean.retention import DELETE_DIGEST, RETAG_THEN_DELETE, Policy, Rule  # noqa: E402
from bakery.doctor.provision import created_builders, record_created  # noqa: E402
from bakery.oci.untag import untag  # noqa: E402

from tests.conftest import docker, docker_config_dir, registry_manifest  # noqa: E402

pytestmark = pytest.mark.stack


def iso(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def host(stack: str) -> str:
    return stack


@pytest.fixture
def repo(prefix: str) -> str:
    """The repository path (on 127.0.0.1:5000) of this test: t-<random>/app."""
    return f"{prefix.split('/', 1)[1]}/app"


@pytest.fixture
def registry(host: str) -> Registry:
    return Registry.for_host(host)


@pytest.fixture
def seed(registry: Registry, repo: str) -> Seeder:
    return Seeder(registry, repo)


Run = Callable[..., tuple[clean.RepoPlan, clean.Outcome]]


@pytest.fixture
def run(registry: Registry, repo: str, host: str) -> Run:
    """Plan and execute through the Python API, as the task does."""
    def go(policy: Policy, *, client: Registry | None = None, workers: int = 4) -> tuple[clean.RepoPlan, clean.Outcome]:
        reg = client or registry
        target = Target("app", f"{host}/{repo}", repo)
        repo_plan = clean.plan_target(reg, target, policy, datetime.now(UTC), workers=workers)
        return repo_plan, clean.execute(reg, repo_plan, workers=workers)
    return go


def all_exist(host: str, repo: str, items: MultiArch) -> bool:
    return all(exists(host, repo, m.digest) for m in (items.index, *items.children))


def none_exist(host: str, repo: str, items: MultiArch) -> bool:
    return not any(exists(host, repo, m.digest) for m in (items.index, *items.children))


def project(root: Path, registry_prefix: str, retention: dict[str, object] | None = None) -> Path:
    """A bakery project with one image `app` (busybox + a copied file) in groups amd64 and arm."""
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text("FROM 127.0.0.1:5000/base/busybox:1.35\nCOPY stamp /stamp\n")
    (root / "app" / "stamp").write_text("1\n")
    doc = {"registry": registry_prefix, "platform_groups": {"amd64": ["linux/amd64"], "arm": ["linux/arm64"]},
           "images": {"app": {"context": "app"}}}
    if retention is not None:
        doc["retention"] = retention
    (root / "bakery.yaml").write_text(json.dumps(doc, indent=2))
    return root


# --- the graph rules, on the real registry ------------------------------------------------------------------


def test_removing_a_tag_that_shares_its_digest_with_a_kept_tag_keeps_the_image(
        seed: Seeder, run: Run, host: str, repo: str) -> None:
    image = seed.multiarch("latest", nonce="shared")
    seed.tag("pr-1", image.index)
    repo_plan, outcome = run(Policy((Rule("pr-.*", keep_last=0),)))
    assert [(a.tag, a.method) for a in repo_plan.plan.remove_tags] == [("pr-1", RETAG_THEN_DELETE)]
    assert outcome.ok, outcome.to_dict()
    assert tags_of(host, repo) == ["latest"]
    assert digest_at(host, repo, "latest") == image.index.digest
    assert all_exist(host, repo, image)


def test_a_removed_multi_arch_index_takes_its_images_and_attestations_with_it(
        seed: Seeder, run: Run, host: str, repo: str) -> None:
    old = seed.multiarch("v1", created=iso(60), nonce="old")
    new = seed.multiarch("v2", created=iso(1), nonce="new")
    repo_plan, outcome = run(Policy((Rule("v[0-9]+", keep_last=1),)))
    assert outcome.ok, outcome.to_dict()
    assert {a.digest for a in repo_plan.plan.delete_digests} == {m.digest for m in (old.index, *old.children)}
    assert repo_plan.plan.delete_digests[0].digest == old.index.digest   # parent first
    assert none_exist(host, repo, old)
    assert all_exist(host, repo, new)
    assert tags_of(host, repo) == ["v2"]


def test_a_platform_image_shared_by_a_kept_and_a_removed_index_stays(
        seed: Seeder, run: Run, host: str, repo: str) -> None:
    old = seed.multiarch("v1", created=iso(60), nonce="old")
    new = seed.multiarch("v2", created=iso(1), nonce="new", shared={"amd64": old.images[0]})
    repo_plan, outcome = run(Policy((Rule("v[0-9]+", keep_last=1),)))
    assert outcome.ok, outcome.to_dict()
    shared, only_old = old.images
    assert exists(host, repo, shared.digest)
    assert not exists(host, repo, only_old.digest)
    assert not exists(host, repo, old.index.digest)
    assert all_exist(host, repo, new)
    assert shared.digest in {p.what for p in repo_plan.plan.protected}


def test_keep_last_counts_images_by_age_older_than_and_protect_decide_the_rest(
        seed: Seeder, run: Run, host: str, repo: str) -> None:
    releases = {f"release-{i}": seed.image("amd64", created=iso(days), nonce=f"r{i}")
                for i, days in ((1, 400), (2, 300), (3, 200), (4, 100))}
    for tag, image in releases.items():
        seed.tag(tag, image)
    seed.tag("release-4-again", releases["release-4"])                  # a second tag on the newest image
    nightly_old = seed.image("amd64", created=None, labels={"org.opencontainers.image.created": iso(40)}, nonce="n1")
    nightly_new = seed.image("amd64", created=iso(2), nonce="n2")
    nightly_epoch = seed.image("amd64", created="1970-01-01T00:00:00Z", nonce="n3")
    for tag, image in (("nightly-1", nightly_old), ("nightly-2", nightly_new), ("nightly-3", nightly_epoch)):
        seed.tag(tag, image)
    policy = Policy((Rule("release-.*", keep_last=2), Rule("nightly-.*", older_than=timedelta(days=30))),
                    protect=("release-1",))
    repo_plan, outcome = run(policy)
    assert outcome.ok, outcome.to_dict()
    assert tags_of(host, repo) == ["nightly-2", "nightly-3", "release-1", "release-3", "release-4",
                                   "release-4-again"]
    assert any("placeholder created time 1970-01-01" in w for w in repo_plan.plan.warnings)
    assert not exists(host, repo, releases["release-2"].digest)
    assert not exists(host, repo, nightly_old.digest)


def test_untagged_delete_removes_a_visible_untagged_image_but_never_children_of_tagged_ones(
        seed: Seeder, run: Run, host: str, repo: str) -> None:
    tagged = seed.multiarch("v1", nonce="tagged")
    loose = seed.image("amd64", nonce="pushed-by-digest")                 # untagged, signed by digest
    signature = seed.image("amd64", created=None, layers=(b"sig",), nonce="sig")
    seed.tag(f"sha256-{loose.digest.split(':')[1]}.sig", signature)
    repo_plan, outcome = run(Policy(untagged="delete"))
    assert outcome.ok, outcome.to_dict()
    assert not exists(host, repo, loose.digest) and not exists(host, repo, signature.digest)
    assert all_exist(host, repo, tagged)
    assert tags_of(host, repo) == ["v1"]
    assert repo_plan.plan.delete_digests[0].reason == "untagged (untagged: delete); nothing kept uses it"


def test_untagged_keep_leaves_untagged_images_alone(seed: Seeder, run: Run, host: str, repo: str) -> None:
    loose = seed.image("amd64", nonce="pushed-by-digest")
    signature = seed.image("amd64", created=None, layers=(b"sig",), nonce="sig")
    seed.tag(f"sha256-{loose.digest.split(':')[1]}.sig", signature)
    repo_plan, outcome = run(Policy((Rule(".*", keep_last=0),), untagged="keep"))
    assert repo_plan.plan.is_empty and outcome.ok
    assert exists(host, repo, loose.digest) and exists(host, repo, signature.digest)


def test_many_untag_only_removals_next_to_digest_deletes_leave_no_tag_behind(
        seed: Seeder, run: Run, host: str, repo: str) -> None:
    # registry 2.8 fails a DELETE half-way when a tag link is written meanwhile; bakery never interleaves them
    for i in range(24):
        image = seed.image("amd64", nonce=f"s{i}")
        seed.tag(f"release-{i}", image)
        seed.tag(f"pr-{i}", image)                       # untag only: shares its digest with a kept tag
        seed.tag(f"pr-x{i}", seed.image("amd64", nonce=f"x{i}"))   # goes with its digest
    repo_plan, outcome = run(Policy((Rule("pr-.*", keep_last=0),)), workers=8)
    assert outcome.ok, outcome.to_dict()
    assert tags_of(host, repo) == sorted(f"release-{i}" for i in range(24))


def test_a_dangling_tag_left_by_a_half_way_delete_is_removed(bakery_cli: Callable[..., object],
                                                              tmp_path: Path) -> None:
    with private_registry() as reg:
        client = Registry(reg.host, insecure=True)
        seed = Seeder(client, "acme/app")
        kept = seed.multiarch("v1", nonce="k")
        broken = seed.image("amd64", nonce="d", tag="pr-3")
        # what a DELETE that failed after removing the manifest leaves: the tag link, no revision
        revisions = reg.root / "data/docker/registry/v2/repositories/acme/app/_manifests/revisions/sha256"
        shutil.rmtree(revisions / broken.digest.split(":")[1])
        assert "pr-3" in tags_of(reg.host, "acme/app") and not exists(reg.host, "acme/app", "pr-3")
        root = project(tmp_path / "p", f"{reg.host}/acme")
        env = {"DOCKER_CONFIG": str(reg.docker_config(tmp_path / "docker"))}
        dry = bakery_cli(root, "clean", env=env)
        assert "remove tag pr-3" in dry.stdout and "listed but resolves to no manifest" in dry.stdout  # type: ignore[attr-defined]
        bakery_cli(root, "clean", "--yes", env=env)
        assert tags_of(reg.host, "acme/app") == ["v1"]
        assert all_exist(reg.host, "acme/app", kept)


# --- races: the registry changes between plan and execute ---------------------------------------------------


def plan_removing_every_pr_tag(registry: Registry, host: str, repo: str) -> clean.RepoPlan:
    """The plan of a policy that removes every ``pr-*`` tag (made now, executed later by the test)."""
    target = Target("app", f"{host}/{repo}", repo)
    return clean.plan_target(registry, target, Policy((Rule("pr-.*", keep_last=0),)), datetime.now(UTC))


def test_a_tag_re_pushed_between_plan_and_execute_is_skipped_and_its_new_image_kept(
        seed: Seeder, registry: Registry, host: str, repo: str) -> None:
    old = seed.multiarch("pr-1", nonce="old")
    other = seed.multiarch("pr-2", nonce="other")
    repo_plan = plan_removing_every_pr_tag(registry, host, repo)
    assert {a.tag for a in repo_plan.plan.remove_tags} == {"pr-1", "pr-2"}
    # meanwhile CI pushes pr-1 again; its amd64 image is unchanged (same digest as in the old index)
    new = seed.multiarch("pr-1", nonce="new", shared={"amd64": old.images[0]})
    outcome = clean.execute(registry, repo_plan, workers=4)
    assert outcome.ok, outcome.to_dict()
    assert [e.what for e in outcome.skipped if e.what == "pr-1"] == ["pr-1"]
    assert "re-pushed since the snapshot" in next(e.detail for e in outcome.skipped if e.what == "pr-1")
    assert digest_at(host, repo, "pr-1") == new.index.digest
    assert all_exist(host, repo, new)
    assert none_exist(host, repo, other)
    assert tags_of(host, repo) == ["pr-1"]


def test_a_re_pushed_tag_reusing_an_image_another_removal_deletes_keeps_that_image(
        seed: Seeder, registry: Registry, host: str, repo: str) -> None:
    first = seed.multiarch("pr-1", nonce="one")
    second = seed.multiarch("pr-2", nonce="two")
    repo_plan = plan_removing_every_pr_tag(registry, host, repo)
    # pr-1 is rebuilt; its arm64 image comes out byte-identical to pr-2's, which the plan deletes
    rebuilt = seed.multiarch("pr-1", nonce="rebuilt", shared={"arm64": second.images[1]})
    outcome = clean.execute(registry, repo_plan, workers=4)
    assert outcome.ok, outcome.to_dict()
    assert all_exist(host, repo, rebuilt)
    assert not exists(host, repo, second.index.digest) and not exists(host, repo, second.images[0].digest)
    assert not exists(host, repo, first.index.digest) or digest_at(host, repo, "pr-1") == rebuilt.index.digest


def test_a_tag_created_meanwhile_on_a_digest_the_plan_deletes_keeps_it(
        seed: Seeder, registry: Registry, host: str, repo: str) -> None:
    image = seed.multiarch("pr-1", nonce="x")
    repo_plan = plan_removing_every_pr_tag(registry, host, repo)
    seed.tag("v1.0.0", image.index)                                       # promoted while the plan was made
    outcome = clean.execute(registry, repo_plan, workers=4)
    assert outcome.complete
    assert all_exist(host, repo, image)
    assert "v1.0.0" in tags_of(host, repo)


# --- a registry that fails: 429, 500, timeouts, resets --------------------------------------------------------


def test_a_faulty_registry_stops_the_run_cleanly_and_a_re_run_finishes_without_losing_anything(
        seed: Seeder, host: str, repo: str) -> None:
    kept = [seed.multiarch(f"v{i}", created=iso(i), nonce=f"k{i}") for i in range(1, 4)]
    gone = [seed.multiarch(f"pr-{i}", created=iso(i), nonce=f"g{i}") for i in range(1, 9)]
    seed.tag("pr-shared", kept[0].index)                                  # removed tag on a kept digest
    before = tags_of(host, repo)
    policy = Policy((Rule("pr-.*", keep_last=0),))
    victim = gone[3].images[1].digest      # a child: deleted in the second level, after every index
    faults = [
        Fault("500", method="DELETE", path=victim, limit=3),                # 3 in a row mid-run: gives up
        Fault("429", method="GET", path="/manifests/", every=5, limit=4, retry_after="1"),
        Fault("timeout", method="HEAD", every=9, limit=3, hold=1.0),
        Fault("reset", method="PUT", every=2, limit=2),
        Fault("500", method="DELETE", every=4, limit=2, after_forward=True),   # done upstream, reported failed
    ]
    with FaultProxy(host, faults) as proxy:
        client = Registry(proxy.host, insecure=True, retries=2, backoff=0.01, timeout=0.5)
        target = Target("app", f"{proxy.host}/{repo}", repo)

        def attempt() -> clean.Outcome:
            plan = clean.plan_target(client, target, policy, datetime.now(UTC), workers=4)
            return clean.execute(client, plan, workers=4)

        outcomes = []
        for _ in range(6):
            try:
                outcomes.append(attempt())
            except BakeryError as exc:           # the snapshot itself failed: nothing was changed
                outcomes.append(clean.Outcome(repo, complete=False, failed=[clean.Event("fail", repo, str(exc))]))
            if outcomes[-1].ok:
                break
        assert proxy.injected["500"] and proxy.injected["429"] and proxy.injected["reset"]
        assert proxy.injected["timeout"]
    assert not outcomes[0].complete, "the run must have stopped on the repeated 500s"
    assert any(e.action == "delete" for e in outcomes[0].done), "it must have stopped half way"
    assert outcomes[-1].ok, [o.to_dict() for o in outcomes]
    # nothing kept was lost; everything removed is gone, children included (the journal's job)
    assert tags_of(host, repo) == ["v1", "v2", "v3"]
    assert all(all_exist(host, repo, k) for k in kept)
    assert all(none_exist(host, repo, g) for g in gone)
    assert set(before) > set(tags_of(host, repo))


def test_a_run_that_stopped_leaves_a_journal_the_next_run_finishes(
        seed: Seeder, host: str, repo: str, registry: Registry) -> None:
    gone = seed.multiarch("pr-1", nonce="g")
    kept = seed.multiarch("v1", nonce="k")
    policy = Policy((Rule("pr-.*", keep_last=0),))
    # the index goes (parents first), then every DELETE of its children fails: they are left behind untagged,
    # where registry 2.8 cannot list them
    children = "|".join(c.digest for c in gone.children)
    with FaultProxy(host, [Fault("500", method="DELETE", path=children)]) as proxy:
        client = Registry(proxy.host, insecure=True, retries=0, backoff=0.01, timeout=5)
        target = Target("app", f"{proxy.host}/{repo}", repo)
        first = clean.execute(client, clean.plan_target(client, target, policy, datetime.now(UTC)))
    assert not first.complete and first.journal
    assert not exists(host, repo, gone.index.digest)
    assert all(exists(host, repo, c.digest) for c in gone.children)
    assert tags_of(host, repo) == sorted(["v1", *first.journal])
    target = Target("app", f"{host}/{repo}", repo)
    second_plan = clean.plan_target(registry, target, policy, datetime.now(UTC))
    assert {a.tag for a in second_plan.plan.remove_tags} == set(first.journal)
    assert {a.digest for a in second_plan.plan.delete_digests} >= {c.digest for c in gone.children}
    second = clean.execute(registry, second_plan)
    assert second.ok, second.to_dict()
    assert none_exist(host, repo, gone) and all_exist(host, repo, kept)
    assert tags_of(host, repo) == ["v1"]


# --- the task, end to end ----------------------------------------------------------------------------------


def test_the_dry_run_prints_the_plan_and_changes_nothing(
        seed: Seeder, bakery_cli: Callable[..., object], tmp_path: Path, prefix: str, host: str, repo: str) -> None:
    seed.multiarch("pr-1", nonce="a")
    seed.tag("latest", seed.multiarch("pr-2", nonce="b").index)
    root = project(tmp_path, prefix, {"rules": [{"match": "pr-.*", "keep_last": 0}]})
    before = {t: digest_at(host, repo, t) for t in tags_of(host, repo)}
    proc = bakery_cli(root, "clean")
    out = proc.stdout  # type: ignore[attr-defined]
    assert out.splitlines()[0].startswith(f"{prefix}/app: 3 tags, 10 manifests -> remove 2 tags, delete 5 manifests")
    assert "remove tag pr-1" in out and "goes with its digest" in out
    assert "remove tag pr-2" in out and "untag only: shared with kept tag latest" in out
    assert out.rstrip().endswith("dry run: nothing was changed; run with --yes to apply this plan")
    assert "reading tags 3/3" in proc.stderr  # type: ignore[attr-defined]
    assert {t: digest_at(host, repo, t) for t in tags_of(host, repo)} == before


def test_the_plan_of_the_dry_run_is_the_plan_the_real_run_executes(
        seed: Seeder, bakery_cli: Callable[..., object], tmp_path: Path, prefix: str, host: str, repo: str) -> None:
    for i in range(4):
        seed.multiarch(f"v{i}", created=iso(10 * i + 1), nonce=f"v{i}")
    seed.tag("latest", seed.multiarch("pr-1", nonce="p").index)
    root = project(tmp_path, prefix, {"rules": [{"match": "pr-.*", "keep_last": 0},
                                                {"match": "v[0-9]+", "keep_last": 2}]})
    dry = json.loads(bakery_cli(root, "clean", "--json").stdout)  # type: ignore[attr-defined]
    real = json.loads(bakery_cli(root, "clean", "--json", "--yes").stdout)  # type: ignore[attr-defined]
    assert dry["dry_run"] is True and real["dry_run"] is False
    assert [r["plan"] for r in dry["repositories"]] == [r["plan"] for r in real["repositories"]]
    (result,) = [r["result"] for r in real["repositories"]]
    assert result["ok"] and not result["failed"] and not result["skipped"]
    done = {e["what"] for e in result["done"] if e["action"] in ("delete", "untag")}
    planned = dry["repositories"][0]["plan"]
    assert done == {d["digest"] for d in planned["delete_digests"]} | \
        {t["tag"] for t in planned["remove_tags"] if t["method"] == RETAG_THEN_DELETE}
    assert tags_of(host, repo) == ["latest", "v0", "v1"]


def test_basic_auth_registry_with_credentials_from_docker_config(
        bakery_cli: Callable[..., object], tmp_path: Path) -> None:
    password = "s3cret-" + secrets.token_hex(4)
    with private_registry(htpasswd=("ci", password)) as reg:
        client = Registry(reg.host, insecure=True, credentials=("ci", password))
        seed = Seeder(client, "acme/app")
        seed.multiarch("pr-1", nonce="a")
        kept = seed.multiarch("v1", nonce="b")
        root = project(tmp_path / "p", f"{reg.host}/acme", {"rules": [{"match": "pr-.*", "keep_last": 0}]})
        denied = bakery_cli(root, "clean", check=False,  # type: ignore[operator]
                            env={"DOCKER_CONFIG": str(docker_config_dir(tmp_path / "empty"))})
        assert denied.returncode == 1
        assert f"{reg.host} needs a login" in denied.stderr
        config_dir = reg.docker_config(tmp_path / "docker")
        proc = bakery_cli(root, "clean", "--yes", env={"DOCKER_CONFIG": str(config_dir)})  # type: ignore[operator]
        assert "validated: every kept tag and everything it reaches resolves" in proc.stdout
        assert password not in proc.stdout + proc.stderr
        auth = ("ci", password)
        assert tags_of(reg.host, "acme/app", auth) == ["v1"]
        assert all(exists(reg.host, "acme/app", m.digest, auth) for m in (kept.index, *kept.children))


def test_real_buildx_multi_arch_builds_keep_the_newest_with_its_intermediate_refs_and_caches(
        bakery_cli: Callable[..., object], tmp_path: Path, prefix: str, host: str, repo: str) -> None:
    root = project(tmp_path, prefix, {"rules": [{"match": "t[0-9]+", "keep_last": 1}]})
    bakery_cli(root, "build", "--push", "--tag", "t1")
    (root / "app" / "stamp").write_text("2\n")
    bakery_cli(root, "build", "--push", "--tag", "t2")
    t1_index, _ = _manifest(host, repo, "t1")
    t1_children = [m["digest"] for m in t1_index["manifests"]]
    assert any((m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"
               for m in t1_index["manifests"]), "buildx pushed no attestation manifests"
    before = tags_of(host, repo)
    assert {"cache-amd64-main", "cache-arm-main", "t1-amd64", "t1-arm", "t2-amd64", "t2-arm"} <= set(before)
    proc = bakery_cli(root, "clean", "--yes")
    assert "validated" in proc.stdout  # type: ignore[attr-defined]
    assert tags_of(host, repo) == sorted(set(before) - {"t1", "t1-amd64", "t1-arm"})
    t2_index, _ = _manifest(host, repo, "t2")
    assert all(exists(host, repo, m["digest"]) for m in t2_index["manifests"])
    assert not any(exists(host, repo, d) for d in t1_children if d not in
                   {m["digest"] for m in t2_index["manifests"]})
    inspect = docker("buildx", "imagetools", "inspect", f"{prefix}/app:t2")
    assert "linux/arm64" in inspect.stdout and "linux/amd64" in inspect.stdout


def _manifest(host: str, repo: str, ref: str) -> tuple[dict, str]:
    return registry_manifest(f"{host}/{repo}", ref)


# --- local cleanup -----------------------------------------------------------------------------------------


@pytest.fixture
def stale_builder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A builder `setup` would have recorded creating (clean --local removes only those), in a state dir of this
    test's own (XDG_STATE_HOME, inherited by the bakery processes the test starts)."""
    name = f"bakery-t{uuid.uuid4().hex[:8]}-old"
    docker("buildx", "create", "--name", name, "--driver", "docker-container")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    record_created(name, "docker-container")
    yield name
    docker("buildx", "rm", name, check=False)


@pytest.fixture
def dangling_image(tmp_path: Path) -> Iterator[str]:
    """A dangling (untagged) local image labelled for this test only: loaded without a name."""
    label = f"dev.bakery.test={uuid.uuid4().hex[:10]}"
    ctx = tmp_path / "dangle"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM 127.0.0.1:5000/base/busybox:1.35\nCOPY f /f\n")
    (ctx / "f").write_text(label)
    engine = docker("context", "show").stdout.strip()   # the selected stack's docker-driver builder
    image_id = docker("buildx", "build", "--quiet", "--builder", engine, "--load", "--label", label,
                      str(ctx)).stdout.strip()
    yield label
    docker("image", "rm", "-f", image_id, check=False)


def dangling(label: str) -> list[str]:
    out = docker("image", "ls", "--quiet", "--filter", "dangling=true", "--filter", f"label={label}").stdout
    return out.split()


def test_local_dry_run_lists_the_exact_commands(bakery_cli: Callable[..., object], tmp_path: Path, prefix: str,
                                                stale_builder: str) -> None:
    root = project(tmp_path, prefix)
    proc = bakery_cli(root, "clean", "--local", "--keep-storage", "5gb", "--filter", "until=168h",
                      "--builder-prefix", stale_builder[:-4])
    lines = proc.stdout.splitlines()  # type: ignore[attr-defined]
    assert lines == [
        "would prune the build cache of builder default: docker buildx prune --force "
        "--keep-storage 5gb --filter until=168h",
        f"would remove stale builder {stale_builder} (driver docker-container, not in bakery.yaml): "
        f"docker buildx rm {stale_builder}",
        "would remove dangling images: docker image prune --force",
        "dry run: nothing was changed; run with --yes to apply",
    ]
    assert stale_builder in docker("buildx", "ls").stdout


def test_local_cleanup_prunes_removes_stale_builders_and_dangling_images(
        bakery_cli: Callable[..., object], tmp_path: Path, prefix: str, stale_builder: str,
        dangling_image: str) -> None:
    assert dangling(dangling_image)
    root = project(tmp_path, prefix)
    # keep-storage far above what this machine holds: prune runs but removes nothing other agents need
    proc = bakery_cli(root, "clean", "--local", "--yes", "--json", "--keep-storage", "1000gb",
                      "--builder-prefix", stale_builder[:-4], "--image-filter", f"label={dangling_image}")
    report = json.loads(proc.stdout)  # type: ignore[attr-defined]
    assert [s["what"].split(" (")[0] for s in report["local"]] == [
        "prune the build cache of builder default", f"remove stale builder {stale_builder}",
        "remove dangling images"]
    assert stale_builder not in docker("buildx", "ls").stdout
    assert dangling(dangling_image) == []


def test_local_only_flags_need_local(bakery_cli: Callable[..., object], tmp_path: Path, prefix: str) -> None:
    proc = bakery_cli(project(tmp_path, prefix), "clean", "--keep-storage", "1gb", check=False)
    assert proc.returncode == 1  # type: ignore[attr-defined]
    assert proc.stderr.strip() == "bakery: --keep-storage, --filter and --image-filter apply to --local only"  # type: ignore[attr-defined]


def test_a_bad_retention_policy_is_one_line_naming_the_key(bakery_cli: Callable[..., object], tmp_path: Path,
                                                           prefix: str) -> None:
    root = project(tmp_path, prefix, {"rules": [{"match": "pr-.*", "keep_lats": 0}]})
    proc = bakery_cli(root, "clean", check=False)
    assert proc.returncode == 1  # type: ignore[attr-defined]
    assert proc.stderr.strip() == ("bakery: bakery.yaml: retention.rules[0].keep_lats: unknown key 'keep_lats'; "  # type: ignore[attr-defined]
                                   "did you mean 'keep_last'?")


def test_delete_digest_tags_and_retagged_tags_are_both_reported(seed: Seeder, run: Run) -> None:
    image = seed.multiarch("latest", nonce="a")
    seed.tag("pr-1", image.index)
    seed.multiarch("pr-2", nonce="b")
    repo_plan, outcome = run(Policy((Rule("pr-.*", keep_last=0),)))
    methods = {a.tag: a.method for a in repo_plan.plan.remove_tags}
    assert methods == {"pr-1": RETAG_THEN_DELETE, "pr-2": DELETE_DIGEST}
    untag = next(e for e in outcome.done if e.action == "untag")
    assert (untag.what, untag.detail.split(" (")[0]) == ("pr-1", "retag-then-delete")
    assert outcome.journal and all(e.action != "fail" for e in outcome.done)


def test_a_registry_error_carries_the_http_status_of_the_answer(registry: Registry, repo: str) -> None:
    with pytest.raises(RegistryError) as missing:
        registry.get_blob(repo, "sha256:" + "0" * 64)
    assert missing.value.status == 404 and "answered 404" in str(missing.value)


def test_a_registry_error_carries_the_error_code_of_the_answer(registry: Registry, repo: str) -> None:
    with pytest.raises(RegistryError) as missing:
        registry.get_manifest(repo, "sha256:" + "0" * 64)
    assert (missing.value.status, missing.value.code) == (404, "MANIFEST_UNKNOWN")


def test_registry_2_8_names_the_digest_a_dangling_tag_points_at() -> None:
    """The state a DELETE racing a tag PUT leaves (the tag's link written after the revision link went), made
    on a private registry's storage: the 404 of that tag says which manifest it needs."""
    with private_registry() as reg:
        client = Registry(reg.host, insecure=True)
        pushed = Seeder(client, "acme/app").image("amd64", nonce=uuid.uuid4().hex)
        Seeder(client, "acme/app").tag("v1.0.0", pushed)
        assert client.dangling_revision("acme/app", "v1.0.0") is None              # it resolves
        revisions = reg.root / "data/docker/registry/v2/repositories/acme/app/_manifests/revisions/sha256"
        (revisions / pushed.digest.split(":")[1] / "link").unlink()
        assert client.head_manifest("acme/app", "v1.0.0") is None
        assert client.dangling_revision("acme/app", "v1.0.0") == pushed.digest
        assert client.dangling_revision("acme/app", "never-pushed") is None


def test_local_cleanup_never_removes_a_bakery_named_builder_bakery_did_not_create(
        bakery_cli: Callable[..., object], tmp_path: Path, prefix: str, stale_builder: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "other-state"))      # no record of it
    root = project(tmp_path, prefix)
    proc = bakery_cli(root, "clean", "--local", "--yes", "--keep-storage", "1000gb",
                      "--builder-prefix", stale_builder[:-4])
    assert stale_builder not in proc.stdout  # type: ignore[attr-defined]
    assert stale_builder in docker("buildx", "ls").stdout
    assert created_builders() == {}


# --- a registry that refuses DELETE --------------------------------------------------------------------------


def test_clean_on_a_registry_that_refuses_delete_changes_nothing_and_says_what_it_needs(
        bakery_cli: Callable[..., object], tmp_path: Path) -> None:
    with private_registry(delete=False) as reg:
        client = Registry(reg.host, insecure=True)
        seed = Seeder(client, "acme/app")
        seed.multiarch("pr-1", nonce="a")
        seed.tag("pr-2", seed.multiarch("v1", nonce="b").index)
        before = {t: digest_at(reg.host, "acme/app", t) for t in tags_of(reg.host, "acme/app")}
        root = project(tmp_path / "p", f"{reg.host}/acme", {"rules": [{"match": "pr-.*", "keep_last": 0}]})
        proc = bakery_cli(root, "clean", "--yes", check=False,  # type: ignore[operator]
                          env={"DOCKER_CONFIG": str(reg.docker_config(tmp_path / "docker"))})
        assert proc.returncode == 1
        assert [ln for ln in re.split(r"[\r\n]", proc.stderr) if ln.startswith("bakery:")] == [
            f"bakery: {reg.host}/acme/app: registry {reg.host} refuses DELETE (405): enable `storage.delete.enabled` "
            "(distribution) or remove images with the registry's own API or retention policy; nothing was changed"]
        assert {t: digest_at(reg.host, "acme/app", t) for t in tags_of(reg.host, "acme/app")} == before


# --- races: publishes landing while clean deletes, on the real registry ---------------------------------------


class Racing(Registry):
    """The client clean uses, telling a test when each DELETE is about to leave (``hook(digest)``, which may
    block: the publish it runs then lands between clean's last check and that DELETE)."""

    hook: Callable[[str], None] | None = None

    def delete_manifest(self, repo: str, digest: str) -> bool:
        if self.hook is not None:
            self.hook(digest)
        return super().delete_manifest(repo, digest)


def resolves_fully(host: str, repo: str, tag: str) -> bool:
    """The tag, its index and every manifest the index lists exist (read straight from the registry)."""
    digest = digest_at(host, repo, tag)
    if digest is None:
        return False
    body, _ = registry_manifest(f"{host}/{repo}", tag)
    return all(exists(host, repo, d["digest"]) for d in body.get("manifests") or [])


def pr_repo(seed: Seeder, n: int = 4) -> list[MultiArch]:
    """A kept `latest` and ``n`` removable pr-* indexes, each of two images with attestations."""
    seed.multiarch("latest", nonce=f"keep-{seed.repo}")
    return [seed.multiarch(f"pr-{i}", nonce=f"pr{i}-{seed.repo}") for i in range(n)]


def race(host: str, repo: str, publish: Callable[[Seeder, list[MultiArch]], dict[str, bool]],
         reps: int = 10, may_vanish: bool = False) -> list[dict[str, object]]:
    """Run ``clean --yes`` (pr-* removed) ``reps`` times, each time with ``publish`` started on a thread at a
    random moment of the delete phase (0-150 ms after clean's first DELETE of a planned digest). ``publish`` returns {tag: whether the
    registry accepted it}. Every accepted tag must resolve fully afterwards, and the run must validate."""
    import random
    import threading
    stats = []
    for rep in range(reps):
        name = f"{repo}{rep}"
        client = Racing(host, insecure=True)
        seed = Seeder(client, name)
        removed = pr_repo(seed)
        target = Target("app", f"{host}/{name}", name)
        repo_plan = clean.plan_target(client, target, Policy((Rule("pr-.*", keep_last=0),)), datetime.now(UTC))
        started, published = threading.Event(), {}
        planned = {a.digest for a in repo_plan.plan.delete_digests}
        client.hook = lambda d: started.set() if d in planned else None

        def publisher() -> None:
            started.wait(30)
            time.sleep(random.uniform(0, 0.15))
            published.update(publish(Seeder(Registry(host, insecure=True), name), removed))

        thread = threading.Thread(target=publisher)
        thread.start()
        outcome = clean.execute(client, repo_plan, workers=4)
        thread.join(60)
        assert outcome.ok, (rep, published, outcome.problems, outcome.failed, outcome.restored)
        # may_vanish: a tag put on the very digest clean deletes, in the round trip between clean's last tag list
        # and that DELETE, goes with the digest (registry 2.8; docs/clean.md): gone, never broken
        lost = [t for t, accepted in published.items() if accepted and not resolves_fully(host, name, t)
                and not (may_vanish and t not in tags_of(host, name))]
        assert not lost, (rep, lost, outcome.to_dict())
        left = {t: digest_at(host, name, t) for t in tags_of(host, name) if t.startswith("pr-")}
        assert not left, (rep, left, outcome.to_dict())
        stats.append({"published": published, "restored": len(outcome.restored),
                      "guarded": len([e for e in outcome.skipped if "changed since the snapshot" in e.detail])})
    return stats


def test_a_new_index_reusing_children_clean_deletes_resolves_fully_10_times(host: str, repo: str) -> None:
    def new_index(seed: Seeder, removed: list[MultiArch]) -> dict[str, bool]:
        old = removed[0]
        for image in old.images:            # what a pusher does: HEAD each child, PUT the ones that are missing
            if not exists(host, seed.repo, image.digest):
                seed.put(image.raw, image.media_type)
        try:
            seed.index(list(old.images), tag="main-1")
            return {"main-1": True}
        except RegistryError:               # a child went between the HEAD and the index PUT: a loud failure
            return {"main-1": False}

    stats = race(host, repo, new_index)
    assert sum(1 for s in stats if s["published"]["main-1"]) >= 5, stats   # type: ignore[index]
    print("new index:", stats)


def test_a_removed_index_promoted_while_clean_deletes_resolves_fully_10_times(host: str, repo: str) -> None:
    def promote(seed: Seeder, removed: list[MultiArch]) -> dict[str, bool]:
        try:
            seed.tag("v1.0.0", removed[0].index)           # the release tool re-tags pr-0's index
            return {"v1.0.0": True}
        except RegistryError:                              # its children were already gone: refused, loudly
            return {"v1.0.0": False}

    stats = race(host, repo, promote, may_vanish=True)
    print("promotion:", stats)


def ci_repo(seed: Seeder, tags: Sequence[str]) -> dict[str, list[Pushed]]:
    """What `bakery build --push --tag T` leaves, per tag: per-group refs T-amd64 and T-arm (indexes of one image
    plus its attestation) stitched into T; and a cosign-style signature `sha256-<T's index>.sig`."""
    made: dict[str, list[Pushed]] = {}
    for tag in tags:
        amd, arm = (seed.image(a, nonce=f"{tag}-{a}-{seed.repo}") for a in ("amd64", "arm64"))
        att_amd, att_arm = (seed.attestation(i, nonce=f"{tag}-{seed.repo}") for i in (amd, arm))
        groups = [seed.index([amd], tag=f"{tag}-amd64", attestations=[(att_amd, amd)]),
                  seed.index([arm], tag=f"{tag}-arm", attestations=[(att_arm, arm)])]
        public = seed.index([amd, arm], tag=tag, attestations=[(att_amd, amd), (att_arm, arm)])
        sig = seed.image("amd64", created=None, layers=(f"sig-{tag}".encode(),), nonce=f"sig-{tag}-{seed.repo}")
        seed.tag(f"sha256-{public.digest.split(':')[1]}.sig", sig)
        made[tag] = [public, *groups, amd, arm, att_amd, att_arm, sig]
    return made


def test_sigkill_at_random_points_then_a_re_run_loses_nothing_kept_and_leaves_nothing_planned(
        tmp_path: Path, host: str, prefix: str) -> None:
    import random
    import sys
    kills: list[float] = []
    midway, full, cycle = 0, 0.0, -1
    while len(kills) < 20 and cycle < 60:          # at least 20 runs really killed, at random points
        cycle += 1
        cycle_prefix = f"{prefix}{cycle}"
        name = f"{cycle_prefix.split('/', 1)[1]}/app"
        seed = Seeder(Registry(host, insecure=True), name)
        made = ci_repo(seed, ["v1", "pr-1", "pr-2", "pr-3"])
        seed.tag("pr-s", made["v1"][0])                         # untag only: shares v1's index
        root = project(tmp_path / f"c{cycle}", cycle_prefix, {"rules": [{"match": "pr-.*", "keep_last": 0}]})
        argv = [sys.executable, "-m", "bakery", "clean", "--yes"]
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if cycle == 0:                                          # calibration: how long a whole run takes here
            assert proc.wait(300) == 0
            full = time.monotonic() - started
            continue
        delay = random.uniform(0.35 * full, 0.9 * full)        # a point inside the run (full: the fastest yet)
        try:
            proc.wait(delay)
            full = min(full, time.monotonic() - started)       # it was over sooner: runs are this fast
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            kills.append(delay)
            before = tags_of(host, name)
            midway += any(t.startswith("bakery-clean-") for t in before) or "pr-1" not in before
        rerun = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, (cycle, delay, rerun.stdout[-2000:], rerun.stderr[-2000:])
        assert tags_of(host, name) == sorted(["v1", "v1-amd64", "v1-arm",
                                              f"sha256-{made['v1'][0].digest.split(':')[1]}.sig"]), (cycle, delay)
        assert all(resolves_fully(host, name, t) for t in ("v1", "v1-amd64", "v1-arm"))
        assert all(exists(host, name, m.digest) for m in made["v1"])
        left = [m.digest for t in ("pr-1", "pr-2", "pr-3") for m in made[t] if exists(host, name, m.digest)]
        assert not left, (cycle, delay, left)
    assert len(kills) >= 20 and midway >= 5, (kills, midway, full)
    print(f"SIGKILL: {len(kills)} of {cycle} runs killed ({midway} after changing the registry), a whole run "
          f"{full:.2f} s, kills after {sorted(round(k, 2) for k in kills)} s")


def test_sigterm_mid_run_exits_143_with_a_message_and_a_re_run_finishes(tmp_path: Path, host: str,
                                                                         prefix: str) -> None:
    import signal
    import sys
    name = f"{prefix.split('/', 1)[1]}/app"
    seed = Seeder(Registry(host, insecure=True), name)
    made = ci_repo(seed, ["v1", *(f"pr-{i}" for i in range(1, 13))])
    root = project(tmp_path / "term", prefix, {"rules": [{"match": "pr-.*", "keep_last": 0}]})
    argv = [sys.executable, "-m", "bakery", "clean", "--yes"]
    proc = subprocess.Popen(argv, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and \
            not any(t.startswith("bakery-clean-") for t in tags_of(host, name)):   # its journal: it is deleting
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "bakery: terminated (SIGTERM)" in err and "Traceback" not in err
    rerun = subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert tags_of(host, name) == sorted(["v1", "v1-amd64", "v1-arm",
                                          f"sha256-{made['v1'][0].digest.split(':')[1]}.sig"])
    assert all(resolves_fully(host, name, t) for t in ("v1", "v1-amd64", "v1-arm"))


def test_a_real_build_and_stitches_of_identical_sources_racing_clean_resolve_fully_10_times(
        bakery_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path, prefix: str, host: str,
        repo: str) -> None:
    """Rep 0 publishes with a real `bakery build --push` of the sources pr-0 was built from (identical platform
    images); reps 1-9 re-publish those images as new per-group refs and a real `bakery stitch`. Each publish runs
    while clean holds one of its DELETEs of a platform image or attestation (a random one): the publish lands
    after clean's last check of that digest, the case only the final repair covers. (A tag put on the very digest
    being deleted in that instant is the one case no 2.8 client can catch: docs/clean.md.)"""
    import random
    root = project(tmp_path, prefix)
    bakery_cli(root, "build", "--push", "--tag", "pr-0")
    client = Racing(host, insecure=True)
    target = Target("app", f"{host}/{repo}", repo)
    policy = Policy((Rule("pr-.*", keep_last=0),))
    restored = 0
    for rep in range(10):
        tag = f"main-{rep}"
        groups = {g: client.find_manifest(repo, f"pr-{rep}-{g}") for g in ("amd64", "arm")}
        images = [client.find_manifest(repo, d["digest"]) for f in groups.values() if f for d in f.json["manifests"]]

        def publish() -> None:
            if rep == 0:
                bakery_cli(root, "build", "--push", "--tag", tag)
                return
            # a publish that fails loudly (MANIFEST_BLOB_UNKNOWN: another of clean's workers deleted an image
            # between the HEAD and the PUT of the index that lists it) is re-run whole, as CI re-runs the job
            for attempt in range(3):
                try:
                    for image in images:             # what buildx does: push each image the registry lacks
                        if image is not None and not exists(host, repo, image.digest):
                            client.put_manifest(repo, image.digest, image.raw, image.media_type)
                    for g, found in groups.items():  # a new build's per-group index: same images, new provenance
                        assert found is not None
                        doc = {**found.json, "annotations": {"org.opencontainers.image.created": iso(0),
                                                             "rep": str(rep)}}
                        client.put_manifest(repo, f"{tag}-{g}", json.dumps(doc).encode(), found.media_type)
                except RegistryError:
                    if attempt == 2:
                        raise
                    continue
                stitched = bakery_cli(root, "stitch", tag, check=attempt == 2)
                if stitched.returncode == 0:
                    return
                assert "MANIFEST_BLOB_UNKNOWN" in stitched.stderr, stitched.stderr

        repo_plan = clean.plan_target(client, target, policy, datetime.now(UTC))
        children = [a.digest for a in repo_plan.plan.delete_digests if a.cascade_from is not None]
        chosen, fired = random.choice(children), []
        client.hook = lambda d: (fired.append(d), publish()) if d == chosen and not fired else None
        outcome = clean.execute(client, repo_plan, workers=4)
        client.hook = None
        assert fired and outcome.ok, (outcome.failed, outcome.problems)
        for t in (tag, f"{tag}-amd64", f"{tag}-arm"):
            assert resolves_fully(host, repo, t), (rep, t, outcome.to_dict())
        restored += len(outcome.restored)
        assert not [t for t in tags_of(host, repo) if t.startswith("pr-")]
        for suffix in ("", "-amd64", "-arm"):         # the next rep removes what this one published
            found = client.find_manifest(repo, f"{tag}{suffix}")
            assert found is not None
            client.put_manifest(repo, f"pr-{rep + 1}{suffix}", found.raw, found.media_type)
            untag(client, repo, f"{tag}{suffix}")
    inspect = docker("buildx", "imagetools", "inspect", f"{prefix}/app:pr-10")
    assert "linux/arm64" in inspect.stdout and "linux/amd64" in inspect.stdout
    print(f"real build + stitches: {restored} manifests restored over 10 reps")
