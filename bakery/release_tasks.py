"""Tasks: ``release`` and the ``manifest.*`` collection (placeholder until the release issue lands)."""

from __future__ import annotations

from invoke import Collection, Context, Exit, task


@task
def release(c: Context) -> None:
    """Publish a version (not implemented yet)."""
    raise Exit("bakery: release is not implemented yet", code=2)


manifest = Collection("manifest")
