"""Platform strings (``os/arch[/variant]``): parsing, normalisation and helpful errors.

Normalisation follows containerd's ``platforms.Normalize`` (what buildx applies): ``aarch64`` is
``arm64``, ``x86_64`` is ``amd64``, ``arm64/v8`` is plain ``arm64``, ``arm`` alone is ``arm/v7``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

KNOWN_OS = ("linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "illumos", "solaris")
KNOWN_ARCH = ("amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64",
              "mips64le", "mips64", "mipsle", "mips", "loong64", "wasm")
KNOWN_VARIANTS = {"arm": ("v5", "v6", "v7", "v8"), "arm64": ("v8", "v9"), "amd64": ("v1", "v2", "v3", "v4"),
                  "riscv64": ("rva20u64", "rva22u64")}
_ARCH_ALIASES = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64", "i386": "386", "i686": "386",
                 "armhf": "arm", "armel": "arm", "armv7l": "arm", "armv7": "arm"}
# qemu-user binary name suffix for each architecture (binfmt_misc entry qemu-<name>)
QEMU_NAMES = {"arm64": "aarch64", "arm": "arm", "386": "i386", "ppc64le": "ppc64le", "ppc64": "ppc64",
              "s390x": "s390x", "riscv64": "riscv64", "mips64le": "mips64el", "mips64": "mips64",
              "mipsle": "mipsel", "mips": "mips", "amd64": "x86_64", "loong64": "loongarch64"}


class PlatformError(ValueError):
    """A platform string that buildx would not accept; the message names it and suggests a fix."""


@dataclass(frozen=True, order=True)
class Platform:
    os: str
    arch: str
    variant: str = ""

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}/{self.variant}" if self.variant else f"{self.os}/{self.arch}"

    @property
    def slug(self) -> str:
        """A tag- and file-name-safe form: ``linux-arm-v7``."""
        return str(self).replace("/", "-")


def _suggest(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(choices)}"


def parse_platform(text: str) -> Platform:
    """Parse and normalise one platform; raise PlatformError with a suggestion when it is not valid."""
    if not isinstance(text, str) or not text.strip():
        raise PlatformError(f"platform {text!r} is empty; write os/arch[/variant], e.g. linux/arm64")
    parts = text.strip().lower().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise PlatformError(f"platform {text!r} is not os/arch[/variant], e.g. linux/arm64 or linux/arm/v7")
    os_, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else ""
    if os_ not in KNOWN_OS:
        raise PlatformError(f"platform {text!r}: unknown os {os_!r}{_suggest(os_, KNOWN_OS)}")
    if arch in ("armv6", "armv6l"):
        arch, variant = "arm", variant or "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch not in KNOWN_ARCH:
        guess = difflib.get_close_matches(arch, KNOWN_ARCH, n=1, cutoff=0.6)
        hint = f"; did you mean '{os_}/{guess[0]}'?" if guess else f"; expected one of {', '.join(KNOWN_ARCH)}"
        raise PlatformError(f"platform {text!r}: unknown architecture {arch!r}{hint}")
    if arch == "arm" and not variant:
        variant = "v7"
    if arch == "arm64" and variant == "v8":
        variant = ""
    if variant:
        allowed = KNOWN_VARIANTS.get(arch, ())
        if variant not in allowed:
            hint = (f"; {arch} takes one of {', '.join(allowed)}" if allowed else f"; {arch} has no variants")
            raise PlatformError(f"platform {text!r}: unknown variant {variant!r}{hint}")
    if arch == "amd64" and variant == "v1":
        variant = ""
    return Platform(os_, arch, variant)


def is_emulated(platform: str, native: str) -> bool:
    """True if ``platform`` needs QEMU on a ``native`` host: another OS or architecture (variants don't count,
    ``linux/arm64`` runs ``linux/arm64/v8`` natively).  A platform that does not parse is never called emulated:
    the answer feeds reports and advice, and validation names bad platforms elsewhere."""
    try:
        p, n = parse_platform(platform), parse_platform(native)
    except PlatformError:
        return False
    return (p.os, p.arch) != (n.os, n.arch)
