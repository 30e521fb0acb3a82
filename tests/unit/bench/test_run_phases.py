"""The phases of ``run_bench`` that run without docker: the plan, the documents, the settings, one bake fed a
recorded rawjson stream, the resets, the state file and the cleanup, against scripted docker answers.

The real runs stay tested by tests/integration/test_bench.py; here a :class:`Scripted` runner answers the
docker commands (and records them), so each phase's decisions and bookkeeping are checked one at a time.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from bakery.bench import run as bench_run
from bakery.bench.machine import STATE_FILE, Machine, State
from bakery.bench.scenarios import (SCENARIOS, BenchError, BenchRequest, BenchResult, Observer, PlannedRun, Touch,
                                    bench_documents, document_key, incremental_check, local_base_images, plan,
                                    plan_bench, primed_settings, run_record, runnable, settings_of)
from bakery.bench.steps import collect_steps
from bakery.bench.rawjson import iter_status
from bakery.build import bakefile
from bakery.config import validate
from bakery.config.model import Config
from bakery.config.variables import VAR_REGISTRY, VAR_SCOPE, VAR_TAG
from bakery.docker import Docker
from bakery.errors import CommandError
from bakery.process import Result, Runner
from tests.support.paths import REPO

STREAMS = REPO / "tests" / "fixtures" / "rawjson" / "bench"


class Scripted(Runner):
    """A runner that answers every command with ``answer(argv)`` and records the argv lists it was given."""

    def __init__(self, answer: Callable[[list[str]], Result] | None = None) -> None:
        super().__init__(verbose=False, dry_run=False, out=io.StringIO())
        self.calls: list[list[str]] = []
        self.answer = answer or (lambda argv: Result(argv, 0, "", ""))

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            check: bool = True, input: str | None = None, timeout: float | None = None,
            action: bool = False) -> Result:
        self.calls.append(list(argv))
        res = self.answer(list(argv))
        if check and res.returncode != 0:
            raise CommandError(res.argv, res.returncode, res.stderr)
        return res


class ImageStore:
    """Scripted docker answers for an image store holding ``present``: inspect, rm and pull act on it."""

    def __init__(self, *present: str) -> None:
        self.present = set(present)

    def __call__(self, argv: list[str]) -> Result:
        ref = argv[-1]
        if argv[1:3] == ["image", "inspect"]:
            return Result(argv, 0 if ref in self.present else 1, "", "")
        if argv[1:3] == ["image", "rm"]:
            found = ref in self.present
            self.present.discard(ref)
            return Result(argv, 0 if found else 1, "", "")
        if argv[1] == "pull":
            self.present.add(ref)
        return Result(argv, 0, "", "")


class Recorded(Runner):
    """A bake runner that replays a recorded rawjson stream and writes bake's metadata file."""

    def __init__(self, stream: str, code: int = 0, digest: str = "sha256:" + "ab" * 32) -> None:
        super().__init__(verbose=False, dry_run=False, out=io.StringIO())
        self.text, self.code, self.digest = stream, code, digest
        self.argv: list[str] = []
        self.env: Mapping[str, str] = {}

    def stream(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
               on_line: Callable[[str], None] | None = None, tail: int = 200, capture: bool = True,
               prefix: str = "", on_start: Any = None) -> tuple[int, list[str]]:
        self.argv, self.env = list(argv), dict(env or {})
        lines = self.text.splitlines(keepends=True)
        for line in lines:
            if on_line is not None:
                on_line(line)
        target = self.argv[-1]
        metadata = Path(self.argv[self.argv.index("--metadata-file") + 1])
        metadata.write_text(json.dumps({target: {"containerimage.digest": self.digest}}))
        return self.code, [ln.rstrip("\n") for ln in lines[-tail:]]


