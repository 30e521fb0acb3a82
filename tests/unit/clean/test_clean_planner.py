"""The planner extensions bakery clean relies on: built-in tags (intermediate refs, sha- tags, cache refs,
referrers-scheme tags), override_defaults, leftovers of interrupted runs, blob-level bytes, image-name rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bakery.errors import ConfigError
from bakery.clean.model import DELETE_DIGEST, RETAG_THEN_DELETE, Plan, Policy, Rule, Snapshot
from bakery.clean.model import Node as Manifest
from bakery.clean.retention import plan
from bakery.clean.retention_config import parse_policy

from tests.unit.oracle import reachable

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
GROUPS = ("{tag}-amd64", "{tag}-arm")


def dg(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def image(name: str, age_days: float | None = 1, **kw: object) -> Manifest:
    created = None if age_days is None else NOW - timedelta(days=age_days)
    return Manifest(dg(name), OCI_MANIFEST, 500, created=created, layer_bytes=1000, **kw)  # type: ignore[arg-type]


def index(name: str, children: Iterable[Manifest], age_days: float = 1, **kw: object) -> Manifest:
    return Manifest(dg(name), OCI_INDEX, 300, children=tuple(c.digest for c in children),
                    created=NOW - timedelta(days=age_days), **kw)  # type: ignore[arg-type]


def snap(tags: dict[str, Manifest], *untagged: Manifest, repository: str = "acme/api", image: str = "") -> Snapshot:
    manifests = {m.digest: m for m in [*tags.values(), *untagged]}
    return Snapshot(repository, {t: m.digest for t, m in tags.items()}, manifests, image=image)


def removed(p: Plan) -> dict[str, str]:
    return {a.tag: a.method for a in p.remove_tags}


def reasons(p: Plan) -> dict[str, str]:
    return {a.tag: a.reason for a in p.remove_tags}


def protected(p: Plan) -> dict[str, str]:
    return {pr.what: pr.why for pr in p.protected}


def bakery_build(tag: str, age_days: float) -> dict[str, Manifest]:
    """What `bakery build --push --tag T` leaves: per-group indexes and the stitched index sharing children."""
    amd, arm = image(f"{tag}-amd", age_days), image(f"{tag}-arm", age_days)
    group_amd, group_arm = index(f"{tag}-g-amd", [amd], age_days), index(f"{tag}-g-arm", [arm], age_days)
    return {tag: index(tag, [amd, arm], age_days), f"{tag}-amd64": group_amd, f"{tag}-arm": group_arm}


def children_of(tags: dict[str, Manifest], names: Iterable[str]) -> list[Manifest]:
    out = []
    for name in names:
        for suffix in ("amd", "arm"):
            out.append(image(f"{name}-{suffix}"))
    return out


# --- intermediate refs follow their public tag ------------------------------------------------------


def test_intermediate_refs_are_removed_with_their_public_tag() -> None:
    tags = {**bakery_build("v1", 30), **bakery_build("v2", 1)}
    p = plan(snap(tags), Policy((Rule("v[0-9]+", keep_last=1),), intermediate=GROUPS), NOW)
    assert removed(p) == {"v1": DELETE_DIGEST, "v1-amd64": DELETE_DIGEST, "v1-arm": DELETE_DIGEST}
    assert reasons(p)["v1-arm"] == "intermediate ref of removed tag v1"


def test_intermediate_refs_of_a_kept_tag_are_kept_and_use_no_keep_last_slot() -> None:
    tags = {**bakery_build("v1", 30), **bakery_build("v2", 1)}
    p = plan(snap(tags), Policy((Rule(".*", keep_last=2),), intermediate=GROUPS), NOW)
    assert removed(p) == {}
    assert protected(p)["v2-amd64"] == "intermediate ref of kept tag v2"


def test_a_catch_all_rule_does_not_count_intermediate_refs_as_images() -> None:
    tags = {**bakery_build("v1", 30), **bakery_build("v2", 1), **bakery_build("v3", 2)}
    p = plan(snap(tags), Policy((Rule(".*", keep_last=2),), intermediate=GROUPS), NOW)
    assert set(removed(p)) == {"v1", "v1-amd64", "v1-arm"}


def test_intermediate_ref_without_its_public_tag_is_kept() -> None:
    tags = bakery_build("v9", 300)
    del tags["v9"]   # groups pushed, not stitched yet
    p = plan(snap(tags), Policy((Rule(".*", keep_last=0),), intermediate=GROUPS), NOW)
    assert removed(p) == {}
    assert protected(p)["v9-arm"] == "intermediate ref whose public tag v9 is not in the repository"


def test_intermediate_refs_follow_a_protected_public_tag() -> None:
    tags = bakery_build("v1", 300)
    p = plan(snap(tags), Policy((Rule(".*", keep_last=0),), protect=("v1",), intermediate=GROUPS), NOW)
    assert removed(p) == {}


def test_protect_defaults_false_treats_intermediate_refs_as_ordinary_tags() -> None:
    tags = {**bakery_build("v1", 30), **bakery_build("v2", 1)}
    pol = Policy((Rule("v2", keep_all=True), Rule(".*", keep_last=0)), intermediate=GROUPS, protect_defaults=False)
    p = plan(snap(tags), pol, NOW)
    assert set(removed(p)) == {"v1", "v1-amd64", "v1-arm", "v2-amd64", "v2-arm"}
    # the stitched v2 index still lists the per-group results' children: only the group indexes go
    assert removed(p)["v2-amd64"] == DELETE_DIGEST


# --- built-in tags and override_defaults ------------------------------------------------------------


def test_sha_revision_tags_are_kept_by_default() -> None:
    p = plan(snap({"sha-1a2b3c4": image("s", 100), "pr-1": image("p", 100)}), Policy((Rule(".*", keep_last=0),)), NOW)
    assert removed(p) == {"pr-1": DELETE_DIGEST}
    assert protected(p)["sha-1a2b3c4"] == "default protect pattern sha-[0-9a-f]{7,40}"


def test_a_rule_with_override_defaults_may_remove_built_in_tags() -> None:
    tags = {"cache-amd64-pr-7": image("c7"), "cache-amd64-main": image("cm"), "sha-1a2b3c4": image("s")}
    rules = (Rule("cache-.*-pr-[0-9]+", keep_last=0, override_defaults=True), Rule(".*", keep_last=0))
    p = plan(snap(tags), Policy(rules), NOW)
    assert removed(p) == {"cache-amd64-pr-7": DELETE_DIGEST}
    assert reasons(p)["cache-amd64-pr-7"] == "rule 0 (cache-.*-pr-[0-9]+): keep_last 0"


def test_override_rules_count_only_the_built_in_tags_they_claim() -> None:
    tags = {f"sha-{i:07x}": image(f"s{i}", age_days=i + 1) for i in range(4)}
    p = plan(snap(tags), Policy((Rule("sha-.*", keep_last=1, override_defaults=True),)), NOW)
    assert set(removed(p)) == {"sha-0000001", "sha-0000002", "sha-0000003"}


def test_project_cache_pattern_is_protected_like_the_defaults() -> None:
    p = plan(snap({"buildcache-main": image("b"), "x": image("x")}),
             Policy((Rule(".*", keep_last=0),), builtin=("buildcache-[a-z]+",)), NOW)
    assert removed(p) == {"x": DELETE_DIGEST}


# --- referrers-scheme tags follow their subject -------------------------------------------------------


def referrer_tag(subject: Manifest, suffix: str = ".sig") -> str:
    return f"sha256-{subject.digest.split(':')[1]}{suffix}"


def test_referrer_tag_is_removed_when_its_subject_is_deleted() -> None:
    img = image("img", 100)
    sig = image("sig", subject=img.digest)
    p = plan(snap({"pr-1": img, referrer_tag(img): sig}), Policy((Rule("pr-.*", keep_last=0),)), NOW)
    assert removed(p) == {"pr-1": DELETE_DIGEST, referrer_tag(img): DELETE_DIGEST}
    assert reasons(p)[referrer_tag(img)] == f"referrer tag of deleted manifest {img.digest}"
    assert [a.digest for a in p.delete_digests] == [img.digest, sig.digest]


def test_referrer_tag_of_a_kept_subject_is_kept() -> None:
    img = image("img", 100)
    sig = image("sig", subject=img.digest)
    p = plan(snap({"v1": img, referrer_tag(img): sig}), Policy((Rule("pr-.*", keep_last=0),)), NOW)
    assert removed(p) == {}


def test_referrer_tag_whose_subject_is_unknown_is_kept() -> None:
    sig = image("sig", subject=dg("gone"))
    tag = f"sha256-{dg('gone').split(':')[1]}.att"
    p = plan(snap({tag: sig}), Policy((Rule(".*", keep_last=0),)), NOW)
    assert removed(p) == {}
    assert protected(p)[tag].startswith("default protect pattern sha256-")


def test_referrer_tags_follow_through_chains() -> None:
    img = image("img", 100)
    sig = image("sig", subject=img.digest)
    sig_of_sig = image("sig2", subject=sig.digest)
    tags = {"pr-1": img, referrer_tag(img): sig, referrer_tag(sig): sig_of_sig}
    p = plan(snap(tags), Policy((Rule("pr-.*", keep_last=0),)), NOW)
    assert set(removed(p)) == set(tags)


# --- leftovers of interrupted runs -------------------------------------------------------------------


def test_leftovers_of_an_interrupted_run_are_removed_with_what_they_list() -> None:
    orphan = image("orphan")
    kept = image("kept")
    journal = index("journal", [orphan, kept], leftover="journal")
    placeholder = image("placeholder", leftover="untag placeholder")
    tags = {"bakery-clean-journal-1": journal, "pr-9": placeholder, "v1": kept}
    p = plan(snap(tags, orphan), Policy(), NOW)
    assert removed(p) == {"bakery-clean-journal-1": DELETE_DIGEST, "pr-9": DELETE_DIGEST}
    assert reasons(p)["pr-9"] == "untag placeholder left by an interrupted clean run"
    order = [a.digest for a in p.delete_digests]
    assert order.index(journal.digest) < order.index(orphan.digest)
    assert {a.digest for a in p.delete_digests} == {journal.digest, orphan.digest, placeholder.digest}


def test_a_protect_pattern_wins_over_a_leftover() -> None:
    p = plan(snap({"bakery-clean-journal-1": image("j", leftover="journal")}),
             Policy(protect=("bakery-.*",)), NOW)
    assert removed(p) == {}


# --- dangling tags ----------------------------------------------------------------------------------


def test_a_dangling_tag_is_removed_the_placeholder_way() -> None:
    s = Snapshot("acme/api", {"v1": dg("v1")}, {dg("v1"): image("v1")}, dangling=("pr-7",))
    p = plan(s, Policy(), NOW)
    assert [(a.tag, a.digest, a.method) for a in p.remove_tags] == [("pr-7", "", RETAG_THEN_DELETE)]
    assert p.remove_tags[0].reason.startswith("listed but resolves to no manifest")
    assert p.keep_tags == ("v1",) and p.delete_digests == ()


def test_a_protect_pattern_keeps_a_dangling_tag() -> None:
    p = plan(Snapshot("acme/api", {}, {}, dangling=("release-1",)), Policy(protect=("release-.*",)), NOW)
    assert p.remove_tags == ()


# --- bytes, image names, warnings --------------------------------------------------------------------


def test_bytes_count_each_blob_once_and_not_when_a_kept_image_uses_it() -> None:
    base, own_a, own_b = ("sha256:" + c * 64 for c in "abc")
    a = Manifest(dg("a"), OCI_MANIFEST, 100, blobs=((base, 1000), (own_a, 10)))
    b = Manifest(dg("b"), OCI_MANIFEST, 100, blobs=((base, 1000), (own_b, 20)))
    kept = Manifest(dg("k"), OCI_MANIFEST, 100, blobs=((base, 1000),))
    p = plan(snap({"a": a, "b": b, "k": kept}), Policy((Rule("[ab]", keep_last=0),)), NOW)
    assert {d.digest: d.bytes for d in p.delete_digests} == {a.digest: 110, b.digest: 120}
    alone = plan(snap({"a": a, "b": b}), Policy((Rule("[ab]", keep_last=0),)), NOW)
    assert alone.bytes_freed == 100 + 100 + 1000 + 10 + 20


def test_rule_images_accept_the_config_image_name() -> None:
    r = Rule(".*", keep_last=0, images=("api",))
    assert removed(plan(snap({"t": image("t")}, image="api"), Policy((r,)), NOW)) == {"t": DELETE_DIGEST}
    assert removed(plan(snap({"t": image("t")}, image="web"), Policy((r,)), NOW)) == {}


def test_keep_last_zero_does_not_warn_about_unknown_ages() -> None:
    p = plan(snap({"pr-1": image("a", age_days=None)}), Policy((Rule("pr-.*", keep_last=0),)), NOW)
    assert p.warnings == ()


def test_parse_policy_reads_override_defaults() -> None:
    pol = parse_policy({"rules": [{"match": "cache-.*", "keep_last": 0, "override_defaults": True}]}, "bakery.yaml")
    assert pol.rules[0].override_defaults is True


def test_override_defaults_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy({"rules": [{"match": ".*", "keep_last": 0, "override_defaults": "yes"}]}, "bakery.yaml")
    assert info.value.key == "retention.rules[0].override_defaults"


# --- property: bakery-shaped repositories ------------------------------------------------------------

TAGS = ["v1", "v2", "v3", "pr-1", "pr-2", "latest", "main"]


@st.composite
def repos(draw: st.DrawFn) -> Snapshot:
    manifests: dict[str, Manifest] = {}
    tags: dict[str, str] = {}
    pool: list[Manifest] = []   # platform images, reusable across builds (unchanged platforms)
    for name in draw(st.lists(st.sampled_from(TAGS), unique=True, max_size=6)):
        age = draw(st.integers(0, 100))
        parts = []
        for arch in ("amd", "arm"):
            if pool and draw(st.booleans()):
                parts.append(draw(st.sampled_from(pool)))
            else:
                img = image(f"{name}-{arch}-{age}", age)
                pool.append(img)
                parts.append(img)
        groups = [index(f"{name}-g{i}", [part], age) for i, part in enumerate(parts)]
        top = index(name, parts, age)
        for m in (*parts, *groups, top):
            manifests[m.digest] = m
        tags[name] = top.digest
        for template, group in zip(GROUPS, groups):
            if draw(st.integers(0, 4)):
                tags[template.replace("{tag}", name)] = group.digest
        if draw(st.integers(0, 3)) == 0:
            sig = image(f"{name}-sig", age, subject=top.digest)
            manifests[sig.digest] = sig
            tags[f"sha256-{top.digest.split(':')[1]}.sig"] = sig.digest
    if pool and draw(st.booleans()):   # a tag straight on a platform image
        tags["amd64-only"] = draw(st.sampled_from(pool)).digest
    return Snapshot("acme/api", tags, manifests, image="api")


POLICIES = st.builds(
    Policy,
    rules=st.lists(st.builds(Rule, match=st.sampled_from([".*", "v.*", "pr-.*", "latest", "amd64-.*"]),
                             keep_last=st.none() | st.integers(0, 2),
                             older_than=st.none() | st.integers(0, 100).map(lambda d: timedelta(days=d)),
                             keep_all=st.just(False)).filter(lambda r: r.keep_last is not None or r.older_than),
                   max_size=3).map(tuple),
    protect=st.lists(st.sampled_from(["v1", "main"]), max_size=1).map(tuple),
    intermediate=st.just(GROUPS),
)


@settings(max_examples=300, deadline=None)
@given(repos(), POLICIES)
def test_property_built_in_tags_never_break_what_is_kept(snapshot: Snapshot, policy: Policy) -> None:
    p = plan(snapshot, policy, NOW)
    gone_tags = set(removed(p))
    kept_tags = set(snapshot.tags) - gone_tags
    gone = {a.digest for a in p.delete_digests}
    # nothing a kept tag reaches is deleted; a tag is digest-deleted exactly when its digest goes
    assert reachable(snapshot, [snapshot.tags[t] for t in kept_tags]).isdisjoint(gone)
    for a in p.remove_tags:
        assert (a.method == DELETE_DIGEST) == (a.digest in gone)
        assert a.method in (DELETE_DIGEST, RETAG_THEN_DELETE)
    # an intermediate ref goes exactly when its public tag goes
    for tag in snapshot.tags:
        m = re.fullmatch(r"(.+)-(amd64|arm)", tag)
        if m and m.group(1) in snapshot.tags:
            assert (tag in gone_tags) == (m.group(1) in gone_tags), tag
    # a referrers-scheme tag goes exactly when the digest it names is deleted
    for tag in snapshot.tags:
        m = re.fullmatch(r"sha256-([0-9a-f]{64})\.sig", tag)
        if m:
            assert (tag in gone_tags) == (f"sha256:{m.group(1)}" in gone), tag
    # protected tags stay; the plan is deterministic
    for tag in kept_tags | gone_tags:
        if any(re.fullmatch(pattern, tag) for pattern in policy.protect):
            assert tag in kept_tags
    assert plan(snapshot, policy, NOW) == p
