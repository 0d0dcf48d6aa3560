"""Files that appear whole or not at all: written through a temporary file renamed into place."""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


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
