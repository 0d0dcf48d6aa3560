"""Where data files come from: a directory given by the caller, the environment, the cache (with a
one-time download), in that order. Shared by every corpus.

1. the directory given by the caller (the experiments' `--data-dir` flag), which must hold the corpus;
2. the directory in the environment variable `EQDD_DATA_DIR` (a corpus it lacks is looked for further);
3. fixed system directories a corpus names (e.g. where a Debian package installs it);
4. the cache directory (`$EQDD_CACHE_DIR`, else `$XDG_CACHE_HOME/eqdd`, else `~/.cache/eqdd`), into
   which the standard files are downloaded once when they are not there yet.
"""

import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from eqdd._progress import progress

DATA_DIR_VARIABLE = "EQDD_DATA_DIR"


class DataError(RuntimeError):
    """A corpus could not be found, downloaded or accepted; the message says what to do."""


def cache_dir() -> Path:
    """The directory where corpora are downloaded and kept."""
    if "EQDD_CACHE_DIR" in os.environ:
        return Path(os.environ["EQDD_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "eqdd"


def download(url: str, target: Path, error: type[DataError], hint: str, timeout: float = 20.0) -> Path:
    """Download `url` to `target` with a progress bar; the file appears atomically.

    Raises:
        error: when the download fails (for example offline), with `hint` on how to supply the file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with progress(total, f"downloading {url}", "B", unit_scale=True) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as failure:
        partial.unlink(missing_ok=True)
        raise error(f"downloading {url} failed ({failure}). {hint}") from failure
    partial.replace(target)
    return target


def locate(
    find: Callable[[Path], Path | None],
    what: str,
    error: type[DataError],
    data_dir: str | os.PathLike | None = None,
    system_dirs: Sequence[str | os.PathLike] = (),
    fetch: Callable[[Path], Path] | None = None,
    allow_download: bool = True,
) -> Path:
    """Find a corpus (see the module docstring for the order).

    Arguments:
        find: returns the corpus's path in a directory, or `None`.
        what: how to name the expected files in messages (e.g. "`text8` or `text8.zip`").
        error: the corpus's error class.
        data_dir: a directory given explicitly; `None` to use the environment or the cache.
        system_dirs: directories searched after the environment and before the cache.
        fetch: downloads the corpus into a directory (the cache) and returns its path.
        allow_download: whether to call `fetch` when nothing is found.

    Raises:
        error: when a given directory holds no corpus, or when nothing is found and the download is
            disallowed, impossible or fails.
    """
    if data_dir:
        directory = Path(data_dir).expanduser()
        found = find(directory) if directory.is_dir() else None
        if found is None:
            raise error(
                f"--data-dir points to {directory}, which holds no {what}"
                f"{'' if directory.is_dir() else ' (it is not a directory)'}."
            )
        return found
    searched = [*map(Path, system_dirs), cache_dir()]
    if os.environ.get(DATA_DIR_VARIABLE):
        # The environment names a directory for every corpus: one it lacks is looked for elsewhere.
        directory = Path(os.environ[DATA_DIR_VARIABLE]).expanduser()
        if not directory.is_dir():
            raise error(f"{DATA_DIR_VARIABLE} points to {directory}, which is not a directory.")
        searched.insert(0, directory)
    for directory in searched:
        found = find(directory) if directory.is_dir() else None
        if found is not None:
            return found
    if not allow_download or fetch is None:
        raise error(
            f"{what} not found in {', '.join(map(str, searched))}: pass --data-dir, set "
            f"{DATA_DIR_VARIABLE}, or put the files in {cache_dir()}."
        )
    return fetch(cache_dir())


def hint(what: str, directory: Path) -> str:
    """How to supply a corpus by hand, for download errors."""
    return (
        f"Put {what} in a directory and pass it with --data-dir or the environment variable "
        f"{DATA_DIR_VARIABLE}, or place it in the cache directory {directory}."
    )


class Tree:
    """A directory or a zip archive, seen as relative paths of files (with `/`) and their bytes."""

    def __init__(self, path: Path):
        self.path = path
        if path.suffix == ".zip":
            self._zip = zipfile.ZipFile(path)
            self.names = [n for n in self._zip.namelist() if not n.endswith("/")]
        else:
            self._zip = None
            self.names = [p.relative_to(path).as_posix() for p in sorted(path.rglob("*")) if p.is_file()]

    def read(self, name: str) -> bytes:
        return self._zip.read(name) if self._zip else (self.path / name).read_bytes()
