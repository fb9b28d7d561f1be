"""backprop-api: backpropagation for fully connected networks over HTTP."""

from importlib.metadata import PackageNotFoundError, version

try:
    # The one place the version is written is pyproject.toml; an installed package knows it.
    __version__ = version("backprop-api")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
