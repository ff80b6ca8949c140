"""Errors a user can fix, shared by the library and its two front ends (CLI and dashboard).

Each is shown as one line (the CLI exits with code 2); none carries a traceback to the user.
"""
from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input: printed as one line, exit code 2."""


class InputError(ValueError):
    """User text (or an explanation option) that cannot be used; the message names the field."""


class RunNotFoundError(FileNotFoundError):
    """The run does not exist, is not a run directory, lies outside the runs dir, or cannot be read safely."""
