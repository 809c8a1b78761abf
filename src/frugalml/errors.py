"""The one error type for bad user input.

Anything raised as `FrugalError` reaches the user as one line on stderr and exit status 2
(see `cli.main`); everything else is a bug and keeps its traceback.
"""


class FrugalError(Exception):
    """Bad input from the user: unknown name, malformed value, missing or invalid file."""
