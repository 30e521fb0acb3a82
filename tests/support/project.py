"""Throw-away consumer projects for the integration tests: one image `app` on the stack's busybox, a bakery.yaml of
the test's choosing, and git when the test needs a history."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

BASE = "127.0.0.1:5000/base/busybox:1.35"


def one_image(root: Path, registry: str | list[str], steps: str = "COPY stamp /stamp\n", stamp: str = "",
              groups: dict[str, list[str]] | None = None, **top: Any) -> Path:
    """``root`` with ``app/Dockerfile`` (FROM the stack's busybox, then ``steps``), ``app/stamp`` and bakery.yaml
    (``registry``, ``groups`` (default amd64 only), image ``app``, and any other top-level keys)."""
    (root / "app").mkdir(parents=True, exist_ok=True)
    (root / "app" / "Dockerfile").write_text(f"FROM {BASE}\n{steps}")
    (root / "app" / "stamp").write_text(f"{stamp or registry}\n")
    doc = {"registry": registry, "platform_groups": groups or {"amd64": ["linux/amd64"]},
           "images": {"app": {"context": "app"}}, **top}
    (root / "bakery.yaml").write_text(json.dumps(doc, indent=2))
    return root


def git(root: Path, *args: str) -> str:
    """``git -C root ARGS`` with an identity; its stdout."""
    return subprocess.run(["git", "-C", str(root), "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
                          capture_output=True, text=True, check=True).stdout.strip()


def committed(root: Path) -> Path:
    """``root`` as a git repository on branch main with everything committed (bake/ ignored)."""
    (root / ".gitignore").write_text("bake/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root
