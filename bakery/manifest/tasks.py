"""Tasks: the ``manifest.*`` collection (create, annotate, push, inspect, rm) over the registry API.

They parse flags and call :mod:`bakery.manifest.drafts`; every decision lives there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from invoke import Collection, Context

from bakery.cli import config_from, errors_to_exit, find_config, task
from bakery.config.variables import VAR_REGISTRY, bake_variables
from bakery.errors import BakeryError
from bakery.manifest import drafts as man
from bakery.oci.registry import OCI_INDEX, Manifest, Registry, digest_of


def _where(c: Context, config: str | None) -> tuple[Path, str | None]:
    """Drafts directory and the registry short names resolve under (both from bakery.yaml when there is one)."""
    if config is None:
        try:
            find_config(Path.cwd())
        except BakeryError:
            return Path.cwd() / "bake" / man.DRAFT_DIR, None
    cfg = config_from(c, config)
    return cfg.root / cfg.bake_dir / man.DRAFT_DIR, bake_variables(cfg)[VAR_REGISTRY]


def _annotations(pairs: list[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BakeryError(f"--annotation {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _show_draft(draft: man.Draft, path: Path) -> None:
    raw = man.index_bytes(draft.entries, draft.annotations)
    print(man.render_rows(man.rows_of(Manifest(digest_of(raw), OCI_INDEX, raw))))
    print(f"draft: {os.path.relpath(path)} -> {draft.target} (push with manifest.push {draft.target})")


@task(iterable=["source", "annotation"],
      help={"target": "the index to create, repo:tag (a short name is taken under bakery.yaml's registry)",
            "source": "a per-arch image or a buildx index, by tag or digest (repeatable, in order)",
            "attestations": "keep (carry attestation manifests over) or drop",
            "annotation": "index annotation KEY=VALUE (repeatable)",
            "amend": "replace an existing draft for the target",
            "push": "push right away (no annotate step)", "config": "path of bakery.yaml"})
@errors_to_exit
def create(c: Context, target: str, source: list[str] | None = None, attestations: str = "keep",
           annotation: list[str] | None = None, amend: bool = False, push: bool = False,
           config: str | None = None) -> None:
    """Lay out an index from per-arch references (a local draft; then manifest.annotate / manifest.push)."""
    drafts, default = _where(c, config)
    tgt = man.resolve_ref(target, default)
    path = man.draft_path(drafts, tgt)
    if path.exists() and not amend:
        raise BakeryError(f"a draft for {tgt} exists ({os.path.relpath(path)}); pass --amend to replace it, or "
                          f"manifest.push / manifest.rm --draft it")
    sources = [(s, man.resolve_ref(s, default)) for s in source or []]
    registry = Registry.for_host(tgt.domain)
    draft = man.create_draft(tgt, sources, registry, attestations, _annotations(annotation))
    if push:
        digest = man.push_draft(draft, registry)
        print(f"{draft.target}@{digest}")
        return
    man.save_draft(path, draft)
    _show_draft(draft, path)


@task(allow_empty=("variant",),
      help={"target": "the draft's index reference, as given to manifest.create",
            "entry": "the entry to change: its source reference, digest (12+ characters) or platform",
            "os": "operating system, e.g. linux", "arch": "architecture, e.g. arm64",
            "variant": "variant, e.g. v7 (\"\" removes it)", "config": "path of bakery.yaml"})
@errors_to_exit
def annotate(c: Context, target: str, entry: str, os_: str | None = None, arch: str | None = None,
             variant: str | None = None, config: str | None = None) -> None:
    """Set or override the os/architecture/variant of one entry of a draft."""
    drafts, default = _where(c, config)
    tgt = man.resolve_ref(target, default)
    draft, path = man.load_draft(drafts, tgt)
    draft.entries = man.annotate(draft.entries, entry, os=os_, arch=arch, variant=variant, origins=draft.origins)
    man.check_platforms(draft.entries, draft.origins)
    man.save_draft(path, draft)
    _show_draft(draft, path)


@task(help={"target": "the draft's index reference", "purge": "delete the local draft after pushing",
            "config": "path of bakery.yaml"})
@errors_to_exit
def push(c: Context, target: str, purge: bool = False, config: str | None = None) -> None:
    """Push a draft: copy entries from other repositories, then PUT the index under its tag."""
    drafts, default = _where(c, config)
    tgt = man.resolve_ref(target, default)
    draft, path = man.load_draft(drafts, tgt)
    digest = man.push_draft(draft, Registry.for_host(tgt.domain))
    if purge:
        path.unlink(missing_ok=True)
    print(f"{draft.target}@{digest}")


@task(name="inspect", help={"ref": "image or index reference, by tag or digest", "json": "print JSON",
                            "raw": "print the manifest exactly as the registry stores it",
                            "config": "path of bakery.yaml"})
@errors_to_exit
def inspect_(c: Context, ref: str, json_: bool = False, raw: bool = False, config: str | None = None) -> None:
    """Show the entries of an index (platform, digest, media type, size, attestation of) or one manifest."""
    _, default = _where(c, config)
    r = man.resolve_ref(ref, default)
    registry = Registry.for_host(r.domain)
    found = man.fetch(registry, r.path, man.ref_key(r))
    if raw:
        sys.stdout.write(found.raw.decode() + "\n")
        return
    cfg = None if found.is_index else man.image_config(registry, r.path, found)
    rows = man.rows_of(found, cfg)
    if json_:
        print(json.dumps(man.inspect_dict(str(r), found, rows), indent=2, sort_keys=True))
        return
    print(f"{r.name}@{found.digest}  {found.media_type}")
    print(man.render_rows(rows))


@task(help={"ref": "the tag to remove, repo:tag", "draft": "remove the local draft for REF instead",
            "config": "path of bakery.yaml"})
@errors_to_exit
def rm(c: Context, ref: str, draft: bool = False, config: str | None = None) -> None:
    """Remove one tag from the registry and nothing else: what it pointed at stays (indexes stay pullable)."""
    from bakery.oci.untag import untag            # imported when the task runs, not when bakery starts
    drafts, default = _where(c, config)
    r = man.resolve_ref(ref, default)
    if draft:
        path = man.draft_path(drafts, r)
        if not path.exists():
            raise BakeryError(f"no draft for {r}")
        path.unlink()
        print(f"removed draft {os.path.relpath(path)}")
        return
    if r.digest or not r.tag:
        raise BakeryError(f"{ref}: give a tag (repo:tag); bakery never deletes a manifest by digest here")
    done = untag(Registry.for_host(r.domain), r.path, r.tag)
    print(f"untagged {r.name}:{r.tag} (was {done.previous}; that manifest is kept)")


manifest = Collection("manifest", create, annotate, push, inspect_, rm)
