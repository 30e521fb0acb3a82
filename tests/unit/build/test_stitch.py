"""bakery.build.stitch, the one stitcher of build and release, against the in-memory registry: the index bytes,
what is pushed and when, and the notes for images whose groups are not all there yet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bakery.build import stitch
from bakery.config import load
from bakery.errors import BakeryError, RegistryError
from bakery.oci.index import make_index, read_part
from bakery.oci.registry import OCI_INDEX, OCI_MANIFEST, digest_of
from tests.support.registry import FakeRegistry

REPO = "acme/api"
ATTESTED = {"vnd.docker.reference.type": "attestation-manifest"}


def image(reg: FakeRegistry, arch: str, variant: str | None = None, repo: str = REPO,
          labels: dict[str, str] | None = None, cmd: tuple[str, ...] = ("/app",)) -> str:
    """An image manifest whose config blob names its platform (what a single-platform bake push leaves); ``cmd``
    () makes a data-only image (no CMD, no ENTRYPOINT)."""
    cfg: dict[str, Any] = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {}),
                           "config": {"Labels": labels or {}, **({"Cmd": list(cmd)} if cmd else {})}}
    raw = json.dumps(cfg).encode()
    blob = reg.put_blob(repo, raw)
    return reg.add_json(repo, {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob,
                                          "size": len(raw)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                           "digest": digest_of(f"{arch}{variant}".encode()), "size": 1000}]})


def entry(reg: FakeRegistry, digest: str, platform: dict[str, str], repo: str = REPO) -> dict[str, Any]:
    return {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(reg.manifests[repo][digest].raw),
            "platform": platform}


def attestation(reg: FakeRegistry, of: str, repo: str = REPO) -> dict[str, Any]:
    digest = reg.add_json(repo, {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "subject-of": of})
    return {**entry(reg, digest, {"os": "unknown", "architecture": "unknown"}, repo),
            "annotations": {**ATTESTED, "vnd.docker.reference.digest": of}}


def group_index(reg: FakeRegistry, entries: list[dict[str, Any]], tag: str | None = None, repo: str = REPO) -> str:
    return reg.add_json(repo, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, tag)


@pytest.fixture
def reg() -> FakeRegistry:
    return FakeRegistry()


@pytest.fixture
def groups(reg: FakeRegistry) -> tuple[str, str]:
    """amd64: one single manifest; arm: an index of arm64 (attested) and arm/v7."""
    amd64 = image(reg, "amd64")
    arm64, v7 = image(reg, "arm64"), image(reg, "arm", "v7")
    arm = group_index(reg, [entry(reg, arm64, {"os": "linux", "architecture": "arm64"}),
                            entry(reg, v7, {"os": "linux", "architecture": "arm", "variant": "v7"}),
                            attestation(reg, arm64)])
    return amd64, arm


def test_an_index_lists_every_group_entry_in_group_order_with_its_platform(reg: FakeRegistry,
                                                                          groups: tuple[str, str]) -> None:
    parts = [read_part(reg, REPO, d) for d in groups]
    made = stitch.stitch_parts(parts)
    assert made.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7")
    assert made.sources == groups
    assert made.raw == make_index([e for p in parts for e in p.entries]) and made.digest == digest_of(made.raw)
    assert json.loads(made.raw)["manifests"][0]["platform"] == {"architecture": "amd64", "os": "linux"}


def test_release_mode_keeps_or_drops_attestations_and_annotates(reg: FakeRegistry, groups: tuple[str, str]) -> None:
    parts = [read_part(reg, REPO, d) for d in groups]
    kept = stitch.stitch_parts(parts, {"org.opencontainers.image.version": "1.0.0"}, "keep")
    dropped = stitch.stitch_parts(parts, {"org.opencontainers.image.version": "1.0.0"}, "drop")
    assert len(kept.entries) == 4 and kept.dropped == ()
    assert len(dropped.entries) == 3 and len(dropped.dropped) == 1
    assert json.loads(kept.raw)["annotations"] == {"org.opencontainers.image.version": "1.0.0"}
    assert kept.platforms == dropped.platforms


def test_release_mode_refuses_two_images_for_one_platform(reg: FakeRegistry) -> None:
    a, b = image(reg, "amd64"), image(reg, "arm64")         # two images, both listed as linux/amd64
    one = group_index(reg, [entry(reg, a, {"os": "linux", "architecture": "amd64"})])
    two = group_index(reg, [entry(reg, b, {"os": "linux", "architecture": "amd64"})])
    parts = [read_part(reg, REPO, one), read_part(reg, REPO, two)]
    stitch.stitch_parts(parts)                       # build carries what the groups hold
    with pytest.raises(BakeryError, match="in the index twice"):
        stitch.stitch_parts(parts, None, "keep")


def test_stitch_image_puts_one_index_under_every_tag(reg: FakeRegistry, groups: tuple[str, str]) -> None:
    done = stitch.stitch_image(reg, REPO, ["1.0", "latest"], [(groups[0], ["linux/amd64"]),
                                                              (groups[1], ["linux/arm/v7", "linux/arm64"])])
    assert reg.tag_map[REPO]["1.0"] == reg.tag_map[REPO]["latest"] == done.digest
    assert done.index.platforms == ("linux/amd64", "linux/arm64", "linux/arm/v7") and done.tags == ("1.0", "latest")
    assert reg.manifests[REPO][done.digest].media_type == OCI_INDEX


def test_a_group_with_other_platforms_pushes_nothing(reg: FakeRegistry, groups: tuple[str, str]) -> None:
    reg.calls.clear()
    with pytest.raises(RegistryError, match=r"holds platforms \['linux/arm64', 'linux/arm/v7'\], expected"):
        stitch.stitch_image(reg, REPO, ["1.0"], [(groups[0], ["linux/amd64"]), (groups[1], ["linux/arm64"])])
    assert not [c for c in reg.calls if c[0] == "PUT"]


CONFIG = """\
registry: registry.test/acme
platform_groups:
  amd64: [linux/amd64]
  arm: [linux/arm64, linux/arm/v7]
