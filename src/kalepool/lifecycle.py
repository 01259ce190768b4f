"""How kalepool's long-running commands stop: SIGTERM does what Ctrl-C does.

A supervisor (systemd, a container runtime) stops a process with SIGTERM, a person with
Ctrl-C (SIGINT). Inside :func:`sigterm_as_interrupt` both take the same path: SIGTERM
raises SIGINT, so ``asyncio.run`` cancels its task (or ``KeyboardInterrupt`` is raised),
every ``with`` block unwinds and every child is stopped, the embedded PostgreSQL included.
Without it Python's default for SIGTERM ends the process at once (exit 143), skipping all
of that.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["sigterm_as_interrupt"]


def _as_sigint(signum: int, frame: FrameType | None) -> None:
    signal.raise_signal(signal.SIGINT)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM is handled as SIGINT; the previous handler is restored after.
    (Only the main thread can set signal handlers: elsewhere this does nothing.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
