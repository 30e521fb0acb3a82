"""bakery.yaml read with line numbers: every key path ("images.api.context") maps to the line it is on, and a
duplicate key is an error (YAML would silently keep the later value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bakery.errors import ConfigError, ConfigErrors


MAX_NODES = 20_000        # values in one bakery.yaml, aliases expanded (a real one has a few hundred)
MAX_DEPTH = 64            # nesting levels (a real one has five or six)
MAX_BYTES = 4 << 20       # the file itself


class KeyLines:
    """Maps key paths ("images.api.context") to the line they were written on."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def walk(self, node: yaml.Node, path: str, source: str, errors: list[ConfigError]) -> None:
        """Record every key path's line (iteratively, within :data:`MAX_NODES` values and :data:`MAX_DEPTH`
        levels: YAML aliases may not expand a small file into a huge or endless document)."""
        stack: list[tuple[yaml.Node, str, tuple[int, ...]]] = [(node, path, ())]
        visited = 0
        while stack:
            current, where, parents = stack.pop()
            visited += 1
            if visited > MAX_NODES:
                raise ConfigError(source, where, f"expands to more than {MAX_NODES} values (YAML aliases?); "
                                                 "write the values out or use fewer aliases")
            if len(parents) > MAX_DEPTH:
                raise ConfigError(source, where, f"is nested deeper than {MAX_DEPTH} levels")
            if id(current) in parents:
                raise ConfigError(f"{source}:{current.start_mark.line + 1}", where, "a YAML alias refers to itself")
            inner = (*parents, id(current))
            if isinstance(current, yaml.MappingNode):
                seen: set[str] = set()
                children = []
                for key, value in current.value:
                    k = str(key.value)
                    sub = f"{where}.{k}" if where else k
                    if k in seen:
                        errors.append(ConfigError(f"{source}:{key.start_mark.line + 1}", sub,
                                                  "duplicate key (the earlier value would be silently lost)"))
                    seen.add(k)
                    self.lines[sub] = key.start_mark.line + 1
                    children.append((value, sub, inner))
                stack.extend(reversed(children))
            elif isinstance(current, yaml.SequenceNode):
                for i, item in reversed(list(enumerate(current.value))):
                    sub = f"{where}[{i}]"
                    self.lines[sub] = item.start_mark.line + 1
                    stack.append((item, sub, inner))

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
    if len(text) > MAX_BYTES:
        raise ConfigError(source, "", f"is {len(text)} bytes; bakery reads at most {MAX_BYTES}")
    lines = KeyLines()
    errors: list[ConfigError] = []
    try:
        loader = yaml.SafeLoader(text)                # parsed once: the nodes give the lines, then the data
        try:
            node = loader.get_single_node()
            if node is not None:
                lines.walk(node, "", source, errors)  # bounded: before anything expands the aliases
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except RecursionError:
        raise ConfigError(source, "", f"is nested deeper than YAML can be read (over {MAX_DEPTH} levels)") from None
    except ValueError as exc:       # e.g. an integer of thousands of digits
        raise ConfigError(source, "", f"has a value YAML cannot read: {str(exc).splitlines()[0][:200]}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(where, "", f"YAML syntax error: {problem}") from None
    if errors:
        raise ConfigErrors(errors)
    return data, lines
