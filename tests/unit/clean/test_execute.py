"""bakery.clean.execute: the execution order helpers, and each phase of a run against the in-memory registry
(tests/support/registry.py). The whole run against a real registry is tests/integration/test_clean.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import cast

from bakery.clean import execute as clean
from bakery.clean.journal import JOURNAL_TAG
from bakery.clean.model import Node as Manifest
from bakery.clean.model import DELETE_DIGEST, RETAG_THEN_DELETE, Plan, Policy, Rule, Snapshot, TagAction
from bakery.clean.policy import Target
from bakery.clean.snapshot import Reader
from bakery.oci.registry import Registry
from bakery.oci.untag import EMPTY_DIGEST
from tests.support.registry import FakeRegistry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
REPO = "acme/api"
PR_GO = Policy((Rule("pr-.*", keep_last=0),))

# --- execution order -------------------------------------------------------------------------------


def test_levels_put_every_parent_before_its_children() -> None:
    leaf = Manifest("sha256:" + "1" * 64, OCI_MANIFEST, 1)
    ref = Manifest("sha256:" + "2" * 64, OCI_MANIFEST, 1, subject=leaf.digest)
    inner = Manifest("sha256:" + "3" * 64, OCI_INDEX, 1, children=(leaf.digest,))
    outer = Manifest("sha256:" + "4" * 64, OCI_INDEX, 1, children=(inner.digest, leaf.digest))
    other = Manifest("sha256:" + "5" * 64, OCI_MANIFEST, 1)
    manifests = {m.digest: m for m in (leaf, ref, inner, outer, other)}
    order = [outer.digest, other.digest, inner.digest, leaf.digest, ref.digest]
    levels = clean._levels(order, clean._parents(manifests))
    assert levels == [[outer.digest, other.digest], [inner.digest], [leaf.digest], [ref.digest]]


# --- phases, against the in-memory registry ---------------------------------------------------------


def image(fake: FakeRegistry, name: str, tag: str | None = None) -> str:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "annotations": {"name": name},
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": EMPTY_DIGEST, "size": 2},
           "layers": []}
    return fake.add_json(REPO, doc, tag)


def index(fake: FakeRegistry, tag: str, *children: str) -> str:
    entries = [{"mediaType": OCI_MANIFEST, "digest": d, "size": len(fake.manifests[REPO][d].raw),
                "platform": {"os": "linux", "architecture": arch}} for d, arch in zip(children, ("amd64", "arm64"))]
    return fake.add_json(REPO, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, tag)


def planned(fake: FakeRegistry, policy: Policy = PR_GO) -> clean.Execution:
    """Snapshot and plan the fake repository, and the run that would execute the plan."""
    registry = cast(Registry, fake)
    repo_plan = clean.plan_target(registry, Target("api", f"{fake.host}/{REPO}", REPO), policy, NOW, workers=2)
    return clean.Execution(registry, Reader(registry, REPO, workers=2), repo_plan, clean.Outcome(REPO), workers=2)


def by_hand(fake: FakeRegistry, tags: dict[str, str], remove: list[TagAction]) -> clean.Execution:
    """A run of a plan written by hand over what ``fake`` holds now."""
    registry = cast(Registry, fake)
    nodes = {d: Manifest(d, m.media_type, len(m.raw)) for d, m in fake.manifests.get(REPO, {}).items()}
    plan = Plan(REPO, remove_tags=tuple(remove))
    repo_plan = clean.RepoPlan(Target("api", REPO, REPO), Snapshot(REPO, tags, nodes), plan, NOW)
    return clean.Execution(registry, Reader(registry, REPO, workers=2), repo_plan, clean.Outcome(REPO), workers=2)


def events(run: clean.Execution, kind: str = "done") -> list[tuple[str, str, str]]:
    return sorted((e.action, e.what, e.detail) for e in getattr(run.out, kind))


def test_since_snapshot_keeps_a_re_pushed_tag_and_protects_what_a_new_tag_uses() -> None:
    fake = FakeRegistry()
    old, shared = image(fake, "old", "pr-1"), image(fake, "shared", "pr-2")
    run = planned(fake)
    assert {a.tag for a in run.plan.remove_tags} == {"pr-1", "pr-2"}
    image(fake, "new", "pr-1")                         # pr-1 re-pushed after the snapshot
    fake.tag_map[REPO]["v2"] = shared                  # a new tag on what pr-2's removal would delete
    changes = clean.since_snapshot(run)
    assert changes.skipped_tags == {"pr-1"}
    assert changes.blocked[old] == "its tag pr-1 was re-pushed since the snapshot"
    assert changes.blocked[shared] == "used by tag v2, changed since the snapshot"
    assert events(run, "skipped")[0][:2] == ("skip", "pr-1")


def test_journal_phase_lists_what_will_be_deleted_but_not_what_is_blocked() -> None:
    fake = FakeRegistry()
    one, two = image(fake, "one", "pr-1"), image(fake, "two", "pr-2")
    run = planned(fake)
    journal = clean.journal_phase(run, clean.Changes(blocked={two: "test"}))
    (tag, digest), = journal
    assert tag.startswith(JOURNAL_TAG) and run.out.journal == [tag]
    listed = [m["digest"] for m in json.loads(fake.manifests[REPO][digest].raw)["manifests"]]
    assert listed == [one]
    assert events(run) == [("journal", tag, f"wrote {digest}")]


def test_remove_shared_tags_on_registry_2_8_re_points_each_tag_and_deletes_the_placeholder() -> None:
    fake = FakeRegistry()
    kept = image(fake, "kept", "latest")
    fake.tag_map[REPO]["pr-1"] = kept
    run = planned(fake)
    assert [(a.tag, a.method) for a in run.plan.remove_tags] == [("pr-1", RETAG_THEN_DELETE)]
    assert clean.remove_shared_tags(run, clean.Changes()) is True
    assert fake.tag_map[REPO] == {"latest": kept}
    assert set(fake.manifests[REPO]) == {kept}                       # the placeholders (probe's too) are gone
    assert EMPTY_DIGEST in fake.blobs[REPO]
    (action, what, detail), = events(run)
    assert (action, what) == ("untag", "pr-1") and detail.startswith("retag-then-delete (placeholder sha256:")


def test_remove_shared_tags_uses_tag_delete_where_the_probe_shows_it_removes_only_the_tag() -> None:
    fake = FakeRegistry(tag_delete_enabled=True)
    kept = image(fake, "kept", "latest")
    fake.tag_map[REPO]["pr-1"] = kept
    run = planned(fake)
    assert clean.remove_shared_tags(run, clean.Changes()) is True
    assert fake.tag_map[REPO] == {"latest": kept}
    assert events(run) == [("untag", "pr-1", "tag DELETE")]


def test_remove_shared_tags_skips_a_tag_moved_since_the_snapshot() -> None:
    fake = FakeRegistry()
    kept = image(fake, "kept", "latest")
    fake.tag_map[REPO]["pr-1"] = kept
    run = planned(fake)
    moved = image(fake, "moved", "pr-1")
    assert clean.remove_shared_tags(run, clean.Changes()) is True
    assert fake.tag_map[REPO]["pr-1"] == moved
    assert events(run, "skipped") == [("skip", "pr-1", f"re-pushed since the snapshot (now {moved}); kept")]


def test_delete_digests_goes_parents_first_and_keeps_what_a_survivor_lists() -> None:
    fake = FakeRegistry()
    amd, arm = image(fake, "amd"), image(fake, "arm")
    gone = index(fake, "pr-1", amd, arm)
    run = planned(fake)
    assert [a.digest for a in run.plan.delete_digests] == [gone, amd, arm]
    assert clean.delete_digests(run, clean.Changes()) is True
    deletes = [ref for method, _, ref in fake.calls if method == "DELETE"]
    assert deletes[0] == gone and set(deletes[1:]) == {amd, arm}
    assert REPO not in fake.tag_map or "pr-1" not in fake.tag_map[REPO]

    fake = FakeRegistry()
    amd, arm = image(fake, "amd"), image(fake, "arm")
    blocked = index(fake, "pr-1", amd, arm)
    run = planned(fake)
    assert clean.delete_digests(run, clean.Changes(blocked={blocked: "test"})) is True
    assert set(fake.manifests[REPO]) == {blocked, amd, arm}
    assert events(run, "skipped") == sorted([("skip", blocked, "test"),
                                             ("skip", amd, f"still listed by {blocked}, which stays"),
                                             ("skip", arm, f"still listed by {blocked}, which stays")])


def test_delete_digests_stops_after_the_level_that_failed() -> None:
    fake = FakeRegistry(delete_enabled=False)
    amd = image(fake, "amd")
    index(fake, "pr-1", amd)
    run = planned(fake)
    assert clean.delete_digests(run, clean.Changes()) is False
    assert not run.out.complete and len(run.out.failed) == 1
    assert [ref for method, _, ref in fake.calls if method == "DELETE"] == [run.plan.delete_digests[0].digest]


def test_repair_dangling_removes_a_tag_left_on_nothing_and_keeps_one_re_pushed() -> None:
    fake = FakeRegistry()
    keep = image(fake, "keep", "latest")
    fake.tag_map[REPO]["pr-1"] = "sha256:" + "d" * 64           # listed, resolves to nothing
    moved = image(fake, "moved", "pr-2")
    remove = [TagAction("pr-1", "sha256:" + "d" * 64, "test", DELETE_DIGEST),
              TagAction("pr-2", "sha256:" + "e" * 64, "test", DELETE_DIGEST)]
    run = by_hand(fake, {"latest": keep}, remove)
    clean.repair_dangling(run, clean.Changes())
    assert fake.tag_map[REPO] == {"latest": keep, "pr-2": moved}
    assert events(run) == [("untag", "pr-1", "repaired: the registry left it dangling")]
    assert events(run, "skipped") == [("skip", "pr-2", f"re-pushed during the run (now {moved}); kept")]


def test_delete_journal_deletes_each_journal_index() -> None:
    fake = FakeRegistry()
    journal = fake.add_json(REPO, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}, f"{JOURNAL_TAG}x-1")
    run = by_hand(fake, {}, [])
    clean.delete_journal(run, [(f"{JOURNAL_TAG}x-1", journal)])
    assert fake.manifests[REPO] == {} and fake.tag_map[REPO] == {}


def test_a_whole_run_leaves_what_is_kept_valid() -> None:
    fake = FakeRegistry()
    amd, arm = image(fake, "amd"), image(fake, "arm")
    index(fake, "latest", amd, arm)
    index(fake, "pr-1", image(fake, "old-amd"), image(fake, "old-arm"))
    fake.tag_map[REPO]["pr-2"] = amd
    run = planned(fake)
    outcome = clean.execute(cast(Registry, fake), run.repo_plan, workers=2)
    assert outcome.ok, outcome.to_dict()
    assert sorted(fake.tag_map[REPO]) == ["latest"] and set(fake.manifests[REPO]) >= {amd, arm}
    assert len(fake.manifests[REPO]) == 3
