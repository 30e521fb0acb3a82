"""Task: ``import`` (``bakery import FILE[,FILE…] [--targets …] [--write]``): the ``images:`` section bakery
derives from bake or compose files, so a team can move off ``images_from`` and own the config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from invoke import Context, task

from bakery.adopt.derive import same_files, section, spec_for, write_into
from bakery.atomic import write_file
from bakery.cli import _settings, errors_to_exit, find_config
from bakery.config.bake_import import import_images, report
from bakery.config.lines import read_yaml
from bakery.config.load import check_names
from bakery.docker import Docker
from bakery.errors import BakeryError
from bakery.process import Runner


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
