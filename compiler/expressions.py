"""The tiny, safe expression language inside `${...}`: never Python's eval.

Grammar: `A if COND else B`; or-expr of and/not/comparison (== != < <= > >=) over
+ - * / % terms, unary minus, parentheses, integer/float literals, names and indexing
`name[expr]`, 'quoted' strings (`+` joins them), plus `len`, `min`, `max`, `str`, `int`.
`/` is exact integer division on ints (an error when it does not divide) so sizes
never silently become floats.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
import re
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(\d+\.\d*|\d+)|([A-Za-z_]\w*)|('[^']*')|(==|!=|<=|>=|[-+*/%()<>\[\],]))")
_FUNCS = {"len": len, "min": min, "max": max, "str": str, "int": int}


MAX_STR = 10_000  # longest string an expression may build (names are short)


def _bounded(v: Any, text: str) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and not -(2**63) <= v < 2**64:
        raise ExprError(f"number too large (more than 64 bits) in '{text[:60]}'")
    if isinstance(v, float) and not math.isfinite(v):
        raise ExprError(f"result is not a finite number ({v}) in '{text[:60]}'")
    if isinstance(v, str) and len(v) > MAX_STR:
        raise ExprError(f"string of {len(v):,} characters (at most {MAX_STR:,}) in "
                        f"'{text[:60]}'")
    return v


class ExprError(Exception):
    """A malformed expression or an unknown name; `name` is set for unknown names."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


