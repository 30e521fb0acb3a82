"""`bakery check`: the Dockerfile build checks of every target, on the buildx that has them (>= 0.16)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bakery.docker import Docker
from bakery.process import Runner

pytestmark = pytest.mark.stack


def has_checks() -> bool:
    return Docker(Runner()).capabilities().build_checks


@pytest.fixture
def linted_project(example_project: Path) -> Path:
    dockerfile = example_project / "examples" / "services" / "worker" / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("FROM base AS runtime", "from base as runtime\nENV MODE fast"))
    return example_project


def test_each_finding_is_one_line_naming_file_line_rule_and_targets(linted_project: Path, bakery_cli, stack) -> None:
    proc = bakery_cli(linted_project, "check", check=False)
    if not has_checks():
        assert proc.returncode == 0
        assert "the installed buildx 0.13.1 has no build checks (they need buildx >= 0.16)" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    legacy = [ln for ln in lines if ": LegacyKeyValueFormat: " in ln]
    assert len(legacy) == 1, proc.stdout
    assert legacy[0].startswith("examples/services/worker/Dockerfile:")
    assert legacy[0].endswith("[worker amd64,arm]")      # one line for the image's two groups


def test_strict_fails_on_a_finding(linted_project: Path, bakery_cli, stack) -> None:
    proc = bakery_cli(linted_project, "check", "--strict", "--image", "worker", check=False)
    assert proc.returncode == (1 if has_checks() else 0), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
