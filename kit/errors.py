"""The one exception the CLI turns into a one-line `Error: ...` and exit code 1."""


class KitError(Exception):
    """A known failure with a message that names the file (or thing) and the fix."""


class BadFile(KitError):
    """A landmark or index file that cannot be used; `path` and `problem` are kept for reports."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
