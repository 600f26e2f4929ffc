"""Every notebook in examples/ runs top to bottom in a fresh Jupyter kernel and shows its output.

Each notebook gets its own kernel (nbclient, the venv's python through the `python3` kernel spec
that ipykernel provides). A cell that trains (``.fit(`` or ``run_sweep(``) must leave the live
board's figure (image/png) under it, and a cell that ends in ``summary(...)`` an HTML table.
"""

import html.parser
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
TRAINS = (".fit(", "run_sweep(")


def outputs_of(cell, kind: str) -> list[str]:
    """The `kind` (a MIME type) parts of a cell's rich outputs."""
    return [out["data"][kind] for out in cell.get("outputs", [])
            if out["output_type"] in ("display_data", "execute_result") and kind in out["data"]]


class TableCounter(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables = 0

    def handle_starttag(self, tag, attrs):
        self.tables += tag == "table"


def test_the_chapters_are_there_and_saved_without_outputs():
    assert len(NOTEBOOKS) >= 4
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_and_shows_figures_and_tables(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: no oversubscribed cores
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=CELL_TIMEOUT_S,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        if any(call in cell.source for call in TRAINS):
            assert outputs_of(cell, "image/png"), f"no live figure under:\n{cell.source}"
        if cell.source.splitlines()[-1].startswith("cnnlab.summary("):
            parser = TableCounter()
            for part in outputs_of(cell, "text/html"):
                parser.feed(part)
            assert parser.tables >= 1, f"no HTML table under:\n{cell.source}"
