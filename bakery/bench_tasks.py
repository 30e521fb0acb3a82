"""Task: ``bench`` (placeholder until the benchmark issue lands)."""

from __future__ import annotations

from invoke import Context, Exit, task


@task
def bench(c: Context) -> None:
    """Build-time benchmarks (not implemented yet)."""
    raise Exit("bakery: bench is not implemented yet", code=2)
