"""Registry credentials as docker keeps them: a credential helper (``credHelpers``/``credsStore``), else the
``auths`` of ``$DOCKER_CONFIG/config.json``; Docker Hub under any of its names."""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from bakery.errors import BakeryError
from bakery.process import Runner

__all__ = ["DOCKER_HUB", "DOCKER_HUB_AUTH", "docker_credentials"]

DOCKER_HUB = ("docker.io", "index.docker.io", "registry-1.docker.io")
DOCKER_HUB_AUTH = "https://index.docker.io/v1/"


def docker_credentials(host: str, config_dir: Path | None = None) -> tuple[str, str] | None:
    """(username, secret) for a registry host from docker's config.json, or None."""
    cfg_dir = config_dir or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    try:
        cfg = json.loads((cfg_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    hub = host in DOCKER_HUB
    helper = (cfg.get("credHelpers") or {}).get("index.docker.io" if hub else host) or cfg.get("credsStore")
    if helper:
        try:
            proc = Runner().run([f"docker-credential-{helper}", "get"], input=DOCKER_HUB_AUTH if hub else host,
                                timeout=30, check=False)
            data = json.loads(proc.stdout) if proc.returncode == 0 else None
        except (BakeryError, ValueError):
            data = None      # no such helper, it timed out, or it answered something else: try auths next
        if isinstance(data, dict):
            return str(data.get("Username", "")), str(data.get("Secret", ""))
    for key, entry in (cfg.get("auths") or {}).items():
        name = re.sub(r"^https?://", "", key).rstrip("/").removesuffix("/v1")
        if name == host or (hub and name in DOCKER_HUB):
            if entry.get("auth"):
                user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, secret
            if entry.get("username"):
                return entry["username"], entry.get("password", "")
    return None
