"""Bad-data errors and the per-row `on_error` policy shared by every dataset reader.

A `DataError` is a `SpecError` whose diagnostics point at the offending data file and
line (``train.txt:17: error: ...``), so the CLI prints it like any spec mistake.
"""

from __future__ import annotations

from compiler.diagnostics import SourceLoc, SpecError

ON_ERROR = ("raise", "skip")
SKIP_HINT = "fix or delete it, or set `on_error: skip` to skip such rows"


class DataError(SpecError):
    """A dataset that cannot be read as asked: bad rows, missing images, unknown format.

    Build one with the inherited `DataError.at(SourceLoc(file, line), message, hint=...)`.
    """


class BadRow(Exception):
    """Raised by a row parser; the reader's loop adds the location and applies the policy."""

    def __init__(self, message: str, hint: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        self.line = line  # overrides the row's own line when the fault is further in


class RowPolicy:
    """Applies `on_error` to bad rows: raise a `DataError`, or skip and remember why."""

    def __init__(self, on_error: str) -> None:
        if on_error not in ON_ERROR:
            raise DataError.at(
                SourceLoc("<data>"), f"on_error must be one of {', '.join(ON_ERROR)}, "
                f"got {on_error!r}", hint="use on_error: raise (default) or on_error: skip")
        self.on_error = on_error
        self._skipped: list[tuple[str, str]] = []

    def bad(self, loc: SourceLoc, err: BadRow) -> None:
        """Handles one bad row; returns only when the row is to be skipped."""
        if err.line is not None:
            loc = SourceLoc(loc.file, err.line)
        if self.on_error == "raise":
            hint = f"{err.hint}; or set `on_error: skip` to skip such rows" if err.hint \
                else SKIP_HINT
            raise DataError.at(loc, str(err), hint=hint)
        self._skipped.append((str(loc), str(err)))

    @property
    def skipped(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._skipped)


# Why a row was skipped, for the one-line summary: the first pattern that matches the
# reason names its kind (reasons are the readers' own BadRow messages).
_KINDS = (
    ("decompression-bomb", "oversized image"),
    ("far outside", "landmark far outside its image"),
    ("not found|no image for|symbolic link| is a folder", "missing image"),
    ("cannot be decoded|not an image file|cannot be read|cannot read|is empty|cannot decode",
     "unreadable image"),
    ("expected a number|finite coordinate", "non-numeric coordinate"),
    (r"landmarks per face|expected \d+ |n_points|fields|coordinate columns|keypoint",
     "wrong point count"),
    ("invisible", "no visible landmark"),
)
EXAMPLES = 3


def skip_kind(reason: str) -> str:
    import re

    return next((kind for pattern, kind in _KINDS if re.search(pattern, reason)),
                "other bad row")


def skip_summary(skipped: tuple[tuple[str, str], ...], total: int, source: str) -> str:
    """'skipped 3 of 10,000 rows of train.txt (2 unreadable images, 1 wrong point count)'
    plus up to `EXAMPLES` lines 'file:line: reason'; printed once when data is read."""
    counts: dict[str, int] = {}
    for _, reason in skipped:
        kind = skip_kind(reason)
        counts[kind] = counts.get(kind, 0) + 1
    kinds = ", ".join(f"{n} {_plural(kind, n)}" for kind, n in
                      sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    lines = [f"data.on_error: skip: skipped {len(skipped):,} of {total:,} rows of {source} "
             f"({kinds}), e.g."]
    lines += [f"  {loc}: {reason}" for loc, reason in skipped[:EXAMPLES]]
    if len(skipped) > EXAMPLES:
        lines.append(f"  ... and {len(skipped) - EXAMPLES:,} more")
    return "\n".join(lines)


def _plural(kind: str, n: int) -> str:
    if n == 1:
        return kind
    return "landmarks far outside their images" if kind.startswith("landmark far") \
        else kind + "s"
