"""The fault-injection suite's ledger and tools: every test counts the faults it injected, the
ones the product survived, the inputs it tried, and any traceback or lost data it saw. The run
ends with one summary line; tracebacks and data lost must both be 0.
"""

from dataclasses import fields
from pathlib import Path

import pytest
from fault_tools import ENV, LEDGER, Outcome
from image_folders import two_class_folder


class Faults:
    """What one test records in the ledger (survived faults, tracebacks, lost data)."""

    def injected(self, n: int = 1) -> None:
        LEDGER.injected += n

    def survived(self, n: int = 1) -> None:
        LEDGER.survived += n

    def tried(self, n: int = 1) -> None:
        LEDGER.inputs += n

    def check_output(self, stderr: str, code: int) -> None:
        """Count a traceback and fail on it; exit 2 must be one line."""
        if "Traceback (most recent call last)" in stderr or code not in (0, 2, 3):
            LEDGER.tracebacks += 1
            pytest.fail(f"exit {code} with a traceback:\n{stderr[-3000:]}")
        if code == 2:
            assert stderr.count("\n") == 1 and stderr.startswith("cnnlab: error: "), stderr

    def lost(self, what: str) -> None:
        LEDGER.data_lost += 1
        pytest.fail(f"data lost: {what}")


@pytest.fixture
def faults() -> Faults:
    return Faults()


def pytest_terminal_summary(terminalreporter):
    if any(getattr(LEDGER, f.name) for f in fields(LEDGER)):
        terminalreporter.write_line(LEDGER.line())


@pytest.fixture
def run_main(capsys):
    """`run_main(*argv)`: the CLI in this process (quick); an exception escaping it is a bug."""
    from cnnlab.cli import main

    def run(*argv) -> Outcome:
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        except Exception:
            LEDGER.tracebacks += 1
            raise
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run


@pytest.fixture(scope="session")
def picture_folder(tmp_path_factory) -> Path:
    """Two classes of 24 grey 28x28 images: a quick data set whose test split is small."""
    return two_class_folder(tmp_path_factory.mktemp("pictures"), per_class=24, spread=90)


@pytest.fixture(autouse=True)
def _user_cache(tmp_path_factory, monkeypatch):
    """One image cache for the whole suite, outside the user's."""
    cache = tmp_path_factory.getbasetemp() / "cnnlab-cache"
    monkeypatch.setenv("CNNLAB_DATA", str(cache))
    ENV["CNNLAB_DATA"] = str(cache)


