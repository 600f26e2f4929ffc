"""Whether this process is a Jupyter kernel, and the display that shows a figure under its cell."""

from __future__ import annotations

import sys

from cnnlab.errors import UsageError


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel, which can show figures under the running cell."""
    zmqshell = sys.modules.get("ipykernel.zmqshell")  # loaded in every kernel, never in scripts
    if zmqshell is None:
        return False
    # deferred: IPython is there only in a kernel (just checked)
    from IPython import get_ipython

    return isinstance(get_ipython(), zmqshell.ZMQInteractiveShell)


class NotebookDisplay:
    """Shows a figure under the running cell, then replaces it in place at each later call."""

    def __init__(self):
        if not in_notebook():
            raise UsageError("live=True draws the curves under a notebook cell, but this is not "
                             "a Jupyter kernel; use live=None (on in notebooks) or live=False")
        self._handle = None

    def show(self, figure) -> None:
        # deferred: IPython is there only in a kernel (checked when made)
        from IPython.display import display

        if self._handle is None:
            self._handle = display(figure, display_id=True)
        else:
            self._handle.update(figure)
