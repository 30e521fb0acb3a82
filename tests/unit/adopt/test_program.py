"""The console script's flag rules (bakery/program.py, bakery/cli.py): help for every task, no empty values,
one short-flag table for every task."""

from __future__ import annotations

import pytest

from bakery.cli import SHORT_FLAGS
from bakery.program import allowed_empty, empty_value, help_argv, positional_targets
from bakery.tasks import ns

CONTEXTS = ns.to_contexts()
ALLOWED = allowed_empty(ns)


def _empty(*argv: str) -> str | None:
    return empty_value(["bakery", *argv], CONTEXTS, ALLOWED)


@pytest.mark.parametrize("argv", [["build", "--group"], ["build", "--group", "--dry-run"], ["build", "-g"],
                                  ["build", "--group="], ["build", "--group", ""], ["build", "--tag", "--push"],
                                  ["--echo", "build", "-v", "--tag="]])
def test_a_value_flag_without_a_value_is_one_line(argv: list[str]) -> None:
    message = _empty(*argv)
    assert message is not None and "\n" not in message
    assert message.startswith("bakery: build --") and "needs a value" in message


@pytest.mark.parametrize("argv", [["build", "--group", "arm"], ["build", "--tag", "-bad"], ["build", "-g", "build"],
                                  ["build", "--group=arm", "--push"], ["manifest.annotate", "x", "--variant", ""],
                                  ["build", "--", "--group"], ["build", "--push"]])
def test_given_values_and_declared_empty_ones_pass(argv: list[str]) -> None:
    assert _empty(*argv) is None


def test_help_after_a_task_is_that_tasks_help_even_with_positional_arguments() -> None:
    assert help_argv(["bakery", "manifest.create", "--help"], CONTEXTS) == ["bakery", "--help", "manifest.create"]
    assert help_argv(["bakery", "stitch", "-h"], CONTEXTS) == ["bakery", "--help", "stitch"]
    assert help_argv(["bakery", "build", "--push"], CONTEXTS) is None
    assert help_argv(["bakery", "--help"], CONTEXTS) is None


def test_short_flags_mean_the_same_flag_in_every_task_and_none_hides_help() -> None:
    for ctx in CONTEXTS:
        for arg in ctx.args.values():
            shorts = [n for n in arg.names if len(n) == 1]
            assert shorts in ([], [SHORT_FLAGS.get(arg.names[0])]), (ctx.name, arg.names)
            assert "h" not in shorts


@pytest.mark.parametrize(("argv", "rewritten"), [
    (["build", "api", "arm"], ["build", "--target=api", "--target=arm"]),
    (["build", "--group", "arm", "api", "--push"], ["build", "--group", "arm", "--target=api", "--push"]),
    (["build", "-t", "v1", "api-amd64"], ["build", "-t", "v1", "--target=api-amd64"]),
    (["build", "--tag=v1", "default", "stitch", "--tag", "v1"],
     ["build", "--tag=v1", "--target=default", "stitch", "--tag", "v1"]),
    (["build", "--", "api"], ["build", "--", "api"]),
])
def test_bare_words_after_build_are_its_targets_as_bake_takes_them(argv: list[str], rewritten: list[str]) -> None:
    assert positional_targets(["bakery", *argv], CONTEXTS) == ["bakery", *rewritten]


def test_a_task_without_targets_keeps_its_positional_arguments() -> None:
    argv = ["bakery", "manifest.create", "127.0.0.1:5000/a:1", "--from", "x"]
    assert positional_targets(argv, CONTEXTS) == argv


def test_every_flag_keeps_its_help_however_often_the_contexts_are_read() -> None:
    ns.to_contexts()
    build = next(c for c in ns.to_contexts() if c.name == "build")
    assert dict(build.help_tuples())["-g, --group"].startswith("platform group to build")
