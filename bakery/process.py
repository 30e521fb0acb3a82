"""The one place bakery starts external programs: argument lists only, captured stderr turned into
:class:`CommandError`, and the exact command echoed with ``-v`` / ``--dry-run``."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bakery.errors import BakeryError, CommandError


@dataclass(frozen=True)
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


def render(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> str:
    """The command as a user could paste it into a shell."""
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted((env or {}).items()))
    text = shlex.join(argv)
    if prefix:
        text = f"{prefix} {text}"
    if cwd is not None and Path(cwd).resolve() != Path.cwd().resolve():
        text = f"(cd {shlex.quote(str(cwd))} && {text})"
    return text


@dataclass
class Runner:
    """Runs commands; ``verbose`` echoes them, ``dry_run`` only echoes the ones marked as actions."""

    verbose: bool = False
    dry_run: bool = False
    out: TextIO = field(default_factory=lambda: sys.stderr)

    def echo(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.out.write(f"+ {render(argv, env, cwd)}\n")     # one write: bakes side by side echo whole lines
        self.out.flush()

    def _env(self, env: Mapping[str, str] | None) -> dict[str, str]:
        merged = dict(os.environ)
        merged.update(env or {})
        return merged

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            check: bool = True, input: str | None = None, timeout: float | None = None,
            action: bool = False) -> Result:
        """Run and capture. ``action=True`` marks commands that change something: skipped by --dry-run."""
        argv = list(argv)
        if self.verbose or (action and self.dry_run):
            self.echo(argv, env, cwd)
        if action and self.dry_run:
            return Result(argv, 0, "", "")
        try:
            # no terminal for the child: a tool that would stop and ask (bake's entitlement prompt) fails instead
            proc = subprocess.run(argv, env=self._env(env), cwd=cwd, input=input, capture_output=True,
                                  stdin=None if input is not None else subprocess.DEVNULL,
                                  text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise BakeryError(f"{argv[0]!r} is not installed or not on PATH (run `make stack` or `invoke doctor`)") \
                from None
        except subprocess.TimeoutExpired:
            raise CommandError(argv, -1, "", f"`{shlex.join(argv[:4])}` timed out after {timeout}s") from None
        result = Result(argv, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise CommandError(argv, proc.returncode, proc.stderr)
        return result

    def stream(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
               on_line: Callable[[str], None] | None = None, tail: int = 200,
               capture: bool = True, prefix: str = "",
               on_start: Callable[[subprocess.Popen[str]], None] | None = None) -> tuple[int, list[str]]:
        """Run with stdout inherited and stderr streamed line by line to ``out`` (and ``on_line``).

        ``capture=False`` leaves stderr to the child (a terminal UI such as buildx's tty progress); then no
        lines come back. ``prefix`` labels every echoed line (concurrent runs); ``on_start`` receives the process
        (so a supervisor can stop it).

        Returns the exit code and the last ``tail`` stderr lines. Ctrl-C is forwarded to the child, which is
        waited for, then KeyboardInterrupt is re-raised so callers can clean up.
        """
        argv = list(argv)
        if self.verbose or self.dry_run:
            self.echo(argv, env, cwd)
        if self.dry_run:
            return 0, []
        last: deque[str] = deque(maxlen=tail)
        try:
            proc = subprocess.Popen(argv, env=self._env(env), cwd=cwd, stdin=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE if capture else None,
                                    text=True, bufsize=1, errors="replace")
        except FileNotFoundError:
            raise BakeryError(f"{argv[0]!r} is not installed or not on PATH (run `make stack` or `invoke doctor`)") \
                from None
        if on_start is not None:
            on_start(proc)
        try:
            for line in proc.stderr or ():
                self.out.write(prefix + line if prefix else line)
                last.append(line.rstrip("\n"))
                if on_line is not None:
                    on_line(line)
            return proc.wait(), list(last)
        except KeyboardInterrupt:
            # the child got the same SIGINT from the terminal; make sure it stops, then let the caller clean up
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise


@contextlib.contextmanager
def signals_deferred() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM are recorded instead of acted on (a rollback must run to its end);
    the caller, which is raising already, reads what arrived. Outside the main thread it changes nothing."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in wanted}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
