"""Unit and property tests for bakery.clean.retention (the pure registry retention planner)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.clean.model import (
    DEFAULT_PROTECT,
    DELETE_DIGEST,
    RETAG_THEN_DELETE,
    Plan,
    Policy,
    Rule,
    Snapshot,
)
from bakery.clean.model import Node as Manifest
from bakery.clean.retention import plan
from bakery.oci.media import ALL_MANIFEST_TYPES as MANIFEST_MEDIA_TYPES

from tests.unit.oracle import reachable

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


# --- helpers -------------------------------------------------------------------------------


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def image(name: str, age_days: float | None = 1, **kw: object) -> Manifest:
    created = None if age_days is None else NOW - timedelta(days=age_days)
    return Manifest(dg(name), OCI_MANIFEST, 500, created=created, layer_bytes=1000, **kw)  # type: ignore[arg-type]


def index(name: str, children: Iterable[Manifest], age_days: float = 1) -> Manifest:
    return Manifest(
        dg(name), OCI_INDEX, 300, children=tuple(c.digest for c in children), created=NOW - timedelta(days=age_days)
    )


def attestation(name: str, subject: Manifest) -> Manifest:
    return Manifest(
        dg(name), OCI_MANIFEST, 200, subject=subject.digest, is_attestation=True, platform="unknown/unknown"
    )


def snap(tags: dict[str, Manifest], *untagged: Manifest, repository: str = "app") -> Snapshot:
    manifests = {m.digest: m for m in [*tags.values(), *untagged]}
    return Snapshot(repository, {t: m.digest for t, m in tags.items()}, manifests)


def policy(*rules: Rule, **kw: object) -> Policy:
    return Policy(rules=rules, **kw)  # type: ignore[arg-type]


def removed(p: Plan) -> dict[str, str]:
    return {a.tag: a.method for a in p.remove_tags}


def deleted(p: Plan) -> list[str]:
    return [a.digest for a in p.delete_digests]


def protected(p: Plan) -> dict[str, str]:
    return {pr.what: pr.why for pr in p.protected}


# --- shared digests ------------------------------------------------------------------------


def test_removed_tag_sharing_a_digest_with_a_kept_tag_is_retagged_and_the_digest_survives() -> None:
    img = image("a")
    p = plan(snap({"sha-abc": img, "latest": img}), policy(Rule("sha-.*", keep_last=0)), NOW)
    assert removed(p) == {"sha-abc": RETAG_THEN_DELETE}
    assert deleted(p) == []
    assert protected(p)[img.digest] == "shared with kept tag latest"


def test_digest_whose_every_tag_is_removed_is_deleted_by_digest() -> None:
    img = image("a")
    p = plan(snap({"sha-1": img, "sha-2": img}), policy(Rule("sha-.*", keep_last=0)), NOW)
    assert removed(p) == {"sha-1": DELETE_DIGEST, "sha-2": DELETE_DIGEST}
    assert deleted(p) == [img.digest]
    assert p.delete_digests[0].cascade_from is None
    assert "sha-1, sha-2" in p.delete_digests[0].reason


# --- multi-arch indexes and attestations ---------------------------------------------------


def multi_arch(name: str, age_days: float = 1) -> tuple[Manifest, list[Manifest]]:
    amd, arm = image(f"{name}-amd64", platform="linux/amd64"), image(f"{name}-arm64", platform="linux/arm64")
    att_amd, att_arm = attestation(f"{name}-att-amd64", amd), attestation(f"{name}-att-arm64", arm)
    parts = [amd, arm, att_amd, att_arm]
    return index(name, parts, age_days), parts


def test_kept_index_keeps_its_platform_children_and_attestation_entries() -> None:
    new, new_parts = multi_arch("new", age_days=1)
    old, _ = multi_arch("old", age_days=90)
    s = snap({"v2": new, "v1": old}, *new_parts)
    p = plan(s, policy(Rule("v.*", keep_last=1)), NOW)
    assert removed(p) == {"v1": DELETE_DIGEST}
    assert not {m.digest for m in new_parts} & set(deleted(p))


def test_removed_index_cascades_to_its_children_and_attestations() -> None:
    old, parts = multi_arch("old", age_days=90)
    s = snap({"v1": old}, *parts)
    p = plan(s, policy(Rule("v.*", keep_last=0)), NOW)
    assert set(deleted(p)) == {old.digest, *(m.digest for m in parts)}
    by_digest = {a.digest: a for a in p.delete_digests}
    assert by_digest[old.digest].cascade_from is None
    assert all(by_digest[m.digest].cascade_from == old.digest for m in parts)
    assert by_digest[parts[0].digest].reason == f"child of deleted index {old.digest}"


def test_referrer_outside_any_index_lives_and_dies_with_its_subject() -> None:
    img = image("a")
    sbom = Manifest(dg("sbom"), OCI_MANIFEST, 100, subject=img.digest)
    kept = plan(snap({"v1": img}, sbom, image("other", age_days=5)), policy(untagged="delete"), NOW)
    assert sbom.digest not in deleted(kept)
    gone = plan(snap({"v1": img}, sbom), policy(Rule("v1", keep_last=0)), NOW)
    assert [(a.digest, a.cascade_from) for a in gone.delete_digests] == [(img.digest, None), (sbom.digest, img.digest)]


def test_child_shared_by_a_kept_and_a_removed_index_is_kept() -> None:
    shared, only_old = image("shared"), image("only-old")
    new, old = index("new", [shared], age_days=1), index("old", [shared, only_old], age_days=90)
    p = plan(snap({"v2": new, "v1": old}, shared, only_old), policy(Rule("v.*", keep_last=1)), NOW)
    assert deleted(p) == [old.digest, only_old.digest]
    assert protected(p)[shared.digest] == f"child of kept index {new.digest}"


def test_tag_on_a_child_of_a_kept_index_is_retagged() -> None:
    child = image("child")
    idx = index("idx", [child])
    p = plan(snap({"latest": idx, "amd64-only": child}), policy(Rule("amd64-.*", keep_last=0)), NOW)
    assert removed(p) == {"amd64-only": RETAG_THEN_DELETE}
    assert deleted(p) == []
    assert protected(p)[child.digest] == f"child of kept index {idx.digest}"


# --- keep_last / older_than ----------------------------------------------------------------


def test_keep_last_counts_images_not_tags() -> None:
    newest, middle, oldest = image("n", age_days=1), image("m", age_days=2), image("o", age_days=3)
    tags = {"b-1": newest, "b-1-alias": newest, "b-1-again": newest, "b-2": middle, "b-3": oldest}
    p = plan(snap(tags), policy(Rule("b-.*", keep_last=2)), NOW)
    assert removed(p) == {"b-3": DELETE_DIGEST}


def test_keep_last_orders_by_created_not_by_tag_name() -> None:
    tags = {"z-old": image("old", age_days=30), "a-new": image("new", age_days=1)}
    p = plan(snap(tags), policy(Rule(".*", keep_last=1)), NOW)
    assert removed(p) == {"z-old": DELETE_DIGEST}


def test_keep_last_sorts_unknown_created_as_oldest_and_warns() -> None:
    known, unknown = image("known", age_days=300), image("unknown", age_days=None)
    p = plan(snap({"t1": known, "t2": unknown}), policy(Rule("t.*", keep_last=1)), NOW)
    assert removed(p) == {"t2": DELETE_DIGEST}
    assert any(unknown.digest in w and "no created time" in w for w in p.warnings)


def test_keep_last_breaks_created_ties_by_digest() -> None:
    a, b = image("a", age_days=5), image("b", age_days=5)
    first, second = sorted([a, b], key=lambda m: m.digest)
    p = plan(snap({"x": a, "y": b}), policy(Rule(".*", keep_last=1)), NOW)
    assert [act.digest for act in p.remove_tags] == [second.digest]
    assert first.digest not in deleted(p)


def test_older_than_removes_only_images_older_than_the_cutoff() -> None:
    tags = {"old": image("old", age_days=40), "new": image("new", age_days=10)}
    p = plan(snap(tags), policy(Rule(".*", older_than=timedelta(days=30))), NOW)
    assert removed(p) == {"old": DELETE_DIGEST}
    assert p.remove_tags[0].reason == "rule 0 (.*): older than 30d"


def test_older_than_keeps_an_image_without_created_and_warns() -> None:
    img = image("x", age_days=None)
    p = plan(snap({"t": img}), policy(Rule(".*", older_than=timedelta(days=1))), NOW)
    assert removed(p) == {}
    assert p.warnings == (
        f"{img.digest} has no created time: never counted as older_than, sorted as oldest for keep_last/untagged",
    )


@pytest.mark.parametrize("epoch", [datetime(1970, 1, 1, tzinfo=UTC), datetime(1980, 1, 1, tzinfo=UTC)])
def test_older_than_keeps_an_image_with_an_epoch_created_and_warns(epoch: datetime) -> None:
    img = Manifest(dg("repro"), OCI_MANIFEST, 10, created=epoch)
    p = plan(snap({"t": img}), policy(Rule(".*", older_than=timedelta(days=1))), NOW)
    assert removed(p) == {}
    assert len(p.warnings) == 1 and "placeholder" in p.warnings[0] and epoch.date().isoformat() in p.warnings[0]


def test_keep_last_with_older_than_removes_only_images_beyond_the_count_and_old() -> None:
    tags = {"1": image("1", age_days=1), "2": image("2", age_days=50), "3": image("3", age_days=60), "4": image("4", 5)}
    # newest first: 1, 4 | 2, 3 beyond keep_last 2; of those only 3 is older than 55d
    p = plan(snap(tags), policy(Rule(".*", keep_last=2, older_than=timedelta(days=55))), NOW)
    assert removed(p) == {"3": DELETE_DIGEST}


def test_keep_last_zero_removes_every_matched_tag() -> None:
    tags = {"pr-1": image("1"), "pr-2": image("2"), "main": image("3")}
    p = plan(snap(tags), policy(Rule("pr-.*", keep_last=0)), NOW)
    assert removed(p) == {"pr-1": DELETE_DIGEST, "pr-2": DELETE_DIGEST}


# --- rule selection and protection ---------------------------------------------------------


def test_protect_pattern_wins_over_keep_last_zero() -> None:
    tags = {"v1.0": image("1"), "dev": image("2")}
    p = plan(snap(tags), policy(Rule(".*", keep_last=0), protect=("v.*",)), NOW)
    assert removed(p) == {"dev": DELETE_DIGEST}
    assert protected(p)["v1.0"] == "protect pattern v.*"


def test_default_protections_keep_cache_and_referrer_tags() -> None:
    tags = {"cache-main": image("c"), "app-buildcache": image("b"), f"sha256-{'a' * 64}.sig": image("s")}
    p = plan(snap(tags), policy(Rule(".*", keep_last=0)), NOW)
    assert removed(p) == {}
    assert set(protected(p)) == set(tags)
    assert all(why.startswith("default protect pattern ") for why in protected(p).values())


def test_protect_defaults_false_lets_rules_remove_cache_tags() -> None:
    p = plan(snap({"cache-main": image("c")}), policy(Rule(".*", keep_last=0), protect_defaults=False), NOW)
    assert removed(p) == {"cache-main": DELETE_DIGEST}


def test_protected_tags_do_not_use_keep_last_slots() -> None:
    tags = {"v1": image("v1", age_days=1), "b1": image("b1", age_days=2), "b2": image("b2", age_days=3)}
    p = plan(snap(tags), policy(Rule(".*", keep_last=1), protect=("v.*",)), NOW)
    assert removed(p) == {"b2": DELETE_DIGEST}


def test_tags_matched_by_no_rule_are_kept() -> None:
    tags = {"pr-1": image("1"), "release": image("2")}
    p = plan(snap(tags), policy(Rule("pr-.*", keep_last=0)), NOW)
    assert p.keep_tags == ("release",)
    assert "release" not in removed(p)


def test_rule_match_is_a_full_match() -> None:
    p = plan(snap({"pr-1-final": image("1")}), policy(Rule("pr-[0-9]+", keep_last=0)), NOW)
    assert removed(p) == {}


def test_first_matching_rule_handles_the_tag() -> None:
    tags = {"v1": image("1", age_days=100), "v2": image("2", age_days=1)}
    p = plan(snap(tags), policy(Rule("v.*", keep_last=5), Rule(".*", keep_last=0)), NOW)
    assert removed(p) == {}


def test_keep_all_shields_tags_from_later_rules() -> None:
    tags = {"stable": image("1"), "other": image("2")}
    p = plan(snap(tags), policy(Rule("stable", keep_all=True), Rule(".*", keep_last=0)), NOW)
    assert removed(p) == {"other": DELETE_DIGEST}


def test_rule_images_limit_the_rule_to_named_repositories() -> None:
    r = Rule(".*", keep_last=0, images=("web",))
    assert removed(plan(snap({"t": image("1")}, repository="api"), policy(r), NOW)) == {}
    assert removed(plan(snap({"t": image("1")}, repository="web"), policy(r), NOW)) == {"t": DELETE_DIGEST}


# --- untagged roots ------------------------------------------------------------------------


def test_untagged_keep_keeps_untagged_roots() -> None:
    p = plan(snap({"t": image("t")}, image("loose")), policy(untagged="keep"), NOW)
    assert deleted(p) == []


def test_untagged_delete_deletes_roots_with_their_children() -> None:
    idx, parts = multi_arch("loose")
    p = plan(snap({"t": image("t")}, idx, *parts), policy(untagged="delete"), NOW)
    assert set(deleted(p)) == {idx.digest, *(m.digest for m in parts)}
    assert p.delete_digests[0].digest == idx.digest
    assert p.delete_digests[0].reason == "untagged (untagged: delete); nothing kept uses it"


def test_untagged_n_keeps_the_n_newest_roots() -> None:
    roots = [image(f"r{i}", age_days=i) for i in range(1, 5)]
    p = plan(snap({}, *roots), policy(untagged=2), NOW)
    assert set(deleted(p)) == {roots[2].digest, roots[3].digest}


def test_untagged_setting_never_judges_children_or_attestations_of_tagged_images() -> None:
    idx, parts = multi_arch("tagged")
    p = plan(snap({"latest": idx}, *parts), policy(untagged="delete"), NOW)
    assert deleted(p) == []


# --- output shape --------------------------------------------------------------------------


def test_delete_digests_lists_parents_before_children() -> None:
    leaf = image("aaa-leaf")  # names chosen so a plain sort would not give parent-first order
    inner = index("zzz-inner", [leaf])
    outer = index("mmm-outer", [inner])
    att = attestation("att", leaf)
    p = plan(snap({"t": outer}, inner, leaf, att), policy(Rule(".*", keep_last=0)), NOW)
    order = deleted(p)
    assert order.index(outer.digest) < order.index(inner.digest) < order.index(leaf.digest) < order.index(att.digest)


def test_plan_is_deterministic_whatever_the_input_order() -> None:
    idx, parts = multi_arch("x", age_days=90)
    tags = {"v1": idx, "v2": image("v2", age_days=None), "pr-1": image("pr", age_days=200), "z": image("z")}
    s1 = snap(tags, *parts, image("loose", age_days=None))
    s2 = Snapshot(s1.repository, dict(reversed(list(s1.tags.items()))), dict(reversed(list(s1.manifests.items()))))
    pol = policy(Rule("v.*", keep_last=0, older_than=timedelta(days=1)), Rule(".*", keep_last=1), untagged=0)
    assert plan(s1, pol, NOW) == plan(s2, pol, NOW) == plan(s1, pol, NOW)


def test_to_dict_is_json_ready_and_sums_bytes_freed() -> None:
    a, b = image("a"), image("b")
    p = plan(snap({"x": a, "y": b, "keep": image("k")}), policy(Rule("[xy]", keep_last=0)), NOW)
    data = json.loads(json.dumps(p.to_dict()))
    assert data["bytes_freed"] == p.bytes_freed == 2 * (500 + 1000)
    reason = "rule 0 ([xy]): keep_last 0"
    assert data["remove_tags"][0] == {"tag": "x", "digest": a.digest, "reason": reason, "method": DELETE_DIGEST}
    assert data["keep_tags"] == ["keep"]


def test_tag_on_an_unresolved_digest_is_only_retagged_and_warned_about() -> None:
    s = Snapshot("app", {"ghost": dg("missing")}, {})
    p = plan(s, policy(Rule(".*", keep_last=0)), NOW)
    assert removed(p) == {"ghost": RETAG_THEN_DELETE}
    assert deleted(p) == []
    assert any("did not resolve as a manifest" in w for w in p.warnings)


def test_a_digest_with_a_non_manifest_media_type_is_never_deleted() -> None:
    blob = Manifest(dg("layer"), "application/vnd.oci.image.layer.v1.tar+gzip", 10)
    p = plan(snap({"odd": blob}), policy(Rule(".*", keep_last=0)), NOW)
    assert removed(p) == {"odd": RETAG_THEN_DELETE}
    assert deleted(p) == []
    assert any("not a manifest type" in w for w in p.warnings)


def test_naive_datetimes_are_treated_as_utc() -> None:
    old = Manifest(dg("naive"), OCI_MANIFEST, 1, created=datetime(2024, 5, 1))  # noqa: DTZ001 (naive on purpose)
    s = snap({"t": old, "u": image("aware", age_days=1)})
    p = plan(s, policy(Rule(".*", older_than=timedelta(days=7))), NOW.replace(tzinfo=None))
    assert removed(p) == {"t": DELETE_DIGEST}


# --- property tests over random registry graphs --------------------------------------------

MEDIA_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST, "application/vnd.in-toto+json"]
TAG_NAMES = [
    "latest",
    "v1",
    "v1.2",
    "v2",
    "pr-1",
    "pr-2",
    "dev",
    "1.0",
    "nightly",
    "cache-main",
    "app-buildcache",
    "sha256-" + "a" * 64,
    "sha256-" + "b" * 64 + ".sig",
]
PATTERNS = [".*", "v.*", "pr-.*", "latest", "[0-9].*", "sha256-.*", "cache-.*", "dev|nightly", ".*1.*"]
DANGLING = "sha256:" + "f" * 64  # a digest that never resolves
CREATED = st.one_of(
    st.none(),
    st.sampled_from([datetime(1970, 1, 1), datetime(1980, 1, 1, tzinfo=UTC)]),  # noqa: DTZ001
    st.integers(0, 400).map(lambda days: NOW - timedelta(days=days)),
)


@st.composite
def snapshots(draw: st.DrawFn, acyclic: bool = False) -> Snapshot:
    count = draw(st.integers(0, 10))
    digests = [f"sha256:{i:064x}" for i in range(count)]
    manifests = {}
    for i, digest in enumerate(digests):
        # in acyclic mode every edge goes from a lower to a higher position
        child_pool = digests[i + 1 :] if acyclic else digests
        subject_pool = digests[:i] if acyclic else digests
        children: tuple[str, ...] = ()
        if child_pool and draw(st.integers(0, 2)) == 0:
            children = tuple(draw(st.lists(st.sampled_from([*child_pool, DANGLING]), max_size=4)))
        subject = None
        if draw(st.integers(0, 3)) == 0:
            subject = draw(st.sampled_from([*subject_pool, DANGLING]))
        manifests[digest] = Manifest(
            digest,
            draw(st.sampled_from(MEDIA_TYPES)),
            draw(st.integers(0, 5000)),
            children=children,
            subject=subject,
            created=draw(CREATED),
            is_attestation=subject is not None and draw(st.booleans()),
            layer_bytes=draw(st.integers(0, 10_000)),
        )
    tags = draw(st.dictionaries(st.sampled_from(TAG_NAMES), st.sampled_from([*digests, DANGLING]), max_size=8))
    return Snapshot(draw(st.sampled_from(["app", "web"])), tags, manifests)


RULES = st.builds(
    Rule,
    match=st.sampled_from(PATTERNS),
    keep_last=st.none() | st.integers(0, 3),
    older_than=st.none() | st.integers(0, 300).map(lambda days: timedelta(days=days)),
    keep_all=st.sampled_from([False, False, False, True]),
    images=st.sampled_from([(), ("app",), ("web",)]),
)
POLICIES = st.builds(
    Policy,
    rules=st.lists(RULES, max_size=4).map(tuple),
    protect=st.lists(st.sampled_from(PATTERNS), max_size=2).map(tuple),
    untagged=st.sampled_from(["keep", "delete", 0, 1, 2]),
    protect_defaults=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(snapshots(), POLICIES)
def test_property_plan_never_breaks_what_it_keeps(snapshot: Snapshot, pol: Policy) -> None:
    p = plan(snapshot, pol, NOW)
    gone_tags = {a.tag for a in p.remove_tags}
    kept_tags = set(snapshot.tags) - gone_tags
    gone = [a.digest for a in p.delete_digests]
    assert set(p.keep_tags) == kept_tags
    assert len(gone) == len(set(gone))

    # (1) no deleted digest is reachable from any kept tag
    for tag in kept_tags:
        assert not reachable(snapshot, [snapshot.tags[tag]]) & set(gone), tag
    # (2) everything reachable from kept tags is absent from delete_digests
    assert reachable(snapshot, [snapshot.tags[t] for t in kept_tags]).isdisjoint(gone)
    # (3) no removed tag is protected, and only a rule (first applicable match, not keep: all) removes a tag
    patterns = [*pol.protect, *(DEFAULT_PROTECT if pol.protect_defaults else ())]
    rules = [r for r in pol.rules if r.applies_to(snapshot.repository)]
    for tag in gone_tags:
        assert not any(re.fullmatch(pattern, tag) for pattern in patterns), tag
        first = next(r for r in rules if re.fullmatch(r.match, tag))
        assert not first.keep_all
    # only resolved manifests are deleted; a tag is digest-deleted exactly when its digest goes
    for digest in gone:
        assert snapshot.manifests[digest].media_type in MANIFEST_MEDIA_TYPES
    for action in p.remove_tags:
        assert (action.method == DELETE_DIGEST) == (action.digest in gone)
    # every cascade follows from a deleted parent
    for action in p.delete_digests:
        assert action.cascade_from is None or action.cascade_from in gone
    # untagged: keep never deletes anything that no removed tag released
    if pol.untagged == "keep":
        released = [snapshot.tags[t] for t in gone_tags]
        assert set(gone) <= reachable(snapshot, released)
    # (4) deterministic, also when the mappings arrive in another order
    again = Snapshot(
        snapshot.repository,
        dict(reversed(list(snapshot.tags.items()))),
        dict(reversed(list(snapshot.manifests.items()))),
    )
    assert plan(snapshot, pol, NOW) == p == plan(again, pol, NOW)


@settings(max_examples=200, deadline=None)
@given(snapshots(acyclic=True), POLICIES)
def test_property_parents_are_deleted_before_their_children(snapshot: Snapshot, pol: Policy) -> None:
    p = plan(snapshot, pol, NOW)
    position = {a.digest: i for i, a in enumerate(p.delete_digests)}
    for action in p.delete_digests:
        assert action.cascade_from is None or position[action.cascade_from] < position[action.digest]
    for digest, i in position.items():
        m = snapshot.manifests[digest]
        for child in m.children:
            if child in position:
                assert position[child] > i
        if m.subject in position:
            assert position[m.subject] < i
