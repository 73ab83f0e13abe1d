"""The one exception type for bad user input; the CLI turns it into one line and exit code 2."""


class InputError(ValueError):
    """Bad input from a user: a file, a column, a number out of range. The message is shown as is."""
