"""Curated, lazy package faces: a wing's ``__init__`` names what it offers without importing it, so that importing
one pure module (``bakery.clean.retention``) never loads the wing's heavier neighbours (requests, Invoke)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def exports(package: str, names: Mapping[str, str]) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and a module ``__getattr__`` that imports ``names[attr]`` (a module path) on first access."""
    def getattr_(attr: str) -> Any:
        module = names.get(attr)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        return getattr(importlib.import_module(module), attr)
    return sorted(names), getattr_
