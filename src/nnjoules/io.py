"""Atomic file writes: a reader never sees half a file, an interruption loses nothing.

A write that fails (a full disk, a file size limit, a read-only folder) removes its
temporary file, leaves any earlier file at ``path`` as it was, and raises an `InputError`
naming the file and the operating system's reason: the CLI prints it as one line and
exits with code 2, as for any output path the user gave that cannot be used.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nnjoules.errors import InputError


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename.

    Raises:
        InputError: the folder does not exist or is not writable, or the write fails
            (e.g. no space left on the device); nothing is left behind.
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{path}: folder {folder} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise InputError(f"{path}: cannot write here ({_reason(err)})") from None
    try:
        # mkstemp creates the file 0600; give it the mode an ordinary open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"{path}: cannot write ({_reason(err)}); nothing was written") \
            from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def json_text(data: Mapping[str, Any], path: str | Path | None = None) -> str:
    """``data`` as JSON text indented by 2; also written atomically to ``path`` when given.

    The file gets a final newline; the returned text has none.

    Raises:
        InputError: ``path`` cannot be written (see `write_bytes_atomic`).

    >>> json_text({"a": 1.5})
    '{\\n  "a": 1.5\\n}'
    """
    text = json.dumps(data, indent=2)
    if path is not None:
        write_text_atomic(Path(path), text + "\n")
    return text


def os_error_message(err: OSError) -> str:
    """One line for an `OSError` raised outside `write_bytes_atomic`: file and reason.

    >>> os_error_message(PermissionError(13, "Permission denied", "/sys/run"))
    '/sys/run: Permission denied'
    """
    return _reason(err) if err.filename is None else f"{err.filename}: {_reason(err)}"


def _reason(err: OSError) -> str:
    """The operating system's words for ``err`` (``No space left on device``)."""
    return err.strerror or str(err) or type(err).__name__
