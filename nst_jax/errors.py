"""The one exception type for bad user input (files, settings), and how the command lines report it.

Its message is a single line that names the file and the problem; the CLI prints it without a traceback and exits
non-zero. Anything else that escapes is a bug.
"""


import sys
from typing import Callable


class InputError(Exception):
    """Bad user input: an unreadable image, a weights file that is not VGG19, an output folder that is missing."""

    def __init__(self, path, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)


def exit_status(prog: str, action: Callable[[], None], not_written: str) -> int:
    """Run a command line's `action`: 0 on success; on bad input a one-line error and 1; on a failed read or write
    (OSError) a one-line error, `not_written` (what was not written) and 1; on Ctrl-C, 130 and `not_written`. No
    traceback for any of them."""
    try:
        action()
    except InputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # writing failed in a way no check beforehand can see (a full disk)
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}; {not_written}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; {not_written}", file=sys.stderr)
        return 130
    return 0
