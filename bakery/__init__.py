"""bakery: multi-architecture image builds with ``docker buildx bake``, driven from Invoke.

A consumer's whole ``tasks.py`` can be ``from bakery import ns``.
"""

from __future__ import annotations

from bakery.tasks import ns

__version__ = "0.1.0"
__all__ = ["ns", "__version__"]