images:
  api: {context: api}
"""


def config(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "bakery.yaml").write_text(CONFIG)
    return load(tmp_path / "bakery.yaml")


def test_stitch_images_takes_built_digests_and_earlier_per_group_refs(tmp_path: Path, reg: FakeRegistry,
                                                                      groups: tuple[str, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stitch, "registry_for", lambda host: (reg, "acme"))
    reg.put_manifest(REPO, "v1-arm", reg.manifests[REPO][groups[1]].raw, OCI_INDEX)
    done = stitch.stitch_images(config(tmp_path), ["api"], "v1", "registry.test/acme", {"api-amd64": groups[0]})
    assert done.notes == []
    assert done.images["api"]["ref"] == "registry.test/acme/api:v1"
    assert done.images["api"]["sources"] == list(groups)
    assert reg.tag_map[REPO]["v1"] == done.images["api"]["digest"]


def test_an_image_with_a_group_missing_is_left_with_a_note(tmp_path: Path, reg: FakeRegistry,
                                                           groups: tuple[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stitch, "registry_for", lambda host: (reg, "acme"))
    reg.calls.clear()
    done = stitch.stitch_images(config(tmp_path), ["api"], "v1", "registry.test/acme", {"api-amd64": groups[0]})
    assert done.images == {}
    assert done.notes == ["api: not stitched yet: v1-arm missing in acme/api (build those groups with the same "
                          "--tag, then `invoke stitch --tag v1`)"]
    assert not [c for c in reg.calls if c[0] == "PUT"]


def test_the_dry_run_names_every_per_group_ref(tmp_path: Path) -> None:
    assert stitch.plan_lines(config(tmp_path), ["api"], "v1", "registry.test/acme") == \
        ["would stitch registry.test/acme/api:v1 <- registry.test/acme/api:v1-amd64 registry.test/acme/api:v1-arm"]
