"""The one error type a loader raises: its message is shown to the user as is, one line per file."""


class LoadError(ValueError):
    """A file cannot be turned into text; the message says why in words an admin can act on."""
