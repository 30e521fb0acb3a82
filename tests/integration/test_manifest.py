"""`bakery manifest.*` on the real stack: an index from per-arch buildx refs (attestations kept or dropped),
annotate, push (also across repositories), inspect as a table and JSON, and rm of one tag that leaves every
index pullable. Never `docker manifest`."""

from __future__ import annotations

import json

import pytest
import requests

from tests.conftest import index_platforms, pull_every_platform, registry_manifest
from tests.fixtures.release.projects import armfail_project, bakery, commit, new_prefix

pytestmark = pytest.mark.stack

PLATFORMS = ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def ok(proc):  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def tags_of(name: str) -> set[str]:
    host, _, path = name.partition("/")
    resp = requests.get(f"http://{host}/v2/{path}/tags/list", timeout=30)
    return set(resp.json().get("tags") or []) if resp.status_code == 200 else set()


def attestations(index: dict) -> list[dict]:
    return [m for m in index["manifests"]
            if (m.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"]


@pytest.fixture(scope="module")
def per_arch(tmp_path_factory: pytest.TempPathFactory, stack: str):
    """The probe project's per-group results pushed as `m1-amd64` (index: 1 image + attestation) and `m1-arm`
    (index: arm64, arm/v7 + attestations): (root, repository name)."""
    prefix = new_prefix(stack)
    root = armfail_project(tmp_path_factory.mktemp("manifest") / "project", prefix)
    commit(root, "probe")
    ok(bakery(root, "build", "--push", "--tag", "m1"))
    return root, f"{prefix}/probe"


def test_create_and_push_an_index_from_per_arch_buildx_refs(per_arch) -> None:
    root, name = per_arch
    out = ok(bakery(root, "manifest.create", f"{name}:joined", "--source", f"{name}:m1-amd64",
                    "--source", f"{name}:m1-arm", "--push")).stdout
    index, digest = registry_manifest(name, "joined")
    assert out.strip() == f"{name}:joined@{digest}"
    assert index_platforms(index) == PLATFORMS
    subjects = [a["annotations"]["vnd.docker.reference.digest"] for a in attestations(index)]
    assert len(subjects) == 3 and set(subjects) <= {m["digest"] for m in index["manifests"]}


def test_create_can_drop_the_attestations(per_arch) -> None:
    root, name = per_arch
    ok(bakery(root, "manifest.create", f"{name}:bare", "--source", f"{name}:m1-amd64", "--source", f"{name}:m1-arm",
              "--attestations", "drop", "--push"))
    index, _ = registry_manifest(name, "bare")
    assert index_platforms(index) == PLATFORMS and attestations(index) == []


def test_annotate_overrides_the_platform_of_one_entry_in_the_draft(per_arch) -> None:
    root, name = per_arch
    ok(bakery(root, "manifest.create", f"{name}:annotated", "--source", f"{name}:m1-amd64",
              "--source", f"{name}:m1-arm"))
    shown = ok(bakery(root, "manifest.annotate", f"{name}:annotated", f"{name}:m1-amd64", "--variant", "v2")).stdout
    assert "linux/amd64/v2" in shown
    ok(bakery(root, "manifest.push", f"{name}:annotated", "--purge"))
    index, _ = registry_manifest(name, "annotated")
    assert index_platforms(index) == ["linux/amd64/v2", "linux/arm64", "linux/arm/v7"]
    assert not list((root / "bake" / "manifests").glob("*.json"))          # --purge removed the draft


def test_create_refuses_two_images_for_one_platform(per_arch) -> None:
    root, name = per_arch
    busybox = f"{name.split('/', 1)[0]}/base/busybox:1.35"         # another linux/amd64 image, same registry
    proc = bakery(root, "manifest.create", f"{name}:clash", "--source", f"{name}:m1-amd64", "--source", busybox)
    assert proc.returncode != 0
    assert f"platform linux/amd64 is in the index twice ({name}:m1-amd64 and {busybox})" in proc.stderr


def test_the_same_image_named_twice_is_one_entry(per_arch) -> None:
    root, name = per_arch
    out = ok(bakery(root, "manifest.create", f"{name}:twice", "--source", f"{name}:m1-amd64",
                    "--source", f"{name}:m1-amd64")).stdout
    assert [ln.split()[0] for ln in out.splitlines()[1:3]] == ["linux/amd64", "unknown/unknown"]
    assert out.splitlines()[3].startswith("draft: ")


def test_push_copies_entries_from_another_repository(per_arch) -> None:
    root, name = per_arch
    target = f"{name.rsplit('/', 1)[0]}/copied"
    ok(bakery(root, "manifest.create", f"{target}:1", "--source", f"{name}:m1-amd64", "--source", f"{name}:m1-arm",
              "--push"))
    index, _ = registry_manifest(target, "1")
    assert index_platforms(index) == PLATFORMS
    pull_every_platform(f"{target}:1", ["linux/arm/v7"])


def test_inspect_prints_a_table_of_entries_with_attestation_of(per_arch) -> None:
    root, name = per_arch
    out = ok(bakery(root, "manifest.inspect", f"{name}:m1-arm")).stdout
    lines = out.splitlines()
    _, digest = registry_manifest(name, "m1-arm")
    assert lines[0] == f"{name}@{digest}  application/vnd.oci.image.index.v1+json"
    assert lines[1].split() == ["PLATFORM", "DIGEST", "MEDIA", "TYPE", "SIZE", "ATTESTATION", "OF"]
    assert [ln.split()[0] for ln in lines[2:]] == ["linux/arm64", "linux/arm/v7", "unknown/unknown",
                                                   "unknown/unknown"]
    assert lines[4].split()[-2] == "linux/arm64" and lines[5].split()[-2] == "linux/arm/v7"


def test_inspect_json_and_short_names_under_the_configured_registry(per_arch) -> None:
    root, name = per_arch
    data = json.loads(ok(bakery(root, "manifest.inspect", "probe:m1-amd64", "--json")).stdout)
    assert data["ref"] == f"{name}:m1-amd64"
    assert [e["platform"] for e in data["entries"]] == ["linux/amd64", "unknown/unknown"]
    assert data["entries"][1]["attestationOf"].startswith("linux/amd64 (")


def test_inspect_a_single_manifest_reads_its_platform_from_the_config(per_arch) -> None:
    root, name = per_arch
    index, _ = registry_manifest(name, "m1-arm")
    arm = index["manifests"][1]["digest"]
    data = json.loads(ok(bakery(root, "manifest.inspect", f"{name}@{arm}", "--json")).stdout)
    assert data["entries"] == [{"platform": "linux/arm/v7", "digest": arm, "attestationOf": None,
                                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                "size": data["size"]}]


def test_rm_removes_only_the_tag_and_the_index_stays_pullable(per_arch) -> None:
    root, name = per_arch
    ok(bakery(root, "manifest.create", f"{name}:keep", "--source", f"{name}:m1-amd64", "--source", f"{name}:m1-arm",
              "--push"))
    _, kept = registry_manifest(name, "keep")
    for tag in ("m1-amd64", "m1-arm"):
        out = ok(bakery(root, "manifest.rm", f"{name}:{tag}")).stdout
        assert out.startswith(f"untagged {name}:{tag} (was sha256:")
    assert not {"m1-amd64", "m1-arm"} & tags_of(name)
    assert registry_manifest(name, "keep")[1] == kept
    pull_every_platform(f"{name}:keep", PLATFORMS)


def test_rm_of_a_missing_tag_is_a_clear_error(per_arch) -> None:
    root, name = per_arch
    proc = bakery(root, "manifest.rm", f"{name}:nope")
    assert proc.returncode != 0 and f"{name}:nope does not exist" in proc.stderr


def test_rm_on_a_registry_that_refuses_delete_changes_nothing_and_says_what_it_needs(tmp_path) -> None:
    from tests.integration.seed import Seeder, digest_at, private_registry, tags_of as listed
    from bakery.oci.registry import Registry
    with private_registry(delete=False) as reg:
        image = Seeder(Registry(reg.host, insecure=True), "acme/app").multiarch("v1", nonce="rm")
        proc = bakery(tmp_path, "manifest.rm", f"{reg.host}/acme/app:v1")
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [
            f"bakery: acme/app:v1: registry {reg.host} refuses DELETE (405): enable `storage.delete.enabled` "
            "(distribution) or remove images with the registry's own API or retention policy; nothing was changed"]
        assert listed(reg.host, "acme/app") == ["v1"] and digest_at(reg.host, "acme/app", "v1") == image.index.digest
