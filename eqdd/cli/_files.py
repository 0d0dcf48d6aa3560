"""Writing a command's output safely: checked before any work, written atomically."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


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


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A file to write `path` through: a temporary file next to it, renamed to `path` when the block
    ends without an error and deleted when it raises; `path` gets the mode a newly created file gets
    (0666 less the umask), not the temporary file's 0600."""
    with tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as file:
        temporary = Path(file.name)
        try:
            yield file
        except BaseException:
            file.close()
            temporary.unlink(missing_ok=True)
            raise
    try:
        umask = os.umask(0)
        os.umask(umask)
        temporary.chmod(0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through [`atomic_file`][]."""
    with atomic_file(path) as file:
        file.write(data)
