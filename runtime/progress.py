"""Progress for long loops on stderr: a tqdm bar on a terminal, nothing otherwise, so CI
logs and tests stay concise (each command prints its own one-line summaries)."""

from __future__ import annotations

import sys
from typing import Any


class Bar:
    """`with Bar(total, "eval", "batch") as bar: ... bar.update()`; silent off a TTY."""

    def __init__(self, total: int | None, desc: str, unit: str = "it",
                 leave: bool = False, initial: int = 0) -> None:
        self._bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave,
                             dynamic_ncols=True, initial=initial)

    def write(self, line: str) -> None:
        """Print a line to stderr above the bar (or plainly when there is none)."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)  # noqa: T201 - user-facing progress

    def update(self, n: int = 1, **postfix: str) -> None:
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
