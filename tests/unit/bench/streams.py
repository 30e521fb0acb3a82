"""Helpers shared by the rawjson and steps tests: the recorded bake streams and hand-made vertexes and steps.

The fixtures in tests/fixtures/rawjson were recorded with ``docker buildx bake --progress=rawjson``
(buildx 0.13.1, Docker 26, containerd store) for two targets, ``demo-amd64`` (linux/amd64) and
``demo-arm`` (linux/arm64 + linux/arm/v7), FROM 127.0.0.1:5000/base/busybox:1.35 with
``RUN uname -m > /arch``, ``RUN sleep 1 && echo done > /done`` and ``COPY hello.txt``, and registry
cache ``127.0.0.1:5000/fixture/demo:cache-<target>,mode=max``:

* cold.txt           after ``docker buildx prune -af``; the cache refs did not exist yet
* local-warm.txt     immediately after cold
* registry-warm.txt  after removing the images and ``docker buildx prune -af``, so only the registry
                     cache could supply the RUN results
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.support.paths import FIXTURES
from bakery.bench.rawjson import iter_status
from bakery.bench.steps import Step, collect_steps


RAWJSON = FIXTURES / "rawjson"
SCENARIOS = ("cold", "local-warm", "registry-warm")


def fixture_text(name: str) -> str:
    return (RAWJSON / f"{name}.txt").read_text(encoding="utf-8")


def fixture_steps(name: str) -> list[Step]:
    return collect_steps(iter_status([fixture_text(name)]))


def pretty(*objects: dict[str, Any]) -> str:
    """Objects framed the way buildx 0.13 prints them (indented, one after another)."""
    return "".join(json.dumps(o, indent=2) + "\n" for o in objects)


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def vertex(
    digest: str,
    name: str = "",
    inputs: Sequence[str] = (),
    start: float | None = None,
    end: float | None = None,
    cached: bool | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    v: dict[str, Any] = {"digest": digest}
    if name:
        v["name"] = name
    if inputs:
        v["inputs"] = list(inputs)
    if start is not None:
        v["started"] = ts(start)
    if end is not None:
        v["completed"] = ts(end)
    if cached is not None:
        v["cached"] = cached
    if error is not None:
        v["error"] = error
    return v


def step(
    digest: str,
    seconds: float = 0.0,
    inputs: Sequence[str] = (),
    name: str = "",
    target: str | None = None,
    platform: str | None = None,
    cached: bool = False,
) -> Step:
    return Step(
        digest=digest,
        name=name or f"[{digest}] step",
        inputs=tuple(inputs),
        started=T0,
        completed=T0 + timedelta(seconds=seconds),
        cached=cached,
        error=None,
        target=target,
        platform=platform,
    )


OBJ_A = {"vertexes": [vertex("sha256:a", "[t 1/2] RUN echo {a}", start=0, end=1)]}
OBJ_B = {"vertexes": [vertex("sha256:b", "[t 2/2] RUN echo \"}\"", inputs=["sha256:a"], start=1, end=3)],
         "statuses": [{"id": "x", "vertex": "sha256:b", "current": 3}]}  # fmt: skip
OBJ_C = {"logs": [{"vertex": "sha256:b", "stream": 1, "data": "aGVsbG8K", "timestamp": ts(2)}]}
STREAM = pretty(OBJ_A, OBJ_B, OBJ_C)
