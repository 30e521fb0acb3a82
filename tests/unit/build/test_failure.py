"""Naming the failing target, platform and step from buildx's recorded plain progress output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import FIXTURES
from bakery.build.bakefile import TargetInfo
from bakery.build.build import explain_failure

FIXTURES = FIXTURES / "buildx"
WORKER_ARM = TargetInfo("worker-arm", "worker", "arm", ("linux/arm64", "linux/arm/v7"))
WORKER_AMD64 = TargetInfo("worker-amd64", "worker", "amd64", ("linux/amd64",))
EXPECTED = "build failed: target worker-arm, platform linux/arm/v7, step `RUN if [ \"$(uname -m)\" = armv7l ]"


@pytest.mark.parametrize("fixture, targets", [
    ("failed-single-target.txt", [WORKER_ARM]),              # bake omits the target from labels here
    ("failed-multi-target.txt", [WORKER_AMD64, WORKER_ARM]),
])
def test_the_fatal_step_is_named_not_the_missing_cache_ref(fixture: str, targets: list[TargetInfo]) -> None:
    lines = (FIXTURES / fixture).read_text().splitlines()
    assert any("failed to configure registry cache importer" in ln for ln in lines)   # a non-fatal error first
    message = explain_failure(lines, targets)
    assert message.startswith(EXPECTED)
    assert message.endswith("did not complete successfully: exit code: 3")


def test_without_vertex_errors_the_final_error_is_used() -> None:
    assert explain_failure(["ERROR: failed to find target nope"], [WORKER_ARM]) == \
        "build failed: failed to find target nope"
