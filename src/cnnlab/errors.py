"""Exceptions that the command line turns into exit codes."""


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; the CLI exits with code 3 so sweeps can record it."""

    exit_code = 3
