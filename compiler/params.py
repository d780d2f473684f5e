"""Op parameter schemas: frozen dataclasses checked against raw YAML values.

Each op declares a dataclass deriving from `OpParams`; `coerce_params` turns the
layer's keys into an instance or a list of diagnostics (unknown key with a
did-you-mean, wrong type, YAML's on/off booleans, missing required, out of range).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
import difflib
import functools
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

from compiler.diagnostics import Diagnostic, SourceLoc, SpecError, did_you_mean


@dataclass(frozen=True)
class OpParams:
    """Base of every op's params. `problems` adds cross-field checks."""

    def problems(self) -> list[tuple[str, str]]:
        """(param, message) pairs for values that are well-typed but inconsistent."""
        return []


def param(default: Any = MISSING, doc: str = "", *, min: float | None = None,
          max: float | None = None, max_exclusive: bool = False) -> Any:
    """A documented params field; `min`/`max` bound numbers (and tuple elements)."""
    meta = {"doc": doc, "min": min, "max": max, "max_exclusive": max_exclusive}
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def describe_type(tp: Any) -> str:
    """A short human form: 'int', 'int or [int, int]', 'one of same, valid'."""
    origin = get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) if not isinstance(a, str) else a for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"[{describe_type(args[0])}, ...]"
        return "[" + ", ".join(describe_type(a) for a in args) + "]"
    if origin in (dict, Mapping) or tp is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    kind = {bool: "boolean", int: "int", float: "float", str: "string", list: "list",
            dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)
    if isinstance(value, dict):
        kind = "mapping"
    elif isinstance(value, list):
        kind = "list"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind} {text}"


def _matches(value: Any, tp: Any) -> tuple[bool, Any]:
    """Does `value` fit `tp`? Returns (ok, converted value): lists become tuples."""
    origin = get_origin(tp)
    if tp is Any:
        return True, value
    if tp is type(None):
        return value is None, value
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in get_args(tp)), value
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            ok, conv = _matches(value, arg)
            if ok:
                return True, conv
        return False, value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return False, value
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        if len(args) != len(value):
            return False, value
        out = []
        for v, a in zip(value, args, strict=True):
            ok, conv = _matches(v, a)
            if not ok:
                return False, value
            out.append(conv)
        return True, tuple(out)
    if origin in (dict, Mapping) or tp is dict:
        return isinstance(value, Mapping), value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False, value
        return True, float(value)
    if tp is str:
        return isinstance(value, str), value
    return isinstance(value, tp), value


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, tuple):
        return [x for v in value for x in _numbers(v)]
    return []


def _range_problem(f: Field[Any], value: Any) -> str | None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    excl = f.metadata.get("max_exclusive")
    for x in _numbers(value):
        if lo is not None and x < lo:
            return f"must be >= {lo}, found {x}"
        if hi is not None and (x >= hi if excl else x > hi):
            return f"must be {'<' if excl else '<='} {hi}, found {x}"
    return None


@functools.cache
def schema_fields(cls: type[OpParams]) -> tuple[tuple[Field[Any], Any], ...]:
    """(field, resolved type) pairs of a params dataclass, in declaration order (cached)."""
    hints = get_type_hints(cls)
    return tuple((f, hints[f.name]) for f in fields(cls))


def coerce_params(
    cls: type[OpParams],
    raw: Mapping[str, Any],
    loc: SourceLoc,
    *,
    node: str | None = None,
    op: str | None = None,
    key_locs: Callable[[str], SourceLoc] | None = None,
    section: str | None = None,
) -> tuple[OpParams | None, list[Diagnostic]]:
    """Validate `raw` against `cls`. Returns (params, []) or (None, diagnostics).

    Layer params read "layer 'x' (conv2d): unknown param 'y'"; a spec section such as
    `train:` (given as `section`) reads "train: unknown key 'y'".
    """
    where = key_locs or (lambda _k: loc)
    known = dict((f.name, (f, tp)) for f, tp in schema_fields(cls))
    errors: list[Diagnostic] = []
    values: dict[str, Any] = {}

    def err(key: str | None, msg: str, hint: str | None = None) -> None:
        if section:
            msg = f"{section}: " + msg.replace("param '", "key '", 1)
        errors.append(Diagnostic(where(key) if key else loc, msg, node=node,
                                 op=None if section else op, hint=hint))

    misspelt: set[str] = set()  # known names an unknown key probably meant
    for key, value in raw.items():
        if key not in known:
            err(key, f"unknown param '{key}'",
                did_you_mean(str(key), known, f"params of {op or cls.__name__}"))
            misspelt.update(difflib.get_close_matches(str(key), known, n=1, cutoff=0.6))
            continue
        f, tp = known[key]
        ok, conv = _matches(value, tp)
        if not ok:
            hint = None
            if isinstance(value, bool) and tp is not bool:
                hint = "YAML reads on/off/yes/no as booleans: quote the value"
            elif isinstance(value, str) and value.startswith("$"):
                hint = "only whole '$name' values are substituted; check the param name"
            elif isinstance(value, float) and get_origin(tp) is None and tp is int:
                hint = "write a whole number"
            err(key, f"param '{key}': expected {describe_type(tp)}, found {_show(value)}", hint)
            continue
        if (problem := _range_problem(f, conv)) is not None:
            err(key, f"param '{key}' {problem}")
            continue
        values[key] = conv
    for name, (f, _tp) in known.items():
        if f.default is MISSING and f.default_factory is MISSING and name not in raw \
                and name not in misspelt:  # the typo's did-you-mean already names it
            err(None, f"missing required param '{name}' ({describe_type(known[name][1])})",
                f"see `netspec ops {op}`" if op else None)
    if errors:
        return None, errors
    params = cls(**values)
    for key, msg in params.problems():
        err(key if key in raw else None, f"param '{key}': {msg}")
    if errors:
        return None, errors
    return params, []


@dataclass(frozen=True)
class NoParams(OpParams):
    """The params of an op that takes none."""


def section_config(cls: type[OpParams], raw: Mapping[str, Any] | None, loc: SourceLoc,
                   section: str) -> Any:
    """A spec section (`train:`, `eval:`, ...) as a validated `cls`, or a SpecError listing
    every bad key at its own line (the section's mapping carries `loc_of`)."""
    cfg, errors = coerce_params(cls, dict(raw or {}), loc, key_locs=getattr(raw, "loc_of", None),
                               section=section)
    if cfg is None:
        raise SpecError(errors)
    return cfg
