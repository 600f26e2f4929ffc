"""The version of cnnlab, recorded with every run."""

__version__ = "0.1.0"
