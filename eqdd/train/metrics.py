"""Training metrics as JSON lines (one object per logged step)."""

import json
import os
import sys
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSON-lines metrics that survive a resume.

    Opening the log at `start_step` drops lines logged after it by a run that was killed before its
    next checkpoint, so the file always describes one consistent history, and lines that are not JSON
    (a write torn by a kill); the file is rewritten atomically. With `path=None` (on the processes of a
    multi-host run that do not write files) it writes nothing.
    """

    def __init__(self, path: str | Path | None, start_step: int):
        self._file = None
        if path is None:
            return
        self.path = Path(path)
        kept = []
        if self.path.exists():
            kept = [record for record in _records(self.path) if record.get("step", 0) <= start_step]
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_text("".join(json.dumps(record) + "\n" for record in kept))
        os.replace(temporary, self.path)
        self._file = open(self.path, "a")

    def write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _records(path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        try:
            record = json.loads(line) if line.strip() else None
        except ValueError:
            record = None
            print(f"eqdd: ignoring line {number} of {path}: not JSON (a write cut short)", file=sys.stderr)
        if isinstance(record, dict):
            records.append(record)
    return records


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics file, in order; a line that is not a JSON object (a write torn by a
    kill) is skipped with a one-line notice."""
    return _records(Path(path))
