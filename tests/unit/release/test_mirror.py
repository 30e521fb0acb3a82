"""The mirror phase of a release (bakery.release.publish.mirror_all): with ``registry:`` a list, each published
index is copied to every mirror under every tag of its set, the refs go in the report, a mirror that fails is one
error naming it after the report is written, and a dry run says what it would copy."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bakery.config import Config, load
from bakery.docker import Docker
from bakery.errors import CommandError
from bakery.process import Result
from bakery.release.plan import ReleaseFailed, ReleasePlan, plan_images
from bakery.release.publish import mirror_all, plan_indexes, publish_all
from bakery.release.report import ReleaseReport, dry_run, finish, make_report
from tests.support.registry import FakeRegistry
from tests.unit.release.test_phases import CONFIG, HOST, built, make_plan

MIRRORS = ["mirror.test/copy", "backup.test/acme"]


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    for name in ("api", "web"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text("FROM scratch\n")
    listed = CONFIG.replace(f"registry: {HOST}", f"registry: [{HOST}, {', '.join(MIRRORS)}]")
    (tmp_path / "bakery.yaml").write_text(listed)
    return load(tmp_path / "bakery.yaml")


@dataclass
class Imagetools:
    """Stands in for the runner under ``Docker``: records ``imagetools create`` and fails the copies to the
    registries in ``broken``."""

    broken: tuple[str, ...] = ()
    dry_run: bool = False
    verbose: bool = False
    calls: list[list[str]] = field(default_factory=list)

    def run(self, argv: list[str], **kwargs: Any) -> Result:
        self.calls.append(argv)
        if any(t.startswith(f"{b}/") for b in self.broken for t in argv):
            raise CommandError(argv, 1, "ERROR: failed to push: connection refused")
        return Result(argv, 0, "", "")


def publish(cfg: Config, reg: FakeRegistry, **request: Any) -> tuple[ReleasePlan, ReleaseReport, list[Any]]:
    plan = make_plan(cfg, reg, **request)
    work = built(plan)
    indexes = plan_indexes(plan, work.values())
    report = publish_all(plan, work.values(), indexes, make_report(plan, work.values(), indexes, []), io.StringIO())
    return plan, report, indexes


def test_every_published_index_is_copied_to_each_mirror_under_every_tag(cfg: Config) -> None:
    plan, report, indexes = publish(cfg, FakeRegistry())
    runner = Imagetools()
    out = io.StringIO()
    mirrored = mirror_all(plan, Docker(runner), indexes, report, out)  # type: ignore[arg-type]
    api = indexes[0]
    assert runner.calls[:2] == [
        ["docker", "buildx", "imagetools", "create", "-t", f"mirror.test/copy/api:{api.tags[0]}",
         f"{HOST}/api@{api.digest}"],                                   # the blobs once, under the first tag
        ["docker", "buildx", "imagetools", "create",
         *[x for t in api.tags[1:] for x in ("-t", f"mirror.test/copy/api:{t}")],
         f"mirror.test/copy/api@{api.digest}"]]                         # the other tags from that copy
    assert len(runner.calls) == 8                                       # 2 images x 2 mirrors x 2
    assert mirrored.images[0].mirrored == tuple(f"{m}/api:{t}" for m in MIRRORS for t in api.tags)
    assert mirrored.mirror_error is None
    assert out.getvalue().startswith("== mirror\nmirrored registry.test/acme/api@sha256:")


def test_the_report_records_the_mirrored_refs(cfg: Config) -> None:
    plan, report, indexes = publish(cfg, FakeRegistry())
    docker = Docker(Imagetools())  # type: ignore[arg-type]
    finish(plan, mirror_all(plan, docker, indexes, report, io.StringIO()), io.StringIO())
    written = json.loads((cfg.root / cfg.bake_dir / "release-1.2.0.json").read_text())
    assert written["images"]["web"]["mirrored"] == [f"{m}/web:{t}" for m in MIRRORS for t in indexes[1].tags]


def test_a_mirror_that_fails_is_one_error_naming_it_after_the_report_is_written(cfg: Config) -> None:
    plan, report, indexes = publish(cfg, FakeRegistry())
    docker = Docker(Imagetools(broken=("backup.test/acme",)))  # type: ignore[arg-type]
    mirrored = mirror_all(plan, docker, indexes, report, io.StringIO())
    with pytest.raises(ReleaseFailed) as caught:
        finish(plan, mirrored, io.StringIO())
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("release 1.2.0 is published in registry.test/acme, but not mirrored to 1 of 2 "
                              "mirror(s): backup.test/acme/api: ")
    assert "backup.test/acme/web: " in message
    written = json.loads((cfg.root / cfg.bake_dir / "release.json").read_text())
    assert written["published"] is True and written["mirror_error"].startswith("not mirrored to 1 of 2")
    assert written["images"]["api"]["mirrored"] == [f"mirror.test/copy/api:{t}" for t in indexes[0].tags]


def test_nothing_is_mirrored_when_nothing_was_published(cfg: Config) -> None:
    plan, report, indexes = publish(cfg, FakeRegistry(), publish=False)
    runner = Imagetools()
    assert mirror_all(plan, Docker(runner), indexes, report, io.StringIO()) == report  # type: ignore[arg-type]
    assert runner.calls == []


def test_a_dry_run_says_what_it_would_copy_to_each_mirror(cfg: Config) -> None:
    plan = make_plan(cfg, FakeRegistry())
    out = io.StringIO()
    dry_run(plan, plan_images(plan, io.StringIO()).values(), out)
    assert "would copy registry.test/acme/web@<index digest> to mirror.test/copy/web:1.2.0, " \
           "mirror.test/copy/web:1.2, mirror.test/copy/web:1, mirror.test/copy/web:latest, " in out.getvalue()
    assert "would copy registry.test/acme/api@<index digest> to backup.test/acme/api:1.2.0, " in out.getvalue()
