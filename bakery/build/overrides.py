"""buildx-style overrides of one build: ``--set PATTERN.KEY=VALUE`` (bake's syntax: ``api-*.args.X=1``,
``*.labels.team=core``, ``+=`` to append on buildx 0.20+), ``--build-arg NAME=VALUE`` (every target's
``args.NAME``), ``--provenance`` and ``--sbom`` (bake's own shorthands for ``attest``). Pure: checked and turned into
what bake is given; one :class:`OverrideError` line names the bad value. ``--builder NAME`` puts every platform group
on one existing buildx builder (:func:`one_builder`).

Keys that would undo what bakery builds on are refused: ``tags`` and ``output`` (the per-group refs bakery stitches),
``platform`` (the platform groups), ``push`` (``--push``), ``context`` and ``dockerfile`` (the skip's inputs; change
bakery.yaml instead).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bakery.capabilities import Capabilities
from bakery.config.model import ARG_RE, IMPLICIT_BUILDER, Builder, Config
from bakery.errors import BakeryError

__all__ = ["REFUSED", "OverrideError", "Overrides", "one_builder", "overrides"]

REFUSED = {"tags": "bakery tags the per-group refs it stitches (use --tag or tags:)",
           "output": "bakery pushes or loads the per-group refs it stitches (use --push or --load)",
           "platform": "platforms come from platform_groups (use --group)", "push": "use --push",
           "context": "the context is the skip's input (change bakery.yaml)",
           "dockerfile": "the Dockerfile is the skip's input (change bakery.yaml)"}
_SET = re.compile(r"^(?P<pattern>[A-Za-z0-9_*?\[\]-]+)\.(?P<key>[a-z-]+)(?:\.(?P<sub>[^=+]+))?(?P<op>\+?=)(?P<value>.*)$",
                  re.S)


class OverrideError(BakeryError):
    """A ``--set``, ``--build-arg``, ``--provenance`` or ``--sbom`` value that cannot be used."""


@dataclass(frozen=True)
class Overrides:
    """What bake gets: ``sets`` (``--set`` values, build args included), ``provenance`` and ``sbom`` (None: not
    given)."""

    sets: tuple[str, ...] = ()
    provenance: str | None = None
    sbom: str | None = None

    @property
    def empty(self) -> bool:
        return not self.sets and self.provenance is None and self.sbom is None

    def fingerprint(self) -> dict[str, object]:
        """What the skip's input digest takes from them (the same overrides, the same digest)."""
        return {"sets": list(self.sets), "provenance": self.provenance, "sbom": self.sbom}


def overrides(sets: Sequence[str], build_args: Sequence[str], targets: Sequence[str], caps: Capabilities,
              provenance: str | None = None, sbom: str | None = None) -> Overrides:
    """Check the overrides against the selected ``targets`` and the buildx in use."""
    out = [_checked_set(s, targets, caps) for s in sets]
    for arg in build_args:
        name, eq, value = arg.partition("=")
        if not eq or not ARG_RE.match(name):
            raise OverrideError(f"--build-arg {arg!r}: expected NAME=VALUE with NAME a build arg name")
        out.append(f"*.args.{name}={value}")
    for flag, given in (("--provenance", provenance), ("--sbom", sbom)):
        if given is not None and not given.strip():
            raise OverrideError(f"{flag}: expected true, false or options such as mode=max")
    return Overrides(tuple(out), provenance, sbom)


def _checked_set(text: str, targets: Sequence[str], caps: Capabilities) -> str:
    m = _SET.match(text)
    if m is None:
        raise OverrideError(f"--set {text!r}: expected PATTERN.KEY=VALUE, e.g. '*.args.X=1' or 'api-*.labels.team=core'")
    key = m.group("key")
    if key in REFUSED:
        raise OverrideError(f"--set {text!r}: {key} cannot be overridden: {REFUSED[key]}")
    if m.group("op") == "+=" and caps.version[:2] < (0, 20):
        raise OverrideError(f"--set {text!r}: += needs buildx 0.20 or newer (this is "
                            f"{'.'.join(map(str, caps.version))}); use =")
    pattern = m.group("pattern")
    if not any(fnmatch.fnmatchcase(t, pattern) for t in targets):
        raise OverrideError(f"--set {text!r}: {pattern!r} matches none of the targets built "
                            f"({', '.join(targets) or 'none'})")
    return text


def one_builder(config: Config, name: str, driver: str) -> Config:
    """``--builder NAME`` (an existing buildx builder, as ``docker buildx bake --builder``): every platform group
    builds on it, whatever ``builders:`` maps. A docker-driver builder is a docker context, selected as such."""
    context = name if driver == "docker" and name != IMPLICIT_BUILDER else None
    builder = Builder(name=name, driver=driver, context=context)
    groups = {g: dataclasses.replace(pg, builder=None) for g, pg in config.platform_groups.items()}
    return dataclasses.replace(config, builders={name: builder}, default_builder=name, platform_groups=groups)
