"""A small registry (distribution API v2) client over requests: manifests, blobs, tags, auth, retries.

- http for loopback registries (127.0.0.0/8, localhost, ::1) and hosts listed as insecure, https otherwise
  (``ca_bundle`` for a private CA);
- credentials from docker's config.json (``auths``, ``credsStore``, ``credHelpers``), basic or bearer-token auth
  following the ``WWW-Authenticate`` challenge; secrets are never printed;
- manifests are always requested with every manifest media type in ``Accept`` (a narrow Accept makes registry 2.8
  answer with a converted or child manifest) and the digest is verified against the bytes;
- 429, 5xx and timeouts are retried with backoff, honouring ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bakery.oci.reference import split_domain
from bakery.errors import RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(MANIFEST_TYPES)
RETRY_STATUS = (429, 500, 502, 503, 504)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verified_digest(repo: str, ref: str, resp: requests.Response) -> str:
    """The digest of a manifest answer's bytes, checked against the digest asked for and the one the registry
    names in ``Docker-Content-Digest``."""
    digest = digest_of(resp.content)
    if ref.startswith("sha256:") and digest != ref:
        raise RegistryError(f"{repo}@{ref}: the registry returned bytes whose digest is {digest}")
    header = resp.headers.get("Docker-Content-Digest")
    if header and header != digest:
        raise RegistryError(f"{repo}:{ref}: Docker-Content-Digest {header} does not match the bytes ({digest})")
    return digest


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw)
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def docker_credentials(host: str, config_dir: Path | None = None) -> tuple[str, str] | None:
    """(username, secret) for a registry host from docker's config.json, or None."""
    cfg_dir = config_dir or Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))
    try:
        cfg = json.loads((cfg_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    helper = (cfg.get("credHelpers") or {}).get(host) or cfg.get("credsStore")
    if helper:
        try:
            proc = subprocess.run([f"docker-credential-{helper}", "get"], input=host, capture_output=True,
                                  text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            proc = None
        if proc is not None and proc.returncode == 0:
            data = json.loads(proc.stdout)
            return data.get("Username", ""), data.get("Secret", "")
    for key, entry in (cfg.get("auths") or {}).items():
        if re.sub(r"^https?://", "", key).rstrip("/").removesuffix("/v1") == host:
            if entry.get("auth"):
                user, _, secret = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, secret
            if entry.get("username"):
                return entry["username"], entry.get("password", "")
    return None


@dataclass
class Registry:
    """One registry host. Thread-safe for concurrent requests (requests.Session with a pool)."""

    host: str
    insecure: bool = False
    ca_bundle: str | None = None
    credentials: tuple[str, str] | None = None
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)
    _tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def for_host(cls, host: str, insecure: Sequence[str] = (), ca_bundle: str | None = None) -> Registry:
        return cls(host, insecure=is_loopback(host) or host in insecure, ca_bundle=ca_bundle,
                   credentials=docker_credentials(host))

    @property
    def base(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}"

    # ------------------------------------------------------------------ transport
    def request(self, method: str, path: str, *, scope: str = "", headers: Mapping[str, str] | None = None,
                data: bytes | None = None, ok: Sequence[int] = (200,)) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base}{path}"
        hdrs = dict(headers or {})
        authenticated = False
        for attempt in range(self.retries + 1):
            if scope in self._tokens:
                hdrs["Authorization"] = self._tokens[scope]
            try:
                resp = self.session.request(method, url, headers=hdrs, data=data, timeout=self.timeout,
                                            verify=self.ca_bundle or True, allow_redirects=True)
            except requests.ConnectionError as exc:
                if attempt == self.retries:
                    raise RegistryError(f"{method} {url}: cannot connect ({type(exc).__name__}); "
                                        f"is the registry at {self.host} running?") from None
                self.sleep(self.backoff * 2 ** attempt)
                continue
            except requests.Timeout:
                if attempt == self.retries:
                    raise RegistryError(f"{method} {url}: timed out after {self.timeout}s") from None
                self.sleep(self.backoff * 2 ** attempt)
                continue
            if resp.status_code == 401 and not authenticated:
                authenticated = True   # one challenge per request; a second 401 means the credentials are wrong
                if self._authenticate(resp, scope):
                    continue
            if resp.status_code in RETRY_STATUS and attempt < self.retries:
                self.sleep(self._retry_after(resp, attempt))
                continue
            if resp.status_code not in ok:
                raise RegistryError(self._describe(method, url, resp), status=resp.status_code)
            return resp
        raise RegistryError(f"{method} {url}: gave up after {self.retries + 1} attempts")

    def _retry_after(self, resp: requests.Response, attempt: int) -> float:
        value = resp.headers.get("Retry-After", "")
        if value.isdigit():
            return min(float(value), 60.0)
        return float(self.backoff * 2 ** attempt)

    @staticmethod
    def _describe(method: str, url: str, resp: requests.Response) -> str:
        detail = ""
        try:
            errs = resp.json().get("errors") or []
            if errs:
                detail = f": {errs[0].get('code', '')} {errs[0].get('message', '')}".rstrip()
        except ValueError:
            pass
        return f"{method} {url} answered {resp.status_code}{detail}"

    def _authenticate(self, resp: requests.Response, scope: str) -> bool:
        challenge = resp.headers.get("WWW-Authenticate", "")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if not self.credentials:
                raise RegistryError(f"{self.host} needs a login (docker login {self.host})")
            user, secret = self.credentials
            self._tokens[scope] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            return True
        if scheme.lower() == "bearer":
            fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
            query = {"service": fields.get("service", "")}
            if scope or fields.get("scope"):
                query["scope"] = scope or fields["scope"]
            auth = self.credentials
            try:
                tok = self.session.get(fields["realm"], params=query, auth=auth, timeout=self.timeout,
                                       verify=self.ca_bundle or True)
            except (KeyError, requests.RequestException) as exc:
                raise RegistryError(f"{self.host}: token request failed ({type(exc).__name__})") from None
            if tok.status_code != 200:
                raise RegistryError(f"{self.host}: token service answered {tok.status_code} "
                                    f"for scope {query.get('scope')}", status=tok.status_code)
            body = tok.json()
            token = body.get("token") or body.get("access_token")
            if not token:
                raise RegistryError(f"{self.host}: token service returned no token")
            self._tokens[scope] = f"Bearer {token}"
            return True
        return False

    # ------------------------------------------------------------------ API
    def ping(self) -> None:
        self.request("GET", "/v2/", ok=(200,))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT})
        raw = resp.content
        digest = verified_digest(repo, ref, resp)
        media = resp.headers.get("Content-Type", "").split(";")[0] or json.loads(raw).get("mediaType", "")
        return Manifest(digest, media, raw)

    def head_manifest(self, repo: str, ref: str) -> str | None:
        resp = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", scope=f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT}, ok=(200, 404))
        return None if resp.status_code == 404 else resp.headers.get("Docker-Content-Digest")

    def put_manifest(self, repo: str, ref: str, raw: bytes, media_type: str) -> str:
        resp = self.request("PUT", f"/v2/{repo}/manifests/{ref}", scope=f"repository:{repo}:pull,push",
                            headers={"Content-Type": media_type}, data=raw, ok=(201,))
        digest = digest_of(raw)
        header = resp.headers.get("Docker-Content-Digest")
        if header and header != digest:
            raise RegistryError(f"PUT {repo}:{ref}: registry stored {header}, expected {digest}")
        return digest

    def delete_manifest(self, repo: str, digest: str) -> bool:
        """DELETE by digest; False when it was already gone (404)."""
        resp = self.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=f"repository:{repo}:delete",
                            ok=(202, 404))
        return resp.status_code == 202

    def get_blob(self, repo: str, digest: str) -> bytes:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        if digest_of(resp.content) != digest:
            raise RegistryError(f"{repo}@{digest}: blob bytes do not match their digest")
        return resp.content

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull", ok=(200, 404))
        return resp.status_code == 200

    def put_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` in one go (POST, then one PUT with the digest); its digest."""
        digest = digest_of(data)
        scope = f"repository:{repo}:pull,push"
        start = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,))
        location = start.headers.get("Location", "")
        if not location:
            raise RegistryError(f"{self.host}/{repo}: blob upload answered without a Location")
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={digest}", scope=scope, data=data,
                     headers={"Content-Type": "application/octet-stream"}, ok=(201,))
        return digest

    def mount_blob(self, repo: str, digest: str, source: str) -> bool:
        """Cross-repository mount of ``source@digest`` into ``repo``; False when the registry did not mount it
        (the upload it opened instead is cancelled)."""
        scope = f"repository:{repo}:pull,push"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}", scope=scope,
                            ok=(201, 202))
        if resp.status_code == 201:
            return True
        location = resp.headers.get("Location", "")
        if location:
            try:
                self.request("DELETE", location, scope=scope, ok=(204, 404))
            except RegistryError:
                pass
        return False

    def tags(self, repo: str, page: int = 1000) -> list[str]:
        """All tags, following ``Link`` pagination; tolerates ``"tags": null`` and unsorted answers."""
        out: list[str] = []
        url: str | None = f"/v2/{repo}/tags/list?n={page}"
        while url:
            resp = self.request("GET", url, scope=f"repository:{repo}:pull", ok=(200, 404))
            if resp.status_code == 404:
                return []
            out.extend(resp.json().get("tags") or [])
            link = resp.headers.get("Link", "")
            m = re.match(r'<([^>]+)>;\s*rel="next"', link)
            url = m.group(1) if m else None
        return sorted(set(out))


def registry_for(registry: str) -> tuple[Registry, str]:
    """The registry client and the repository prefix for a ``registry`` setting."""
    domain, path = split_domain(registry)
    client = Registry.for_host(domain or "registry-1.docker.io")
    if not domain and "/" not in path:
        path = f"library/{path}" if path else path
    return client, path
