"""``bakery import``: the derived ``images:`` section is YAML that reads back as exactly the imported images, and
``--write`` adds it to bakery.yaml without touching the rest."""

from __future__ import annotations

import pytest
import yaml

from bakery.adopt.derive import section, same_files, spec_for, write_into
from bakery.config.bake_import import Imported
from bakery.errors import BakeryError

IMPORTED = Imported(
    images={"app": {"context": "app", "dockerfile": "Dockerfile", "args": {"A": "${x}", "B": None},
                    "bake": {"dockerfile-inline": "FROM a\nRUN echo '%{b}'\n", "secret": ["id=a,env=B"]}},
            "db": {"context": "db", "dockerfile": "Dockerfile"}},
    where={"app": "docker-bake.hcl:3", "db": "docker-bake.hcl:9"})

CONFIG = """# the team's config
registry: r.example/acme   # where images go
images_from: docker-bake.hcl
platform_groups:
  amd64: [linux/amd64]
images:
  db:
    context: services/db   # ours wins
"""


def test_the_section_reads_back_as_the_images_and_names_their_origin() -> None:
    text = section(IMPORTED)
    assert yaml.safe_load(text) == {"images": IMPORTED.images}
    assert "  # from docker-bake.hcl:3\n  app:\n" in text


def test_write_adds_the_images_and_drops_images_from() -> None:
    new, added = write_into(CONFIG, IMPORTED, drop_images_from=True)
    assert added == ["app"]
    data = yaml.safe_load(new)
    assert "images_from" not in data
    assert data["images"] == {"db": {"context": "services/db"}, "app": IMPORTED.images["app"]}
    assert new.startswith("# the team's config\nregistry: r.example/acme   # where images go\nplatform_groups:")
    assert "context: services/db   # ours wins" in new


def test_write_without_an_images_section_puts_one_where_images_from_was() -> None:
    text = "registry: r.example/acme\nimages_from: docker-bake.hcl\nplatform_groups: {amd64: [linux/amd64]}\n"
    new, added = write_into(text, IMPORTED, drop_images_from=False)
    data = yaml.safe_load(new)
    assert added == ["app", "db"] and data["images"] == IMPORTED.images and data["images_from"] == "docker-bake.hcl"


def test_a_flow_style_images_section_is_left_to_the_user() -> None:
    with pytest.raises(BakeryError, match="flow style"):
        write_into("registry: r\nimages: {db: {context: db}}\n", IMPORTED, drop_images_from=False)


def test_files_are_taken_relative_to_the_current_directory() -> None:
    spec = spec_for(["docker-bake.hcl", "../x.json"], ["app"], [], "sub")
    assert spec.files == ("sub/docker-bake.hcl", "x.json") and spec.targets == ("app",)
    assert same_files(spec_for(["docker-bake.hcl"], [], [], "."), {"images_from": "./docker-bake.hcl"}, "y")
    assert not same_files(spec_for(["other.hcl"], [], [], "."), {"images_from": "docker-bake.hcl"}, "y")
    with pytest.raises(BakeryError, match="name the bake or compose file"):
        spec_for([], [], [], ".")
