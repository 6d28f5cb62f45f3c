"""Errors a user can cause and fix: entry points print them as one line instead of a traceback."""


class UserError(Exception):
    """Something in the config or the inputs is wrong; the message says what and what to do."""
