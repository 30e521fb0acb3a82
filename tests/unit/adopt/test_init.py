"""bakery init's pure parts: which Dockerfiles it finds, the names it gives, the text it writes."""

from __future__ import annotations

from pathlib import Path

import yaml

from bakery.adopt.init import Draft, bake_files, dockerfiles, from_dockerfiles, groups_of, image_name, render
from bakery.config.validate import validate


def _touch(root: Path, *paths: str) -> None:
    for p in paths:
        (root / p).parent.mkdir(parents=True, exist_ok=True)
        (root / p).write_text("FROM scratch\n")


def test_dockerfiles_are_found_outside_hidden_dependency_and_bake_dirs(tmp_path: Path) -> None:
    _touch(tmp_path, "Dockerfile", "services/api/Dockerfile", "worker/Dockerfile.prod", "tools/ci.Dockerfile",
           ".git/Dockerfile", "node_modules/x/Dockerfile", "bake/Dockerfile", "services/api/README.md")
    assert [p.as_posix() for p in dockerfiles(tmp_path)] == [
        "Dockerfile", "services/api/Dockerfile", "tools/ci.Dockerfile", "worker/Dockerfile.prod"]


def test_image_names_come_from_the_directory_and_the_file_suffix(tmp_path: Path) -> None:
    root = tmp_path / "My.Repo"
    assert image_name(Path("Dockerfile"), root) == "my-repo"
    assert image_name(Path("services/api/Dockerfile"), root) == "api"
    assert image_name(Path("worker/Dockerfile.prod"), root) == "worker-prod"
    assert image_name(Path("Dockerfile.worker"), root) == "worker"
    assert image_name(Path("tools/ci.Dockerfile"), root) == "tools-ci"


def test_entries_name_a_dockerfile_only_when_it_is_not_the_default_and_names_stay_unique(tmp_path: Path) -> None:
    images, where = from_dockerfiles(tmp_path, [Path("a/api/Dockerfile"), Path("b/api/Dockerfile"),
                                                Path("w/Dockerfile.prod")])
    assert images == {"api": {"context": "a/api"}, "api-2": {"context": "b/api"},
                      "w-prod": {"context": "w", "dockerfile": "Dockerfile.prod"}}
    assert where["api-2"] == "b/api/Dockerfile"


def test_one_group_per_architecture() -> None:
    assert groups_of(["linux/amd64", "linux/arm64", "linux/arm/v7"]) == {
        "amd64": ["linux/amd64"], "arm64": ["linux/arm64"], "armv7": ["linux/arm/v7"]}


def test_bake_and_compose_files_are_those_bake_reads_by_default(tmp_path: Path) -> None:
    _touch(tmp_path, "docker-bake.hcl", "compose.yaml", "other.hcl")
    assert bake_files(tmp_path) == ["compose.yaml", "docker-bake.hcl"]


def test_the_text_points_editors_at_the_schema_and_validates(tmp_path: Path) -> None:
    _touch(tmp_path, "services/api/Dockerfile")
    draft = Draft("127.0.0.1:5000/acme", ("linux/amd64", "linux/arm64"), {"api": {"context": "services/api"}},
                  {"api": "services/api/Dockerfile"})
    text = render(draft, "bake/bakery.schema.json")
    assert text.startswith("# yaml-language-server: $schema=bake/bakery.schema.json\n")
    assert "  # from services/api/Dockerfile\n  api:\n    context: services/api\n" in text
    data = yaml.safe_load(text)
    assert data["platform_groups"] == {"amd64": ["linux/amd64"], "arm64": ["linux/arm64"]}
    cfg = validate(data, tmp_path, "bakery.yaml", None)
    assert list(cfg.images) == ["api"] and cfg.registry == "127.0.0.1:5000/acme"
