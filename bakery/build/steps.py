"""Build steps and cache hits per target, read from bake's plain progress (``--progress plain``, bakery's
default): ``#12 [api-amd64 2/3] RUN ...`` names a Dockerfile step of target ``api-amd64`` (a bake of one target
writes ``#12 [2/3] RUN ...``), ``#12 CACHED`` says it came from the cache. Pure: :class:`StepCount` is fed one line at a time (one per bake job)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["StepCount"]

_STEP = re.compile(r"^#(\d+) \[(?:([^\] ]+) +)?\d+/\d+\] ")
_CACHED = re.compile(r"^#(\d+) CACHED\s*$")


@dataclass
class StepCount:
    """The Dockerfile steps each target ran, and which of them were cache hits."""

    steps: dict[str, set[int]] = field(default_factory=dict)     # target -> vertex numbers
    cached: set[int] = field(default_factory=set)

    def feed(self, line: str) -> None:
        m = _STEP.match(line)
        if m:
            self.steps.setdefault(m.group(2) or "", set()).add(int(m.group(1)))
            return
        c = _CACHED.match(line)
        if c:
            self.cached.add(int(c.group(1)))

    def of(self, target: str, alone: bool = False) -> dict[str, int] | None:
        """{"steps": N, "cached": K} of ``target``; None when its progress named no step (tty progress).
        ``alone``: the bake built only this target, and bake names no target then (``#6 [1/2] FROM ...``)."""
        mine = self.steps.get(target) or (self.steps.get("") if alone else None)
        if not mine:
            return None
        return {"steps": len(mine), "cached": len(mine & self.cached)}
