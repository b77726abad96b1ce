"""evenstride: measure how evenly you run, and train the leg that needs it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("evenstride")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
