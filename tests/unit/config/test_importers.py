"""Importing an existing docker-bake.hcl or compose file as the image list."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.config import load
from bakery.errors import ConfigError
from bakery.config.importers import from_bake_hcl, from_compose

HCL = '''
variable "TAG" { default = "dev" }
group "default" { targets = ["app", "db"] }
target "_common" { args = { BASE = "x" } }
target "app" {
  inherits = ["_common"]
  context = "app"
  dockerfile = "Dockerfile.prod"
  target = "runtime"
  args = { VERSION = "${TAG}", LIT = "$${HOME}" }
  platforms = ["linux/amd64"]
  tags = ["r/app:${TAG}"]
}
target "db" { context = "db" }
'''

COMPOSE = '''
services:
  web:
    build: ./web
  api:
    build:
      context: services/api
      dockerfile: Dockerfile.dev
      target: dev
      args: ["PRICE=$$5", "MODE=${MODE:-fast}"]
      labels: {team: core}
  redis:
    image: redis:7
'''


def test_hcl_targets_become_images_with_inheritance_and_variable_defaults(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text(HCL)
    images = from_bake_hcl(tmp_path / "docker-bake.hcl", tmp_path)
    assert images == {
        "app": {"context": "app", "dockerfile": "Dockerfile.prod", "target": "runtime",
                "args": {"BASE": "x", "VERSION": "dev", "LIT": "${HOME}"}},
        "db": {"context": "db"},
    }


def test_hcl_expressions_that_cannot_be_imported_are_named(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('target "app" { context = lower("APP") }\n')
    with pytest.raises(ConfigError, match=r"target.app.context: cannot import the expression"):
        from_bake_hcl(tmp_path / "docker-bake.hcl", tmp_path)


def test_hcl_syntax_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "docker-bake.hcl").write_text('target "app" { context = \n')
    with pytest.raises(ConfigError, match="HCL syntax error") as info:
        from_bake_hcl(tmp_path / "docker-bake.hcl", tmp_path)
    assert "\n" not in str(info.value)


def test_compose_services_with_build_become_images(tmp_path: Path) -> None:
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "compose.yaml").write_text(COMPOSE)
    images = from_compose(tmp_path / "deploy" / "compose.yaml", tmp_path)
    assert images == {
        "web": {"context": "deploy/web"},
        "api": {"context": "deploy/services/api", "dockerfile": "Dockerfile.dev", "target": "dev",
                "args": {"PRICE": "$5", "MODE": "fast"}, "labels": {"team": "core"}},
    }


def test_compose_variable_without_default_is_refused(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  a:\n    build:\n      context: .\n      args: {X: $HOME}\n")
    with pytest.raises(ConfigError, match=r"services.a.build.args.X: uses \$HOME without a default"):
        from_compose(tmp_path / "compose.yaml", tmp_path)


def test_images_from_expands_per_platform_group_and_bakery_yaml_wins(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for d, f in (("app", "Dockerfile.prod"), ("db", "Dockerfile"), ("db2", "Dockerfile")):
        (tmp_path / d).mkdir()
        (tmp_path / d / f).write_text("FROM scratch\n")
    (tmp_path / "docker-bake.hcl").write_text(HCL)
    (tmp_path / "bakery.yaml").write_text(
        "registry: 127.0.0.1:5000/imp\nplatform_groups: {amd64: [linux/amd64], arm: [linux/arm64]}\n"
        "images_from: docker-bake.hcl\nimages:\n  db: {context: db2}\n")
    cfg = load(tmp_path / "bakery.yaml")
    assert cfg.images["app"].platform_groups == ("amd64", "arm")
    assert cfg.images["app"].args["LIT"] == "${HOME}"
    assert cfg.images["db"].context == "db2"
