"""Stopping a run from outside: Ctrl-C, SIGTERM and SIGHUP (`kill`, `timeout`, Slurm, a closed terminal) become one
clean stop, so that temporary files are removed, finished outputs kept and a stopped batch saved.

`STOPS`, this process's `Stops`, is the one object that installs the signal handlers (`Stops.on_signals`) and the one
the loop asks, between chunks, whether to stop (`Stops.requested`). Standard library only.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator, Optional


class Interrupted(KeyboardInterrupt):
    """A run stopped from outside. `status`: the exit status, 128 + the signal's number (130 for Ctrl-C)."""

    CTRL_C = 128 + signal.SIGINT

    def __init__(self, message: str = "", status: int = CTRL_C):
        super().__init__(message)
        self.status = status


class Stops:
    """Whether a stop signal has come: its exit status, kept until the handlers are taken down.

    Under `on_signals` a stop signal raises `Interrupted` in the main thread where it lands (Python's default for
    SIGTERM and SIGHUP is to die at once, leaving temporary files behind), except inside `deferred` (a loop that
    stops only between its steps asks `requested`) and where an exception would be lost or unsafe (see
    `_cannot_raise_in`); `check` raises it at the next safe point in every case."""

    def __init__(self) -> None:
        self.status: Optional[int] = None
        self._deferred = 0
        self._installed = False

    def requested(self) -> Optional[int]:
        """The exit status of the stop signal that came (None: none did)."""
        return self.status

    def check(self) -> None:
        """Raise `Interrupted` if a stop signal came. Call it where stopping is safe: between steps, before writing
        outputs."""
        if self.status is not None:
            raise Interrupted("", self.status)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within the block a stop signal raises nothing where it lands: the block asks `requested` (or calls
        `check`) where its state is consistent (a chunk's inputs donated and its outputs not yet assigned is not
        such a state). A second Ctrl-C while a checkpoint is written waits too."""
        self._deferred += 1
        try:
            yield
        finally:
            self._deferred -= 1

    @contextlib.contextmanager
    def on_signals(self) -> Iterator[None]:
        """Within the block SIGINT, SIGTERM and SIGHUP are stops; the previous handlers come back afterwards. The
        one place that installs handlers: nested, or outside the main thread, it changes nothing."""
        if self._installed or threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(number, frame):
            if self.status is None:
                self.status = 128 + number
            if not self._deferred and not _cannot_raise_in(frame):
                raise Interrupted("", 128 + number)

        wanted = [s for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]
        previous = {name: signal.signal(getattr(signal, name), stop) for name in wanted}
        self._installed = True
        try:
            yield
        finally:
            for name, handler in previous.items():
                signal.signal(getattr(signal, name), handler)
            self._installed, self.status = False, None


def _cannot_raise_in(frame) -> bool:
    """Whether `frame` runs where a signal handler's exception must not be raised: inside a garbage-collector
    callback (such as JAX's `_xla_gc_callback`), where Python prints and drops it, or inside an import (importlib's
    frames on the stack): jaxlib's extension modules run Python during their initialisation, and an exception
    raised there can abort the process (a segfault, or "terminate called after throwing an instance of
    'nanobind::python_error'")."""
    while frame is not None:
        code = frame.f_code
        if code.co_name.endswith("gc_callback") or code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


STOPS = Stops()  # this process's: signal handlers belong to the process
