"""The ``bakery`` console script: the same tasks as ``invoke`` with ``from bakery import ns``, no tasks.py.

On top of Invoke's program it smooths three edges a CI log or a shell pipe meets:

- ``bakery TASK --help`` works for every task, also those with positional arguments (Invoke would take
  ``--help`` as the positional value: ``manifest.create --help`` tried to create an index named ``--help``);
- a flag that takes a value refuses to be empty (``build --group`` with nothing after it built every group;
  ``--tag=`` fell back to the default tag) with one line, unless the task declares empty as meaningful
  (``manifest.annotate --variant ""`` removes the variant);
- a closed pipe (``bakery --help | head``) ends the program quietly instead of with a traceback;
- targets may be given as bake takes them, bare after the task (``bakery build api arm`` is
  ``bakery build --target api --target arm``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from invoke import Collection, Program
from invoke.exceptions import ParseError
from invoke.parser import ParserContext

from bakery.version import __version__
from bakery.tasks import ns

HELP = ("-h", "--help")


def _names(contexts: Sequence[ParserContext]) -> dict[str, ParserContext]:
    return {n: ctx for ctx in contexts for n in (ctx.name or "", *ctx.aliases) if n}


def help_argv(argv: Sequence[str], contexts: Sequence[ParserContext]) -> list[str] | None:
    """``[bin, ..., TASK, ..., --help, ...]`` -> ``[bin, --help, TASK]`` (None when no task asks for help)."""
    names = _names(contexts)
    task = None
    for token in argv[1:]:
        if token == "--":
            break
        if task is None and token in names:
            task = token
        elif task is not None and token in HELP:
            return [argv[0], "--help", task]
    return None


def empty_value(argv: Sequence[str], contexts: Sequence[ParserContext],
                allowed: Mapping[str, frozenset[str]]) -> str | None:
    """The first task flag given without a value (nothing, ``""`` or another flag after it, or ``--flag=``),
    as a one-line message; None when every value-taking flag got one. ``allowed``: per task, the flags whose
    empty value means something."""
    names = _names(contexts)
    ctx: ParserContext | None = None
    tokens = list(argv[1:])
    skip = False
    for i, token in enumerate(tokens):
        if skip:
            skip = False
            continue
        if token == "--":
            break
        flag, eq, value = token.partition("=")
        arg = ctx.flags[flag] if ctx is not None and flag.startswith("-") and flag in ctx.flags else None
        if arg is None:
            if token in names and not token.startswith("-"):
                ctx = names[token]
            continue
        long = "--" + arg.names[0]
        if not arg.takes_value or arg.names[0] in allowed.get(ctx.name or "" if ctx else "", frozenset()):
            continue
        if eq:
            empty = value == ""
        else:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            empty = nxt is None or nxt == "" or (nxt.partition("=")[0] in (ctx.flags if ctx else {})) \
                or nxt in HELP or nxt == "--"
            skip = not empty
        if empty:
            return f"bakery: {ctx.name if ctx else ''} {long} needs a value (e.g. {long}=VALUE)"
    return None


TARGET_FLAG = "--target"
TARGETED = frozenset({"build"})      # the tasks whose bare words are bake targets


def positional_targets(argv: Sequence[str], contexts: Sequence[ParserContext]) -> list[str]:
    """``bakery build api arm`` -> ``bakery build --target=api --target=arm``, as bake takes targets: a bare word
    after ``build`` that is neither a flag's value nor a task's name is a target. (A target named like a task is
    written ``--target NAME``.)"""
    names = _names(contexts)
    ctx: ParserContext | None = None
    out = [argv[0]] if argv else []
    tokens = list(argv[1:])
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            out += [token, *tokens[i:]]
            break
        flag, eq, _ = token.partition("=")
        arg = ctx.flags[flag] if ctx is not None and flag.startswith("-") and flag in ctx.flags else None
        if arg is not None:
            out.append(token)
            if arg.takes_value and not eq and i < len(tokens):
                out.append(tokens[i])
                i += 1
            continue
        if token in names and not token.startswith("-"):
            ctx = names[token]
        elif ctx is not None and ctx.name in TARGETED and not token.startswith("-"):
            token = f"{TARGET_FLAG}={token}"
        out.append(token)
    return out


def allowed_empty(collection: Collection) -> dict[str, frozenset[str]]:
    """Per task name, the flags it declares may be empty (``allow_empty`` on :class:`bakery.cli.BakeryTask`)."""
    out = {}
    for name in collection.task_names:
        task = collection[name]
        out[name] = frozenset(getattr(task, "allow_empty", ()))
    return out


class BakeryProgram(Program):
    _contexts: list[ParserContext] = []
    _contexts_of: Collection | None = None

    def parse_collection(self) -> None:
        super().parse_collection()
        # a bundled namespace skips project config loading; read ./invoke.yaml like `invoke` would
        self.config.set_project_location(os.getcwd())
        self.config.load_project()

    def parse_tasks(self) -> None:
        contexts = self._contexts if self.collection is self._contexts_of else self.collection.to_contexts()
        message = empty_value(self.argv, contexts, allowed_empty(self.collection))
        if message:
            raise ParseError(message)
        super().parse_tasks()

    def run(self, argv: list[str] | None = None, exit: bool = True) -> None:
        try:
            given = list(argv) if argv is not None else list(sys.argv)
            self._contexts_of = self.namespace or ns
            self._contexts = contexts = self._contexts_of.to_contexts()     # built once: parse_tasks reads them too
            asked = help_argv(given, contexts)
            super().run(asked or positional_targets(given, contexts), exit)
        except BrokenPipeError:
            # the reader went away (`| head`): stop quietly; stdout points at /dev/null so the interpreter's
            # final flush does not raise again
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            sys.exit(141)


program = BakeryProgram(namespace=ns, version=__version__, name="bakery", binary="bakery")
