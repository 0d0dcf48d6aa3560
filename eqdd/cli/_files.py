"""Writing a command's output safely: checked before any work, written atomically."""

import os
from pathlib import Path

from eqdd._atomic import atomic_file


def check_output(source: Path | None, target: Path, force: bool) -> None:
    """Refuse, before any work, an output that is the input, that exists (unless `force`), or whose
    directory cannot take a new file.

    Raises:
        OSError: with a message naming `target`.
    """
    if source is not None and target.exists() and source.exists() and os.path.samefile(source, target):
        raise OSError(f"{target} is the input file; write the output elsewhere")
    if target.is_dir():
        raise OSError(f"{target} is a directory; give a file name for the output")
    if target.exists() and not force:
        raise OSError(f"{target} already exists; use --force to overwrite it")
    directory = target.parent
    if not directory.is_dir():
        raise OSError(f"cannot write {target}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OSError(f"cannot write {target}: the directory {directory} is not writable")


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through [`atomic_file`][]."""
    with atomic_file(path) as file:
        file.write(data)
