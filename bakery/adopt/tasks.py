"""Tasks: ``import`` (``bakery import FILE[,FILE…] [--targets …] [--write]``): the ``images:`` section bakery
derives from bake or compose files, so a team can move off ``images_from`` and own the config; ``init``: a first
commented bakery.yaml; ``schema``: bakery.yaml's JSON Schema for editors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Context

from bakery.adopt.schema import SCHEMA_FILE, schema_text
from bakery.atomic import write_file
from bakery.cli import _settings, errors_to_exit, find_config, has_config, task
from bakery.config import CONFIG_FILE
from bakery.config.bake_import import ImportSpec, import_images, report
from bakery.config.lines import read_yaml
from bakery.config.load import check_names, load
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.process import Runner

if TYPE_CHECKING:
    from bakery.adopt.init import Draft


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


@task(name="import", positional=["files"],
      help={"files": "bake HCL/JSON or compose file(s), comma-separated, merged as bake merges -f files",
            "targets": "targets to import, comma-separated (default: what a plain `docker buildx bake` builds)",
            "groups": "bake groups to import, comma-separated",
            "write": "add the images to bakery.yaml (and drop its images_from when it names the same files)",
            "verbose": "show the variables policy, the selection and what bakery replaces per image",
            "config": "path of bakery.yaml"})
@errors_to_exit
def import_(c: Context, files: str, targets: str = "", groups: str = "", write: bool = False,
            verbose: bool = False, config: str | None = None) -> None:
    """Print the images: section bakery derives from bake or compose files (YAML for bakery.yaml)."""
    from bakery.adopt.derive import same_files, section, spec_for, write_into   # only this task needs it
    chosen = config or _settings(c).get("config")
    try:
        cfg_path: Path | None = Path(chosen) if chosen else find_config(Path.cwd())
    except BakeryError:
        cfg_path = None
    if write and cfg_path is None:
        raise BakeryError("--write needs a bakery.yaml (none found; pass --config PATH)")
    root = cfg_path.parent.resolve() if cfg_path else Path.cwd().resolve()
    data, _ = read_yaml(cfg_path, str(cfg_path)) if cfg_path else (None, None)
    spec = spec_for(_split(files), _split(targets), _split(groups),
                    Path(os.path.relpath(Path.cwd().resolve(), root)).as_posix())
    bake_dir = str((data or {}).get("bake_dir") or "bake")
    evaluator = Docker(Runner(verbose=verbose), binary=_settings(c).get("docker") or "docker")
    imported = import_images(spec, root, evaluator, cache_dir=root / bake_dir / "import" if cfg_path else None)
    report(imported, sys.stderr, verbose)
    text = section(imported)
    if not write:
        sys.stdout.write(text)
        return
    assert cfg_path is not None
    check_names(data or {}, imported)
    drop = same_files(spec, data or {}, str(cfg_path))
    new, added = write_into(cfg_path.read_text(encoding="utf-8"), imported, drop_images_from=drop)
    write_file(cfg_path, new)
    dropped = "; images_from removed" if drop else ""
    print(f"wrote {cfg_path}: added {len(added)} image(s){': ' + ', '.join(added) if added else ''}{dropped}")


@task(help={"registry": "image name prefix, e.g. ghcr.io/OWNER (default 127.0.0.1:5000/<this directory's name>)",
            "platforms": "platforms to build, comma-separated; one group per architecture "
                         "(default linux/amd64,linux/arm64)",
            "force": "overwrite an existing bakery.yaml",
            "verbose": "with a bake or compose file: show what the import replaced per image"})
@errors_to_exit
def init(c: Context, registry: str | None = None, platforms: str = "linux/amd64,linux/arm64", force: bool = False,
         verbose: bool = False) -> None:
    """Write a commented bakery.yaml from the Dockerfiles here (or from docker-bake.hcl / compose files)."""
    from bakery.adopt.init import image_name, render
    root = Path.cwd().resolve()
    path = root / CONFIG_FILE
    if path.exists() and not force:
        raise BakeryError(f"{CONFIG_FILE} exists; pass --force to overwrite it")
    evaluator = Docker(Runner(verbose=verbose), binary=_settings(c).get("docker") or "docker")
    draft = _draft(root, registry or f"127.0.0.1:5000/{image_name(Path('.'), root)}", _split(platforms),
                   evaluator, verbose)
    text = render(draft, f"{draft.bake_dir}/{SCHEMA_FILE}")
    check_text(root, text, evaluator)
    write_file(path, text)
    write_file(root / draft.bake_dir / SCHEMA_FILE, schema_text())
    print(f"wrote {CONFIG_FILE}: {len(draft.images)} image(s) from {draft.origin}: {', '.join(draft.images)}")
    print(f"wrote {draft.bake_dir}/{SCHEMA_FILE} (editor completion; `bakery schema --write` refreshes it)")
    print("next: bakery doctor, then bakery generate / bakery build")


def _draft(root: Path, registry: str, platforms: list[str], evaluator: Docker, verbose: bool) -> Draft:
    """The images: imported from the bake/compose files bake would read here, else from the Dockerfiles."""
    from bakery.adopt.init import Draft, bake_files, dockerfiles, from_dockerfiles
    files = bake_files(root)
    if files:
        imported = import_images(ImportSpec(tuple(files), source="bakery init"), root, evaluator)
        report(imported, sys.stderr, verbose)
        return Draft(registry, tuple(platforms), imported.images, imported.where, ", ".join(files))
    found = dockerfiles(root)
    if not found:
        raise BakeryError(f"no Dockerfile under {root} (nor a docker-bake.hcl or compose file): nothing to build")
    images, where = from_dockerfiles(root, found)
    return Draft(registry, tuple(platforms), images, where)


def check_text(root: Path, text: str, evaluator: Docker) -> None:
    """The validator reads the text as bakery.yaml (from a scratch file next to it) before anything is written."""
    scratch = root / f".{CONFIG_FILE}.init-{os.getpid()}"
    try:
        scratch.write_text(text, encoding="utf-8")
        load(scratch, None, evaluator)
    except BakeryError as exc:
        why = str(exc).replace(scratch.name, CONFIG_FILE)
        raise BakeryError(f"the bakery.yaml init derived does not validate, nothing written: {why}") from None
    finally:
        scratch.unlink(missing_ok=True)


@task(name="schema", help={"write": f"write it to <bake_dir>/{SCHEMA_FILE}, where bakery.yaml's "
                                    "yaml-language-server line points", "config": "path of bakery.yaml"})
@errors_to_exit
def schema_(c: Context, write: bool = False, config: str | None = None) -> None:
    """Print the JSON Schema of bakery.yaml (generated from the validator's keys) for editor completion."""
    text = schema_text()
    if not write:
        sys.stdout.write(text)
        return
    chosen = config or _settings(c).get("config")
    cfg_path = Path(chosen) if chosen else (find_config(Path.cwd()) if has_config(Path.cwd()) else None)
    data, _ = read_yaml(cfg_path, str(cfg_path)) if cfg_path else (None, None)
    root = cfg_path.parent if cfg_path else Path.cwd()
    target = root / str((data or {}).get("bake_dir") or "bake") / SCHEMA_FILE
    write_file(target, text)
    print(f"wrote {os.path.relpath(target)}")
