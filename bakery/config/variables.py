"""The variables bakery hands to bake: flags > ``BAKERY_*`` environment (as bake itself reads them) > config."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from bakery.config.model import Config
from bakery.errors import BakeryError
from bakery.oci.reference import InvalidReference, check_name_prefix, check_tag

VAR_REGISTRY = "BAKERY_REGISTRY"
VAR_TAG = "BAKERY_TAG"
VAR_SCOPE = "BAKERY_CACHE_SCOPE"


def bake_variables(config: Config, tag: str | None = None, scope: str | None = None,
                   env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables passed to bake: flags > BAKERY_* environment (as bake itself reads them) > config."""
    env = os.environ if env is None else env
    raw_scope = scope or env.get(VAR_SCOPE) or local_scope(config, env) or config.cache.scope
    values = {VAR_REGISTRY: env.get(VAR_REGISTRY) or config.registry,
              VAR_TAG: tag or env.get(VAR_TAG) or config.tag,
              # a branch name is a fine scope: sanitised like metadata-action does (feature/x -> feature-x)
              VAR_SCOPE: re.sub(r"[^A-Za-z0-9_.-]", "-", raw_scope)}
    try:
        check_name_prefix(values[VAR_REGISTRY])
        for key in (VAR_TAG, VAR_SCOPE):
            check_tag(values[key])
    except InvalidReference as exc:
        raise BakeryError(f"{key if 'key' in locals() else VAR_REGISTRY}: {exc}") from None
    return values


def in_ci(env: Mapping[str, str]) -> bool:
    """Whether this runs in CI: ``CI=true`` (GitHub Actions, GitLab CI and most others set it)."""
    return env.get("CI", "").lower() in ("true", "1") or env.get("GITHUB_ACTIONS") == "true" \
        or env.get("GITLAB_CI") == "true"


def local_scope(config: Config, env: Mapping[str, str]) -> str | None:
    """Outside CI, a build that would write the shared cache scope (the one every build reads, ``fallback_scope``)
    writes ``local-<user>`` instead and still reads the shared one: a working tree never overwrites what CI reads.
    None in CI, or when the scope is not the shared one."""
    if in_ci(env) or config.cache.scope != config.cache.fallback_scope:
        return None
    user = re.sub(r"[^A-Za-z0-9_.-]", "-", env.get("USER") or env.get("USERNAME") or "user")
    return f"local-{user}"
