"""Source locations and the one diagnostic format every user-facing error uses.

A user mistake is a `SpecError` holding one or more `Diagnostic`s, each printed as
``file:line:col: error: layer 'x' (op): what`` plus notes and a hint. Netspec's own
bugs are `InternalError`. Op shape functions raise `ShapeMismatch`; the driver adds
the location and layer.

Every text a diagnostic carries is capped (`cap_text`): a spec value can be megabytes
long (a 10 MB scalar, a pasted file), and an error must quote it, not reproduce it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
import difflib
import re
from typing import Any

MAX_QUOTE = 200  # longest run of non-blank characters a diagnostic quotes
MAX_FIELD = 1000  # longest message, note, hint or location (listing hints are ~400)
MAX_SHOWN = 100  # diagnostics a SpecError prints; the rest are counted
_LONG_RUN = re.compile(rf"\S{{{MAX_QUOTE + 1},}}")


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    """`text`, or its first `limit` characters + an ellipsis and the full length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} chars)"


def cap_text(text: str) -> str:
    """Clip every over-long word of `text`, then `text` itself (see MAX_QUOTE/MAX_FIELD)."""
    if len(text) <= MAX_QUOTE:
        return text
    return clip(_LONG_RUN.sub(lambda m: clip(m.group()), text), MAX_FIELD)


def describe_value(value: Any) -> str:
    """'the int 5', 'a list [1, 2]', 'the string 'abc'': what a user wrote, quoted
    safely (one line, capped) for a "found ..." clause."""
    kinds = ((bool, "the boolean"), (int, "the int"), (float, "the float"),
             (str, "the string"), (list, "a list"), (dict, "a mapping"))
    if value is None:
        return "null"
    kind = next((k for t, k in kinds if isinstance(value, t)), f"a {type(value).__name__}")
    lines = repr(value).splitlines() or [""]  # the loader's wrappers repr as list/dict
    return f"{kind} {clip(lines[0] + (' ...' if len(lines) > 1 else ''), 80)}"


@dataclass(frozen=True, slots=True)
class SourceLoc:
    file: str
    line: int = 0  # 1-based; 0 = unknown
    col: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col}" if self.col else f"{self.file}:{self.line}"


UNKNOWN_LOC = SourceLoc("<spec>")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    loc: SourceLoc
    message: str
    node: str | None = None
    op: str | None = None
    notes: tuple[str, ...] = ()
    hint: str | None = None
    severity: str = "error"

    def __post_init__(self) -> None:
        # Quoted user text is capped once, here, whatever pass built the message.
        object.__setattr__(self, "message", cap_text(self.message))
        object.__setattr__(self, "notes", tuple(cap_text(n) for n in self.notes))
        if self.hint is not None:
            object.__setattr__(self, "hint", cap_text(self.hint))
        if self.node is not None:
            object.__setattr__(self, "node", clip(self.node, 80))

    def __str__(self) -> str:
        where = ""
        if self.node:
            where = f"layer '{self.node}' ({self.op}): " if self.op else f"layer '{self.node}': "
        lines = [f"{clip(str(self.loc), MAX_QUOTE)}: {self.severity}: {where}{self.message}"]
        lines += [f"  {note}" for note in self.notes]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class SpecError(Exception):
    """User-facing: one or more diagnostics about a spec, a config or data."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        shown = [str(d) for d in self.diagnostics[:MAX_SHOWN]]
        if len(self.diagnostics) > MAX_SHOWN:  # 10,000 broken layers: the first ones matter
            shown.append(f"... and {len(self.diagnostics) - MAX_SHOWN:,} more (fix the ones "
                         "above first)")
        super().__init__("\n".join(shown))

    @classmethod
    def at(cls, loc: SourceLoc, message: str, **kw: object) -> SpecError:
        return cls([Diagnostic(loc, message, **kw)])  # type: ignore[arg-type]


class ShapeMismatch(Exception):
    """Raised by an op's pure shape function; the driver adds layer and location."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class InternalError(Exception):
    """A netspec bug (e.g. inferred and Keras shapes disagree), never a user mistake."""


class DiagnosticSink:
    """Collects diagnostics so that a pass reports every independent error at once."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, loc: SourceLoc, message: str, **kw: object) -> None:
        self.items.append(Diagnostic(loc, message, **kw))  # type: ignore[arg-type]

    def extend(self, err: SpecError) -> None:
        self.items.extend(err.diagnostics)

    def raise_if_any(self) -> None:
        """Raise every collected diagnostic, in file/line order."""
        if self.items:
            unique = list({repr(d): d for d in self.items}.values())  # one per cause
            raise SpecError(sorted(unique, key=lambda d: (d.loc.file, d.loc.line, d.loc.col)))


def did_you_mean(word: str, choices: Iterable[str], what: str = "valid") -> str:
    """A hint naming the closest choice, or listing them all when nothing is close."""
    choices = sorted(set(map(str, choices)))  # YAML keys may be ints
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6) \
        if len(word) <= MAX_QUOTE else []  # no name is that long (and matching would be slow)
    if close:
        return f"did you mean '{close[0]}'?"
    if not choices:
        return f"there are no {what}"
    listed = ", ".join(choices[:40]) + (", ..." if len(choices) > 40 else "")
    return f"{what}: {listed}"
