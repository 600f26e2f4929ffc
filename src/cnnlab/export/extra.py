"""The optional `export` extra: ONNX, its script-based exporter and ONNX Runtime."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from cnnlab.errors import UsageError

INSTALL = "pip install 'cnnlab[export]'"


def require(module: str, purpose: str) -> ModuleType:
    """Import `module` of the export extra, or say in one line how to install it."""
    try:
        return import_module(module)
    except ImportError:
        raise UsageError(f"{purpose} needs the {module} package, which is not installed; "
                         f"install the export extra: {INSTALL}") from None
