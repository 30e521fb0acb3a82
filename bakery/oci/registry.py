"""A small registry (distribution API v2) client over requests: manifests, blobs, tags, auth, retries.

- http for loopback registries (127.0.0.0/8, localhost, ::1) and hosts listed as insecure, https otherwise
  (``ca_bundle`` for a private CA);
- credentials from docker's config.json (``auths``, ``credsStore``, ``credHelpers``), basic or bearer-token auth
  following the ``WWW-Authenticate`` challenge; secrets are never printed;
- manifests are always requested with every manifest media type in ``Accept`` (a narrow Accept makes registry 2.8
  answer with a converted or child manifest) and the digest is verified against the bytes;
- 429, 5xx and timeouts are retried with backoff, honouring ``Retry-After``;
- credentials go only to the registry's own origin (scheme, host, port) and to the token realm its own challenge
  names: a redirect or ``Link`` elsewhere is followed without them (a ``Link`` to another origin is refused);
- everything is bounded: one deadline per request (redirects and the whole body included, however slowly a server
  drips), body limits as distribution's own (4 MiB for a manifest or a tag list page), at most 5 redirects, tag
  pagination that loops is an error; every malformed answer is one line naming the URL.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import time
import threading
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from bakery.oci.credentials import DOCKER_HUB, docker_credentials
from bakery.oci.reference import DIGEST_RE, split_domain
from bakery.errors import RegistryError
from bakery.oci.media import (ACCEPT as ACCEPT, ALL_MANIFEST_TYPES as ALL_MANIFEST_TYPES, DOCKER_LIST as DOCKER_LIST,
                              DOCKER_MANIFEST as DOCKER_MANIFEST, INDEX_TYPES as INDEX_TYPES,
                              MANIFEST_TYPES as MANIFEST_TYPES, OCI_INDEX as OCI_INDEX, OCI_MANIFEST as OCI_MANIFEST)

RETRY_STATUS = (429, 500, 502, 503, 504)
MANIFEST_LIMIT = 4 << 20      # distribution refuses manifests over 4 MiB; a tag list page is held to the same
BLOB_LIMIT = 64 << 20         # the blobs bakery reads are image configs and small artifacts, never layers
MAX_REDIRECTS = 5
MAX_PAGES = 10_000
REDIRECTS = (301, 302, 303, 307, 308)
# Docker Hub: one registry under three names; credentials are stored under the index's (as docker does)
DOCKER_HUB_API = "registry-1.docker.io"


def parse_json(raw: bytes, what: str) -> Any:
    """JSON from a registry answer, or a one-line RegistryError naming what it was (never a traceback: not JSON,
    or nested deeper than Python's parser goes)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise RegistryError(f"{what}: the answer is not a JSON document ({len(raw)} bytes)") from None


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, default ports filled in: what credentials are bound to."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port or (443 if parts.scheme == "https" else 80)


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
        data = parse_json(self.raw, f"manifest {self.digest}")
        if not isinstance(data, dict):
            raise RegistryError(f"manifest {self.digest}: the answer is not a JSON object")
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def body(self) -> dict[str, Any]:
        """The JSON document, or ``{}`` when the bytes are not a JSON object (for readers that must not fail)."""
        try:
            data = json.loads(self.raw)
        except (ValueError, RecursionError):
            return {}
        return data if isinstance(data, dict) else {}

    @property
    def annotations(self) -> dict[str, str]:
        value = self.body.get("annotations")
        return value if isinstance(value, dict) else {}


T = TypeVar("T")


def within(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` in a daemon thread, given up on (TimeoutError) after ``seconds``, however slowly a
    server answers: a thread left waiting on a dripping socket never keeps the program from exiting."""
    box: list[Any] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append((True, fn(*args, **kwargs)))
        except BaseException as exc:       # handed to the caller's thread
            box.append((False, exc))
        finally:
            done.set()
    threading.Thread(target=run, daemon=True, name="registry-request").start()
    if not done.wait(seconds):
        raise TimeoutError(seconds)
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


class _Transient(Exception):
    """A failure worth another attempt (no connection, a timeout, the deadline): its text is the final message."""


@dataclass
class Registry:
    """One registry host. Thread-safe for concurrent requests (requests.Session with a pool)."""

    host: str
    insecure: bool = False
    ca_bundle: str | None = None
    credentials: tuple[str, str] | None = None
    retries: int = 4
    backoff: float = 0.5
    timeout: float = 30.0          # connect, and each read
    deadline: float = 120.0        # one whole request: redirects, headers and body
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)
    _tokens: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    @classmethod
    def for_host(cls, host: str, insecure: Sequence[str] = (), ca_bundle: str | None = None) -> Registry:
        host = DOCKER_HUB_API if host in DOCKER_HUB else host
        return cls(host, insecure=is_loopback(host) or host in insecure, ca_bundle=ca_bundle,
                   credentials=docker_credentials(host))

    @property
    def base(self) -> str:
        return f"{'http' if self.insecure else 'https'}://{self.host}"

    @property
    def api_url(self) -> str:
        """The URL of the registry API's root (``/v2/``), as reports name the registry."""
        return f"{self.base}/v2/"

    # ------------------------------------------------------------------ transport
    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base}{path}"

    def request(self, method: str, path: str, *, scope: str = "", headers: Mapping[str, str] | None = None,
                data: bytes | None = None, ok: Sequence[int] = (200,), limit: int = BLOB_LIMIT) -> requests.Response:
        """One API call: auth on the registry's own challenge (not counted as an attempt), retries with backoff
        on connection errors, timeouts, 429 and 5xx, and a RegistryError naming the URL for anything else."""
        url = self.url(path)
        hdrs = dict(headers or {})
        challenged = False
        attempt = 0
        while True:
            if scope in self._tokens:
                hdrs["Authorization"] = self._tokens[scope]
            try:
                resp, final = self._exchange(method, url, hdrs, data, limit)
            except _Transient as exc:
                if attempt >= self.retries:
                    raise RegistryError(str(exc)) from None
                self.sleep(self.backoff * 2 ** attempt)
                attempt += 1
                continue
            if resp.status_code == 401 and not challenged and origin(final) == origin(self.base):
                challenged = True   # one challenge per request; a second 401 means the credentials are wrong
                if self._authenticate(resp, scope):
                    continue
            if resp.status_code in RETRY_STATUS and attempt < self.retries:
                self.sleep(self._retry_after(resp, attempt))
                attempt += 1
                continue
            if resp.status_code not in ok:
                code, detail = self._first_error(resp)
                raise RegistryError(f"{method} {final} answered {resp.status_code}{detail}", status=resp.status_code,
                                    code=code)
            return resp

    def _exchange(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
                  limit: int) -> tuple[requests.Response, str]:
        """Send, follow redirects (credentials only to this registry's origin) and read the whole body, all
        within ``deadline``; returns the answer and the URL that gave it."""
        try:
            return within(self.deadline, self._send, method, url, headers, data, limit)
        except TimeoutError:
            raise _Transient(f"{method} {url}: no complete answer within {self.deadline:g}s") from None

    def _send(self, method: str, url: str, headers: Mapping[str, str], data: bytes | None,
              limit: int) -> tuple[requests.Response, str]:
        own = origin(self.base)
        for _ in range(MAX_REDIRECTS + 1):
            hdrs = {k: v for k, v in headers.items() if origin(url) == own or k.lower() != "authorization"}
            try:
                resp = self.session.request(method, url, headers=hdrs, data=data, timeout=self.timeout, stream=True,
                                            verify=self.ca_bundle or True, allow_redirects=False)
            except requests.Timeout:
                raise _Transient(f"{method} {url}: timed out after {self.timeout:g}s") from None
            except requests.ConnectionError as exc:
                raise _Transient(f"{method} {url}: cannot connect ({type(exc).__name__}); "
                                 f"is the registry at {self.host} running?") from None
            except requests.RequestException as exc:
                raise RegistryError(f"{method} {url}: {type(exc).__name__}") from None
            if resp.status_code in REDIRECTS and resp.headers.get("Location"):
                resp.close()
                url = urllib.parse.urljoin(url, resp.headers["Location"])
                if resp.status_code == 303:
                    method, data = "GET", None
                continue
            resp._content = self._read(resp, method, url, limit)
            return resp, url
        raise RegistryError(f"{method} {url}: more than {MAX_REDIRECTS} redirects")

    def _read(self, resp: requests.Response, method: str, url: str, limit: int) -> bytes:
        if method == "HEAD":
            resp.close()
            return b""
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            resp.close()
            raise RegistryError(f"{method} {url}: the answer is {int(declared)} bytes, over the {limit} allowed")
        body = bytearray()
        try:
            for chunk in resp.iter_content(64 << 10):
                body += chunk
                if len(body) > limit:
                    raise RegistryError(f"{method} {url}: the answer is over the {limit} bytes allowed")
        except requests.RequestException as exc:
            raise _Transient(f"{method} {url}: the answer broke off ({type(exc).__name__})") from None
        finally:
            resp.close()
        return bytes(body)

    def _retry_after(self, resp: requests.Response, attempt: int) -> float:
        value = resp.headers.get("Retry-After", "")
        if value.isdigit():
            return min(float(value), 60.0)
        return float(self.backoff * 2 ** attempt)

    @staticmethod
    def _first_error(resp: requests.Response) -> tuple[str, str]:
        """(code, ": CODE message") of the first entry of an error body; ("", "") when it has none."""
        try:
            errs = json.loads(resp.content).get("errors") or []
            if errs:
                code = str(errs[0].get("code", ""))[:100]
                return code, f": {code} {errs[0].get('message', '')}".rstrip()[:300]
        except (ValueError, RecursionError, AttributeError, TypeError, IndexError):
            pass
        return "", ""

    def _authenticate(self, resp: requests.Response, scope: str) -> bool:
        challenge = resp.headers.get("WWW-Authenticate", "")
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if not self.credentials:
                raise RegistryError(f"{self.host} needs a login (docker login {self.host})", status=401)
            user, secret = self.credentials
            self._tokens[scope] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
            return True
        if scheme.lower() == "bearer":
            fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
            query = {"service": fields.get("service", "")}
            if scope or fields.get("scope"):
                query["scope"] = scope or fields["scope"]
            if not fields.get("realm", "").startswith(("https://", "http://")):
                raise RegistryError(f"{self.host}: its Bearer challenge names no token service")
            try:
                tok = within(self.deadline, self.session.get, fields["realm"], params=query, auth=self.credentials,
                             timeout=self.timeout, verify=self.ca_bundle or True, allow_redirects=False)
            except TimeoutError:
                raise RegistryError(f"{self.host}: the token service did not answer within {self.deadline:g}s") \
                    from None
            except requests.RequestException as exc:
                raise RegistryError(f"{self.host}: token request failed ({type(exc).__name__})") from None
            if tok.status_code != 200:
                raise RegistryError(f"{self.host}: token service answered {tok.status_code} "
                                    f"for scope {query.get('scope')}", status=tok.status_code)
            body = parse_json(tok.content[:MANIFEST_LIMIT + 1], f"{self.host}: token service")
            token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
            if not isinstance(token, str) or not token:
                raise RegistryError(f"{self.host}: token service returned no token")
            self._tokens[scope] = f"Bearer {token}"
            return True
        return False

    # ------------------------------------------------------------------ API
    def ping(self) -> None:
        self.request("GET", "/v2/", ok=(200,))

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT}, limit=MANIFEST_LIMIT)
        raw = resp.content
        digest = verified_digest(repo, ref, resp)
        media = resp.headers.get("Content-Type", "").split(";")[0]
        if not media:
            body = parse_json(raw, f"{self.host}/{repo}:{ref}")
            media = str(body.get("mediaType", "")) if isinstance(body, dict) else ""
        return Manifest(digest, media, raw)

    def find_manifest(self, repo: str, ref: str) -> Manifest | None:
        """GET a manifest like :meth:`get_manifest`, but None when it does not exist (404) and a document served
        as plain JSON (or without a type) takes the ``mediaType`` it declares; never fails on a body that is not
        JSON (clean's reader must walk whatever a registry holds)."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{ref}", scope=f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT}, ok=(200, 404), limit=MANIFEST_LIMIT)
        if resp.status_code == 404:
            return None
        found = Manifest(verified_digest(repo, ref, resp), resp.headers.get("Content-Type", "").split(";")[0].strip(),
                         resp.content)
        if found.media_type in ("", "application/json", "text/plain"):
            declared = found.body.get("mediaType")
            found = Manifest(found.digest, declared if isinstance(declared, str) else found.media_type, found.raw)
        return found

    def dangling_revision(self, repo: str, tag: str) -> str | None:
        """The digest a tag that resolves to nothing still points at, when the registry says (distribution 2.8
        answers the GET of such a tag 404 MANIFEST_UNKNOWN with ``detail.Revision``); None when the tag resolves,
        or the registry does not say."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{tag}", scope=f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT}, ok=(200, 404), limit=MANIFEST_LIMIT)
        if resp.status_code != 404:
            return None
        try:
            errors = json.loads(resp.content).get("errors") or []
            revision = errors[0]["detail"]["Revision"]
        except (ValueError, AttributeError, LookupError, TypeError):
            return None
        return revision if isinstance(revision, str) and DIGEST_RE.match(revision) else None

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

    def delete_tag(self, repo: str, tag: str, ok: Sequence[int] = (202, 404)) -> int:
        """``DELETE /manifests/<tag>`` (OCI distribution 1.1); the status. Registry 2.8 answers 400/405 (no tag
        DELETE), and some registries delete the manifest (every tag on it): probe before relying on it."""
        return self.request("DELETE", f"/v2/{repo}/manifests/{tag}", scope=f"repository:{repo}:delete",
                            ok=ok).status_code

    def get_blob(self, repo: str, digest: str) -> bytes:
        resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")
        if digest_of(resp.content) != digest:
            raise RegistryError(f"{repo}@{digest}: blob bytes do not match their digest")
        return resp.content

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull", ok=(200, 404))
        return resp.status_code == 200

    def push_refused(self, repo: str) -> str | None:
        """Whether this client may push to ``repo``: starts a blob upload and cancels it (nothing is written).
        None when it may; else the answer that refused (``POST ... answered 401``)."""
        try:
            resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=f"repository:{repo}:pull,push",
                                ok=(202, 401, 403, 404, 405))
        except RegistryError as exc:
            if exc.status in (401, 403):                 # no login, or the token service refused push
                return str(exc)
            raise
        if resp.status_code != 202:
            return f"POST {self.base}/v2/{repo}/blobs/uploads/ answered {resp.status_code}"
        location = resp.headers.get("Location", "")
        if location:
            self.request("DELETE", location, scope=f"repository:{repo}:pull,push", ok=(204, 404, 405))
        return None

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
        """All tags, following ``Link`` pagination (same origin only, never back to a page already read);
        tolerates ``"tags": null`` and unsorted answers."""
        out: list[str] = []
        url: str | None = self.url(f"/v2/{repo}/tags/list?n={page}")
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= MAX_PAGES:
                raise RegistryError(f"GET {url}: the tag list's Link pagination loops (a page asked for twice)")
            if origin(url) != origin(self.base):
                raise RegistryError(f"GET {url}: the tag list's Link points to another origin; not followed")
            seen.add(url)
            resp = self.request("GET", url, scope=f"repository:{repo}:pull", ok=(200, 404), limit=MANIFEST_LIMIT)
            if resp.status_code == 404:
                return []
            body = parse_json(resp.content, f"GET {url}")
            tags = body.get("tags") if isinstance(body, dict) else None
            if not isinstance(tags, (list, type(None))) or not all(isinstance(t, str) for t in tags or ()):
                raise RegistryError(f"GET {url}: the answer has no list of tag names")
            out.extend(tags or [])
            link = resp.headers.get("Link", "")
            m = re.match(r'<([^>]+)>;\s*rel="next"', link)
            url = urllib.parse.urljoin(url, m.group(1)) if m else None
        return sorted(set(out))


def registry_for(registry: str) -> tuple[Registry, str]:
    """The registry client and the repository prefix for a ``registry`` setting."""
    domain, path = split_domain(registry)
    client = Registry.for_host(domain or "registry-1.docker.io")
    if not domain and "/" not in path:
        path = f"library/{path}" if path else path
    return client, path
