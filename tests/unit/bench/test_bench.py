"""Tests for the pure parts of bakery.bench.run (planning, attribution, the incremental touch, bench's bake document)
and for the rawjson additions it relies on, against streams recorded from real single-target bakes.

tests/fixtures/rawjson/bench/ holds ``docker buildx bake --progress=rawjson <one target>`` streams of the
example (buildx 0.13.1, Docker 26.1 with the containerd store), as bench runs them:

* api-amd64-cold.txt          api-amd64 after ``docker buildx prune -af`` and removing the base images
* api-arm-local-warm.txt      api-arm (linux/arm64 + linux/arm/v7) rebuilt with a warm local cache
* worker-arm-no-cache.txt     worker-arm with ``--no-cache`` (every RUN executes under QEMU)
* worker-amd64-local-warm.txt worker-amd64 rebuilt with a warm local cache
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.paths import FIXTURES, REPO
from bakery.build import bakefile
from bakery.bench.machine import Machine as _Bench, State as _State
from bakery.bench.run import load_report
from bakery.bench.scenarios import (SCENARIOS, SHARED, BenchError, BenchRequest, Observer, TargetRefs, Touch,
                                    attribute_platform, base_images, choose_touch, concurrent_steps, copy_sources,
                                    failure_message, plan, scenario_document, step_record)
from bakery.bench.scenarios import choose_scenarios as _scenarios
from bakery.oci.platforms import is_emulated
from bakery.config import validate
from bakery.docker import Docker
from bakery.process import Runner
from bakery.bench.rawjson import StreamDecoder, iter_status
from bakery.bench.steps import Step, collect_steps

FIXTURES = REPO / "tests" / "fixtures" / "rawjson" / "bench"
EXAMPLE = REPO / "examples" / "services"


def steps_of(name: str) -> list[Step]:
    return collect_steps(iter_status([(FIXTURES / f"{name}.txt").read_text(encoding="utf-8")]))


def by_label(steps: list[Step], start: str) -> list[Step]:
    return [s for s in steps if s.label.startswith(start)]


# ------------------------------------------------------------------------------------------------ plan
def test_plan_runs_every_scenario_for_every_target_once_per_round() -> None:
    runs = plan(SCENARIOS, ["api-amd64", "api-arm"], runs=3, seed=7)
    assert len(runs) == 5 * 2 * 3
    assert [r.seq for r in runs] == list(range(1, 31))
    for rnd in (1, 2, 3):
        this = [(r.scenario, r.target) for r in runs if r.round == rnd]
        assert sorted(this) == sorted((s, t) for s in SCENARIOS for t in ("api-amd64", "api-arm"))


def test_plan_interleaves_scenarios_in_a_seeded_order() -> None:
    first = plan(SCENARIOS, ["t"], runs=4, seed=1)
    assert first == plan(SCENARIOS, ["t"], runs=4, seed=1)          # reproducible from the recorded seed
    orders = {tuple(r.scenario for r in first if r.round == rnd) for rnd in (1, 2, 3, 4)}
    assert len(orders) > 1                                            # not all A, then all B
    assert any(plan(SCENARIOS, ["t"], 4, s) != first for s in range(2, 6))


def test_plan_builds_targets_in_config_order_within_a_scenario() -> None:
    runs = plan(("cold", "local-warm"), ["a", "b", "c"], runs=1, seed=3)
    assert [r.target for r in runs] == ["a", "b", "c", "a", "b", "c"]


# ------------------------------------------------------------------------------------------------ platforms
def test_emulated_means_another_os_or_architecture() -> None:
    assert not is_emulated("linux/amd64", "linux/amd64")
    assert not is_emulated("linux/amd64/v3", "linux/amd64")
    assert is_emulated("linux/arm64", "linux/amd64")
    assert is_emulated("linux/arm/v7", "linux/amd64")
    assert not is_emulated("linux/arm64", "linux/arm64/v8")


def test_single_platform_build_attributes_every_step_to_its_platform() -> None:
    steps = steps_of("api-amd64-cold")
    assert {attribute_platform(s, ["linux/amd64"]) for s in steps} == {"linux/amd64"}


def test_multi_platform_build_attributes_per_platform_and_shares_the_rest() -> None:
    steps = steps_of("api-arm-local-warm")
    plats = ["linux/arm64", "linux/arm/v7"]
    uname = by_label(steps, "RUN uname -m")
    assert sorted(attribute_platform(s, plats) for s in uname) == ["linux/arm/v7", "linux/arm64"]
    # the Go compile runs on the build platform for each target platform: it is that target platform's work
    compile_ = by_label(steps, "RUN GOOS=linux GOARCH=arm64")
    assert [attribute_platform(s, plats) for s in compile_] == ["linux/arm64"]
    # the build-platform base image, the bake definition and the exports belong to no single platform
    golang = by_label(steps, "FROM 127.0.0.1:5000/base/golang")
    assert golang and {attribute_platform(s, plats) for s in golang} == {SHARED}
    assert attribute_platform(by_label(steps, "exporting to image")[0], plats) == SHARED
    assert attribute_platform(by_label(steps, "load local bake definitions")[0], plats) == SHARED


def test_cross_compiling_step_knows_the_platform_it_runs_on() -> None:
    steps = steps_of("api-arm-local-warm")
    compile_ = by_label(steps, "RUN GOOS=linux GOARCH=arm GOARM=7")[0]
    assert (compile_.platform, compile_.build_platform) == ("linux/arm/v7", "linux/amd64")
    assert by_label(steps, "RUN uname -m")[0].build_platform is None


def test_step_record_is_json_ready() -> None:
    steps = steps_of("worker-arm-no-cache")
    records = [step_record(s, ["linux/arm64", "linux/arm/v7"]) for s in steps]
    json.dumps(records)
    runs = [r for r in records if r["run"]]
    assert len(runs) == 4 and all(not r["cached"] and r["seconds"] > 0 for r in runs)
    assert {r["kind"] for r in records} == {None, "cache-export"} or \
        {r["kind"] for r in records} <= {None, "cache-import", "cache-export"}


def test_stream_decoder_fed_line_by_line_matches_the_whole_stream() -> None:
    text = (FIXTURES / "worker-arm-no-cache.txt").read_text(encoding="utf-8")
    decoder = StreamDecoder(None)
    fed = [obj for line in text.splitlines(keepends=True) for obj in decoder.feed(line)] + decoder.close()
    assert fed == list(iter_status([text]))


# ------------------------------------------------------------------------------------------------ base images
def test_base_images_are_what_the_build_resolved() -> None:
    assert base_images(steps_of("api-amd64-cold")) == ["127.0.0.1:5000/base/busybox:1.35",
                                                        "127.0.0.1:5000/base/golang:1.19"]
    assert base_images(steps_of("worker-arm-no-cache")) == ["127.0.0.1:5000/base/busybox:1.35"]


# ------------------------------------------------------------------------------------------------ touch
@pytest.mark.parametrize("label, expected", [
    ("COPY test/ /app/test/", ["test/"]),
    ("COPY go.mod main.go ./", ["go.mod", "main.go"]),
    ('COPY ["a b.txt", "c", "/dst/"]', ["a b.txt", "c"]),
    ("COPY --chown=app:app --chmod=644 site/ /www/", ["site/"]),
    ("ADD --link conf /etc/conf", ["conf"]),
    ("COPY --from=build /out/api /app/api", None),
    ("COPY <<EOF /x", None),
    ("ADD https://example.com/x.tgz /x", None),
    ("COPY onlyone", None),
    ("RUN cp a b", None),
])
def test_copy_sources(label: str, expected: list[str] | None) -> None:
    assert copy_sources(label) == expected


def test_api_touch_is_a_new_file_in_the_last_copied_directory() -> None:
    touch = choose_touch(steps_of("api-amd64-cold"), EXAMPLE / "api")
    assert touch == Touch("COPY test/ /app/test/", (EXAMPLE / "api" / "test" / ".bakery-bench-touch").resolve(),
                          "add-file")


def test_touch_is_chosen_the_same_from_a_multi_platform_build() -> None:
    touch = choose_touch(steps_of("api-arm-local-warm"), EXAMPLE / "api")
    assert touch is not None and touch.step == "COPY test/ /app/test/"


def test_worker_touch_appends_to_the_last_copied_file() -> None:
    touch = choose_touch(steps_of("worker-amd64-local-warm"), EXAMPLE / "worker")
    assert touch == Touch("COPY worker.sh /app/worker.sh", (EXAMPLE / "worker" / "worker.sh").resolve(), "append")


def test_no_touch_when_the_sources_are_not_in_the_context(tmp_path: Path) -> None:
    assert choose_touch(steps_of("api-amd64-cold"), tmp_path) is None


def _step(digest: str, name: str, inputs: tuple[str, ...] = ()) -> Step:
    return Step(digest, name, inputs, None, None, False, None, None, None)


def test_touch_skips_globs_and_paths_outside_the_context(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "a.txt").write_text("a")
    (tmp_path / "secret").write_text("s")
    steps = [_step("1", "[1/3] COPY a.txt /a"),
             _step("2", "[2/3] COPY *.txt /b", ("1",)),
             _step("3", "[3/3] COPY ../secret /c", ("2",))]
    touch = choose_touch(steps, tmp_path / "ctx")
    assert touch is not None and touch.step == "COPY a.txt /a"


def test_touch_prefers_the_deepest_step_in_the_graph(tmp_path: Path) -> None:
    for name in ("early", "late"):
        (tmp_path / name).write_text(name)
    # listed first but deepest: order of appearance in the stream does not matter
    steps = [_step("3", "[3/3] COPY late /late", ("2",)), _step("1", "[1/3] COPY early /e"),
             _step("2", "[2/3] RUN make", ("1",))]
    touch = choose_touch(steps, tmp_path)
    assert touch is not None and touch.path.name == "late"


def _bench(tmp_path: Path) -> _Bench:
    config = validate({"registry": "127.0.0.1:5000/x", "platform_groups": {"amd64": ["linux/amd64"]},
                       "images": {"w": {"context": "ctx"}}}, tmp_path, "bakery.yaml") \
        if (tmp_path / "ctx" / "Dockerfile").exists() else None
    assert config is not None
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return _Bench(config, Docker(Runner()), BenchRequest(), out, Observer())


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "dir").mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    (ctx / "script.sh").write_bytes(b"#!/bin/sh\necho hi")
    os.utime(ctx / "script.sh", (1_000_000, 1_000_000))
    return ctx


def test_append_touch_is_restored_byte_for_byte_with_its_mtime(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    bench = _bench(tmp_path)
    state = _State(scope="bench-test")
    bench.apply_touch(Touch("COPY script.sh /s", ctx / "script.sh", "append"), state)
    assert (ctx / "script.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    bench.restore_touch(state)
    assert (ctx / "script.sh").read_bytes() == b"#!/bin/sh\necho hi"
    assert (ctx / "script.sh").stat().st_mtime == 1_000_000
    assert state.touch is None and not list(bench.out_dir.glob(".bench-touch-backup"))


def test_add_file_touch_is_removed_again(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    bench = _bench(tmp_path)
    state = _State(scope="bench-test")
    touch = Touch("COPY dir/ /d/", ctx / "dir" / ".bakery-bench-touch", "add-file")
    bench.apply_touch(touch, state)
    first = touch.path.read_text()
    bench.restore_touch(state)
    bench.apply_touch(touch, state)
    assert touch.path.read_text() != first          # a fresh value each time: never a cache hit
    bench.restore_touch(state)
    assert sorted(p.name for p in (ctx / "dir").iterdir()) == []


def test_an_interrupted_bench_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    bench = _bench(tmp_path)
    work = tmp_path / "out" / ".work-bench-test"
    work.mkdir()
    state = _State(scope="bench-test", workdir=str(work))
    bench.apply_touch(Touch("COPY script.sh /s", ctx / "script.sh", "append"), state)
    # the process dies here: the state file names what to undo
    assert json.loads(bench.state_path.read_text())["touch"]["path"] == str(ctx / "script.sh")
    later = _bench(tmp_path)
    later.recover()
    assert (ctx / "script.sh").read_bytes() == b"#!/bin/sh\necho hi"
    assert not bench.state_path.exists() and not work.exists()
    assert later.warnings == ["cleaned up after an interrupted bench (scope bench-test)"]


def test_an_unreadable_state_file_stops_the_bench(tmp_path: Path) -> None:
    _context(tmp_path)
    bench = _bench(tmp_path)
    bench.state_path.write_text("{not json")
    with pytest.raises(BenchError, match="unreadable bench state"):
        bench.recover()


# ------------------------------------------------------------------------------------------------ document
def _config(tmp_path: Path, cache: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    _context(tmp_path)
    return validate({"registry": "127.0.0.1:5000/acme", "platform_groups": {"amd64": ["linux/amd64"],
                                                                           "arm": ["linux/arm64"]},
                     "images": {"w": {"context": "ctx", "args": {"A": "1"}}}, "cache": cache or {}},
                    tmp_path, "bakery.yaml")


def test_bench_document_reads_and_writes_only_bench_refs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    doc = bakefile.document(config)
    before = json.dumps(doc, sort_keys=True)
    refs = {"w-amd64": TargetRefs("r/w:cache-amd64-bench-1", "r/w:cache-amd64-bench-1-run")}
    warm = scenario_document(doc, refs, read_cache=True, write="run", mode="max")
    assert warm["target"]["w-amd64"]["cache-from"] == ["type=registry,ref=r/w:cache-amd64-bench-1"]
    assert warm["target"]["w-amd64"]["cache-to"] == ["type=registry,ref=r/w:cache-amd64-bench-1-run,mode=max"]
    # a target bench does not build loses its cache attributes: no user cache is read or written by accident
    assert "cache-from" not in warm["target"]["w-arm"] and "cache-to" not in warm["target"]["w-arm"]
    for key in ("context", "tags", "args", "platforms", "attest"):
        assert warm["target"]["w-amd64"][key] == doc["target"]["w-amd64"][key]
    assert json.dumps(doc, sort_keys=True) == before


def test_cold_document_imports_nothing_and_priming_writes_the_seed(tmp_path: Path) -> None:
    doc = bakefile.document(_config(tmp_path))
    refs = {"w-amd64": TargetRefs("seed", "run")}
    cold = scenario_document(doc, refs, read_cache=False, write="run", mode="min", ignore_error=True)
    assert "cache-from" not in cold["target"]["w-amd64"]
    assert cold["target"]["w-amd64"]["cache-to"] == ["type=registry,ref=run,mode=min,ignore-error=true"]
    prime = scenario_document(doc, refs, read_cache=False, write="seed", mode="max")
    assert prime["target"]["w-amd64"]["cache-to"] == ["type=registry,ref=seed,mode=max"]


def test_cache_refs_follow_the_configured_template(tmp_path: Path) -> None:
    from bakery.bench.scenarios import cache_refs
    config = _config(tmp_path, {"ref": "{registry}/cache/{repository}:{group}-{scope}"})
    info = bakefile.target_infos(config, ["w-arm"])[0]
    refs = cache_refs(config, info, "bench-ab12", "127.0.0.1:5000/acme")
    assert refs == TargetRefs("127.0.0.1:5000/acme/cache/w:arm-bench-ab12", "127.0.0.1:5000/acme/cache/w:arm-bench-ab12-run")


# ------------------------------------------------------------------------------------------------ scenarios
def test_unknown_scenario_is_named_with_a_suggestion(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with pytest.raises(BenchError, match="'registry-wram' is not a scenario; did you mean registry-warm"):
        _scenarios(config, BenchRequest(scenarios=("registry-wram",)))


def test_scenarios_keep_the_canonical_order(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _scenarios(config, BenchRequest(scenarios=("local-warm", "cold"))) == ("cold", "local-warm")
    assert _scenarios(config, BenchRequest()) == SCENARIOS


def test_without_a_registry_cache_the_registry_scenarios_are_left_out(tmp_path: Path) -> None:
    config = _config(tmp_path, {"type": "local"})
    assert _scenarios(config, BenchRequest()) == ("cold", "no-cache", "local-warm")
    with pytest.raises(BenchError, match="--scenario registry-warm needs cache.type registry"):
        _scenarios(config, BenchRequest(scenarios=("registry-warm",)))


# ------------------------------------------------------------------------------------------------ run checks
def test_a_step_longer_than_the_whole_bake_was_shared_with_a_concurrent_build() -> None:
    steps = steps_of("worker-arm-no-cache")
    assert concurrent_steps(steps, wall=5.0) == []
    ordered = sorted((s for s in steps if not s.cached), key=lambda s: s.duration)
    assert concurrent_steps(steps, wall=ordered[-2].duration, slack=0.0) == [ordered[-1]]


def test_failure_names_the_failed_step_and_platform() -> None:
    failed = Step("d", "[linux/arm64 base 2/2] RUN false", (), None, None, False,
                  'process "/bin/sh -c false" did not complete successfully: exit code: 1', None, "linux/arm64")
    cancelled = Step("e", "[linux/arm/v7 base 2/2] RUN false", (), None, None, False, "context canceled", None,
                     "linux/arm/v7")
    assert failure_message([cancelled, failed], [], "w-arm") == (
        'build of w-arm failed: platform linux/arm64, step `RUN false`: process "/bin/sh -c false" did not '
        "complete successfully: exit code: 1")
    assert failure_message([], ["{", "ERROR: failed to find target x"], "x") == \
        "build of x failed: ERROR: failed to find target x"


def test_baseline_must_be_a_report(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no such file"):
        load_report(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"results": 3}')
    with pytest.raises(BenchError, match="not a bench report"):
        load_report(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text('{"environment": {}, "results": []}')
    assert load_report(tmp_path / "ok.json")["results"] == []
