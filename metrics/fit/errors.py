"""The reader's one documented error type."""


class FitReadError(Exception):
    """A FIT file could not be read at all. `reason` is one line meant for a user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
