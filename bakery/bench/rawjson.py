"""Stream-decode ``docker buildx bake --progress=rawjson`` output into BuildKit ``SolveStatus`` objects.

buildx 0.13 writes every BuildKit ``SolveStatus`` to stderr as a *pretty-printed* (multi-line) JSON
object; buildx >= 0.15 writes one object per line.  :func:`iter_status` (and the incremental
:class:`StreamDecoder` behind it) decode both framings from arbitrary text chunks, so bench can show a
live display while the build runs; :func:`parse_timestamp` reads the RFC 3339 times in them (nanosecond
precision, which :mod:`datetime` does not parse).  What the objects mean (steps, critical path, summary) is
:mod:`bakery.bench.steps`.

Nothing here does I/O beyond consuming the iterables it is given.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from bakery.errors import BakeryError

__all__ = ["RawJsonError", "Status", "StreamDecoder", "iter_status", "parse_timestamp"]


class RawJsonError(BakeryError):
    """Malformed rawjson input: a truncated object, a vertex without a digest, a bad timestamp, a cycle."""


Status = dict[str, Any]  # one decoded SolveStatus object (vertexes, statuses, logs, warnings)


# --------------------------------------------------------------------------------------------------
# Stream decoding

_LINE_START = 0  # at column 0: only "{" starts an object, anything else is a non-JSON line
_AFTER_OBJECT = 1  # on the line an object just ended on: whitespace or another "{" (concatenation)
_SKIPPING = 2  # inside a non-JSON line: discard through the next newline

_PARTIAL_TOKEN = re.compile(r'"|[-+0-9.eE]+|t(?:r(?:ue?)?)?|f(?:a(?:l(?:se?)?)?)?|n(?:u(?:ll?)?)?')


def _truncated_at_eof(text: str, err: json.JSONDecodeError) -> bool:
    """True if ``text`` (the end of the stream) failed to parse only because it stops inside an object."""
    rest = text[err.pos :]
    if not rest.strip():
        return True  # the parser wanted more input
    if "\n" in rest or rest != rest.rstrip():
        return False  # the offending token is complete, so the object is malformed
    if err.msg.startswith("Unterminated string"):
        return True
    if err.msg.startswith("Invalid \\uXXXX escape"):  # err.pos is at the "u" of a cut-off escape
        return re.fullmatch(r"u[0-9a-fA-F]{0,3}", rest) is not None
    match = _PARTIAL_TOKEN.match(rest)
    return match is not None and match.end() == len(rest)


class StreamDecoder:
    """Incremental decoder for one stream: :meth:`feed` text chunks as they arrive, then :meth:`close`.

    ``feed`` returns the objects completed by that chunk; ``close`` returns any last object and raises
    :class:`RawJsonError` if the stream ends inside one.  :func:`iter_status` is the iterator form.
    """

    def __init__(self, on_skip: Callable[[str], None] | None) -> None:
        self._json = json.JSONDecoder()
        self._buf = ""
        self._mode = _LINE_START
        self._hold = 0  # no decode retry until a "}" appears at or after this index
        self._line = 1  # line number of self._buf[0]
        self._skipped: list[str] = []
        self._on_skip = on_skip

    def feed(self, chunk: str) -> list[Status]:
        if not isinstance(chunk, str):
            raise RawJsonError(f"rawjson chunks must be str, got {type(chunk).__name__}")
        self._buf += chunk
        return self._drain(final=False)

    def close(self) -> list[Status]:
        out = self._drain(final=True)
        self._flush_skipped()
        return out

    def _flush_skipped(self) -> None:
        text = "".join(self._skipped).rstrip("\r")
        self._skipped.clear()
        if text.strip() and self._on_skip is not None:
            self._on_skip(text)

    def _drain(self, *, final: bool) -> list[Status]:
        out: list[Status] = []
        buf = self._buf
        pos = 0
        while pos < len(buf):
            if self._mode == _SKIPPING:
                nl = buf.find("\n", pos)
                if nl == -1:
                    self._skipped.append(buf[pos:])
                    pos = len(buf)
                    break
                self._skipped.append(buf[pos:nl])
                self._flush_skipped()
                pos = nl + 1
                self._mode = _LINE_START
                continue
            char = buf[pos]
            if char == "\n":
                pos += 1
                self._mode = _LINE_START
            elif char == "{":
                if not final and buf.find("}", max(pos, self._hold)) == -1:
                    break  # an object can only end with "}": wait for more input
                try:
                    obj, end = self._json.raw_decode(buf, pos)
                except json.JSONDecodeError as err:
                    if not final and "\n" not in buf[err.pos :]:
                        # JSON tokens never span a newline: an error with a newline after it is
                        # malformed text, one without may just be an object cut by the chunking
                        self._hold = len(buf)
                        break
                    if final and _truncated_at_eof(buf, err):
                        line = self._line + buf.count("\n", 0, pos)
                        raise RawJsonError(
                            f"truncated rawjson stream: incomplete JSON object starting at line {line}"
                        ) from None
                    self._mode = _SKIPPING  # a non-JSON line that happens to start with "{"
                    self._hold = 0
                    continue
                out.append(obj)
                pos = end
                self._hold = 0
                self._mode = _AFTER_OBJECT
            elif self._mode == _AFTER_OBJECT and char in " \t\r":
                pos += 1
            else:
                self._mode = _SKIPPING
        self._line += buf.count("\n", 0, pos)
        self._hold = max(0, self._hold - pos)
        self._buf = buf[pos:]
        return out


def iter_status(chunks: Iterable[str], *, on_skip: Callable[[str], None] | None = None) -> Iterator[Status]:
    """Yield every top-level JSON object in a rawjson stream given as text chunks.

    Chunks may be lines or arbitrary slices; objects may be pretty-printed over many lines
    (buildx <= 0.14) or one per line (>= 0.15), or concatenated on one line.  Text between objects
    that is not JSON (buildx error messages, a line starting with ``{`` that does not parse, indented
    text) is skipped up to the next ``{`` at the start of a line; each skipped non-blank line is
    passed to ``on_skip`` if given, so nothing disappears unreported.  An object still open at the
    end of the stream raises :class:`RawJsonError`.
    """
    decoder = StreamDecoder(on_skip)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()


# --------------------------------------------------------------------------------------------------
# Timestamps

_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.IGNORECASE)


def parse_timestamp(value: str) -> datetime:
    """Parse an RFC 3339 timestamp with up to nanosecond precision (truncated to microseconds)."""
    match = _TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise RawJsonError(f"bad rawjson timestamp: {value!r}")
    base, frac, zone = match.groups()
    micros = int((frac or "0")[:6].ljust(6, "0"))
    try:
        parsed = datetime.fromisoformat(base)
    except ValueError:
        raise RawJsonError(f"bad rawjson timestamp: {value!r}") from None
    if zone.upper() == "Z":
        tz = timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return parsed.replace(microsecond=micros, tzinfo=tz)
