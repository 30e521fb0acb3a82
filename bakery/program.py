"""The ``bakery`` console script: the same tasks as ``invoke`` with ``from bakery import ns``, no tasks.py."""

from __future__ import annotations

import os

from invoke import Program

from bakery.version import __version__
from bakery.tasks import ns


class BakeryProgram(Program):
    def parse_collection(self) -> None:
        super().parse_collection()
        # a bundled namespace skips project config loading; read ./invoke.yaml like `invoke` would
        self.config.set_project_location(os.getcwd())
        self.config.load_project()


program = BakeryProgram(namespace=ns, version=__version__, name="bakery", binary="bakery")
