"""Task: ``clean`` (placeholder until the retention issue lands)."""

from __future__ import annotations

from invoke import Context, Exit, task


@task
def clean(c: Context) -> None:
    """Registry retention and local cleanup (not implemented yet)."""
    raise Exit("bakery: clean is not implemented yet", code=2)
