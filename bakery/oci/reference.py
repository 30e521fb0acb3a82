"""The image reference grammar (distribution/reference), used to reject bad names before buildx does.

``registry`` in bakery.yaml is a name prefix: ``[domain[:port]/]path``; images append ``/<repository>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
PATH_COMPONENT_RE = re.compile(rf"^{_PATH_COMPONENT}$")
PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")   # the OCI grammar: ASCII only
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
NAME_MAX = 255
NAME_RE = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")   # one image name: also a bake target/group name, so no "."


class InvalidReference(ValueError):
    """A name that breaks the reference grammar; the message says which part and why."""


@dataclass(frozen=True)
class Reference:
    domain: str        # "" means Docker Hub
    path: str          # repository path inside the registry
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _is_domain(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


def split_domain(name: str) -> tuple[str, str]:
    """Split ``host[:port]/path`` into (domain, path) the way docker does ('' for Docker Hub)."""
    first, sep, rest = name.partition("/")
    if sep and _is_domain(first):
        return first, rest
    return "", name


def check_path(path: str, what: str) -> None:
    for comp in path.split("/"):
        if not PATH_COMPONENT_RE.match(comp):
            why = "uppercase is not allowed" if comp != comp.lower() else \
                "use lowercase letters, digits and single . _ __ or - between them"
            raise InvalidReference(f"{what} {path!r}: path component {comp!r} is not valid ({why})")


def check_domain(domain: str, what: str) -> None:
    """host[:port] as the reference grammar has it, with a port of 1-65535."""
    if not DOMAIN_RE.match(domain):
        raise InvalidReference(f"{what}: {domain!r} is not a valid host[:port]")
    host, sep, port = domain.rpartition(":")
    if sep and port.isdigit() and not 0 < int(port) < 65536:
        raise InvalidReference(f"{what}: port {port} of {domain!r} is not in 1-65535")


def check_name_prefix(prefix: str) -> None:
    """Validate the ``registry`` setting: an optional domain and zero or more path components."""
    if len(prefix) > NAME_MAX:
        raise InvalidReference(f"registry {prefix[:40]!r}...: longer than {NAME_MAX} characters")
    if not prefix or prefix != prefix.strip() or prefix.endswith("/"):
        raise InvalidReference(f"registry {prefix!r} must be host[:port][/path] without a trailing '/'")
    domain, path = split_domain(prefix)
    if domain:
        check_domain(domain, f"registry {prefix!r}")
    if path:
        check_path(path, "registry")


def check_tag(tag: str) -> None:
    if not TAG_RE.match(tag):
        raise InvalidReference(f"tag {tag!r} is not valid: use up to 128 of [A-Za-z0-9_.-], not starting with . or -")


def parse_reference(text: str) -> Reference:
    """Parse ``[domain/]path[:tag][@digest]`` strictly."""
    rest, _, digest = text.partition("@")
    if digest and not DIGEST_RE.match(digest):
        raise InvalidReference(f"reference {text!r}: digest {digest!r} is not sha256:<64 hex>")
    tag = ""
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
        check_tag(tag)
    domain, path = split_domain(rest)
    if domain:
        check_domain(domain, f"reference {text!r}")
    if not path:
        raise InvalidReference(f"reference {text!r} has no repository")
    check_path(path, "repository")
    if len(rest) > NAME_MAX:
        raise InvalidReference(f"reference {text!r}: name is longer than {NAME_MAX} characters")
    return Reference(domain, path, tag, digest)
