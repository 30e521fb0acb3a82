"""Task: ``tags``: the tags, labels and push decision the ``tags:`` rules give this CI event (what ``build --push``
would publish), like metadata-action's outputs."""

from __future__ import annotations

import json
import sys

from invoke import Context

from bakery.cli import config_from, errors_to_exit, task
from bakery.errors import BakeryError
from bakery.process import Runner


@task(help={"main": "print only the main tag (the per-group refs' tag; for `bakery stitch`)",
            "json": "one JSON document: event, tags, labels, push decision", "config": "path of bakery.yaml"})
@errors_to_exit
def tags(c: Context, main: bool = False, json_: bool = False, config: str | None = None) -> None:
    """Print the tags the `tags:` rules give this CI event, one per line (event and push decision on stderr)."""
    from bakery.tags import plan as tags_plan           # imported when the task runs, not when bakery starts
    cfg = config_from(c, config)
    plan = tags_plan.resolve(cfg, Runner())
    if plan is None:
        raise BakeryError(f"{cfg.source} has no tags: section (rules as metadata-action's: docs/tags.md)")
    if json_:
        print(json.dumps(plan.to_dict(), indent=2, sort_keys=True))
        return
    if main:
        if not plan.tags.main:
            raise BakeryError(f"{cfg.source}: tags: no rule gives a tag for the {plan.event.describe()}")
        print(plan.tags.main)
        return
    print(f"{plan.event.describe()}: {'push' if plan.push else plan.why}", file=sys.stderr)
    for tag in plan.tags.tags:
        print(tag)
    for key, value in sorted(plan.labels.items()):
        print(f"label {key}={value}", file=sys.stderr)
