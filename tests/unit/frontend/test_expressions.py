"""The `${...}` expression language: precedence, types, strings, conditionals, errors."""

from __future__ import annotations

from typing import Any

import pytest

from compiler.expressions import ExprError, evaluate

ENV = {"a": [1, 2, 3], "n": 2, "size": 80, "t": True, "f": False, "name": "enc",
       "grid": [[1, 2], [3, 4]], "x": 1.5}


@pytest.mark.parametrize(("text", "value"), [
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("10 - 4 - 3", 3),  # left-associative
    ("100 / 10 / 5", 2),
    ("-2 * 3", -6),
    ("2 * -3", -6),
    ("--2", 2),
    ("7 % 4 + 1", 4),
    ("size / 2", 40),
    ("size / 2 - n * 3", 34),
    ("7.0 / 2", 3.5),
    ("x * 2", 3.0),
    ("1 + 2 == 3", True),
    ("1 + 2 != 3", False),
    ("n >= 2 and n < 3", True),
    ("not n == 2", False),  # not binds looser than ==
    ("not t or t", True),
    ("f or t and f", False),  # and binds tighter than or
    ("(f or t) and t", True),
    ("a[0] + a[n]", 4),
    ("a[-1]", 3),
    ("a[n - 1] * 10", 20),
    ("grid[1][0]", 3),
    ("a[n if t else 0]", 3),
    ("len(a) + 1", 4),
    ("min(a[2], n)", 2),
    ("max(1, 5, 3)", 5),
    ("min(a)", 1),
    ("  n  ", 2),
])
def test_arithmetic_logic_and_indexing(text: str, value: Any) -> None:
    result = evaluate(text, ENV)
    assert result == value
    assert type(result) is type(value)  # ints stay ints: sizes never become floats


@pytest.mark.parametrize(("text", "value"), [
    ("'ab' + 'c'", "abc"),
    ("name + str(n)", "enc2"),
    ("'br' + str(n + 1) + '.conv'", "br3.conv"),
    ("int('7') + 1", 8),
    ("'a' == 'a'", True),
    ("''", ""),
    ("'down' if t else 'conv2'", "down"),
    ("'down' if f else 'conv2'", "conv2"),
    ("1 if f else 2 if t else 3", 2),  # right-associative
    ("(1 if f else 2) + 10", 12),
    ("'fine' + str(n) if n > 0 else 'br1.conv2'", "fine2"),
])
def test_strings_and_conditionals(text: str, value: Any) -> None:
    assert evaluate(text, ENV) == value


@pytest.mark.parametrize(("text", "message"), [
    ("a +", "expected a value in expression 'a +'"),
    ("", "empty expression"),
    ("(1 + 2", "expected ')'"),
    ("1 2", "unexpected '2'"),
    ("1 < 2 < 3", "unexpected '<'"),  # no chained comparisons
    ("size / 3", "80 / 3 is not a whole number"),
    ("n / 0", "division by zero"),
    ("n % 0", "division by zero"),
    ("a[3]", "index 3 is out of range for a list of 3"),
    ("a[-4]", "out of range"),
    ("n[0]", "cannot index 2"),
    ("a[t]", "list index must be an int"),
    ("a[1.0]", "list index must be an int"),
    ("'a' + 1", "'+' needs numbers"),
    ("t + 1", "'+' needs numbers"),  # booleans are not numbers
    ("a * 2", "'*' needs numbers"),
    ("-'a'", "cannot negate"),
    ("1 if n else 2", "condition must be true or false"),
    ("1 if t", "expected 'else'"),
    ("a < 1", "cannot compare"),
    ("len(n)", "len():"),
    ("int('x')", "int():"),
    ("max()", "unexpected ')'"),
    ("1 $ 2", "cannot read '$ 2'"),
    ("a.b", "cannot read '.b'"),
    ("'open", "cannot read"),
    ("__import__('os')", "unknown name '__import__'"),  # never Python's eval
    ("len", "unknown name 'len'"),
    pytest.param("(" * 2000 + "1" + ")" * 2000, "nests too deeply", id="deep-parens"),
    pytest.param("9" * 5000, "cannot evaluate", id="5000-digits"),
])
def test_errors(text: str, message: str) -> None:
    with pytest.raises(ExprError) as info:
        evaluate(text, ENV)
    assert message in str(info.value)


def test_unknown_name_carries_the_name_for_did_you_mean() -> None:
    with pytest.raises(ExprError) as info:
        evaluate("sise / 2", ENV)
    assert info.value.name == "sise"
    assert str(info.value) == "unknown name 'sise' in 'sise / 2'"


def test_the_environment_is_not_modified() -> None:
    env = {"a": [1, 2]}
    evaluate("len(a) + a[0]", env)
    assert env == {"a": [1, 2]}


@pytest.mark.parametrize(("text", "value"), [
    ("xs[i - 1] if i > 0 else 0", 0),                      # the untaken branch is not run
    ("'e5' if i == 0 else 'd' + str(xs[9])", "e5"),
    ("xs[9] if i > 0 else (1 if i == 0 else xs[-9])", 1),
    ("(xs[0] if i == 0 else 1 / 0) + (2 if i > 0 else xs[2])", 13),
])
def test_only_the_branch_taken_is_evaluated(text: str, value: Any) -> None:
    assert evaluate(text, {"xs": [10, 2, 3], "i": 0}) == value


@pytest.mark.parametrize(("text", "message"), [
    ("xs[9] if i == 0 else 0", "index 9 is out of range"),   # the branch taken still fails
    ("1 if i == 0 else nosuch", "unknown name 'nosuch'"),     # typos fail in either branch
    ("1 if i == 0 else (", "expected a value"),               # and so does bad syntax
])
def test_errors_in_conditionals(text: str, message: str) -> None:
    with pytest.raises(ExprError, match=message):
        evaluate(text, {"xs": [10, 2, 3], "i": 0})
