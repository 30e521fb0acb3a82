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


def short_digest(digest: str, *, algorithm: bool = True) -> str:
    """A digest as tables show it: 12 hex digits, after ``sha256:`` unless ``algorithm=False``.

    ``-`` for no digest; text that is not ``algo:hex`` is shown whole (``algorithm=True``) or cut to 12 characters.
    The full digest belongs in ``--json`` output and logs; 12 hex digits are what ``docker images`` shows.
    """
    if not digest:
        return "-"
    algo, sep, hexpart = digest.partition(":")
    if not sep:
        return digest if algorithm else digest[:12]
    return f"{algo}:{hexpart[:12]}" if algorithm else hexpart[:12]