def _tokenize(text: str) -> list[str]:
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ExprError(f"cannot read '{text[pos:].strip()}' in expression '{text}'")
        out.append(m.group(0).strip())
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, env: Mapping[str, Any]) -> None:
        self.text, self.env = text, env
        self.toks = _tokenize(text)
        self.i = 0
        self.dead = 0  # > 0 while parsing a branch that is not taken: syntax only, no values

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            want = f"'{expected}'" if expected else "a value"
            raise ExprError(f"expected {want} in expression '{self.text}'")
        self.i += 1
        return tok

    def parse(self) -> Any:
        value = self.conditional()
        if self.peek() is not None:
            raise ExprError(f"unexpected '{self.peek()}' in expression '{self.text}'")
        return value

    def conditional(self) -> Any:
        """`A if C else B` evaluates only the branch taken (Python's rule), so
        `x[i - 1] if i > 0 else 0` is fine at i = 0 (names must still exist in both). A
        comes before C, so it is first parsed for syntax only and evaluated once C is known."""
        start = self.i
        self.dead += 1
        self.or_expr()
        self.dead -= 1
        if self.peek() != "if":
            if self.dead:
                return None
            self.i = start
            return self.or_expr()
        self.take()
        cond = self.or_expr()
        self.take("else")
        if self.dead:
            self.conditional()
            return None
        if not isinstance(cond, bool):
            raise ExprError(f"condition must be true or false, found {cond!r} in "
                            f"'{self.text}'")
        if not cond:
            return self.conditional()
        self.dead += 1
        self.conditional()
        self.dead -= 1
        end, self.i = self.i, start
        value = self.or_expr()
        self.i = end
        return value

    def or_expr(self) -> Any:
        v = self.and_expr()
        while self.peek() == "or":
            self.take()
            rhs = self.and_expr()
            v = bool(v) or bool(rhs)
        return v

    def and_expr(self) -> Any:
        v = self.not_expr()
        while self.peek() == "and":
            self.take()
            rhs = self.not_expr()
            v = bool(v) and bool(rhs)
        return v

    def not_expr(self) -> Any:
        if self.peek() == "not":
            self.take()
            return not self.not_expr()
        return self.comparison()

    def comparison(self) -> Any:
        v = self.sum()
        ops = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
               "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}
        if self.peek() in ops:
            op = self.take()
            rhs = self.sum()
            if self.dead:
                return None
            try:
                return ops[op](v, rhs)
            except TypeError:
                raise ExprError(f"cannot compare {v!r} {op} {rhs!r} in '{self.text}'") from None
        return v

    def sum(self) -> Any:
        v = self.product()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.product()
            v = self._arith(op, v, rhs)
        return v

    def product(self) -> Any:
        v = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            rhs = self.unary()
            v = self._arith(op, v, rhs)
        return v

    def _arith(self, op: str, a: Any, b: Any) -> Any:
        """One step, its result bounded: params feed params (`p2: ${p1 * p1}`), so 40
        unbounded lines would square a number or double a string past any memory."""
        if self.dead:
            return None
        return _bounded(self._step(op, a, b), self.text)

    def _step(self, op: str, a: Any, b: Any) -> Any:
        nums = (int, float)
        if op == "+" and isinstance(a, str) and isinstance(b, str):
            return a + b
        if not (isinstance(a, nums) and isinstance(b, nums)) or isinstance(a, bool) \
                or isinstance(b, bool):
            raise ExprError(f"'{op}' needs numbers, found {a!r} and {b!r} in '{self.text}'")
        if op in ("/", "%") and b == 0:
            raise ExprError(f"division by zero in '{self.text}'")
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "%":
            return a % b
        if isinstance(a, int) and isinstance(b, int):
            if a % b:
                raise ExprError(f"{a} / {b} is not a whole number in '{self.text}'")
            return a // b
        return a / b

    def unary(self) -> Any:
        if self.peek() == "-":
            self.take()
            v = self.unary()
            if self.dead:
                return None
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise ExprError(f"cannot negate {v!r} in '{self.text}'")
            return -v
        return self.postfix()

    def postfix(self) -> Any:
        v = self.atom()
        while self.peek() == "[":
            self.take("[")
            idx = self.conditional()
            self.take("]")
            if self.dead:
                continue
            if not isinstance(v, (list, tuple)):
                raise ExprError(f"cannot index {v!r} in '{self.text}' (not a list)")
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise ExprError(f"list index must be an int, found {idx!r} in '{self.text}'")
            if not -len(v) <= idx < len(v):
                raise ExprError(f"index {idx} is out of range for a list of {len(v)} "
                                f"in '{self.text}'")
            v = v[idx]
        return v

    def atom(self) -> Any:
        tok = self.take()
        if tok[0] == "'":
            return tok[1:-1]
        if tok == "(":
            v = self.conditional()
            self.take(")")
            return v
        if tok[0].isdigit():
            return float(tok) if "." in tok else int(tok)
        if tok in ("true", "false"):
            return tok == "true"
        if tok[0].isalpha() or tok[0] == "_":
            if tok in _FUNCS and self.peek() == "(":
                self.take("(")
                args = [self.conditional()]
                while self.peek() == ",":
                    self.take(",")
                    args.append(self.conditional())
                self.take(")")
                if self.dead:
                    return None
                try:
                    return _FUNCS[tok](*args)
                except (TypeError, ValueError, OverflowError) as e:
                    raise ExprError(f"{tok}(): {e} in '{self.text}'") from None
            if tok not in self.env:  # a typo is an error in a branch not taken, too
                raise ExprError(f"unknown name '{tok}' in '{self.text}'", name=tok)
            return self.env[tok]
        raise ExprError(f"unexpected '{tok}' in expression '{self.text}'")


def evaluate(text: str, env: Mapping[str, Any]) -> Any:
    """Evaluate one `${...}` body against `env` (params, loop variables, template args)."""
    if not text.strip():
        raise ExprError("empty expression '${}'")
    try:
        return _Parser(text, env).parse()
    except RecursionError:
        raise ExprError(f"expression nests too deeply: '{text[:40]}...'") from None
    except (OverflowError, ValueError) as e:  # e.g. int(inf), a 5000-digit literal
        raise ExprError(f"cannot evaluate '{text[:60]}': {e}") from None
