"""What ``bakery bench`` changes on the machine, and how it is undone.

Bench empties build caches, removes base images, touches a file of the build context, creates image tags
and writes cache tags to the registry.  Each change is recorded in a :class:`State` *before* it is made and
the state is saved to ``<out>/.bench-state.json`` at once, so a bench that is interrupted (Ctrl-C, a crash,
a killed CI job) is cleaned up by the next one (:meth:`Machine.recover`).
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bakery.atomic import write_file
from bakery.bench.scenarios import BenchError, BenchRequest, Observer, Touch
from bakery.config.model import Config
from bakery.docker import Docker, docker_for
from bakery.errors import BakeryError, RegistryError
from bakery.oci.reference import InvalidReference, parse_reference
from bakery.oci.untag import untag as untag_shared
from bakery.oci.registry import Registry

__all__ = ["STATE_FILE", "Machine", "State", "untag"]

STATE_FILE = ".bench-state.json"
TOUCH_BACKUP = ".bench-touch-backup"


def untag(client: Registry, repository: str, tag: str) -> bool:
    """Remove one of bench's registry tags without touching other tags on its digest; False if it was not there
    (the shared placeholder way of :func:`bakery.oci.untag.untag`: registry 2.8 cannot delete a tag)."""
    if client.head_manifest(repository, tag) is None:
        return False
    untag_shared(client, repository, tag)
    return True


@dataclass
class State:
    """What bench changed and must undo; persisted to ``<out>/.bench-state.json`` while it runs."""

    scope: str
    # [builder, image ref] pairs: images live in the image store of the builder's docker context
    images: list[list[str]] = field(default_factory=list)      # image refs a run may have created
    cache_tags: list[str] = field(default_factory=list)        # registry refs bench may have written
    base_before: list[list[str]] = field(default_factory=list)  # base images present before bench
    base_pulled: list[list[str]] = field(default_factory=list)  # base images bench pulled that were absent
    touch: dict[str, str] | None = None                        # {"path", "kind", "backup"} while applied
    workdir: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> State:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


class Machine:
    """The changes bench makes, each recorded in a :class:`State` first, and their undoing.

    ``request`` is not used here; it is taken so that a machine is made from the same arguments as
    :func:`bakery.bench.run.run_bench`.  ``warnings`` collects what the report should mention (a cleanup
    of an interrupted bench).
    """

    def __init__(self, config: Config, docker: Docker, request: BenchRequest, out_dir: Path,
                 observer: Observer) -> None:
        self.config = config
        self.docker = docker
        self.request = request
        self.out_dir = out_dir
        self.obs = observer
        self.state_path = out_dir / STATE_FILE
        self.registries: dict[str, Registry] = {}
        self.warnings: list[str] = []

    # ----------------------------------------------------------------- adapters
    def docker_of(self, builder: str) -> Docker:
        """The docker adapter addressing one configured builder (its docker context, or ``--builder``)."""
        return docker_for(self.docker, self.config.builders[builder])

    def _registry(self, host: str) -> Registry:
        if host not in self.registries:
            self.registries[host] = Registry.for_host(host)
        return self.registries[host]

    def save(self, state: State) -> None:
        write_file(self.state_path, state.to_json())

    def image_present(self, builder: str, ref: str) -> bool:
        return self.docker_of(builder).image_present(ref)

    def remove_image(self, builder: str, ref: str) -> bool:
        return self.docker_of(builder).remove_image(ref)

    def prune(self, builder: str) -> None:
        self.docker_of(builder).prune_build_cache()

    def pull(self, builder: str, ref: str) -> None:
        self.docker_of(builder).pull(ref)

    def restorable(self, ref: str) -> bool:
        """Whether ``ref`` can be pulled again: its registry answers for it now (no retries, short timeout)."""
        try:
            parsed = parse_reference(ref)
        except InvalidReference:
            return False
        if not parsed.domain:
            return False   # Docker Hub: not checked (and not reachable from CI runners without network)
        client = Registry.for_host(parsed.domain)
        client.retries, client.timeout = 0, 5.0
        try:
            return client.head_manifest(parsed.path, parsed.digest or parsed.tag or "latest") is not None
        except RegistryError:
            return False

    def untag(self, ref: str) -> bool:
        parsed = parse_reference(ref)
        return untag(self._registry(parsed.domain), parsed.path, parsed.tag)

    # ----------------------------------------------------------------- images a run creates
    def expect_image(self, state: State, builder: str, ref: str) -> None:
        """Record an image a build is about to create (before it can exist: an interrupted run removes it)."""
        state.images.append([builder, ref])
        self.save(state)

    def drop_image(self, state: State, builder: str, ref: str) -> None:
        """Remove an image a run created, and forget it once it is gone."""
        if self.image_present(builder, ref):
            self.remove_image(builder, ref)
        if [builder, ref] in state.images and not self.image_present(builder, ref):
            state.images.remove([builder, ref])
            self.save(state)

    def pulled_base(self, state: State, builder: str, ref: str) -> None:
        """Record a base image bench pulled that was not there before (cleanup removes it again)."""
        item = [builder, ref]
        if item not in state.base_before and item not in state.base_pulled:
            state.base_pulled.append(item)
            self.save(state)

    # ----------------------------------------------------------------- touch
    def apply_touch(self, touch: Touch, state: State) -> None:
        backup = self.out_dir / TOUCH_BACKUP
        entry = {"path": str(touch.path), "kind": touch.kind, "backup": ""}
        if touch.kind == "append":
            shutil.copy2(touch.path, backup)
            entry["backup"] = str(backup)
        state.touch = entry
        self.save(state)           # recorded before the change: an interrupted bench restores it
        if touch.kind == "append":
            with open(touch.path, "ab") as fh:
                fh.write(b"\n")
        else:
            touch.path.write_text(f"bakery bench {uuid.uuid4().hex}\n", encoding="utf-8")

    def restore_touch(self, state: State) -> None:
        entry = state.touch
        if not entry:
            return
        path = Path(entry["path"])
        if entry["kind"] == "append":
            backup = Path(entry["backup"])
            if backup.exists():
                shutil.copy2(backup, path)   # bytes and mtime
                backup.unlink()
        else:
            path.unlink(missing_ok=True)
        state.touch = None
        self.save(state)

    # ----------------------------------------------------------------- cleanup
    def cleanup(self, state: State) -> list[str]:
        """Undo everything recorded in ``state``; returns what could not be undone (one line each)."""
        problems: list[str] = []
        try:
            self.restore_touch(state)
        except OSError as exc:
            problems.append(f"could not restore {state.touch and state.touch.get('path')}: {exc}")
        problems += self._remove_images(state)
        problems += self._remove_cache_tags(state)
        problems += self._restore_base_images(state)
        if state.workdir:
            shutil.rmtree(state.workdir, ignore_errors=True)
        if not problems:
            self.state_path.unlink(missing_ok=True)
        else:
            self.save(state)
        return problems

    def _remove_images(self, state: State) -> list[str]:
        problems = []
        for item in list(state.images):
            builder, ref = item
            if self.image_present(builder, ref) and not self.remove_image(builder, ref):
                problems.append(f"could not remove image {ref}")
            else:
                state.images.remove(item)
        return problems

    def _remove_cache_tags(self, state: State) -> list[str]:
        problems = []
        for ref in list(state.cache_tags):
            try:
                self.untag(ref)
                state.cache_tags.remove(ref)
            except (BakeryError, InvalidReference) as exc:
                problems.append(f"could not remove cache tag {ref}: {exc}")
        return problems

    def _restore_base_images(self, state: State) -> list[str]:
        """Pull again the base images that were there before; remove those only bench pulled."""
        problems = []
        for builder, ref in state.base_before:
            if not self.image_present(builder, ref):
                try:
                    self.pull(builder, ref)
                except BakeryError as exc:
                    problems.append(f"could not restore base image {ref}: {exc}")
        for item in state.base_pulled:
            if item not in state.base_before and self.image_present(*item):
                self.remove_image(*item)
        return problems

    def recover(self) -> None:
        """Clean up after a bench that was interrupted before it could (its state file is still there)."""
        if not self.state_path.exists():
            return
        try:
            state = State.from_json(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError) as exc:
            raise BenchError(f"{self.state_path}: unreadable bench state ({exc}); remove it after checking "
                             "that the files it names are as they should be") from None
        self.obs.phase(f"cleaning up after an interrupted bench (scope {state.scope})")
        problems = self.cleanup(state)
        if problems:
            raise BenchError(f"could not clean up after the interrupted bench: {problems[0]}")
        self.warnings.append(f"cleaned up after an interrupted bench (scope {state.scope})")
