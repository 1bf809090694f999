"""The one exception type for bad user input (files, settings).

Its message is a single line that names the file and the problem; the CLI prints it without a traceback and exits
non-zero. Anything else that escapes is a bug.
"""


class InputError(Exception):
    """Bad user input: an unreadable image, a weights file that is not VGG19, an output folder that is missing."""

    def __init__(self, path, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}" if self.path else self.problem)
