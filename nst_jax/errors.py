"""The one exception type for bad user input (files, settings), and how the command lines report it.

Its message is a single line that names the file and the problem; the CLI prints it without a traceback and exits
non-zero. Anything else that escapes is a bug.
"""


import argparse
import re
import signal
import sys
from typing import Callable

from .stops import STOPS, Interrupted  # noqa: F401  (Interrupted: re-exported, the error of a stopped run)


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
        message = _as_setting_message(message)
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see --help)\n")


def _as_setting_message(message: str) -> str:
    """argparse's wording of a bad option value in the words `Config` uses for the same value ("argument --remat:
    invalid choice: 'yes' (choose from 'on', 'off')" -> "--remat must be one of on, off, got 'yes'"; "argument
    --size: must be an int, got 'x'" -> "--size must be an int, got 'x'"), so that the API and the command line
    refuse it alike."""
    choice = re.fullmatch(r"argument (--[\w-]+): invalid choice: (.*) \(choose from (.*)\)", message)
    if choice:
        option, value, choices = choice.groups()
        return f"{option} must be one of {', '.join(c.strip(chr(39)) for c in choices.split(', '))}, got {value}"
    typed = re.fullmatch(r"argument (--[\w-]+): (must be .*)", message)
    return f"{typed.group(1)} {typed.group(2)}" if typed else message


class UsageError(InputError):
    """Options that contradict each other, each fine alone (several jobs with --output naming a file, --log equal to
    --output): a usage error, exit status 2 like the parser's own."""

    status = 2


def exit_status(prog: str, action: Callable[[], None], not_written: str) -> int:
    """Run a command line's `action`: 0 on success; on bad input a one-line error and its status (1; a
    `UsageError` 2); on a failed read or write
    (OSError) a one-line error, `not_written` (what was not written) and 1; on Ctrl-C 130 (on `Interrupted`, its
    status) and what was not written. No traceback for any of them."""
    try:
        action()
        STOPS.check()  # a stop signal whose exception was swallowed after the last safe point
    except BrokenPipeError:  # the reader of our output went away (`... | head`): nothing is wrong, stop quietly
        _silence_stdout()
        return 0
    except KeyboardInterrupt as e:  # Ctrl-C, or Interrupted (which may say what was and was not written)
        return _interrupted(prog, getattr(e, "status", Interrupted.CTRL_C), str(e) or not_written)
    except (InputError, OSError) as e:
        if STOPS.requested():  # the user stopped the run, and what failed since may be its consequence: say so
            return _interrupted(prog, STOPS.requested(), not_written)
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
