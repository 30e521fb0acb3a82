"""bakery.yaml read with line numbers: every key path ("images.api.context") maps to the line it is on, and a
duplicate key is an error (YAML would silently keep the later value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bakery.errors import ConfigError, ConfigErrors


class KeyLines:
    """Maps key paths ("images.api.context") to the line they were written on."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def walk(self, node: yaml.Node, path: str, source: str, errors: list[ConfigError]) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                k = str(key.value)
                sub = f"{path}.{k}" if path else k
                if k in seen:
                    errors.append(ConfigError(f"{source}:{key.start_mark.line + 1}", sub,
                                              "duplicate key (the earlier value would be silently lost)"))
                seen.add(k)
                self.lines[sub] = key.start_mark.line + 1
                self.walk(value, sub, source, errors)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                sub = f"{path}[{i}]"
                self.lines[sub] = item.start_mark.line + 1
                self.walk(item, sub, source, errors)

    def at(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path.rsplit(".", 1)[0] if "." in path else ""
        return None


def read_yaml(path: Path, source: str) -> tuple[Any, KeyLines]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, "", f"not found in {path.parent} (create it, or pass --config)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot read: {exc}") from None
    lines = KeyLines()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(where, "", f"YAML syntax error: {problem}") from None
    errors: list[ConfigError] = []
    if node is not None:
        lines.walk(node, "", source, errors)
    if errors:
        raise ConfigErrors(errors)
    return data, lines
