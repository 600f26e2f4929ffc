"""cnnlab: convolutional neural networks from the chapter operators to RegNet.

The top-level names are loaded on first use, so ``import cnnlab`` and ``cnnlab --help`` stay quick.
"""

from importlib import import_module

from cnnlab.version import __version__

_EXPORTS = {
    "create_model": "cnnlab.models",
    "list_models": "cnnlab.models",
    "summary": "cnnlab.analysis",
    "compare": "cnnlab.analysis.tables",
    "Trainer": "cnnlab.train",
    "TrainConfig": "cnnlab.train",
    "ModelSpec": "cnnlab.models.spec",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
