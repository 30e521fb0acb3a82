"""An in-memory registry with the interface of :class:`bakery.oci.registry.Registry`, for the pure tests of the
orchestrators' phases. It keeps what registry 2.8 keeps (manifests by digest, tags, blobs per repository) and answers
like it: an unknown manifest or blob is a ``RegistryError`` with status 404, a tag points at a digest, deleting a
digest removes every tag on it (a tag left on a digest that is gone is listed but resolves to nothing), and there is
no tag DELETE unless ``tag_delete_enabled``. Deletion can be switched off (``delete_enabled=False``) to stand in for
registries that refuse DELETE, as GHCR and Docker Hub do. Every call is recorded in ``calls`` for tests that count
requests, and ``before(method, repo, ref)``, when set, is called first: a test injects a concurrent publish there (say,
before a DELETE). ``check_children=True`` refuses an index PUT that names a manifest the repository does not hold, as
registry 2.8 does (400 MANIFEST_BLOB_UNKNOWN)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bakery.errors import RegistryError
from bakery.oci.registry import Manifest, digest_of


@dataclass
class FakeRegistry:
    host: str = "registry.test"
    delete_enabled: bool = True
    tag_delete_enabled: bool = False      # OCI distribution 1.1 tag DELETE; registry 2.8 answers 405
    retries: int = 0
    manifests: dict[str, dict[str, Manifest]] = field(default_factory=dict)   # repo -> digest -> manifest
    tag_map: dict[str, dict[str, str]] = field(default_factory=dict)          # repo -> tag -> digest
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)          # repo -> digest -> bytes
    calls: list[tuple[str, str, str]] = field(default_factory=list)           # (method, repo, ref)
    before: Callable[[str, str, str], None] | None = None                    # hook before each recorded call
    check_children: bool = False

    def _call(self, method: str, repo: str, ref: str) -> None:
        self.calls.append((method, repo, ref))
        if self.before is not None:
            self.before(method, repo, ref)

    @property
    def base(self) -> str:
        return f"https://{self.host}"

    # ------------------------------------------------------------------ seeding helpers for tests
    def add_json(self, repo: str, body: dict[str, Any], tag: str | None = None) -> str:
        raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
        return self.put_manifest(repo, tag or digest_of(raw), raw, str(body.get("mediaType", "")))

    # ------------------------------------------------------------------ the Registry interface
    def _missing(self, what: str) -> RegistryError:
        return RegistryError(f"{self.host}: {what}: 404 not found", status=404)

    def _resolve(self, repo: str, ref: str) -> str | None:
        if ref.startswith("sha256:"):
            return ref if ref in self.manifests.get(repo, {}) else None
        digest = self.tag_map.get(repo, {}).get(ref)
        return digest if digest in self.manifests.get(repo, {}) else None   # a dangling tag resolves to nothing

    def ping(self) -> None:
        self._call("GET", "", "/v2/")

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        self._call("GET", repo, ref)
        digest = self._resolve(repo, ref)
        if digest is None:
            raise self._missing(f"{repo}:{ref}")
        return self.manifests[repo][digest]

    def find_manifest(self, repo: str, ref: str) -> Manifest | None:
        self._call("GET", repo, ref)
        digest = self._resolve(repo, ref)
        return None if digest is None else self.manifests[repo][digest]

    def dangling_revision(self, repo: str, tag: str) -> str | None:
        """As registry 2.8 says it: the digest of a tag listed on a manifest that is gone."""
        self._call("GET", repo, tag)
        digest = self.tag_map.get(repo, {}).get(tag)
        return digest if digest is not None and digest not in self.manifests.get(repo, {}) else None

    def head_manifest(self, repo: str, ref: str) -> str | None:
        self._call("HEAD", repo, ref)
        return self._resolve(repo, ref)

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> str:
        self._call("PUT", repo, ref)
        digest = digest_of(raw)
        if self.check_children:
            body = json.loads(raw)
            absent = [d["digest"] for d in body.get("manifests") or [] if d["digest"] not in self.manifests.get(repo, {})]
            if absent:
                raise RegistryError(f"{self.host}: PUT {repo}:{ref}: 400 MANIFEST_BLOB_UNKNOWN {absent[0]}", status=400)
        self.manifests.setdefault(repo, {})[digest] = Manifest(digest, media_type, raw)
        if not ref.startswith("sha256:"):
            self.tag_map.setdefault(repo, {})[ref] = digest
        return digest

    def delete_manifest(self, repo: str, digest: str) -> bool:
        self._call("DELETE", repo, digest)
        if not self.delete_enabled:
            raise RegistryError(f"{self.host}: DELETE {repo}@{digest}: 405 unsupported", status=405)
        if digest not in self.manifests.get(repo, {}):
            return False
        del self.manifests[repo][digest]
        tags = self.tag_map.get(repo, {})
        for tag in [t for t, d in tags.items() if d == digest]:
            del tags[tag]
        return True

    def delete_tag(self, repo: str, tag: str, ok: tuple[int, ...] = (202, 404)) -> int:
        self._call("DELETE", repo, tag)
        status = (202 if tag in self.tag_map.get(repo, {}) else 404) if self.tag_delete_enabled else 405
        if status not in ok:
            raise RegistryError(f"{self.host}: DELETE {repo}:{tag}: {status}", status=status)
        if status == 202:
            del self.tag_map[repo][tag]
        return status

    def get_blob(self, repo: str, digest: str) -> bytes:
        self._call("GET", repo, digest)
        try:
            return self.blobs[repo][digest]
        except KeyError:
            raise self._missing(f"{repo}@{digest}") from None

    def blob_exists(self, repo: str, digest: str) -> bool:
        return digest in self.blobs.get(repo, {})

    def put_blob(self, repo: str, data: bytes) -> str:
        digest = digest_of(data)
        self.blobs.setdefault(repo, {})[digest] = data
        return digest

    def mount_blob(self, repo: str, digest: str, source: str) -> bool:
        data = self.blobs.get(source, {}).get(digest)
        if data is None:
            return False
        self.blobs.setdefault(repo, {})[digest] = data
        return True

    def tags(self, repo: str, page: int = 1000) -> list[str]:
        self._call("GET", repo, "tags/list")
        return sorted(self.tag_map.get(repo, {}))
