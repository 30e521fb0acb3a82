"""bakery.clean.execute and the clean task's output: what is derived from bakery.yaml, the journal and placeholder
manifests, execution order helpers, the plan table and the progress line."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bakery.clean import execute as clean
from bakery.clean.tasks import Progress, format_bytes, plan_table
from bakery.config import Config, load
from bakery.errors import BakeryError, ConfigError
from bakery.manifest.drafts import EMPTY_DIGEST
from bakery.oci.registry import digest_of
from bakery.clean.retention import DigestAction, Manifest, Plan, Policy, Protection, Rule, Snapshot, TagAction

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BASE = """
registry: 127.0.0.1:5000/acme
platform_groups:
  amd64: [linux/amd64]
  arm: [linux/arm64, linux/arm/v7]
images:
  api: {context: api}
  worker: {context: worker, repository: team/worker}
"""


def project(tmp_path: Path, extra: str = "") -> Config:
    for name in ("api", "worker"):
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text(BASE + extra)
    return load(tmp_path / "bakery.yaml")


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BAKERY_REGISTRY", raising=False)
    monkeypatch.chdir(tmp_path)


# --- from bakery.yaml ------------------------------------------------------------------------------


def test_policy_knows_the_projects_intermediate_refs_and_cache_tags(tmp_path: Path) -> None:
    policy = clean.policy_for(project(tmp_path))
    assert policy.intermediate == ("{tag}-amd64", "{tag}-arm")
    (pattern,) = policy.builtin
    assert re.fullmatch(pattern, "cache-arm-main") and re.fullmatch(pattern, "cache-amd64-feature.x")
    assert not re.fullmatch(pattern, "cache-riscv-main")


def test_a_custom_cache_ref_and_intermediate_tag_shape_the_built_in_tags(tmp_path: Path) -> None:
    extra = ('cache: {ref: "{registry}/{repository}:bc.{scope}.{group}"}\n'
             'intermediate_tag: "{group}--{tag}"\n')
    policy = clean.policy_for(project(tmp_path, extra))
    assert policy.intermediate == ("amd64--{tag}", "arm--{tag}")
    assert re.fullmatch(policy.builtin[0], "bc.main.amd64")


def test_retention_is_read_from_bakery_yaml(tmp_path: Path) -> None:
    policy = clean.policy_for(project(tmp_path, "retention:\n  rules:\n    - {match: 'pr-.*', keep_last: 0}\n"))
    assert policy.rules == (Rule("pr-.*", keep_last=0),)


def test_a_rule_naming_an_unknown_image_is_a_config_error(tmp_path: Path) -> None:
    cfg = project(tmp_path, "retention:\n  rules:\n    - {match: '.*', keep_last: 1, images: [apii]}\n")
    with pytest.raises(ConfigError) as info:
        clean.policy_for(cfg)
    assert str(info.value) == ("bakery.yaml: retention.rules[0].images[0]: unknown image 'apii'; "
                               "did you mean api?")


def test_targets_are_the_image_repositories_under_the_registry(tmp_path: Path) -> None:
    got = clean.targets(project(tmp_path))
    assert got == [clean.Target("api", "127.0.0.1:5000/acme/api", "acme/api"),
                   clean.Target("worker", "127.0.0.1:5000/acme/team/worker", "acme/team/worker")]


def test_image_flag_narrows_the_targets_and_names_a_typo(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert [t.image for t in clean.targets(cfg, ["worker"])] == ["worker"]
    with pytest.raises(BakeryError, match="--image wroker: no such image in bakery.yaml; did you mean worker"):
        clean.targets(cfg, ["wroker"])


def test_targets_follow_bakery_registry_like_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAKERY_REGISTRY", "127.0.0.1:5001/other")
    assert clean.targets(project(tmp_path), ["api"])[0].ref == "127.0.0.1:5001/other/api"


@pytest.mark.parametrize(("policy", "needed"), [
    (Policy(), False),
    (Policy((Rule("pr-.*", keep_last=0),)), False),
    (Policy((Rule("pr-.*", keep_last=0),), untagged="delete"), False),
    (Policy((Rule(".*", keep_last=3),)), True),
    (Policy((Rule(".*", older_than=NOW - NOW),)), True),
    (Policy(untagged=2), True),
])
def test_configs_are_read_only_when_a_decision_depends_on_age(policy: Policy, needed: bool) -> None:
    assert clean.needs_created(policy) is needed


# --- journal and placeholder manifests -------------------------------------------------------------


def test_the_journal_lists_what_a_run_will_delete_with_media_types_and_sizes() -> None:
    a = Manifest("sha256:" + "a" * 64, OCI_INDEX, 300)
    b = Manifest("sha256:" + "b" * 64, OCI_MANIFEST, 500)
    snap = Snapshot("acme/api", {}, {a.digest: a, b.digest: b})
    doc = json.loads(clean.journal_index(snap, [a.digest, b.digest], NOW))
    assert doc["mediaType"] == OCI_INDEX
    assert doc["annotations"] == {"dev.bakery.clean.execute": "journal", "org.opencontainers.image.created":
                                  "2024-06-01T12:00:00Z"}
    assert doc["manifests"] == [{"mediaType": OCI_INDEX, "digest": a.digest, "size": 300},
                                {"mediaType": OCI_MANIFEST, "digest": b.digest, "size": 500}]


def test_placeholders_are_unique_tiny_manifests_on_the_empty_config() -> None:
    one, two = clean.placeholder("pr-1"), clean.placeholder("pr-1")
    assert digest_of(one) != digest_of(two) and len(one) < 500
    doc = json.loads(one)
    assert doc["config"] == {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST,
                             "size": 2}
    assert doc["layers"] == [] and doc["annotations"]["dev.bakery.clean.execute"] == "untag"
    assert EMPTY_DIGEST == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


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


# --- local cleanup flags ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["10gb", "512MB", "1.5g", "1000000", "20GiB"])
def test_keep_storage_accepts_sizes(size: str) -> None:
    assert clean.check_size(size) == size


@pytest.mark.parametrize("size", ["ten", "10 parsecs", "-1gb", ""])
def test_keep_storage_rejects_what_is_not_a_size(size: str) -> None:
    with pytest.raises(BakeryError, match="--keep-storage"):
        clean.check_size(size)


def test_filters_must_be_key_value() -> None:
    assert clean.check_filter("until=24h", "--filter") == "until=24h"
    with pytest.raises(BakeryError, match="--filter 'until': expected KEY=VALUE"):
        clean.check_filter("until", "--filter")


# --- output ----------------------------------------------------------------------------------------


def sample_plan() -> Plan:
    idx, child, shared = ("sha256:" + c * 64 for c in "abc")
    return Plan(
        repository="acme/api",
        remove_tags=(TagAction("pr-1", idx, "rule 0 (pr-.*): keep_last 0", "delete-digest"),
                     TagAction("pr-2", shared, "rule 0 (pr-.*): keep_last 0", "retag-then-delete")),
        delete_digests=(DigestAction(idx, "tag pr-1 removed; nothing kept uses it", None, 1500),
                        DigestAction(child, f"child of deleted index {idx}", idx, 2_500_000)),
        protected=(Protection("cache-amd64-main", "default protect pattern cache-.*"),
                   Protection(shared, "shared with kept tag latest")),
        warnings=("sha256:" + "d" * 64 + " has no created time: never counted as older_than",),
        keep_tags=("cache-amd64-main", "latest"),
    )


def test_the_plan_table_says_what_why_and_how_much() -> None:
    plan = sample_plan()
    text = plan_table("127.0.0.1:5000/acme/api", plan, 4, 6, {"sha256:" + "b" * 64: "linux/arm64"})
    lines = text.splitlines()
    assert lines[0] == ("127.0.0.1:5000/acme/api: 4 tags, 6 manifests -> remove 2 tags, delete 2 manifests, "
                        "frees ~2.5 MB")
    assert lines[1].split() == ["ACTION", "WHAT", "FREES", "WHY"]
    assert re.search(r"remove tag pr-1 +rule 0 \(pr-\.\*\): keep_last 0; goes with its digest$", text, re.M)
    assert re.search(r"remove tag pr-2 +.*; untag only: shared with kept tag latest$", text, re.M)
    assert re.search(r"delete +sha256:bbbbbbbbbbbb linux/arm64 +2\.5 MB  child of deleted index "
                     r"sha256:aaaaaaaaaaaa$", text, re.M)
    assert re.search(r"protect +cache-amd64-main +default protect pattern cache-\.\*$", text, re.M)
    assert re.search(r"warning +sha256:dddddddddddd has no created time", text, re.M)
    assert lines[-1] == "  keep 2 tags: cache-amd64-main, latest"


def test_format_bytes_uses_decimal_units() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 2_500_000, 3 * 10**9)] == \
        ["0 B", "999 B", "1.0 kB", "2.5 MB", "3.0 GB"]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    out = Tty()
    progress = Progress(out)
    progress.label = "repo"
    for done in range(4):
        progress("reading tags", done, 3)
    progress.end()
    assert out.getvalue().startswith("\r\x1b[Krepo: reading tags 0/3")
    assert "\r\x1b[Krepo: reading tags 3/3" in out.getvalue() and "\n" not in out.getvalue()


def test_progress_prints_a_line_per_finished_phase_in_logs() -> None:
    out = io.StringIO()
    progress = Progress(out, every=3600)
    for phase in ("reading tags", "reading manifests"):
        for done in range(6):
            progress(phase, done, 5)
    assert out.getvalue().splitlines() == ["reading tags 5/5", "reading manifests 5/5"]
