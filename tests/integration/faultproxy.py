"""A small fault-injecting HTTP proxy on 127.0.0.1 for registry tests.

It forwards every request to an upstream registry (keeping the client's ``Host`` header, so upload
``Location`` URLs point back through the proxy) and, on a configurable subset of requests, answers instead:

- ``429`` with ``Retry-After``;
- ``500``;
- ``timeout``: holds the connection open for ``hold`` seconds, then closes it without answering;
- ``reset``: closes the connection at once without answering.

With ``after_forward=True`` the request is forwarded first and the fault replaces the upstream's answer (the
registry did the work, the client does not know: e.g. a DELETE that succeeded but looks failed).

Usage::

    with FaultProxy("127.0.0.1:5000", [Fault("500", method="DELETE", every=3)]) as proxy:
        Registry(proxy.host, insecure=True, ...)
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}


@dataclass
class Fault:
    kind: str                      # "429" | "500" | "timeout" | "reset" | "blob-unknown" (400 MANIFEST_BLOB_UNKNOWN)
    method: str = ".*"             # regex, full match on the HTTP method
    path: str = ".*"               # regex, search in the request path
    every: int = 1                 # inject on every n-th matching request (1: all of them)
    after: int = 0                 # let the first `after` matching requests through untouched
    limit: int | None = None       # at most this many injections
    after_forward: bool = False    # forward first, then answer with the fault
    retry_after: str = "1"         # for 429
    hold: float = 2.0              # for "timeout": seconds to hold before closing
    seen: int = 0
    injected: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("429", "500", "timeout", "reset", "blob-unknown"):
            raise ValueError(f"unknown fault kind {self.kind!r}")

    def hit(self, method: str, path: str) -> bool:
        if not re.fullmatch(self.method, method) or not re.search(self.path, path):
            return False
        self.seen += 1
        if self.seen <= self.after or (self.limit is not None and self.injected >= self.limit):
            return False
        if (self.seen - self.after) % self.every:
            return False
        self.injected += 1
        return True


class FaultProxy:
    def __init__(self, upstream: str, faults: list[Fault] | None = None) -> None:
        self.upstream = upstream
        self.faults = list(faults or [])
        self.lock = threading.Lock()
        self.requests = 0
        self.injected: Counter[str] = Counter()
        self.log: list[tuple[str, str, str]] = []     # (method, path, what happened)
        self.enabled = True
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:   # quiet
                return

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._pick(self.command, self.path)
                if fault is not None and not fault.after_forward:
                    self._fail(fault)
                    return
                try:
                    status, headers, data = proxy._forward(self.command, self.path, dict(self.headers.items()), body)
                except OSError as exc:
                    proxy._record(self.command, self.path, f"upstream error {exc}")
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if fault is not None:
                    self._fail(fault)
                    return
                proxy._record(self.command, self.path, str(status))
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)) if self.command != "HEAD" else
                                 next((v for k, v in headers if k.lower() == "content-length"), "0"))
                self.end_headers()
                if self.command != "HEAD" and data:
                    self.wfile.write(data)

            def _fail(self, fault: Fault) -> None:
                proxy._record(self.command, self.path, f"injected {fault.kind}")
                if fault.kind == "reset":
                    self.close_connection = True
                    return
                if fault.kind == "timeout":
                    time.sleep(fault.hold)
                    self.close_connection = True
                    return
                payload = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}' if fault.kind == "429" \
                    else b'{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry"}]}' \
                    if fault.kind == "blob-unknown" else b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}'
                self.send_response(400 if fault.kind == "blob-unknown" else int(fault.kind))
                if fault.kind == "429":
                    self.send_header("Retry-After", fault.retry_after)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="faultproxy", daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def _pick(self, method: str, path: str) -> Fault | None:
        with self.lock:
            self.requests += 1
            if not self.enabled:
                return None
            for fault in self.faults:
                if fault.hit(method, path):
                    self.injected[fault.kind] += 1
                    return fault
        return None

    def _record(self, method: str, path: str, what: str) -> None:
        with self.lock:
            self.log.append((method, path, what))

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP}
            if body or method in ("PUT", "POST", "PATCH"):
                out["Content-Length"] = str(len(body))
            conn.request(method, path, body=body or None, headers=out)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.getheaders(), data
        finally:
            conn.close()

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
