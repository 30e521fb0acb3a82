"""bakery.config.variables: what bake gets, and the cache scope a build writes in CI and outside it."""

from __future__ import annotations

from pathlib import Path

from bakery.config import Config, validate
from bakery.config.variables import VAR_SCOPE, bake_variables, in_ci


def config(tmp_path: Path, cache: dict[str, object] | None = None) -> Config:
    (tmp_path / "app").mkdir(exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    doc: dict[str, object] = {"registry": "127.0.0.1:5000/acme", "platform_groups": {"amd64": ["linux/amd64"]},
                              "images": {"app": {"context": "app"}}}
    if cache is not None:
        doc["cache"] = cache
    return validate(doc, tmp_path, "bakery.yaml")


def test_in_ci_a_build_writes_the_configured_scope(tmp_path: Path) -> None:
    assert bake_variables(config(tmp_path), env={"CI": "true"})[VAR_SCOPE] == "main"


def test_outside_ci_a_build_writes_its_own_scope_not_the_shared_one(tmp_path: Path) -> None:
    assert bake_variables(config(tmp_path), env={"USER": "ana"})[VAR_SCOPE] == "local-ana"


def test_a_scope_asked_for_is_kept_outside_ci_too(tmp_path: Path) -> None:
    assert bake_variables(config(tmp_path), scope="feature/x", env={})[VAR_SCOPE] == "feature-x"
    assert bake_variables(config(tmp_path), env={VAR_SCOPE: "mine"})[VAR_SCOPE] == "mine"
    assert bake_variables(config(tmp_path, {"scope": "dev"}), env={})[VAR_SCOPE] == "dev"   # not the shared one


def test_ci_is_what_ci_services_set() -> None:
    assert in_ci({"CI": "true"}) and in_ci({"GITHUB_ACTIONS": "true"}) and in_ci({"GITLAB_CI": "true"})
    assert not in_ci({}) and not in_ci({"CI": "false"})
