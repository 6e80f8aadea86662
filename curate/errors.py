"""Errors a user can cause: they end the command with one clear line and exit code 2."""


class UserError(Exception):
    """A mistake in the command line, the config or the input paths (exit code 2)."""

    exit_code = 2
