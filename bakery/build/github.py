"""GitHub Actions step outputs and job summary of ``build`` and ``stitch``, when the job provides the files
(``$GITHUB_OUTPUT``, ``$GITHUB_STEP_SUMMARY``): what bake-action and metadata-action give a workflow.

Outputs: ``metadata`` (bake/results.json as one JSON line, as bake-action's ``metadata``), ``version`` (the main
tag), ``tags`` (every published ``registry/repository:tag``, one per line, as metadata-action's ``tags``),
``digest`` (``image=sha256:...`` per line) and ``<image>-digest`` per image. The summary is Markdown: a table of
images (platforms, digest, tags) and one of targets (seconds, cache hits, compressed size per platform). :func:`outputs_text` and :func:`summary_text` are pure; :func:`append` writes both.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from bakery import humanize
from bakery.build.build import BuildResult
from bakery.errors import BakeryError

__all__ = ["append", "outputs_text", "summary_text"]


def _published(result: BuildResult) -> list[str]:
    refs = []
    for info in result.images.values():
        repo = str(info["ref"]).rsplit(":", 1)[0]
        refs += [f"{repo}:{t}" for t in info.get("tags") or [str(info["ref"]).rsplit(":", 1)[1]]]
        refs += [str(r) for r in info.get("mirrored") or []]
    return refs


def outputs_text(result: BuildResult, delimiter: str) -> str:
    """The lines to append to ``$GITHUB_OUTPUT`` (multi-line values in ``name<<DELIMITER`` blocks)."""
    values: dict[str, str] = {
        "metadata": json.dumps(asdict(result), sort_keys=True, separators=(",", ":")),
        "version": result.tag,
        "tags": "\n".join(_published(result)),
        "digest": "\n".join(f"{name}={info['digest']}" for name, info in sorted(result.images.items())),
    }
    values.update({f"{name}-digest": str(info["digest"]) for name, info in sorted(result.images.items())})
    out = []
    for name, value in values.items():
        if "\n" in value or delimiter in value:
            out.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            out.append(f"{name}={value}\n")
    return "".join(out)


def summary_text(result: BuildResult, title: str = "bakery build") -> str:
    """The Markdown for ``$GITHUB_STEP_SUMMARY``: one row per stitched image, then the notes."""
    lines = [f"### {title}: `{result.tag}`", ""]
    if result.images:
        lines += ["| image | platforms | digest | tags |", "|---|---|---|---|"]
        for name, info in sorted(result.images.items()):
            tags = ", ".join(f"`{t}`" for t in info.get("tags") or [result.tag])
            lines.append(f"| {name} | {', '.join(info.get('platforms') or [])} | `{info['digest']}` | {tags} |")
    else:
        lines.append(f"{len(result.targets)} target(s) built, nothing stitched (not pushed, or --no-stitch).")
    if result.targets:
        lines += ["", "| target | platforms | seconds | cache hits | compressed size |", "|---|---|---|---|---|"]
        for name, t in sorted(result.targets.items()):
            hits = f"{t['cached']}/{t['steps']} steps" if "steps" in t else "-"
            if t.get("unchanged_since"):
                hits = f"unchanged since {t['unchanged_since']}"
            sizes = ", ".join(f"{p or 'image'}: {humanize.human_bytes(n)}" for p, n in sorted((t.get("sizes") or {}).items()))
            lines.append(f"| {name} | {', '.join(t.get('platforms') or [])} | {t.get('seconds', '-')} | {hits} | "
                         f"{sizes or '-'} |")
    lines += [f"- note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def append(env: Mapping[str, str], result: BuildResult, title: str = "bakery build") -> list[Path]:
    """Append the outputs and the summary to the files the job names; the files written (none outside
    GitHub Actions)."""
    if env.get("GITHUB_ACTIONS") != "true":
        return []
    written = []
    for var, text in (("GITHUB_OUTPUT", outputs_text(result, f"ghadelimiter_{secrets.token_hex(8)}")),
                      ("GITHUB_STEP_SUMMARY", summary_text(result, title))):
        path = env.get(var, "")
        if not path:
            continue
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(text)
        except OSError as exc:
            raise BakeryError(f"{var} {path}: cannot append ({exc.strerror})") from None
        written.append(Path(path))
    return written
