"""Tools of the fault-injection suite: the ledger, the CLI in a fresh process (with a fault
hook run first), and a small real filesystem for full and read-only disks."""

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@dataclass
class Ledger:
    injected: int = 0
    survived: int = 0
    inputs: int = 0
    tracebacks: int = 0
    data_lost: int = 0

    def line(self) -> str:
        return (f"faults injected {self.injected}, faults survived {self.survived}, inputs tried "
                f"{self.inputs}, tracebacks seen {self.tracebacks}, data lost {self.data_lost}")


LEDGER = Ledger()


def cnnlab(*args, prelude: str = "", timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """`cnnlab ARGS` in a fresh single-threaded process, after running `prelude` (a fault hook)."""
    code = f"{prelude}\nimport sys\nfrom cnnlab.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=ENV,
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def popen_cnnlab(*args, prelude: str = "") -> subprocess.Popen:
    code = f"{prelude}\nimport sys\nfrom cnnlab.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m"):
    """A tmpfs of `size` mounted at `path` (root only): real ENOSPC and EROFS."""
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)
