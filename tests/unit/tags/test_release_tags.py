"""The ``tags:`` rules in a release (bakery.release.tagset): a release's tag set is what ``build --push`` of its
version tag gets from the same rules (bakery.tags.plan.decide), on the same event."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bakery.config import Config, load
from bakery.release.git import GitInfo
from bakery.release.tags import parse_version
from bakery.release.tagset import tag_source
from bakery.tags.event import GitFacts, from_environment
from bakery.tags.plan import decide
from bakery.tags.settings import settings

SHA = "860c1904a1ce19322e91ac35af1ab07466440c37"
EPOCH = 1_700_000_000
RULES = [["type=ref,event=branch", "type=ref,event=pr", "type=semver,pattern={{version}}",
          "type=semver,pattern={{major}}.{{minor}}", "type=sha", "type=raw,value=latest,enable={{is_default_branch}}"],
         [],                                                     # metadata-action's defaults
         ["type=ref,event=tag", "type=sha,format=long"],
         [r"type=match,pattern=v(\d+)\.\d+,group=1", "type=raw,value=stable,priority=2000"]]


def project(root: Path, rules: list[str]) -> Config:
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "bakery.yaml").write_text(json.dumps({"registry": "registry.test/acme", "images": {"app": {
        "context": "app"}}, "platform_groups": {"amd64": ["linux/amd64"]}, "tags": {"rules": rules}}))
    return load(root / "bakery.yaml")


@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("version", ["1.2.3", "0.4.0", "2.0.0-rc.1"])
def test_a_release_gets_the_tags_build_push_of_its_version_tag_gets(tmp_path: Path, rules: list[str],
                                                                     version: str) -> None:
    cfg = project(tmp_path, rules)
    pushed = replace(from_environment({}, git=GitFacts(head_tags=(f"v{version}",), sha=SHA)),  # a tag checkout
                     committed=EPOCH)                                                     # as resolve() reads it
    built = decide(settings(cfg), pushed, datetime.fromtimestamp(EPOCH, UTC))
    released = tag_source(cfg, GitInfo(SHA, (f"v{version}",), None, EPOCH, ()), parse_version(version))
    assert released.event == pushed and released.tags == built.tags.tags
