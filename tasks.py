"""This repository's tasks: bakery's own collection, used on the example services under examples/."""

from bakery import ns  # noqa: F401  (the whole consumer setup: `invoke build`, `invoke generate`, ...)
