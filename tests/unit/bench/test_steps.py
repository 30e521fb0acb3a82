"""Tests for bakery.bench.steps (vertex names, merged steps, critical path, summary) against hand-made input and
the real buildx 0.13.1 bake streams described in tests/unit/bench/streams.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bakery.bench.rawjson import RawJsonError
from bakery.bench.steps import Step, VertexName, collect_steps, critical_path, parse_vertex_name, summarize
from tests.unit.bench.streams import SCENARIOS, T0, fixture_steps, step, vertex


# ------------------------------------------------------------------------------------------------
# names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # exact shapes recorded from buildx 0.13.1 bake (tests/fixtures/rawjson)
        ("[internal] load local bake definitions", VertexName(None, None, "load local bake definitions")),
        ("[demo-amd64 internal] load build definition from Dockerfile",
         VertexName("demo-amd64", None, "load build definition from Dockerfile")),
        ("[demo-amd64 2/4] RUN uname -m > /arch", VertexName("demo-amd64", None, "RUN uname -m > /arch")),
        ("[demo-arm linux/arm64 internal] load metadata for 127.0.0.1:5000/base/busybox:1.35",
         VertexName("demo-arm", "linux/arm64", "load metadata for 127.0.0.1:5000/base/busybox:1.35")),
        ("[demo-arm linux/arm/v7 3/4] RUN sleep 1 && echo done > /done",
         VertexName("demo-arm", "linux/arm/v7", "RUN sleep 1 && echo done > /done")),
        ("[demo-arm] importing cache manifest from 127.0.0.1:5000/fixture/demo:cache-demo-arm",
         VertexName("demo-arm", None, "importing cache manifest from 127.0.0.1:5000/fixture/demo:cache-demo-arm")),
        ("[demo-arm] exporting cache to registry", VertexName("demo-arm", None, "exporting cache to registry")),
        # shapes from the buildx/buildkit source
        ("[api-arm linux/arm64 build 3/5] RUN make", VertexName("api-arm", "linux/arm64", "RUN make")),
        ("[api linux/amd64->arm64 build 2/3] RUN go build", VertexName("api", "linux/arm64", "RUN go build")),
        ("[api linux/amd64->arm/v7 build 2/3] RUN go build", VertexName("api", "linux/arm/v7", "RUN go build")),
        ("[linux/amd64->windows/amd64 build 2/3] RUN x", VertexName(None, "windows/amd64", "RUN x")),
        ("[api linux/arm64  2/12] RUN x", VertexName("api", "linux/arm64", "RUN x")),  # padded counter
        ("[api  2/12] RUN x", VertexName("api", None, "RUN x")),
        ("[linux/arm64 2/4] RUN x", VertexName(None, "linux/arm64", "RUN x")),  # single-target bake
        ("[2/4] RUN x", VertexName(None, None, "RUN x")),
        ("[auth] library/busybox:pull token for 127.0.0.1:5000",
         VertexName(None, None, "library/busybox:pull token for 127.0.0.1:5000")),
        ("[api auth] x token", VertexName("api", None, "x token")),
        ("exporting to image", VertexName(None, None, "exporting to image")),
        ("importing cache manifest from r:1", VertexName(None, None, "importing cache manifest from r:1")),
    ],
)  # fmt: skip
def test_parse_vertex_name(name: str, expected: VertexName) -> None:
    assert parse_vertex_name(name, targets={"api", "api-arm", "demo-amd64", "demo-arm"}) == expected


def test_ambiguous_bracket_needs_known_targets() -> None:
    # "[build 2/4]": stage "build" of an unprefixed build, or target "build" with an unnamed stage
    assert parse_vertex_name("[build 2/4] RUN x") == VertexName(None, None, "RUN x")
    assert parse_vertex_name("[build 2/4] RUN x", targets={"build"}) == VertexName("build", None, "RUN x")
    # unambiguous shapes need no help
    assert parse_vertex_name("[web build 2/4] RUN x").target == "web"
    assert parse_vertex_name("[web internal] load x").target == "web"


def test_collect_steps_infers_targets_for_ambiguous_names() -> None:
    statuses = [
        {"vertexes": [vertex("d1", "[web] exporting to image")]},
        {"vertexes": [vertex("d2", "[web 2/3] RUN x"), vertex("d3", "[stage 2/3] RUN y")]},
    ]
    assert [s.target for s in collect_steps(statuses)] == ["web", "web", None]
    assert [s.target for s in collect_steps(statuses, targets={"stage"})] == ["web", "web", "stage"]


# ------------------------------------------------------------------------------------------------
# collect_steps


def test_updates_are_merged_by_digest() -> None:
    statuses = [
        {"vertexes": [vertex("d1", "[t 1/2] FROM x", start=0)]},
        {"statuses": [{"id": "p", "vertex": "d1"}]},
        {"vertexes": [vertex("d2", "[t linux/arm64 2/2] RUN y", inputs=["d1"], start=1)]},
        {"vertexes": [vertex("d1", "[t 1/2] FROM x", start=0, end=1)], "logs": []},
        {"vertexes": [vertex("d2", "[t linux/arm64 2/2] RUN y", inputs=["d1"], start=1, end=4, error="exit 1")]},
        {"vertexes": [vertex("d1", "[t 1/2] FROM x", start=0, end=1, cached=True)]},
        {"vertexes": [vertex("d1", start=0, end=1, cached=False)]},  # nameless, cached omitted later
    ]
    d1, d2 = collect_steps(statuses)
    assert (d1.digest, d1.name, d1.inputs, d1.cached, d1.error, d1.duration) == ("d1", "[t 1/2] FROM x", (), True, None, 1.0)
    assert (d2.inputs, d2.cached, d2.error, d2.duration) == (("d1",), False, "exit 1", 3.0)
    assert (d1.target, d1.platform, d2.target, d2.platform) == ("t", None, "t", "linux/arm64")  # "t" inferred from d2
    assert d2.is_run and not d1.is_run


def test_same_digest_in_two_targets_stays_two_steps() -> None:
    statuses = [{"vertexes": [vertex("d", "[a 1/1] FROM x", start=0, end=1), vertex("d", "[b 1/1] FROM x", start=0, end=2)]}]
    steps = collect_steps(statuses, targets={"a", "b"})
    assert [(s.target, s.duration) for s in steps] == [("a", 1.0), ("b", 2.0)]


def test_nameless_first_update_takes_the_later_name() -> None:
    statuses = [{"vertexes": [vertex("d", start=0)]}, {"vertexes": [vertex("d", "[a] exporting to image", end=2)]}]
    (only,) = collect_steps(statuses)
    assert (only.name, only.target, only.duration) == ("[a] exporting to image", "a", 2.0)


def test_duration_is_zero_without_both_times() -> None:
    (s,) = collect_steps([{"vertexes": [vertex("d", "x", start=3)]}])
    assert s.started is not None and s.completed is None and s.duration == 0.0


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"vertexes": [{"name": "x"}]}, "without a digest"),
        ({"vertexes": {"digest": "d"}}, "not a list"),
        ({"vertexes": ["d"]}, "not an object"),
        ({"vertexes": [{"digest": "d", "started": "soon"}]}, "timestamp"),
        ({"vertexes": [{"digest": "d", "inputs": [1]}]}, "inputs"),
        ({"vertexes": [{"digest": "d", "cached": "yes"}]}, "cached"),
        (["not", "a", "dict"], "not an object"),
    ],
)
def test_malformed_vertexes_raise_one_line_errors(status: object, message: str) -> None:
    with pytest.raises(RawJsonError, match=message) as info:
        collect_steps([status])  # type: ignore[list-item]
    assert "\n" not in str(info.value)


def test_cache_io_flags() -> None:
    def flags(name: str) -> tuple[bool, bool, bool, bool]:
        s = step("d", name=name)
        return s.is_run, s.is_cache_import, s.is_cache_export, s.is_cache_io

    assert flags("[a] importing cache manifest from 127.0.0.1:5000/x:cache") == (False, True, False, True)
    assert flags("[a] exporting cache to registry") == (False, False, True, True)
    assert flags("exporting cache to client directory") == (False, False, True, True)
    assert flags("preparing build cache for export") == (False, False, True, True)
    assert flags("[a] exporting to image") == (False, False, False, False)
    assert flags("[a 2/3] RUN --mount=type=cache,target=/c make") == (True, False, False, False)
    assert flags("[a 2/3] RUNNER x") == (False, False, False, False)


# ------------------------------------------------------------------------------------------------
# fixtures


def run_steps(steps: list[Step]) -> list[Step]:
    return [s for s in steps if s.is_run]


def test_cold_fixture() -> None:
    steps = fixture_steps("cold")
    runs = run_steps(steps)
    assert len(runs) == 6  # 2 RUN x (amd64, arm64, arm/v7)
    assert not any(s.cached for s in runs)
    sleeps = [s for s in runs if "sleep 1" in s.name]
    assert len(sleeps) == 3 and all(s.duration >= 1.0 for s in sleeps)
    # the cache refs did not exist yet: the import vertex reports a (non-fatal) error
    imports = [s for s in steps if s.is_cache_import]
    assert {s.target for s in imports} == {"demo-amd64", "demo-arm"}
    assert all(s.error and "not found" in s.error for s in imports)
    summary = summarize(steps)
    assert summary.run_cache_hit_ratio == 0.0 and summary.cached_run_steps == 0
    assert summary.cache_export_seconds > 0
    assert summary.errored_steps == 2


@pytest.mark.parametrize("name", ["local-warm", "registry-warm"])
def test_warm_fixtures_have_all_run_steps_cached(name: str) -> None:
    steps = fixture_steps(name)
    runs = run_steps(steps)
    assert len(runs) == 6 and all(s.cached for s in runs)
    summary = summarize(steps)
    assert summary.run_cache_hit_ratio == 1.0
    assert summary.cached_run_steps == summary.run_steps == 6
    assert summary.errored_steps == 0


def test_registry_warm_imports_cache() -> None:
    steps = fixture_steps("registry-warm")
    imports = [s for s in steps if s.is_cache_import]
    assert len(imports) == 2 and all(s.error is None and s.duration > 0 for s in imports)
    summary = summarize(steps)
    assert summary.cache_import_seconds > 0
    assert summary.cache_import_seconds == pytest.approx(sum(s.duration for s in imports))
    assert summary.cache_export_seconds > 0


@pytest.mark.parametrize("name", SCENARIOS)
def test_fixture_targets_and_platforms(name: str) -> None:
    steps = fixture_steps(name)
    assert len({(s.digest, s.target) for s in steps}) == len(steps) == 28
    pairs = {(s.target, s.platform) for s in steps}
    assert pairs == {
        (None, None),  # [internal] load local bake definitions
        ("demo-amd64", None),  # single-platform target: no platform in the names
        ("demo-arm", None),  # [demo-arm internal] ..., [demo-arm] exporting ...
        ("demo-arm", "linux/arm64"),
        ("demo-arm", "linux/arm/v7"),
    }
    runs = {(s.target, s.platform, s.label) for s in steps if s.is_run}
    assert ("demo-arm", "linux/arm/v7", "RUN uname -m > /arch") in runs
    assert ("demo-amd64", None, "RUN sleep 1 && echo done > /done") in runs
    summary = summarize(steps)
    assert [(t.target, t.platform) for t in summary.per_target] == [
        (None, None), ("demo-amd64", None), ("demo-arm", None), ("demo-arm", "linux/arm/v7"), ("demo-arm", "linux/arm64"),
    ]  # fmt: skip
    assert sum(t.steps for t in summary.per_target) == summary.steps
    assert sum(t.seconds for t in summary.per_target) == pytest.approx(summary.total_step_seconds)
    arm64 = summary.totals_for("demo-arm", "linux/arm64")
    assert arm64 is not None and arm64.run_steps == 2
    assert summary.totals_for("nope", None) is None


@pytest.mark.parametrize("name", SCENARIOS)
def test_fixture_summary_invariants(name: str) -> None:
    summary = summarize(fixture_steps(name))
    assert summary.steps == 28
    assert 0 < summary.wall_seconds < 30
    assert summary.parallelism == pytest.approx(summary.total_step_seconds / summary.wall_seconds)
    assert summary.cache_hit_ratio == pytest.approx(summary.cached_steps / summary.steps)


def test_critical_path_on_cold_fixture() -> None:
    steps = fixture_steps("cold")
    path, total = critical_path(steps)
    assert [s.label.split()[0] for s in path] == ["FROM", "RUN", "RUN", "COPY"]
    assert len({(s.target, s.platform) for s in path}) == 1
    for before, after in zip(path, path[1:]):
        assert before.digest in after.inputs
    assert total == pytest.approx(sum(s.duration for s in path))
    assert total >= 1.0  # includes RUN sleep 1
    # no chain is longer: every step's own duration is bounded by the path total
    assert all(s.duration <= total for s in steps)
    assert critical_path(list(steps)) == (path, total)  # deterministic


# ------------------------------------------------------------------------------------------------
# critical path, summary on hand-made graphs


def test_critical_path_small_graph() -> None:
    #   a(1) -> b(5) -> d(1)
    #   a(1) -> c(2) -> d(1)     e(6) standalone, f(1) has an unknown input
    steps = [
        step("a", 1),
        step("b", 5, ["a"]),
        step("c", 2, ["a"]),
        step("d", 1, ["c", "b"]),
        step("e", 6),
        step("f", 1, ["sha256:unknown"]),
    ]
    path, total = critical_path(steps)
    assert [s.digest for s in path] == ["a", "b", "d"]
    assert total == 7.0


def test_critical_path_tie_breaking_is_deterministic() -> None:
    # two equal branches: the one listed first wins; equal totals prefer the longer chain
    steps = [step("root", 1), step("x", 2, ["root"]), step("y", 2, ["root"]), step("z", 0, ["x", "y"])]
    path, total = critical_path(steps)
    assert [s.digest for s in path] == ["root", "x", "z"] and total == 3.0
    path2, _ = critical_path([steps[0], steps[2], steps[1], steps[3]])
    assert [s.digest for s in path2] == ["root", "y", "z"]


def test_critical_path_prefers_same_target_input() -> None:
    steps = [
        step("base", 5, target="a"),
        step("base", 1, target="b"),
        step("run", 1, ["base"], target="b"),
    ]
    path, total = critical_path(steps)
    assert [(s.digest, s.target) for s in path] == [("base", "a")] and total == 5.0
    path, total = critical_path(steps[1:])
    assert [(s.digest, s.target) for s in path] == [("base", "b"), ("run", "b")] and total == 2.0


def test_critical_path_empty_and_cycle() -> None:
    assert critical_path([]) == ([], 0.0)
    with pytest.raises(RawJsonError, match="cycle"):
        critical_path([step("a", 1, ["b"]), step("b", 1, ["a"])])
    with pytest.raises(RawJsonError, match="itself"):
        critical_path([step("a", 1, ["a"])])


def test_summarize_hand_made() -> None:
    def timed(
        digest: str, name: str, start: float, end: float, cached: bool = False, target: str = "a", platform: str | None = None
    ) -> Step:
        return Step(digest, name, (), T0 + timedelta(seconds=start), T0 + timedelta(seconds=end), cached, None, target, platform)

    steps = [
        timed("i", "[a] importing cache manifest from r", 0, 1, target="a"),
        timed("r1", "[a linux/arm64 2/3] RUN x", 1, 5, target="a", platform="linux/arm64"),
        timed("r2", "[a linux/amd64 2/3] RUN x", 1, 1, cached=True, target="a", platform="linux/amd64"),
        timed("c", "[a linux/amd64 3/3] COPY y", 1, 3, cached=True, target="a", platform="linux/amd64"),
        timed("e", "[a] exporting cache to registry", 5, 7.5, target="a"),
    ]
    s = summarize(steps)
    assert (s.steps, s.cached_steps, s.run_steps, s.cached_run_steps) == (5, 2, 2, 1)
    assert s.cache_hit_ratio == pytest.approx(0.4)
    assert s.run_cache_hit_ratio == pytest.approx(0.5)
    assert s.total_step_seconds == pytest.approx(1 + 4 + 0 + 2 + 2.5)
    assert s.wall_seconds == pytest.approx(7.5)
    assert s.parallelism == pytest.approx(9.5 / 7.5)
    assert s.cache_import_seconds == pytest.approx(1.0)
    assert s.cache_export_seconds == pytest.approx(2.5)
    amd = s.totals_for("a", "linux/amd64")
    assert amd is not None and (amd.steps, amd.cached_steps, amd.run_steps, amd.cached_run_steps) == (2, 2, 1, 1)
    assert amd.seconds == pytest.approx(2.0)
    assert s.totals_for("a", None).seconds == pytest.approx(3.5)  # type: ignore[union-attr]


def test_summarize_empty() -> None:
    s = summarize([])
    assert (s.steps, s.wall_seconds, s.parallelism, s.cache_hit_ratio, s.run_cache_hit_ratio, s.per_target) == (
        0, 0.0, 0.0, 0.0, 0.0, ()
    )  # fmt: skip
