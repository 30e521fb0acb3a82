"""OCI labels on every build: the bake overlay that puts ``org.opencontainers.image.*`` labels and manifest
annotations and ``SOURCE_DATE_EPOCH`` on targets (:func:`overlay`, used by release and the ``tags:`` rules), and
for a build without ``tags:`` the commit's own (:func:`commit_overlay`: revision, source, created = commit time),
as metadata-action puts them on every image it tags. None of them makes a target look changed to the skip
(:func:`bakery.build.skip.commit_free`) but the version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bakery.build import bakefile
from bakery.config.model import Config
from bakery.process import Runner
from bakery.release.git import commit_facts

__all__ = ["commit_overlay", "overlay"]


def overlay(config: Config, targets: Iterable[str], labels: Mapping[str, str], epoch: int) -> dict[str, Any]:
    """The bake overlay for a release: OCI labels and manifest annotations, ``SOURCE_DATE_EPOCH`` = commit time.

    Keys the user set (``labels`` in bakery.yaml, ``args.SOURCE_DATE_EPOCH``, ``bake.annotations``) win; the
    user's annotations are repeated so a list-replacing merge cannot lose them.
    """
    out: dict[str, Any] = {}
    infos = bakefile.target_infos(config, targets)
    for info in infos:
        img = config.images[info.image]
        own = {**config.labels, **img.labels}
        lab = {k: v for k, v in labels.items() if k not in own}
        user_ann = [str(a) for a in img.bake.get("annotations") or []]
        user_keys = {a.split("=", 1)[0].split(":", 1)[-1] for a in user_ann}
        ann = user_ann + [bakefile.escape(f"{k}={v}") for k, v in labels.items() if k not in user_keys]
        body: dict[str, Any] = {}
        if lab:
            body["labels"] = {bakefile.escape(k): bakefile.escape(v) for k, v in lab.items()}
        if ann:
            body["annotations"] = ann
        if "SOURCE_DATE_EPOCH" not in img.args:
            body["args"] = {"SOURCE_DATE_EPOCH": str(epoch)}
        out[info.name] = body
    return {"target": out}


def commit_overlay(config: Config, runner: Runner, targets: Iterable[str],
                   root: Path | None = None) -> dict[str, Any] | None:
    """The overlay of the checkout's commit (revision, source, created and ``SOURCE_DATE_EPOCH`` = commit time);
    None outside a git checkout or before its first commit."""
    facts = commit_facts(runner, root or config.root)
    if facts is None:
        return None
    sha, epoch, source = facts
    labels = {"org.opencontainers.image.created":
              datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "org.opencontainers.image.revision": sha, "org.opencontainers.image.source": source or ""}
    return overlay(config, targets, {k: v for k, v in labels.items() if v}, epoch)
