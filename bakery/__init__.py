"""bakery: multi-architecture image builds with ``docker buildx bake``, driven from Invoke.

A consumer's whole ``tasks.py`` can be ``from bakery import ns``. The collection is built on first access
(module ``__getattr__``), so importing a core module (``bakery.clean.retention``, ``bakery.config``) never loads
Invoke or the task modules.
"""

from __future__ import annotations

from typing import Any

from bakery.version import __version__
__all__ = ["ns", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "ns":
        from bakery.tasks import ns
        return ns
    raise AttributeError(f"module 'bakery' has no attribute {name!r}")
