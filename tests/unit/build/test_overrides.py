"""bakery.build.overrides: --set, --build-arg, --provenance and --sbom, checked and turned into bake's input."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.build.overrides import OverrideError, Overrides, overrides
from bakery.capabilities import Capabilities
from bakery.config import validate

OLD, NEW = Capabilities((0, 13, 1)), Capabilities((0, 29, 1))
TARGETS = ["api-amd64", "api-arm", "worker-amd64"]


def test_build_args_become_sets_on_every_target() -> None:
    got = overrides(["api-*.labels.team=core"], ["X=1", "EMPTY="], TARGETS, OLD, provenance="mode=max")
    assert got == Overrides(("api-*.labels.team=core", "*.args.X=1", "*.args.EMPTY="), "mode=max", None)
    assert not got.empty and got.fingerprint()["sets"] == list(got.sets)


def test_no_overrides_is_empty() -> None:
    assert overrides([], [], TARGETS, OLD).empty


def test_append_needs_buildx_0_20() -> None:
    assert overrides(["*.args.X+=1"], [], TARGETS, NEW).sets == ("*.args.X+=1",)
    with pytest.raises(OverrideError, match=r"\+= needs buildx 0.20 or newer \(this is 0.13.1\)"):
        overrides(["*.args.X+=1"], [], TARGETS, OLD)


@pytest.mark.parametrize("key", ["tags", "output", "platform", "push", "context", "dockerfile"])
def test_what_bakery_builds_on_cannot_be_overridden(key: str) -> None:
    with pytest.raises(OverrideError, match=f"{key} cannot be overridden"):
        overrides([f"*.{key}=x"], [], TARGETS, NEW)


@pytest.mark.parametrize(("sets", "args", "message"), [
    (["no-dot=1"], [], "expected PATTERN.KEY=VALUE"),
    (["db.args.X=1"], [], "'db' matches none of the targets built"),
    ([], ["9X=1"], "--build-arg '9X=1'"),
    ([], ["X"], "--build-arg 'X'"),
])
def test_a_bad_override_names_itself(sets: list[str], args: list[str], message: str) -> None:
    with pytest.raises(OverrideError, match=message.replace("(", r"\(")):
        overrides(sets, args, TARGETS, NEW)


def test_an_empty_provenance_is_refused() -> None:
    with pytest.raises(OverrideError, match="--provenance: expected"):
        overrides([], [], TARGETS, NEW, provenance=" ")


def test_one_builder_maps_every_group_to_it(tmp_path: Path) -> None:
    from bakery.build.overrides import one_builder
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    cfg = validate({"registry": "r.example/acme", "images": {"app": {"context": "app"}},
                    "platform_groups": {"amd64": ["linux/amd64"], "arm": {"platforms": ["linux/arm64"], "builder": "x"}},
                    "builders": {"x": {"driver": "docker", "context": "other"}}}, tmp_path, "bakery.yaml")
    one = one_builder(cfg, "ci-builder", "docker-container")
    assert {one.builder_of(g).name for g in one.platform_groups} == {"ci-builder"}
    assert one.builder_of("arm").driver == "docker-container" and one.builder_of("arm").context is None
    assert one_builder(cfg, "bakery-e2", "docker").builder_of("amd64").context == "bakery-e2"
