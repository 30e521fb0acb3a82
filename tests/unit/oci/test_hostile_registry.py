"""The registry client against hostile or broken registries: small HTTP servers on 127.0.0.1 that answer what
no real registry should. Each test ends within its deadline with one RegistryError line, and credentials never
reach another origin."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bakery.errors import RegistryError
from bakery.oci.registry import Registry

Handler = Callable[[BaseHTTPRequestHandler], None]
SECRET = ("robot", "s3cret")
BASIC = "Basic " + base64.b64encode(b"robot:s3cret").decode()


class Server:
    """One loopback HTTP server; ``seen`` records (path, Authorization header) of every request."""

    def __init__(self, handle: Handler) -> None:
        self.seen: list[tuple[str, str]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.seen.append((self.path, self.headers.get("Authorization", "")))
                handle(self)

            do_HEAD = do_GET

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def start(handle: Handler) -> Server:
        servers.append(Server(handle))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


def answer(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", **headers: str) -> None:
    h.send_response(status)
    headers.setdefault("Content_Length", str(len(body)))
    for k, v in headers.items():
        h.send_header(k.replace("_", "-"), v)
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)


def basic_auth(inner: Handler) -> Handler:
    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("Authorization") != BASIC:
            answer(h, 401, WWW_Authenticate='Basic realm="test"')
        else:
            inner(h)
    return handle


def client(server: Server, **kw: object) -> Registry:
    return Registry(server.host, insecure=True, credentials=SECRET, retries=0, **kw)  # type: ignore[arg-type]


def test_a_link_to_another_origin_is_refused_and_gets_no_credentials(serve) -> None:
    other = serve(lambda h: answer(h, 200, b'{"tags": ["stolen"]}'))
    reg = serve(basic_auth(lambda h: answer(h, 200, b'{"tags": ["a"]}',
                                            Link=f'<http://{other.host}/v2/r/tags/list?last=a>; rel="next"')))
    with pytest.raises(RegistryError, match="Link points to another origin; not followed"):
        client(reg).tags("r")
    assert other.seen == []


def test_a_redirect_to_another_host_gets_no_credentials_nor_does_its_token_realm(serve) -> None:
    third = serve(lambda h: answer(h, 200, b'{"token": "t"}'))
    second = serve(lambda h: answer(h, 401, WWW_Authenticate=f'Bearer realm="http://{third.host}/token",service="x"'))
    reg = serve(basic_auth(lambda h: answer(h, 307, Location=f"http://{second.host}{h.path}")))
    with pytest.raises(RegistryError, match="answered 401"):
        client(reg).get_blob("r", "sha256:" + "0" * 64)
    assert [auth for _, auth in second.seen] == [""]
    assert third.seen == []
    assert all(auth in ("", BASIC) for _, auth in reg.seen)


def test_a_link_that_points_back_to_itself_ends_at_once(serve) -> None:
    reg = serve(lambda h: answer(h, 200, b'{"tags": ["a"]}', Link='</v2/r/tags/list?n=1000>; rel="next"'))
    start = time.monotonic()
    with pytest.raises(RegistryError, match="pagination loops"):
        client(reg).tags("r")
    assert time.monotonic() - start < 5 and len(reg.seen) == 1


def test_a_server_that_drips_its_answer_is_given_up_on_at_the_deadline(serve) -> None:
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        for _ in range(1000):
            try:
                h.wfile.write(b" ")
                h.wfile.flush()
            except OSError:
                return
            time.sleep(0.2)
    reg = serve(drip)
    start = time.monotonic()
    with pytest.raises(RegistryError, match=r"no complete answer within 2s"):
        client(reg, deadline=2.0, timeout=1.0).tags("r")
    assert time.monotonic() - start < 4


def test_a_huge_declared_body_is_refused_before_it_is_read(serve) -> None:
    reg = serve(lambda h: answer(h, 200, b"", Content_Length=str(512 << 20)))
    with pytest.raises(RegistryError, match=r"the answer is 536870912 bytes, over the 4194304 allowed"):
        client(reg).get_manifest("r", "latest")


def test_a_huge_undeclared_body_is_cut_at_the_limit(serve) -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        h.end_headers()
        try:
            for _ in range(100_000):
                h.wfile.write(b"x" * 65536)
        except OSError:
            pass
        h.close_connection = True
    reg = serve(endless)
    with pytest.raises(RegistryError, match="over the 4194304 bytes allowed"):
        client(reg).get_manifest("r", "latest")


@pytest.mark.parametrize("body", [b"<html>not json</html>", b"[" * 100_000 + b"]" * 100_000, b'{"tags": "a,b"}',
                                  b'{"tags": [1, 2]}'])
def test_a_tag_list_that_is_not_a_list_of_names_is_one_line(serve, body: bytes) -> None:
    reg = serve(lambda h: answer(h, 200, body))
    with pytest.raises(RegistryError) as err:
        client(reg).tags("r")
    assert "\n" not in str(err.value) and f"{reg.host}/v2/r/tags/list" in str(err.value)


def test_a_manifest_that_is_not_json_is_one_line(serve) -> None:
    reg = serve(lambda h: answer(h, 200, b"\xff\xfe garbage"))
    with pytest.raises(RegistryError, match="is not a JSON document"):
        client(reg).get_manifest("r", "latest").json


def test_a_redirect_loop_ends_with_one_line(serve) -> None:
    reg = serve(lambda h: answer(h, 302, Location=h.path))
    with pytest.raises(RegistryError, match="more than 5 redirects"):
        client(reg).get_manifest("r", "latest")


def test_a_login_challenge_is_not_counted_as_an_attempt(serve) -> None:
    reg = serve(basic_auth(lambda h: answer(h, 200, b"{}")))
    client(reg).ping()          # retries=0: the one attempt is the authenticated one
    assert [auth for _, auth in reg.seen] == ["", BASIC]


def test_docker_hub_credentials_are_read_under_the_index_name(tmp_path) -> None:
    from bakery.oci.credentials import docker_credentials
    auth = base64.b64encode(b"me:pw").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": auth}}}))
    assert docker_credentials("registry-1.docker.io", tmp_path) == ("me", "pw")
    assert Registry.for_host("docker.io").host == "registry-1.docker.io"
