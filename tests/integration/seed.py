"""Test and benchmark helpers for registry cleanup: push graph shapes straight through the registry API
(tiny blobs, shared layers), and run a private Debian ``docker-registry`` (optionally with htpasswd auth) on a
free 127.0.0.1 port.

Seeding uses :class:`bakery.oci.registry.Registry` (its auth and retries) plus plain blob uploads through
``Registry.request``; nothing here decides anything for bakery.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bakery.oci.registry import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Registry, digest_of
from tests.conftest import docker_config_dir

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
ATTESTATION_LAYER = "application/vnd.in-toto+json"
ACCEPT = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


@dataclass(frozen=True)
class Pushed:
    digest: str
    media_type: str
    raw: bytes
    platform: dict[str, str] | None = None
    blobs: tuple[str, ...] = ()

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.raw)}
        if self.platform:
            d["platform"] = self.platform
        d.update(extra)
        return d


@dataclass(frozen=True)
class MultiArch:
    index: Pushed
    images: tuple[Pushed, ...]
    attestations: tuple[Pushed, ...]

    @property
    def children(self) -> tuple[Pushed, ...]:
        return self.images + self.attestations


class Seeder:
    """Pushes blobs and manifests into one repository. Thread-safe."""

    def __init__(self, registry: Registry, repo: str) -> None:
        self.registry = registry
        self.repo = repo
        self._blobs: set[str] = set()
        self._uploading: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def blob(self, data: bytes) -> tuple[str, int]:
        """Upload once per digest: registry 2.8 can lose a blob when two uploads of it race (a manifest PUT then
        fails with MANIFEST_BLOB_UNKNOWN), so other threads wait for the one upload in flight."""
        digest = digest_of(data)
        with self._lock:
            if digest in self._blobs:
                return digest, len(data)
            pending = self._uploading.get(digest)
            if pending is None:
                self._uploading[digest] = threading.Event()
        if pending is not None:
            pending.wait()
            return digest, len(data)
        try:
            self._upload(digest, data)
        finally:
            with self._lock:
                self._uploading.pop(digest).set()
        return digest, len(data)

    def _upload(self, digest: str, data: bytes) -> None:
        repo, scope = self.repo, f"repository:{self.repo}:pull,push"
        start = self.registry.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,))
        location = start.headers["Location"]
        if location.startswith("/"):
            location = f"{self.registry.base}{location}"
        sep = "&" if "?" in location else "?"
        self.registry.request("PUT", f"{location}{sep}digest={digest}", scope=scope,
                              headers={"Content-Type": "application/octet-stream"}, data=data, ok=(201,))
        with self._lock:
            self._blobs.add(digest)

    def put(self, raw: bytes, media_type: str, ref: str | None = None) -> str:
        digest = digest_of(raw)
        return self.registry.put_manifest(self.repo, ref or digest, raw, media_type)

    def image(self, arch: str = "amd64", *, created: str | None = "2024-01-01T00:00:00Z",
              labels: dict[str, str] | None = None, layers: Sequence[bytes] = (b"shared-layer",),
              variant: str | None = None, annotations: dict[str, str] | None = None, nonce: str = "",
              tag: str | None = None, media_type: str = OCI_MANIFEST) -> Pushed:
        config: dict[str, Any] = {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                                  "config": {"Labels": labels or {}}}
        if variant:
            config["variant"] = variant
        if created is not None:
            config["created"] = created
        if nonce:
            config["config"]["Env"] = [f"NONCE={nonce}"]
        cfg_digest, cfg_size = self.blob(json.dumps(config, sort_keys=True).encode())
        layer_descs = []
        for layer in layers:
            d, size = self.blob(layer)
            layer_descs.append({"mediaType": LAYER, "digest": d, "size": size})
        manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type,
                                    "config": {"mediaType": CONFIG if media_type == OCI_MANIFEST else
                                               "application/vnd.docker.container.image.v1+json",
                                               "digest": cfg_digest, "size": cfg_size},
                                    "layers": layer_descs}
        if annotations:
            manifest["annotations"] = annotations
        raw = json.dumps(manifest, sort_keys=True).encode()
        self.put(raw, media_type, tag)
        platform = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
        return Pushed(digest_of(raw), media_type, raw, platform,
                      (cfg_digest, *(d["digest"] for d in layer_descs)))

    def attestation(self, subject: Pushed, nonce: str = "", unique_blob: bool = True) -> Pushed:
        """A BuildKit-style (legacy, subject-less) provenance attestation manifest for ``subject``.
        ``unique_blob=False`` shares one statement blob and makes the manifest unique by an annotation
        (faster seeding: no upload)."""
        cfg_digest, cfg_size = self.blob(json.dumps({"architecture": "unknown", "os": "unknown",
                                                     "config": {}, "rootfs": {"type": "layers"}}).encode())
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "subject": [
            {"digest": {"sha256": subject.digest.split(":")[1] if unique_blob else "0" * 64}}],
            "nonce": nonce if unique_blob else ""}).encode()
        layer_digest, layer_size = self.blob(statement)
        manifest: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": cfg_digest, "size": cfg_size},
            "layers": [{"mediaType": ATTESTATION_LAYER, "digest": layer_digest, "size": layer_size,
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]}
        if not unique_blob:
            manifest["annotations"] = {"dev.bakery.test.subject": subject.digest, "dev.bakery.test.nonce": nonce}
        raw = json.dumps(manifest, sort_keys=True).encode()
        self.put(raw, OCI_MANIFEST)
        return Pushed(digest_of(raw), OCI_MANIFEST, raw, {"architecture": "unknown", "os": "unknown"},
                      (cfg_digest, layer_digest))

    def index(self, children: Sequence[Pushed], *, tag: str | None = None,
              attestations: Sequence[tuple[Pushed, Pushed]] = (), annotations: dict[str, str] | None = None,
              media_type: str = OCI_INDEX) -> Pushed:
        manifests = [c.descriptor() for c in children]
        for att, subject in attestations:
            manifests.append(att.descriptor(annotations={"vnd.docker.reference.digest": subject.digest,
                                                         "vnd.docker.reference.type": "attestation-manifest"}))
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests}
        if annotations:
            doc["annotations"] = annotations
        raw = json.dumps(doc, sort_keys=True).encode()
        self.put(raw, media_type, tag)
        return Pushed(digest_of(raw), media_type, raw)

    def tag(self, tag: str, pushed: Pushed) -> None:
        self.registry.put_manifest(self.repo, tag, pushed.raw, pushed.media_type)

    def multiarch(self, tag: str | None, *, created: str = "2024-01-01T00:00:00Z", nonce: str = "",
                  archs: Sequence[str] = ("amd64", "arm64"), attest: bool = True,
                  shared: dict[str, Pushed] | None = None, unique_blobs: bool = True) -> MultiArch:
        """An index like a buildx push: one image per arch (``shared[arch]`` reused when given), each with an
        attestation entry; tagged ``tag`` (or pushed by digest only when ``tag`` is None)."""
        images = []
        for arch in archs:
            if shared and arch in shared:
                images.append(shared[arch])
            else:
                images.append(self.image(arch, created=created, nonce=f"{nonce}-{arch}"))
        atts = [self.attestation(img, nonce=f"{nonce}-{img.digest}", unique_blob=unique_blobs)
                for img in images] if attest else []
        idx = self.index(images, tag=tag, attestations=list(zip(atts, images)))
        return MultiArch(idx, tuple(images), tuple(atts))


# --------------------------------------------------------------------------- direct reads (independent of bakery)
def exists(host: str, repo: str, ref: str, auth: tuple[str, str] | None = None) -> bool:
    resp = requests.head(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, auth=auth,
                         timeout=30)
    if resp.status_code not in (200, 404):
        resp.raise_for_status()
    return resp.status_code == 200


def digest_at(host: str, repo: str, ref: str, auth: tuple[str, str] | None = None) -> str | None:
    resp = requests.head(f"http://{host}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, auth=auth,
                         timeout=30)
    return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None


def tags_of(host: str, repo: str, auth: tuple[str, str] | None = None) -> list[str]:
    resp = requests.get(f"http://{host}/v2/{repo}/tags/list", auth=auth, timeout=30)
    if resp.status_code == 404:
        return []
    resp.raise_for_status()
    return sorted(resp.json().get("tags") or [])


# --------------------------------------------------------------------------- a private registry process
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateRegistry:
    host: str
    root: Path
    process: subprocess.Popen[bytes]
    credentials: tuple[str, str] | None = None

    def docker_config(self, directory: Path) -> Path:
        """Write a docker config.json with ``auths`` for this registry, on the selected stack (its context and
        buildx: :func:`tests.conftest.docker_config_dir`); returns the DOCKER_CONFIG directory."""
        auths = {}
        if self.credentials:
            user, password = self.credentials
            auths[self.host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
        return docker_config_dir(directory, auths=auths)


@contextmanager
def private_registry(htpasswd: tuple[str, str] | None = None, delete: bool = True) -> Iterator[PrivateRegistry]:
    """A throw-away ``docker-registry`` on a free 127.0.0.1 port with deletion enabled (``delete=False``: refused,
    as GHCR and Docker Hub do) (and htpasswd basic auth when ``htpasswd=(user, password)``), stopped and removed
    afterwards."""
    root = Path(tempfile.mkdtemp(prefix="bakery-registry-"))
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1, "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": delete}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if htpasswd:
        user, password = htpasswd
        proc = subprocess.run(["htpasswd", "-Bbn", user, password], capture_output=True, text=True, check=True)
        (root / "htpasswd").write_text(proc.stdout)
        config["auth"] = {"htpasswd": {"realm": "bakery-test", "path": str(root / "htpasswd")}}
    (root / "config.yml").write_text(json.dumps(config))   # JSON is YAML
    log = open(root / "registry.log", "wb")   # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")], stdout=log,
                               stderr=subprocess.STDOUT, env={**os.environ, "OTEL_TRACES_EXPORTER": "none"})
    host = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                code = requests.get(f"http://{host}/v2/", timeout=1).status_code
                if code in (200, 401):
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"docker-registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield PrivateRegistry(host, root, process, htpasswd)
    except BaseException:
        # what the registry itself said, to tell a client bug from a registry one
        lines = (root / "registry.log").read_text(errors="replace").splitlines()
        for line in [ln for ln in lines if "level=error" in ln or '" 40' in ln or '" 50' in ln][-20:]:
            print(f"[registry {host}] {line[:500]}", file=sys.stderr)
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
