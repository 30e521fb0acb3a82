"""The --allow grants bakery passes to bake: exactly what its generated file needs, on the buildx that takes them."""

from __future__ import annotations

from pathlib import Path

from bakery.build.bakefile import TargetInfo
from bakery.build.build import explain_failure
from bakery.build.entitlements import cache_dirs, grants
from bakery.capabilities import Capabilities

NEW = Capabilities((0, 29, 1))
OLD = Capabilities((0, 13, 1))


def doc(**target: object) -> dict:
    return {"target": {"t": {"context": "svc", "dockerfile": "Dockerfile", **target}}}


def test_contexts_inside_the_repository_need_no_grant(tmp_path: Path) -> None:
    assert grants(doc(), ["t"], tmp_path, NEW) == []


def test_a_context_outside_the_repository_is_granted_read_by_its_absolute_path(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    assert grants(doc(context="../shared"), ["t"], root, NEW) == [f"fs.read={tmp_path / 'shared'}"]


def test_local_cache_outside_gets_read_for_import_and_write_for_export(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    d = doc(**{"cache-from": ["type=local,src=/var/cache/b"], "cache-to": ["type=local,dest=/var/cache/b,mode=max"]})
    assert grants(d, ["t"], root, NEW) == ["fs.read=/var/cache/b", "fs.write=/var/cache/b"]
    assert cache_dirs(d, ["t"], root) == [Path("/var/cache/b")]


def test_network_host_and_declared_entitlements_are_granted(tmp_path: Path) -> None:
    d = doc(network="host", entitlements=["security.insecure"])
    assert grants(d, ["t"], tmp_path, NEW) == ["network.host", "security.insecure"]


def test_buildx_without_allow_gets_no_grants(tmp_path: Path) -> None:
    assert grants(doc(context="/elsewhere", network="host"), ["t"], tmp_path, OLD) == []


def test_a_symlink_leaving_the_repository_counts_as_outside(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "real").mkdir()
    (root / "link").symlink_to(tmp_path / "real")
    assert grants(doc(context="link"), ["t"], root, NEW) == [f"fs.read={root / 'link'}"]


def test_a_grant_bake_asks_for_is_named_in_the_failure() -> None:
    lines = ["Your build is requesting privileges for following possibly insecure capabilities:", "",
             " - Running build containers that can access host network", "",
             'Pass "--allow=network.host" to grant requested privileges.', "",
             "ERROR: additional privileges requested"]
    message = explain_failure(lines, [TargetInfo("t", "t", "amd64", ("linux/amd64",))])
    assert message.startswith("build failed: buildx asks for --allow=network.host")