def make_config(tmp_path: Path, cache: dict[str, object] | None = None) -> Config:
    ctx = tmp_path / "ctx"
    (ctx / "test").mkdir(parents=True, exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM scratch\n")
    return validate({"registry": "127.0.0.1:5000/acme", "platform_groups": {"amd64": ["linux/amd64"],
                                                                           "arm": ["linux/arm64"]},
                     "images": {"api": {"context": "ctx"}}, "cache": cache or {}}, tmp_path, "bakery.yaml")


def make_machine(tmp_path: Path, config: Config, runner: Runner) -> Machine:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return Machine(config, Docker(runner), BenchRequest(), out, Observer())


def stream_of(name: str) -> str:
    return (STREAMS / f"{name}.txt").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------ plan
def test_plan_bench_decides_targets_refs_and_order_before_any_build(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    bench = plan_bench(config, BenchRequest(scenarios=("local-warm", "cold"), runs=2), seed=5, scope="bench-t")
    assert bench.scenarios == ("cold", "local-warm")
    assert [i.name for i in bench.infos] == ["api-amd64", "api-arm"]
    assert bench.registry == "127.0.0.1:5000/acme" and bench.rounds == 2
    assert list(bench.runs) == plan(("cold", "local-warm"), ["api-amd64", "api-arm"], 2, 5)
    assert bench.refs["api-arm"].seed == "127.0.0.1:5000/acme/api:cache-arm-bench-t"
    assert bench.refs["api-arm"].run == "127.0.0.1:5000/acme/api:cache-arm-bench-t-run"


def test_plan_bench_refuses_zero_runs_and_unknown_images(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(BenchError, match="--runs must be at least 1, got 0"):
        plan_bench(config, BenchRequest(runs=0), seed=1, scope="bench-t")
    with pytest.raises(Exception, match="--image 'nope' is not an image"):
        plan_bench(config, BenchRequest(images=("nope",)), seed=1, scope="bench-t")


def test_settings_record_the_plan_and_what_priming_found(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    bench = plan_bench(config, BenchRequest(groups=("amd64",), runs=3), seed=9, scope="bench-s")
    settings = settings_of(config, bench, "2026-01-01T00:00:00Z")
    assert settings["scenarios"] == list(SCENARIOS) and settings["runs"] == 3 and settings["seed"] == 9
    assert settings["cache_scope"] == "bench-s" and settings["started"] == "2026-01-01T00:00:00Z"
    assert settings["targets"] == {"api-amd64": {"image": "api", "group": "amd64", "platforms": ["linux/amd64"]}}
    assert len(settings["order"]) == 3 * len(SCENARIOS)
    touch = Touch("COPY test/ /app/test/", tmp_path / "ctx" / "test" / ".bakery-bench-touch", "add-file")
    primed = primed_settings({"api-amd64": ["b:1"]}, {"api-amd64": touch, "api-arm": None}, tmp_path)
    assert primed == {"base_images": {"api-amd64": ["b:1"]},
                      "incremental": {"api-amd64": {"step": "COPY test/ /app/test/",
                                                    "path": "ctx/test/.bakery-bench-touch", "kind": "add-file"},
                                      "api-arm": None}}


def test_incremental_runs_of_a_target_without_a_touch_are_dropped() -> None:
    planned = plan(("cold", "incremental"), ["a", "b"], 1, 3)
    touch = Touch("COPY x /x", Path("/x"), "append")
    todo = runnable(planned, {"a": touch, "b": None})
    assert [(r.scenario, r.target) for r in todo if r.scenario == "incremental"] == [("incremental", "a")]
    assert len(todo) == 3


def test_a_touch_that_invalidates_nothing_is_a_warning(tmp_path: Path) -> None:
    steps = collect_steps(iter_status([stream_of("api-arm-local-warm")]))
    touch = Touch("COPY test/ /app/test/", tmp_path / "test" / ".bakery-bench-touch", "add-file")
    touched, warnings = incremental_check(touch, steps, tmp_path, "api-arm")
    assert touched == {"step": "COPY test/ /app/test/", "path": "test/.bakery-bench-touch"}
    assert warnings == ["api-arm: touching test/.bakery-bench-touch did not invalidate `COPY test/ /app/test/` "
                        "(excluded by .dockerignore?)"]


def test_base_images_count_only_for_builders_with_an_image_store(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    infos = bakefile.target_infos(config, ["api-amd64", "api-arm"])
    bases = {"api-amd64": ["b:1", "b:2"], "api-arm": ["b:1"]}
    assert local_base_images(config, infos, bases) == [("default", "b:1"), ("default", "b:2")]


# ------------------------------------------------------------------------------------------------ documents
def test_each_scenario_bakes_one_of_three_documents(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    bench = plan_bench(config, BenchRequest(), seed=1, scope="bench-d")
    docs = bench_documents(config, bakefile.document(config), bench.refs)
    seed, run = bench.refs["api-amd64"].seed, bench.refs["api-amd64"].run
    assert docs["prime"]["target"]["api-amd64"]["cache-to"] == [f"type=registry,ref={seed},mode=max"]
    assert "cache-from" not in docs["prime"]["target"]["api-amd64"]
    assert "cache-from" not in docs["cold"]["target"]["api-amd64"]
    assert docs["cold"]["target"]["api-amd64"]["cache-to"] == [f"type=registry,ref={run},mode=max"]
    assert docs["warm"]["target"]["api-amd64"]["cache-from"] == [f"type=registry,ref={seed}"]
    assert {s: document_key(s) for s in ("prime", *SCENARIOS)} == {
        "prime": "prime", "cold": "cold", "no-cache": "cold", "registry-warm": "warm", "incremental": "warm",
        "local-warm": "warm"}


def test_without_a_registry_cache_no_document_touches_a_cache(tmp_path: Path) -> None:
    config = make_config(tmp_path, {"type": "local"})
    bench = plan_bench(config, BenchRequest(), seed=1, scope="bench-d")
    docs = bench_documents(config, bakefile.document(config), bench.refs)
    for doc in docs.values():
        for target in doc["target"].values():
            assert "cache-from" not in target and "cache-to" not in target


def test_open_records_the_state_and_writes_the_documents(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    machine = make_machine(tmp_path, config, Scripted())
    bench = plan_bench(config, BenchRequest(), seed=1, scope="bench-o")
    state = State(scope="bench-o", workdir=str(machine.out_dir / ".work-bench-o"), cache_tags=["r:t"])
    docs = bench_documents(config, bakefile.document(config), bench.refs)
    ctx = bench_run._open(config, machine, state, bench, docs)
    assert json.loads((machine.out_dir / STATE_FILE).read_text())["cache_tags"] == ["r:t"]
    assert sorted(ctx.docs) == ["cold", "prime", "warm"]
    assert json.loads(ctx.docs["warm"].read_text()) == docs["warm"]


# ------------------------------------------------------------------------------------------------ one bake
def run_context(tmp_path: Path, store: ImageStore, bake: Runner,
                cache: dict[str, object] | None = None) -> bench_run._RunContext:
    config = make_config(tmp_path, cache)
    machine = make_machine(tmp_path, config, Scripted(store))
    workdir = machine.out_dir / ".work-bench-r"
    workdir.mkdir()
    docs = {k: workdir / f"bake-{k}.json" for k in ("prime", "cold", "warm")}
    return bench_run._RunContext(machine, config, State(scope="bench-r", workdir=str(workdir)), "127.0.0.1:5000/acme",
                                 "bench-r", docs, Observer(), bake_runner=bake)


def test_a_bake_becomes_a_run_record_and_its_image_is_removed(tmp_path: Path) -> None:
    store = ImageStore()
    bake = Recorded(stream_of("api-amd64-cold"))
    ctx = run_context(tmp_path, store, bake)
    ref = "127.0.0.1:5000/acme/api:" + bakefile.intermediate_tag(ctx.config, "amd64", "bench-r-1")
    store.present.add(ref)       # what the build would leave behind
    info = bakefile.target_infos(ctx.config, ["api-amd64"])[0]
    record, steps = ctx.bake(info, "cold", "bench-r-1", no_cache=False, timed=True)
    assert record["ok"] and record["error"] is None and record["digest"] == "sha256:" + "ab" * 32
    assert record["scenario"] == "cold" and record["platforms"] == ["linux/amd64"]
    assert len(record["steps"]) == len(steps) > 0 and record["summary"]["steps"] == len(steps)
    assert bake.argv[-1] == "api-amd64" and str(ctx.docs["cold"]) in bake.argv and "--no-cache" not in bake.argv
    assert (bake.env[VAR_TAG], bake.env[VAR_SCOPE], bake.env[VAR_REGISTRY]) == ("bench-r-1", "bench-r",
                                                                                "127.0.0.1:5000/acme")
    assert ref not in store.present and ctx.state.images == []
    assert not list(Path(ctx.state.workdir).glob("metadata-*.json"))


def test_a_failed_bake_is_recorded_with_its_error(tmp_path: Path) -> None:
    bake = Recorded('{"vertexes": []}\nERROR: failed to solve: something broke\n', code=1)
    ctx = run_context(tmp_path, ImageStore(), bake)
    info = bakefile.target_infos(ctx.config, ["api-amd64"])[0]
    record, _ = ctx.bake(info, "no-cache", "bench-r-2", no_cache=True, timed=True)
    assert not record["ok"]
    assert record["error"] == "build of api-amd64 failed: ERROR: failed to solve: something broke"
    assert "--no-cache" in bake.argv


def test_a_truncated_stream_is_a_note_not_a_crash(tmp_path: Path) -> None:
    ctx = run_context(tmp_path, ImageStore(), Recorded('{"vertexes": [\n'))
    info = bakefile.target_infos(ctx.config, ["api-amd64"])[0]
    record, steps = ctx.bake(info, "cold", "bench-r-3", no_cache=False, timed=False)
    assert steps == [] and record["notes"] and "truncated rawjson stream" in record["notes"][0]


def test_run_record_flags_steps_shared_with_a_concurrent_build(tmp_path: Path) -> None:
    steps = collect_steps(iter_status([stream_of("worker-arm-no-cache")]))
    info = bakefile.target_infos(make_config(tmp_path), ["api-arm"])[0]
    record = run_record(info, "no-cache", code=0, tail=[], wall=0.1, steps=steps, digest=None, notes=["n"])
    assert record["notes"][0] == "n" and "shared with a concurrent build" in record["notes"][1]


# ------------------------------------------------------------------------------------------------ resets
def test_cold_prunes_the_build_cache_and_removes_only_restorable_base_images(tmp_path: Path) -> None:
    store = ImageStore("b:1", "b:2")
    ctx = run_context(tmp_path, store, Recorded(""))
    info = bakefile.target_infos(ctx.config, ["api-amd64"])[0]
    ctx.reset(PlannedRun(1, 1, "cold", "api-amd64"), info, ["b:1", "b:2"], ["b:1"], None)
    calls = ctx.machine.docker.runner.calls  # type: ignore[attr-defined]
    assert ["docker", "buildx", "prune", "-af"] in calls
    assert store.present == {"b:2"}


def test_no_cache_pulls_missing_base_images_and_records_them_for_cleanup(tmp_path: Path) -> None:
    store = ImageStore("b:1")
    ctx = run_context(tmp_path, store, Recorded(""))
    info = bakefile.target_infos(ctx.config, ["api-amd64"])[0]
    ctx.reset(PlannedRun(1, 1, "no-cache", "api-amd64"), info, ["b:1", "b:2"], [], None)
    assert store.present == {"b:1", "b:2"}
    assert ctx.state.base_pulled == [["default", "b:2"]]
    assert json.loads(ctx.machine.state_path.read_text())["base_pulled"] == [["default", "b:2"]]


def test_an_incremental_touch_is_undone_even_when_the_bake_fails(tmp_path: Path) -> None:
    class Broken(Recorded):
        def stream(self, argv: Sequence[str], **kwargs: Any) -> tuple[int, list[str]]:
            raise KeyboardInterrupt

    ctx = run_context(tmp_path, ImageStore(), Broken(""))
    script = tmp_path / "ctx" / "script.sh"
    script.write_bytes(b"echo hi")
    touch = Touch("COPY script.sh /s", script, "append")
    info = bakefile.target_infos(ctx.config, ["api-amd64"])[0]
    run = PlannedRun(4, 1, "incremental", "api-amd64")
    ctx.reset(run, info, [], [], touch)
    assert script.read_bytes() == b"echo hi\n"
    with pytest.raises(KeyboardInterrupt):
        bench_run._timed_run(ctx, run, info, touch, [])
    assert script.read_bytes() == b"echo hi" and ctx.state.touch is None


def test_base_images_present_before_are_recorded_and_unrestorable_ones_kept(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = run_context(tmp_path, ImageStore("b:1"), Recorded(""))
    monkeypatch.setattr(ctx.machine, "restorable", lambda ref: ref == "b:1")
    bench = plan_bench(ctx.config, BenchRequest(), seed=1, scope="bench-r")
    result = BenchResult({}, {})
    removable = bench_run._check_base_images(ctx, bench, {"api-amd64": ["b:1"], "api-arm": ["b:2"]}, result)
    assert removable == ["b:1"]
    assert ctx.state.base_before == [["default", "b:1"]]
    assert result.warnings == ["cold keeps base image b:2: its registry cannot be checked to pull it again"]


# ------------------------------------------------------------------------------------------------ state, cleanup
def test_the_state_survives_a_round_trip_through_its_file() -> None:
    state = State(scope="bench-x", images=[["default", "r/a:1"]], cache_tags=["r/a:c"],
                  base_before=[["default", "b:1"]], touch={"path": "/p", "kind": "append", "backup": "/b"},
                  workdir="/w")
    assert State.from_json(state.to_json()) == state
    assert State.from_json('{"scope": "old", "unknown": 1}') == State(scope="old")


def test_cleanup_removes_images_restores_base_images_and_forgets_the_state(tmp_path: Path) -> None:
    store = ImageStore("r/a:1", "b:pulled")
    config = make_config(tmp_path)
    machine = make_machine(tmp_path, config, Scripted(store))
    work = machine.out_dir / ".work-bench-c"
    work.mkdir()
    state = State(scope="bench-c", images=[["default", "r/a:1"]], base_before=[["default", "b:before"]],
                  base_pulled=[["default", "b:pulled"]], workdir=str(work))
    machine.save(state)
    assert machine.cleanup(state) == []
    assert store.present == {"b:before"}
    assert state.images == [] and not work.exists() and not machine.state_path.exists()


def test_cleanup_keeps_the_state_file_when_something_could_not_be_undone(tmp_path: Path) -> None:
    def refuse_rm(argv: list[str]) -> Result:
        return Result(argv, 1 if argv[1:3] == ["image", "rm"] else 0, "", "")

    machine = make_machine(tmp_path, make_config(tmp_path), Scripted(refuse_rm))
    state = State(scope="bench-k", images=[["default", "r/a:1"]])
    assert machine.cleanup(state) == ["could not remove image r/a:1"]
    assert json.loads(machine.state_path.read_text())["images"] == [["default", "r/a:1"]]


def test_finish_counts_the_failed_runs() -> None:
    result = BenchResult({}, {}, runs=[{"ok": True}, {"ok": False, "error": "boom"}, {"ok": False, "error": "x"}])
    bench_run._finish(result)
    assert "finished" in result.settings
    assert result.warnings == ["2 run(s) failed and are left out of the statistics; first: boom"]


# ------------------------------------------------------------------------------------------------ docker argv
def test_the_docker_commands_bench_uses() -> None:
    answers = {"info": Result([], 0, '{"NCPU": 4, "KernelVersion": "6.1"}', ""),
               "version": Result([], 0, "26.1.4\n", "")}
    runner = Scripted(lambda argv: answers.get(argv[1], Result(argv, 0, "", "")))
    docker = Docker(runner, builder="bench-b")
    assert docker.image_present("r/a:1") and docker.remove_image("r/a:1")
    docker.pull("b:1")
    docker.prune_build_cache()
    assert docker.info() == {"NCPU": 4, "KernelVersion": "6.1"} and docker.client_version() == "26.1.4"
    assert runner.calls == [
        ["docker", "image", "inspect", "--format", "{{.Id}}", "r/a:1"], ["docker", "image", "rm", "r/a:1"],
        ["docker", "pull", "-q", "b:1"], ["docker", "buildx", "prune", "-af", "--builder", "bench-b"],
        ["docker", "info", "--format", "{{json .}}"], ["docker", "version", "--format", "{{.Client.Version}}"]]


def test_docker_info_is_empty_when_the_engine_does_not_answer() -> None:
    assert Docker(Scripted(lambda argv: Result(argv, 1, "", "no engine"))).info() == {}
    assert Docker(Scripted(lambda argv: Result(argv, 0, "not json", ""))).info() == {}
