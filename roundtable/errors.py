"""The errors roundtable reports to users as one clean line."""

from __future__ import annotations


class RoundtableError(Exception):
    """A problem the user can fix; printed as `Error: <message>` with no traceback."""

    exit_code = 1


class InputError(RoundtableError):
    """A broken file, setting or flag (exit code 2)."""

    exit_code = 2


class ServerError(RoundtableError):
    """The model server could not be used (exit code 1).

    `resumable` is False when the cause is configuration (a wrong key, URL, model or
    layout): resuming would meet the same error, so the CLI does not suggest it.
    """

    exit_code = 1

    def __init__(self, message: str, *, resumable: bool = True) -> None:
        super().__init__(message)
        self.resumable = resumable
