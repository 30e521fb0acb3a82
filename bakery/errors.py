"""The one exception family bakery raises; tasks turn it into a one-line message and an exit code."""

from __future__ import annotations

from collections.abc import Sequence


class BakeryError(Exception):
    """An expected failure: bad input, a failed command, an unreachable registry.

    ``str(error)`` is the single line shown to the user (no traceback).
    """

    exit_code: int = 1


class ConfigError(BakeryError):
    """A problem in bakery.yaml (or an imported file), named by file, key path and value."""

    def __init__(self, source: str, key: str, message: str) -> None:
        self.source = source
        self.key = key
        self.message = message
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(f"{where}{message}")


class ConfigErrors(BakeryError):
    """Several independent config problems, reported together (one line each)."""

    def __init__(self, errors: Sequence[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class CommandError(BakeryError):
    """An external program exited non-zero; carries the exact argv and the captured stderr."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, summary: str = "") -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "")
        head = summary or f"`{' '.join(self.argv[:3])}` failed (exit {returncode})"
        super().__init__(f"{head}: {last}" if last else head)


class RegistryError(BakeryError):
    """A registry answered something bakery cannot use (status, body or digest mismatch).

    ``status`` is the HTTP status of the answer that failed, or None when there was none (no connection, a
    timeout) or the failure is in the body (a digest mismatch); ``code`` the first error code of its body
    (``MANIFEST_UNKNOWN``, ``DIGEST_INVALID``, ...), or "".
    """

    def __init__(self, message: str, status: int | None = None, code: str = "") -> None:
        self.status = status
        self.code = code
        super().__init__(message)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that every cleanup path Ctrl-C takes
    (children stopped, containers and temporary files removed, a publish rolled back) runs for it too.

    An interruption's text, when it has one, says what state is public (``publish stopped: ...``)."""
