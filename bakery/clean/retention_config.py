"""The ``retention:`` section of bakery.yaml -> a :class:`~bakery.clean.model.Policy`.

Like every other section, it reports every problem at once (a :class:`~bakery.config.validate.Validator`
collects them): one problem is a ``ConfigError``, several a ``ConfigErrors``, one line each, naming file, key
path and value. A problem that follows from another one is not reported twice: a rule with an unknown key (most
likely its misspelt action) is not also told that it needs an action.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from bakery.clean.model import Policy, Rule, Untagged
from bakery.config.lines import KeyLines
from bakery.config.model import suggest
from bakery.config.validate import Validator
from bakery.errors import ConfigErrors

__all__ = ["parse_duration", "parse_policy", "raise_problems", "validator"]

_POLICY_KEYS = ("rules", "protect", "untagged", "protect_defaults")
_RULE_KEYS = ("match", "keep_last", "older_than", "keep", "images", "override_defaults")
_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: object) -> timedelta:
    """``"90m"``, ``"12h"``, ``"30d"``, ``"2w"`` -> timedelta (``m`` is minutes). ValueError if bad."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise ValueError(f"negative duration {value!r}")
        return value
    found = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"invalid duration {value!r}; use a number and a unit m/h/d/w, e.g. 90m, 12h, 30d, 2w")
    amount, unit = found.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(amount)})


def validator(source: str, root: Path = Path(".")) -> Validator:
    """A validator whose problems read ``<source>: <key>: <problem>`` (retention's messages carry no line)."""
    return Validator(root, source, KeyLines())


def raise_problems(v: Validator) -> None:
    """Raise what ``v`` collected: one problem as itself, several together."""
    if len(v.errors) == 1:
        raise v.errors[0]
    if v.errors:
        raise ConfigErrors(v.errors)


def parse_policy(data: Any, source: str, *, key: str = "retention", v: Validator | None = None,
                 images: Sequence[str] | None = None) -> Policy:
    """Validate the YAML-shaped retention section, with every problem in one error naming each key path.

    ``images``: the names a rule's ``images`` may use (None: any). ``v``: the validator to collect into (its
    earlier problems are raised too)."""
    v = v or validator(source)
    policy = _policy(v, data, key, images)
    raise_problems(v)
    return policy


def _policy(v: Validator, data: Any, key: str, images: Sequence[str] | None) -> Policy:
    if not isinstance(data, Mapping):
        v.err(key, f"expected a mapping, got {type(data).__name__} {data!r}")
        return Policy()
    _unknown_keys(v, data, _POLICY_KEYS, key)
    raw_rules = data.get("rules", [])
    rules: list[Rule] = []
    if not isinstance(raw_rules, list):
        v.err(f"{key}.rules", f"expected a list of rules, got {raw_rules!r}")
    else:
        for i, raw in enumerate(raw_rules):
            rule = _rule(v, raw, f"{key}.rules[{i}]", images)
            if rule is not None:
                rules.append(rule)
    protect = _regex_list(v, data.get("protect", []), f"{key}.protect")
    untagged: Untagged = "keep"
    raw_untagged = data.get("untagged", "keep")
    if raw_untagged in ("keep", "delete") or _is_count(raw_untagged):
        untagged = raw_untagged
    else:
        v.err(f"{key}.untagged", f'expected "keep", "delete" or a non-negative integer, got {raw_untagged!r}')
    protect_defaults = data.get("protect_defaults", True)
    if not isinstance(protect_defaults, bool):
        v.err(f"{key}.protect_defaults", f"expected true or false, got {protect_defaults!r}")
        protect_defaults = True
    return Policy(rules=tuple(rules), protect=protect, untagged=untagged, protect_defaults=protect_defaults)


def _rule(v: Validator, raw: object, key: str, known: Sequence[str] | None) -> Rule | None:
    """The rule, or None when it has a problem (recorded in ``v``)."""
    if not isinstance(raw, Mapping):
        v.err(key, f"expected a mapping with a 'match' key, got {raw!r}")
        return None
    before = len(v.errors)
    misspelt = _unknown_keys(v, raw, _RULE_KEYS, key)
    match = raw.get("match")
    if "match" not in raw:
        v.err(f"{key}.match", "missing; give a regex matched against the whole tag")
    else:
        _compile(v, match, f"{key}.match")
    keep_last = raw.get("keep_last")
    if keep_last is not None and not _is_count(keep_last):
        v.err(f"{key}.keep_last", f"expected a non-negative integer, got {keep_last!r}")
    older_than = _duration(v, raw.get("older_than"), f"{key}.older_than")
    keep_all = _keep(v, raw, key, misspelt)
    images = _images(v, raw.get("images", []), f"{key}.images", known)
    override = raw.get("override_defaults", False)
    if not isinstance(override, bool):
        v.err(f"{key}.override_defaults", f"expected true or false, got {override!r}")
    if len(v.errors) > before:
        return None
    return Rule(match=str(match), keep_last=keep_last, older_than=older_than, keep_all=keep_all, images=images,
                override_defaults=override)


def _duration(v: Validator, value: object, key: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as err:
        v.err(key, str(err))
        return None


def _keep(v: Validator, raw: Mapping[str, Any], key: str, misspelt: bool) -> bool:
    """``keep: all``, and that a rule says what it keeps (keep_last / older_than given count, valid or not)."""
    keep = raw.get("keep")
    counted = raw.get("keep_last") is not None or raw.get("older_than") is not None
    if keep is not None and keep != "all":
        v.err(f"{key}.keep", f'the only accepted value is "all", got {keep!r}')
        return False
    if keep == "all" and counted:
        v.err(f"{key}.keep", "keep: all cannot be combined with keep_last or older_than")
    elif keep is None and not counted and not misspelt:
        v.err(key, "a rule needs keep_last, older_than or keep: all (to remove every match, use keep_last: 0)")
    return keep == "all"


def _images(v: Validator, value: object, key: str, known: Sequence[str] | None) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(i, str) and i for i in value):
        v.err(key, f"expected a list of repository names, got {value!r}")
        return ()
    for j, name in enumerate(value):
        if known is not None and name not in known:
            v.err(f"{key}[{j}]", f"unknown image {name!r}; {suggest(name, list(known))}")
    return tuple(value)


def _regex_list(v: Validator, raw: object, key: str) -> tuple[str, ...]:
    if not isinstance(raw, list):
        v.err(key, f"expected a list of regexes, got {raw!r}")
        return ()
    good = [pattern for i, pattern in enumerate(raw) if _compile(v, pattern, f"{key}[{i}]")]
    return tuple(good)


def _compile(v: Validator, pattern: object, key: str) -> bool:
    if not isinstance(pattern, str):
        v.err(key, f"expected a regex string, got {pattern!r}")
        return False
    try:
        re.compile(pattern)
    except re.error as err:
        v.err(key, f"invalid regex {pattern!r}: {err}")
        return False
    return True


def _unknown_keys(v: Validator, data: Mapping[Any, Any], allowed: tuple[str, ...], key: str) -> bool:
    """Record every key not in ``allowed`` (with the closest allowed one); whether there was one."""
    unknown = [name for name in data if name not in allowed]
    for name in unknown:
        close = difflib.get_close_matches(str(name), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(allowed)}"
        v.err(f"{key}.{name}", f"unknown key {name!r}{hint}")
    return bool(unknown)


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
