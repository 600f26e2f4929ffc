"""The exceptions the command line turns into exit codes.

A :class:`UsageError` is a mistake in what the user asked for (a bad option, a missing file, a
model too small for its input): the CLI prints its one-line message and exits with code 2.
:class:`TrainingDiverged` exits with code 3, so learning-rate sweeps can tell the two apart.
Anything else is a bug: the CLI lets its traceback show and exits with code 1.
"""


class UsageError(ValueError):
    """Bad input: which value, what is allowed, how to fix it, in one line (CLI exit code 2).

    It is a ValueError, so Python callers may catch either.
    """

    exit_code = 2


class MissingFileError(UsageError, FileNotFoundError):
    """A file or folder the user named (or the product needs from the user) does not exist."""


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the CLI exits with code 3 so sweeps can record it."""

    exit_code = 3
