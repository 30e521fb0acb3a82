"""clean against publishes that land while it deletes, interrupted runs, and registries that refuse DELETE: the
phases of bakery.clean.execute, guard and repair against the in-memory registry, the concurrent publish injected
through ``FakeRegistry.before`` (a hook before each request). The same races on the real registry are in
tests/integration/test_clean.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

import pytest

from bakery.clean import execute as clean
from bakery.clean.journal import JOURNAL_TAG, journal_bytes, journal_chunks
from bakery.clean.model import Policy, Rule
from bakery.errors import BakeryError, RegistryError
from bakery.oci.registry import Registry
from bakery.oci.untag import delete_refused, untag
from tests.support.registry import FakeRegistry
from tests.unit.clean.test_execute import OCI_INDEX, PR_GO, REPO, image, index, planned

Hook = Callable[[str, str, str], None]


def once(when: Callable[[str, str, str], bool], then: Callable[[], None]) -> Hook:
    """A hook that runs ``then`` the first time ``when(method, repo, ref)`` holds."""
    fired: list[bool] = []

    def hook(method: str, repo: str, ref: str) -> None:
        if not fired and when(method, repo, ref):
            fired.append(True)
            then()
    return hook


def resolves_fully(fake: FakeRegistry, tag: str) -> bool:
    """The tag and every manifest its index lists exist."""
    digest = fake.head_manifest(REPO, tag)
    if digest is None:
        return False
    body = json.loads(fake.manifests[REPO][digest].raw)
    return all(d["digest"] in fake.manifests[REPO] for d in body.get("manifests") or [])


def run_plan(fake: FakeRegistry, policy: Policy = PR_GO) -> clean.Outcome:
    return clean.execute(cast(Registry, fake), planned(fake, policy).repo_plan, workers=1)


def two_pr_images(fake: FakeRegistry) -> tuple[str, str, str]:
    """pr-1: an index of two images nothing else uses; a kept `latest`. (pr-1 index, amd64, arm64)."""
    amd, arm = image(fake, "pr-amd"), image(fake, "pr-arm")
    index(fake, "latest", image(fake, "keep-amd"), image(fake, "keep-arm"))
    return index(fake, "pr-1", amd, arm), amd, arm


# --- a new index reusing children the run deletes ------------------------------------------------------------


def test_a_new_index_published_right_before_the_delete_of_its_child_is_repaired_from_the_run_s_bytes() -> None:
    fake = FakeRegistry(check_children=True)
    _, amd, arm = two_pr_images(fake)
    # CI pushes main-1 from identical sources: same platform images; it lands between clean's last check and
    # the DELETE of `amd` (the hook runs right before that DELETE reaches the registry)
    fake.before = once(lambda m, _r, ref: m == "DELETE" and ref == amd,
                       lambda: index(fake, "main-1", amd, arm))
    outcome = run_plan(fake)
    assert outcome.ok, outcome.to_dict()
    assert resolves_fully(fake, "main-1") and resolves_fully(fake, "latest")
    assert outcome.restored == [amd]                        # deleted, then PUT back
    assert ("skip", arm) in {(e.action, e.what) for e in outcome.skipped}   # the guard saw main-1 by then
    assert "pr-1" not in fake.tag_map[REPO]
    assert not any(t.startswith(JOURNAL_TAG) for t in fake.tag_map[REPO])


def test_a_new_tag_seen_by_the_check_right_before_a_delete_stops_that_delete() -> None:
    fake = FakeRegistry(check_children=True)
    _, amd, arm = two_pr_images(fake)
    deletes = [ref for m, _, ref in fake.calls if m == "DELETE"]
    # main-1 lands during the delete phase, before the tag list clean reads right before deleting `amd`
    fake.before = once(lambda m, _r, ref: ref == "tags/list" and ("DELETE", REPO, arm) not in fake.calls
                       and any(c[0] == "DELETE" and c[2] not in deletes for c in fake.calls[-40:])
                       and fake.head_manifest(REPO, "pr-1") is None,
                       lambda: index(fake, "main-1", amd, arm))
    outcome = run_plan(fake)
    assert outcome.ok, outcome.to_dict()
    assert resolves_fully(fake, "main-1")
    assert outcome.restored == []                           # nothing had to be put back
    assert {amd, arm} <= {e.what for e in outcome.skipped}


# --- a removed index promoted while the run deletes -----------------------------------------------------------


def test_a_removed_index_promoted_after_its_delete_keeps_its_children() -> None:
    fake = FakeRegistry(check_children=True)
    gone, amd, arm = two_pr_images(fake)
    raw = fake.manifests[REPO][gone].raw
    # release promotes pr-1 to v1.0.0 after clean deleted the index but before its children go
    fake.before = once(lambda m, _r, ref: m == "DELETE" and ref == amd,
                       lambda: fake.put_manifest(REPO, "v1.0.0", raw, OCI_INDEX))
    outcome = run_plan(fake)
    assert outcome.ok, outcome.to_dict()
    assert fake.tag_map[REPO]["v1.0.0"] == gone and resolves_fully(fake, "v1.0.0")
    assert outcome.restored == [amd]


def test_a_removed_index_promoted_before_its_delete_stays_and_only_the_removed_tag_goes() -> None:
    fake = FakeRegistry(check_children=True)
    gone, amd, arm = two_pr_images(fake)
    raw = fake.manifests[REPO][gone].raw
    # the promotion lands after the level's re-read, before the tag list read right before DELETE of the index
    lists = [0]

    def promote_on_the_second_list_of_the_delete_phase(method: str, _repo: str, ref: str) -> None:
        if ref == "tags/list" and any(c[0] == "PUT" and c[2].startswith(JOURNAL_TAG) for c in fake.calls):
            lists[0] += 1
            if lists[0] == 2:
                fake.put_manifest(REPO, "v1.0.0", raw, OCI_INDEX)

    fake.before = promote_on_the_second_list_of_the_delete_phase
    outcome = run_plan(fake)
    assert outcome.ok, outcome.to_dict()
    assert resolves_fully(fake, "v1.0.0") and fake.tag_map[REPO]["v1.0.0"] == gone
    assert "pr-1" not in fake.tag_map[REPO]                  # removed alone: its manifest stays for v1.0.0
    assert ("untag", "pr-1") in {(e.action, e.what) for e in outcome.done}
    assert not any(e.action == "delete" and e.what in (gone, amd, arm) for e in outcome.done)


def test_a_promotion_left_dangling_by_the_delete_of_its_index_resolves_fully_again() -> None:
    fake = FakeRegistry(check_children=True)
    gone, amd, arm = two_pr_images(fake)
    # the promotion's tag link lands after the DELETE of the index removed its revision (registry 2.8): v1.0.0
    # is listed but points at nothing; clean's tag list shows it, its HEAD is a 404
    fake.before = once(lambda m, _r, ref: m == "DELETE" and ref == amd,
                       lambda: fake.tag_map[REPO].__setitem__("v1.0.0", gone))
    outcome = run_plan(fake)
    assert outcome.ok, outcome.to_dict()
    assert resolves_fully(fake, "v1.0.0") and fake.tag_map[REPO]["v1.0.0"] == gone
    assert sorted(outcome.restored) == sorted([gone, amd, arm])     # read from the 404, PUT back children first
    assert "pr-1" not in fake.tag_map[REPO]


def test_a_delete_answered_digest_invalid_keeps_the_digest_a_push_is_writing() -> None:
    fake = FakeRegistry(check_children=True)
    gone, amd, arm = two_pr_images(fake)
    raw = fake.manifests[REPO][gone].raw

    def promote_while_the_registry_reads_the_link() -> None:     # distribution 2.8 reads a half-written link
        fake.put_manifest(REPO, "v1.0.0", raw, OCI_INDEX)
        raise RegistryError(f"DELETE {REPO}@{gone} answered 400: DIGEST_INVALID", status=400, code="DIGEST_INVALID")

    fake.before = once(lambda m, _r, ref: m == "DELETE" and ref == gone, promote_while_the_registry_reads_the_link)
    outcome = run_plan(fake)
    assert outcome.ok, outcome.to_dict()
    assert resolves_fully(fake, "v1.0.0") and outcome.restored == []
    assert "pr-1" not in fake.tag_map[REPO]
    kept = {e.what: e.detail for e in outcome.skipped}
    assert "DIGEST_INVALID" in kept[gone] and {amd, arm} <= set(kept)


# --- interrupted runs ----------------------------------------------------------------------------------------


INTERMEDIATE = Policy((Rule("pr-.*", keep_last=0),), intermediate=("{tag}-amd64",))


def killed_after(fake: FakeRegistry, deletes: int) -> None:
    """From the registry's side, what a SIGKILL of clean after ``deletes`` DELETEs looks like: nothing more
    arrives (here every later request fails, so no later phase can run)."""
    seen = [0]

    def hook(method: str, _repo: str, _ref: str) -> None:
        seen[0] += method == "DELETE"
        if seen[0] > deletes:
            raise RegistryError("registry.test: cannot connect (killed)")
    fake.before = hook


def test_a_re_run_finishes_the_intermediate_refs_and_referrer_tags_the_journal_lists() -> None:
    fake = FakeRegistry()
    amd = image(fake, "amd")
    public = index(fake, "pr-1", amd)
    fake.put_manifest(REPO, "pr-1-amd64", fake.manifests[REPO][amd].raw, "application/vnd.oci.image.manifest.v1+json")
    signature = image(fake, "sig", f"sha256-{public.split(':')[1]}.sig")
    kept = index(fake, "latest", image(fake, "kept"))
    run = planned(fake, INTERMEDIATE)
    assert {a.tag for a in run.plan.remove_tags} == {"pr-1", "pr-1-amd64", f"sha256-{public.split(':')[1]}.sig"}
    killed_after(fake, 2)      # the probe, then the public index: pr-1 is gone, its followers not yet
    assert not clean.execute(cast(Registry, fake), run.repo_plan, workers=1).complete
    fake.before = None
    assert "pr-1" not in fake.tag_map[REPO] and "pr-1-amd64" in fake.tag_map[REPO]
    again = planned(fake, INTERMEDIATE)
    reasons = {a.tag: a.reason for a in again.plan.remove_tags}
    assert reasons["pr-1-amd64"] == reasons[f"sha256-{public.split(':')[1]}.sig"] == \
        "listed by the journal of an interrupted clean run"
    outcome = clean.execute(cast(Registry, fake), again.repo_plan, workers=1)
    assert outcome.ok, outcome.to_dict()
    assert sorted(fake.tag_map[REPO]) == ["latest"] and resolves_fully(fake, "latest")
    assert set(fake.manifests[REPO]) == {kept, *json_children(fake, kept)}
    assert signature not in fake.manifests[REPO]


def json_children(fake: FakeRegistry, digest: str) -> list[str]:
    return [d["digest"] for d in json.loads(fake.manifests[REPO][digest].raw)["manifests"]]


def test_a_re_run_restores_from_the_journal_what_a_killed_run_deleted_under_a_new_index() -> None:
    fake = FakeRegistry(check_children=True)
    _, amd, arm = two_pr_images(fake)
    run = planned(fake)
    published = []

    def publish_then_die(method: str, _repo: str, ref: str) -> None:
        if method == "DELETE" and ref == amd and not published:
            published.append(index(fake, "main-1", amd, arm))
        elif published and ref != amd:
            raise RegistryError("registry.test: cannot connect (killed)")   # killed right after deleting amd
    fake.before = publish_then_die
    assert not clean.execute(cast(Registry, fake), run.repo_plan, workers=1).complete
    fake.before = None
    assert amd not in fake.manifests[REPO] and not resolves_fully(fake, "main-1")
    outcome = clean.execute(cast(Registry, fake), planned(fake).repo_plan, workers=1)   # a new process: no bytes
    assert outcome.ok, outcome.to_dict()
    assert outcome.restored == [amd] and resolves_fully(fake, "main-1")             # ...but the journal's
    assert not any(t.startswith(JOURNAL_TAG) or t == "pr-1" for t in fake.tag_map[REPO])


# --- the journal's format -------------------------------------------------------------------------------------


def test_the_journal_carries_the_bytes_and_the_tags_and_splits_by_size() -> None:
    fake = FakeRegistry()
    gone, amd, arm = two_pr_images(fake)
    run = planned(fake)
    (tag, digest), = clean.journal_phase(run, clean.Changes())
    raw = fake.manifests[REPO][digest].raw
    held = journal_bytes(raw)
    assert set(held) == {gone, amd, arm} and held[amd][1] == fake.manifests[REPO][amd].raw
    assert json.loads(json.loads(raw)["annotations"]["dev.bakery.clean.tags"]) == {"pr-1": gone}
    assert journal_bytes(b"not json") == {}
    blobs = {d: b"x" * 300 for d in "abcd"}
    chunks = journal_chunks(list("abcd"), {"t-a": "a", "t-z": "z"}, blobs, budget=1400, most=3)
    assert chunks == [(["a", "b"], {"t-a": "a"}), (["c", "d"], {"t-z": "z"})]


# --- a registry that refuses DELETE ---------------------------------------------------------------------------


def test_clean_on_a_registry_that_refuses_delete_stops_before_writing_anything() -> None:
    fake = FakeRegistry(delete_enabled=False)
    two_pr_images(fake)
    before = (json.dumps({r: sorted(m) for r, m in fake.manifests.items()}), dict(fake.tag_map[REPO]))
    fake.calls.clear()
    outcome = run_plan(fake)
    assert not outcome.ok and outcome.refused.startswith("registry registry.test refuses DELETE (405): enable "
                                                         "`storage.delete.enabled`")
    assert (json.dumps({r: sorted(m) for r, m in fake.manifests.items()}), fake.tag_map[REPO]) == before
    assert REPO not in fake.blobs and not [c for c in fake.calls if c[0] == "PUT"]
    assert len([c for c in fake.calls if c[0] == "DELETE"]) == 1          # the probe, of a digest that cannot exist


def test_untag_on_a_registry_that_refuses_delete_writes_no_placeholder() -> None:
    fake = FakeRegistry(delete_enabled=False)
    kept = image(fake, "kept", "v1")
    with pytest.raises(BakeryError, match=r"acme/api:v1: registry registry.test refuses DELETE \(405\)"):
        untag(cast(Registry, fake), REPO, "v1")
    assert fake.tag_map[REPO] == {"v1": kept} and REPO not in fake.blobs
    assert delete_refused(cast(Registry, FakeRegistry()), REPO) is None


def test_untag_puts_the_tag_back_when_the_placeholder_delete_fails_after_all() -> None:
    fake = FakeRegistry()
    kept = image(fake, "kept", "v1")
    deletes = [0]

    def second_delete_refused(method: str, _repo: str, _ref: str) -> None:
        if method == "DELETE":
            deletes[0] += 1
            fake.delete_enabled = deletes[0] < 2       # the probe passes, the real DELETE is refused
    fake.before = second_delete_refused
    with pytest.raises(BakeryError, match="the tag points at .* again"):
        untag(cast(Registry, fake), REPO, "v1")
    assert fake.tag_map[REPO] == {"v1": kept}
