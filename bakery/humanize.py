"""Numbers for people: the one byte-size format every table and report uses."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """Decimal units, as registries and `docker images` show sizes: ``999 B``, ``2.5 MB``."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
