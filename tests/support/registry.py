"""An in-memory registry with the interface of :class:`bakery.oci.registry.Registry`, for the pure tests of the
orchestrators' phases. It keeps what registry 2.8 keeps (manifests by digest, tags, blobs per repository) and answers
like it: an unknown manifest or blob is a ``RegistryError`` with status 404, a tag points at a digest, deleting a
digest removes every tag on it. Deletion can be switched off (``delete_enabled=False``) to stand in for registries
that refuse DELETE, as GHCR and Docker Hub do. Every call is recorded in ``calls`` for tests that count requests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bakery.errors import RegistryError
from bakery.oci.registry import Manifest, digest_of


@dataclass
class FakeRegistry:
    host: str = "registry.test"
    delete_enabled: bool = True
    retries: int = 0
    manifests: dict[str, dict[str, Manifest]] = field(default_factory=dict)   # repo -> digest -> manifest
    tag_map: dict[str, dict[str, str]] = field(default_factory=dict)          # repo -> tag -> digest
    blobs: dict[str, dict[str, bytes]] = field(default_factory=dict)          # repo -> digest -> bytes
    calls: list[tuple[str, str, str]] = field(default_factory=list)           # (method, repo, ref)

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
        return self.tag_map.get(repo, {}).get(ref)

    def ping(self) -> None:
        self.calls.append(("GET", "", "/v2/"))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        self.calls.append(("GET", repo, ref))
        digest = self._resolve(repo, ref)
        if digest is None:
            raise self._missing(f"{repo}:{ref}")
        return self.manifests[repo][digest]

    def head_manifest(self, repo: str, ref: str) -> str | None:
        self.calls.append(("HEAD", repo, ref))
        return self._resolve(repo, ref)

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> str:
        self.calls.append(("PUT", repo, ref))
        digest = digest_of(raw)
        self.manifests.setdefault(repo, {})[digest] = Manifest(digest, media_type, raw)
        if not ref.startswith("sha256:"):
            self.tag_map.setdefault(repo, {})[ref] = digest
        return digest

    def delete_manifest(self, repo: str, digest: str) -> bool:
        self.calls.append(("DELETE", repo, digest))
        if not self.delete_enabled:
            raise RegistryError(f"{self.host}: DELETE {repo}@{digest}: 405 unsupported", status=405)
        if digest not in self.manifests.get(repo, {}):
            return False
        del self.manifests[repo][digest]
        tags = self.tag_map.get(repo, {})
        for tag in [t for t, d in tags.items() if d == digest]:
            del tags[tag]
        return True

    def get_blob(self, repo: str, digest: str) -> bytes:
        self.calls.append(("GET", repo, digest))
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
        self.calls.append(("GET", repo, "tags/list"))
        return sorted(self.tag_map.get(repo, {}))
