"""bench: time builds per target and platform under five cache scenarios (:mod:`bakery.bench.run`), and the
report of the results (JSON, Markdown, SVG), compared with a baseline when one is given."""

from bakery._lazy import exports

__all__, __getattr__ = exports(__name__, {
    "SCENARIOS": "bakery.bench.scenarios",
    "BenchError": "bakery.bench.scenarios",
    "BenchRequest": "bakery.bench.scenarios",
    "BenchResult": "bakery.bench.scenarios",
    "Observer": "bakery.bench.scenarios",
    "PlannedRun": "bakery.bench.scenarios",
    "run_bench": "bakery.bench.run",
    "load_report": "bakery.bench.run",
    "build_report": "bakery.bench.report",
    "compare_reports": "bakery.bench.report",
    "to_markdown": "bakery.bench.render",
    "to_svg": "bakery.bench.render",
    "StreamDecoder": "bakery.bench.rawjson",
    "iter_status": "bakery.bench.rawjson",
    "collect_steps": "bakery.bench.steps",
    "critical_path": "bakery.bench.steps",
    "summarize": "bakery.bench.steps",
})
