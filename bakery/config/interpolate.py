"""Environment values in bakery.yaml, only where asked: ``${env:NAME}`` (``${env:NAME:-default}`` when it may be
unset) in any string value is replaced by the variable's value when the file is loaded. Nothing else is touched:
``${X}`` stays literal for bake and for the build (``args: {GREETING: "${X}"}`` reaches the build unchanged), and
``$${env:NAME}`` writes a literal ``${env:NAME}``. Pure: the document and the environment in, a new document out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bakery.config.lines import KeyLines
from bakery.errors import ConfigError, ConfigErrors

__all__ = ["interpolate"]

_REF = re.compile(r"\$(\$?)\{env:([^}:]*)(?::-([^}]*))?\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def interpolate(data: Any, env: Mapping[str, str], source: str, lines: KeyLines | None = None) -> Any:
    """``data`` with every ``${env:NAME}`` filled in; every unset variable without a default, and every bad name,
    is one error naming the key (all reported together)."""
    errors: list[ConfigError] = []

    def where(path: str) -> str:
        line = lines.at(path) if lines is not None else None
        return f"{source}:{line}" if line else source

    def fill(text: str, path: str) -> str:
        def one(m: re.Match[str]) -> str:
            if m.group(1):                                  # $${env:X}: the literal text
                return m.group(0)[1:]
            name, default = m.group(2), m.group(3)
            if not _NAME.match(name):
                errors.append(ConfigError(where(path), path, f"${{env:{name}}}: {name!r} is not a variable name"))
                return ""
            if name in env:
                return env[name]
            if default is not None:
                return default
            errors.append(ConfigError(where(path), path, f"${{env:{name}}}: {name} is not set (give a default: "
                                                         f"${{env:{name}:-value}})"))
            return ""
        return _REF.sub(one, text)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, str):
            return fill(value, path) if "{env:" in value else value
        if isinstance(value, Mapping):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    out = walk(data, "")
    if errors:
        raise ConfigErrors(errors)
    return out
