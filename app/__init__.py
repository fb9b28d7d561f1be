"""backprop-api: backpropagation for fully connected networks over HTTP."""

__version__ = "0.1.0"
