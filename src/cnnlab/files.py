"""Writing files without ever losing one: the atomic write every part of cnnlab uses.

A file is written to a temporary file in the same folder, flushed to disk and renamed over the
old one, so a crash at any moment leaves either the old or the new file, never half of one, and
a failed write (a full disk, a read-only folder) leaves no temporary file behind. A write the
filesystem refuses is a one-line UsageError naming the path: the user can free space or choose
another place, and nothing that was there before is touched.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cnnlab.display import format_value
from cnnlab.errors import UsageError

TMP_SUFFIX = ".tmp"
_INTEGER = re.compile(r"[-+]?\d+")

_USER_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EROFS: "the filesystem is read-only",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.EDQUOT: "the disk quota is exceeded"}


def temporary_name(path: Path) -> Path:
    """The temporary file beside `path` that one process writes before the rename."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def cannot_write(path: Path, exc: OSError) -> UsageError:
    """The one-line error for a write the filesystem refused (or the OSError itself, a bug)."""
    reason = _USER_ERRNOS.get(exc.errno)
    if reason is None:
        raise exc
    return UsageError(f"cannot write {path}: {reason}; free some space or write elsewhere "
                      "(for a run: --out DIR); the previous file, if any, is unchanged")


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator:
    """Open a temporary file for writing; on success it replaces `path` durably."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_folder(path.parent)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    finally:
        with contextlib.suppress(OSError):  # a read-only folder cannot even be asked to unlink
            tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Replace the text file at `path` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace the file at `path` with `data` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(folder: str | Path) -> None:
    """Delete temporary files left in `folder` by a process killed while writing one."""
    for tmp in Path(folder).glob(f".*.[0-9]*{TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def save_figure(figure, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure atomically, in the format its suffix names (PNG by default)."""
    path = Path(path)
    with atomic_write(path) as f:
        figure.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=dpi)
    return path


def display_path(path: str | Path) -> str:
    """A path as printable text: bytes that are not UTF-8 shown as U+FFFD instead of failing."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def write_torch(obj, path: str | Path) -> Path:
    """`torch.save` `obj` to `path` atomically. It is serialised in memory first, so a full disk
    surfaces as the OSError of the file write (torch's own writer hides it in a RuntimeError)."""
    import torch  # deferred: torch is heavy and only this helper needs it

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return write_bytes(path, buffer.getbuffer())


RUNS_ROOT = Path("runs")
"""Where runs, sweeps and studies go unless told otherwise (relative to the working folder)."""


def slug(text: str, keep: str = "._=,+-", fill: str = "_", limit: int | None = None) -> str:
    """`text` as part of a file name: each run of characters other than letters, digits and
    `keep` becomes `fill` (a run name keeps ``=``, ``,`` and ``+``)."""
    return re.sub(f"[^A-Za-z0-9{re.escape(keep)}]+", fill, text)[:limit]


def csv_cell(value) -> str:
    """A value as a CSV cell that `read_value` turns back into it: floats exactly, None empty."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value if isinstance(value, str) else format_value(value)


def read_value(text: str):
    """A CSV cell as the value it was written from: None, an int, a float or text."""
    if text == "":
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text


def write_csv(path: str | Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    """Rows as CSV, atomically; columns in the order given (default: as they first appear)."""
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([csv_cell(row.get(key)) for key in columns] for row in rows)
    return write_text(path, buffer.getvalue())


def read_csv(path: str | Path) -> list[dict]:
    """The rows `write_csv` wrote, each cell read back as its value (`read_value`)."""
    with open(path, newline="") as f:
        return [{key: read_value(value) for key, value in row.items()}
                for row in csv.DictReader(f)]
