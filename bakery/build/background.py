"""Work that runs beside the bake (the preflight, the generated file's ``--print`` check, the copies of unchanged
results): each starts in a thread of its own and is waited for where its result matters."""

from __future__ import annotations

import threading
from collections.abc import Callable


def passed() -> None:
    """Nothing left to wait for (a preflight already judged, a check not asked for)."""


def both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    """Wait for both; the first error is raised."""
    def wait() -> None:
        first()
        second()
    return wait


def start(work: Callable[[], None], name: str) -> Callable[[], None]:
    """Start ``work`` in a daemon thread named ``name``; the callable (it may be called again) waits for it and
    raises what it raised."""
    found: list[BaseException | None] = []

    def go() -> None:
        try:
            work()
            found.append(None)
        except BaseException as exc:        # handed to the caller's thread
            found.append(exc)
    worker = threading.Thread(target=go, name=name, daemon=True)
    worker.start()

    def wait() -> None:
        worker.join()
        if found and found[0] is not None:
            raise found[0]
    return wait
