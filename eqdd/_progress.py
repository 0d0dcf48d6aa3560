"""Progress bars that stay readable in a terminal and in a log file."""

import sys

from tqdm.auto import tqdm


def progress(
    total: int | None, desc: str, unit: str, enabled: bool = True, initial: int = 0, **kwargs
) -> tqdm:
    """A tqdm bar; redrawn at most every 30 s when stderr is not a terminal, so logs stay short."""
    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        disable=not enabled,
        mininterval=0.1 if interactive else 30.0,
        dynamic_ncols=interactive,
        **kwargs,
    )
