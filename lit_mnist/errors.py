"""The one exception type a user should ever see from bad input."""


class DataError(ValueError):
    """Input that cannot be used, with a one-line message naming the file and the place.

    The command-line entry points print it as ``error: <message>`` and exit with code 2.
    """
