"""The ``tags:`` section of bakery.yaml: metadata-action's tag rules and flavor, and whether pull requests push.

    tags:
      rules:                       # metadata-action's `tags` input, one rule per item (default: its defaults)
        - type=ref,event=branch
        - type=semver,pattern={{version}}
      flavor: latest=auto          # metadata-action's `flavor` input, a string or a mapping
      pull_requests: build         # build (default): build, never push; push: push same-repository PRs

``tags:`` may also be the list of rules alone. Forks never push. Every problem is one line naming file, line
and key, all reported together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bakery.config.model import Config
from bakery.config.validate import validator_for
from bakery.errors import ConfigErrors
from bakery.tags.rules import Flavor, Rule, RuleError, parse_flavor, parse_rule

__all__ = ["PULL_REQUESTS", "TAGS_KEYS", "TagSettings", "settings"]

TAGS_KEYS = ("rules", "flavor", "pull_requests")
PULL_REQUESTS = ("build", "push")


@dataclass(frozen=True)
class TagSettings:
    """``tags:`` in bakery.yaml; ``configured`` is False when the section is absent (build and release then use
    ``--tag`` or ``tag:`` as before)."""

    rules: tuple[Rule, ...] = ()
    flavor: Flavor = Flavor()
    pull_requests: str = "build"
    configured: bool = False


def settings(config: Config) -> TagSettings:
    raw = (config.raw or {}).get("tags")
    if raw is None:
        return TagSettings()
    v = validator_for(config)
    data: Mapping[str, Any] = {"rules": raw} if isinstance(raw, list) else v.mapping(raw, "tags", TAGS_KEYS)
    rules: list[Rule] = []
    for i, text in enumerate(v.string_list(data.get("rules"), "tags.rules")):
        try:
            rules.append(parse_rule(text))
        except RuleError as exc:
            v.err(f"tags.rules[{i}]", str(exc))
    flavor = Flavor()
    value = data.get("flavor")
    if value is not None and not isinstance(value, (str, Mapping)):
        v.err("tags.flavor", f"expected a string such as latest=auto,prefix= or a mapping, got {value!r}")
    else:
        try:
            flavor = parse_flavor(value)
        except RuleError as exc:
            v.err("tags.flavor", str(exc))
    pull_requests = v.choice(data.get("pull_requests"), "tags.pull_requests", PULL_REQUESTS, "build")
    if v.errors:
        raise ConfigErrors(v.errors)
    return TagSettings(tuple(rules), flavor, pull_requests, True)
