"""Dockerfile build checks for every target (``docker buildx bake --call check``, buildx >= 0.16).

:func:`warnings` turns bake's JSON answer into one :class:`Warning` per finding (pure); targets of one image that
share a Dockerfile report the same finding once, naming every group it was found for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TextIO

from bakery.build import bakefile, entitlements
from bakery.build.bakefile import TargetInfo
from bakery.build.generate import evaluated_targets, generate
from bakery.capabilities import version_string
from bakery.config.model import Config
from bakery.config.variables import bake_variables
from bakery.docker import Docker


@dataclass(frozen=True, order=True)
class Warning:
    file: str          # the Dockerfile, relative to the repository
    line: int
    rule: str
    message: str
    image: str
    groups: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message} [{self.image} {','.join(self.groups)}]"


def _line(finding: Mapping[str, Any]) -> int:
    ranges = (finding.get("location") or {}).get("ranges") or [{}]
    return int((ranges[0].get("start") or {}).get("line") or 0)


def warnings(config: Config, infos: Sequence[TargetInfo], printed: Mapping[str, Any]) -> list[Warning]:
    """Every finding of the checked targets, in file and line order."""
    found: dict[tuple[str, int, str, str, str], list[str]] = {}
    for info in infos:
        image = config.images[info.image]
        file = str(PurePosixPath(image.context) / image.dockerfile)
        check = (printed.get("target", {}).get(info.name) or {}).get("check") or {}
        for w in check.get("warnings") or ():
            message = str(w.get("detail") or w.get("description") or "")
            key = (file, _line(w), str(w.get("ruleName") or "?"), message, info.image)
            found.setdefault(key, []).append(info.group)
    return sorted(Warning(f, ln, r, m, i, tuple(g)) for (f, ln, r, m, i), g in found.items())


def run_checks(config: Config, docker: Docker, out: TextIO, groups: Sequence[str] = (),
               images: Sequence[str] = ()) -> list[Warning] | None:
    """Write the bake file and run the build checks of the selected targets; None when this buildx has none."""
    caps = docker.capabilities()
    if not caps.build_checks:
        return None
    names = bakefile.select_targets(config, groups, images)
    doc = bakefile.document(config, caps)
    files = generate(config, docker, out, formats=["json"], check=False, doc=doc)
    variables = bake_variables(config)
    allow = entitlements.grants(evaluated_targets(doc, variables), names, config.root, caps)
    printed = docker.bake_check([files[0].relative_to(config.root)], names, variables, config.root, allow)
    return warnings(config, bakefile.target_infos(config, names), printed)


def unavailable(docker: Docker) -> str:
    have = version_string(docker.capabilities().version)
    return f"the installed buildx {have} has no build checks (they need buildx >= 0.16)"
