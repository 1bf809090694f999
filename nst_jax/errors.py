"""The one exception type for bad user input (files, settings), and how the command lines report it.

Its message is a single line that names the file and the problem; the CLI prints it without a traceback and exits
non-zero. Anything else that escapes is a bug.
"""


import argparse
import contextlib
import signal
import sys
import threading
from typing import Callable, Iterator


class InputError(Exception):
    """Bad user input: an unreadable image, a weights file that is not VGG19, an output folder that is missing."""

    def __init__(self, path, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)

    status = 1  # the command lines' exit status


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, `PROG: error: MESSAGE (see --help)`, and exit status 2
    (argparse's own prints the whole usage, 25 lines, before it)."""

    def error(self, message: str):
        if message.endswith("expected one argument"):  # argparse reads "-1,2" as an option, not a value
            option = message.split(":")[0].split("/")[-1].removeprefix("argument ")
            message += f" (a value that starts with '-' goes after '=': {option}=VALUE)"
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


class UsageError(InputError):
    """Options that contradict each other, each fine alone (several jobs with --output naming a file, --log equal to
    --output): a usage error, exit status 2 like the parser's own."""

    status = 2


class Interrupted(KeyboardInterrupt):
    """A run stopped from outside: Ctrl-C, or SIGTERM / SIGHUP (`kill`, `timeout`, Slurm, a closed terminal) turned
    into the same clean stop, so that temporary files are removed and finished outputs kept. `status`: the exit
    status, 128 + the signal's number (130 for Ctrl-C)."""

    CTRL_C = 128 + signal.SIGINT

    def __init__(self, message: str = "", status: int = CTRL_C):
        super().__init__(message)
        self.status = status


_PENDING: list[int] = []  # the exit status of a stop signal received and not yet acted on (see check_stop)
_DEFERRED: list[bool] = []  # non-empty inside `deferred_stops`


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT (Ctrl-C), SIGTERM and SIGHUP raise `Interrupted` in the main thread (Python's
    default for the last two is to die at once, leaving temporary files behind), and are remembered: a handler's
    exception raised inside a callback that swallows exceptions (JAX's garbage-collection callback does, printing
    "Exception ignored") would otherwise be lost and the run would go on, so `check_stop` raises it again at the next
    safe point. The previous handlers come back afterwards. Elsewhere than the main thread: no change."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = [s for s in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, s)]

    def stop(number, frame):
        _PENDING.append(128 + number)
        if not _DEFERRED and not _cannot_raise_in(frame):
            # (inside a GC callback an exception would be dropped; inside an import, raised through a C extension's
            # initialisation, it can abort the interpreter: check_stop acts at the next safe point instead)
            raise Interrupted("", 128 + number)

    previous = {name: signal.signal(getattr(signal, name), stop) for name in wanted}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
        _PENDING.clear()


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


@contextlib.contextmanager
def deferred_stops() -> Iterator[None]:
    """Within the block a stop signal (under `stop_on_signals`) raises nothing where it lands; the block's own
    `check_stop` calls raise it, so that a loop stops only between its steps, with its state consistent (a chunk's
    inputs donated and its outputs not yet assigned is not such a state). Without `stop_on_signals` (a notebook's
    Ctrl-C): no change."""
    _DEFERRED.append(True)
    try:
        yield
    finally:
        _DEFERRED.pop()


def check_stop() -> None:
    """Raise `Interrupted` if a stop signal came (see `stop_on_signals`) and its exception may have been lost. Call
    it where stopping is safe: between chunks, before writing outputs."""
    if _PENDING:
        raise Interrupted("", _PENDING[0])


def exit_status(prog: str, action: Callable[[], None], not_written: str) -> int:
    """Run a command line's `action`: 0 on success; on bad input a one-line error and its status (1; a
    `UsageError` 2); on a failed read or write
    (OSError) a one-line error, `not_written` (what was not written) and 1; on Ctrl-C 130 (on `Interrupted`, its
    status) and what was not written. No traceback for any of them."""
    try:
        action()
        check_stop()  # a stop signal whose exception was swallowed after the last safe point
    except BrokenPipeError:  # the reader of our output went away (`... | head`): nothing is wrong, stop quietly
        _silence_stdout()
        return 0
    except KeyboardInterrupt as e:  # Ctrl-C, or Interrupted (which may say what was and was not written)
        return _interrupted(prog, getattr(e, "status", Interrupted.CTRL_C), str(e) or not_written)
    except (InputError, OSError) as e:
        if _PENDING:  # the user stopped the run, and what failed since may be its consequence: say the stop
            return _interrupted(prog, _PENDING[0], not_written)
        if isinstance(e, InputError):
            print(f"{prog}: error: {e}", file=sys.stderr)
            return e.status
        else:  # writing failed in a way no check beforehand can see (a full disk)
            where = f"{e.filename}: " if e.filename else ""
            print(f"{prog}: error: {where}{e.strerror or e}; {not_written}", file=sys.stderr)
        return 1
    return 0


def _interrupted(prog: str, status: int, what: str) -> int:
    by = f" by {signal.Signals(status - 128).name}" if status != Interrupted.CTRL_C else ""
    print(f"{prog}: interrupted{by}; {what}", file=sys.stderr)
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush does not fail on the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
