"""Hostile expressions: every one is rejected at compile time with a clear ExpressionError.

Escapes to the host (dunder and attribute access, builtins, imports), code constructs
(lambdas, comprehensions, f-strings, format strings, assignment), memory and CPU bombs
(repetition, huge powers, deep nesting, huge sources and literals) and unsafe regular
expressions. Each case runs under a per-test timeout; the whole list also runs in a subprocess
capped at 1 GB of address space, so a case that tried to allocate a bomb would fail there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from reclaim.errors import ConfigError
from reclaim.rules.expression import (
    ExpressionError,
    FactSchema,
    compile_expression,
)

FIELDS = {"name": "string", "cpu_avg": "number", "tags": "map", "items": "list", "x": "any"}
SCHEMA = FactSchema.from_mapping(FIELDS)

# (id, source, a fragment the message must contain). Sources are built from short recipes so
# the 10 MB and 100k-deep cases do not live in this file.
HOSTILE: list[tuple[str, str, str]] = [
    ("class-bases", "().__class__.__bases__", "not allowed"),
    ("subclasses", "().__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("import", "__import__('os')", "not allowed"),
    ("import-system", "__import__('os').system('id')", "not allowed"),
    ("builtins-name", "__builtins__", "not allowed"),
    ("getattr", "getattr(x, '__class__')", "unknown function 'getattr'"),
    ("globals", "globals()", "unknown function 'globals'"),
    ("locals-index", "locals()['x']", "unknown function 'locals'"),
    ("vars", "vars()", "unknown function 'vars'"),
    ("eval", "eval('1')", "unknown function 'eval'"),
    ("exec", "exec('1')", "unknown function 'exec'"),
    ("open", "open('/etc/passwd')", "unknown function 'open'"),
    ("compile", "compile('1', '', 'eval')", "unknown function 'compile'"),
    ("type", "type(x)", "unknown function 'type'"),
    ("print", "print(1)", "unknown function 'print'"),
    ("field-class", "x.__class__", "not allowed"),
    ("map-dict", "tags.__dict__", "not allowed"),
    ("dunder-key", "tags['__class__']", "not allowed"),
    ("private-attr", "x._private", "not allowed"),
    ("function-globals", "lower.__globals__", "not allowed"),
    ("method-call", "name.lower()", "method call .lower() is not allowed"),
    ("join-method", "'-'.join(items)", "method call .join() is not allowed"),
    ("lambda", "(lambda: 1)()", "only the built-in functions can be called"),
    ("lambda-value", "lambda: 1", "lambdas are not allowed"),
    ("list-comprehension", "[y for y in items]", "comprehensions are not allowed"),
    ("dict-comprehension", "{y: 1 for y in items}", "comprehensions are not allowed"),
    ("generator", "len(y for y in items)", "generator expressions are not allowed"),
    ("f-string", "f'{x}'", "f-strings are not allowed"),
    ("format-method", "'{}'.format(x)", "format strings are not allowed"),
    ("percent-format", "'%s' % name", "format strings"),
    ("walrus", "(y := 1)", "assignment (:=) is not allowed"),
    ("starred-call", "min(*items)", "unpacking (*) is not allowed"),
    ("keyword-arg", "round(cpu_avg, ndigits=2)", "keyword arguments are not supported"),
    ("string-bomb", "'a' * 10**10", "repeating a string with * is not allowed"),
    ("list-bomb", "[1] * 10**9", "repeating a list with * is not allowed"),
    ("power-tower", "9**9**9", "exponent"),
    ("power-huge", "2 ** 10**10", "exponent"),
    ("power-field", "cpu_avg ** cpu_avg", "exponent of ** must be an integer literal"),
    ("deep-parens", "(" * 100_000 + "1" + ")" * 100_000, "characters long"),
    ("deep-parens-short", "(" * 4_000 + "1" + ")" * 4_000, "nests brackets"),
    ("deep-lists", "[" * 3_000 + "]" * 3_000, "nests brackets"),
    ("deep-unary", "-" * 9_000 + "1", "nested too deeply"),
    ("deep-not", "not " * 2_400 + "x", "levels deep"),
    ("long-sum", "1+" * 4_000 + "1", "nested too deeply"),
    ("huge-source", "1 + " * 2_500_000 + "1", "characters long"),
    ("huge-int", "9" * 5_000, "syntax error"),
    ("big-int", "x > " + "9" * 100, "digits"),
    ("slice", "name[1:2]", "slices are not supported"),
    ("set-literal", "x in {1, 2}", "set literals are not supported"),
    ("dict-literal", "{'a': 1}", "map literals are not supported"),
    ("bytes", "b'abc' == x", "bytes values are not supported"),
    ("complex", "x == 1j", "complex values are not supported"),
    ("ellipsis", "x == ...", "ellipsis values are not supported"),
    ("matmul", "x @ x", "operator @ is not supported"),
    ("shift", "x << 40", "operator << is not supported"),
    ("invert", "~x", "the ~ operator is not supported"),
    ("await", "await x", "await is not allowed"),
    ("yield", "(yield x)", "yield is not allowed"),
    ("nul-byte", "x\x00", "null bytes"),
    ("unknown-function", "system('id')", "unknown function 'system'"),
    ("hidden-branch", "x if True else __import__('os')", "not allowed"),
    ("regex-backreference", "matches(name, '(a)\\\\1')", "invalid RE2 regular expression"),
    ("regex-lookahead", "matches(name, '(?=a)a')", "invalid RE2 regular expression"),
    ("regex-huge", "matches(name, '((a{100}){100}){100}')", "invalid RE2 regular expression"),
    ("regex-from-field", "matches(name, name)", "must be a literal"),
    ("statement", "import os", "syntax error"),
    ("two-statements", "x; x", "syntax error"),
    ("number-attr", "cpu_avg.real", "has no attribute"),
]


def _cases() -> list[Any]:
    return [pytest.param(source, fragment, id=case_id) for case_id, source, fragment in HOSTILE]


def test_the_list_is_long_enough() -> None:
    assert len(HOSTILE) >= 40
    assert len({case_id for case_id, _, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.timeout(5)
@pytest.mark.parametrize(("source", "fragment"), _cases())
def test_hostile_expression_is_rejected(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, schema=SCHEMA)
    error = caught.value
    assert isinstance(error, ConfigError)
    assert fragment in str(error)
    assert error.location is not None
    assert error.location.line is not None
    assert error.fix, "every rejection says how to fix it"


@pytest.mark.timeout(5)
def test_oversized_constants_are_rejected() -> None:
    with pytest.raises(ExpressionError, match="items; the limit is"):
        compile_expression("x in big", constants={"big": list(range(1_000_000))})
    with pytest.raises(ExpressionError, match="characters long; the limit is"):
        compile_expression("x == big", constants={"big": "a" * 1_000_000})
    with pytest.raises(ExpressionError, match="values are not supported"):
        compile_expression("x == thing", constants={"thing": object()})


@pytest.mark.timeout(5)
def test_catastrophic_regex_runs_in_linear_time() -> None:
    # (a+)+$ takes exponential time in backtracking engines on "aaaa…b"; RE2 and Polars'
    # regex crate do not backtrack, so this finishes well inside the timeout.
    expression = compile_expression("matches(name, '(a+)+$')", schema=SCHEMA)
    hostile = "a" * 100_000 + "b"
    assert expression.evaluate({"name": hostile}) is False
    import polars as pl

    frame = pl.DataFrame({"name": [hostile, "aaa"]})
    assert frame.select(expression.to_polars()).to_series().to_list() == [False, True]


@pytest.mark.timeout(5)
def test_runtime_data_cannot_trigger_repetition() -> None:
    # With undeclared types, '*' is checked when it runs: data cannot make a string bomb.
    from reclaim.rules.expression import EvaluationError

    expression = compile_expression("x * n")
    with pytest.raises(EvaluationError, match="repetition is not supported"):
        expression.evaluate({"x": "a", "n": 10**10})
    # ... nor printf-style formatting with a huge width.
    formatting = compile_expression("x % 7 > 1")
    with pytest.raises(EvaluationError, match="formatting of strings is not supported"):
        formatting.matches({"x": "%0999999999d"})


@pytest.mark.timeout(60)
def test_every_case_is_rejected_within_one_gigabyte() -> None:
    """All cases in one subprocess whose address space is capped at 1 GB."""
    script = textwrap.dedent(
        """
        import json, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from reclaim.rules.expression import ExpressionError, FactSchema, compile_expression
        request = json.load(sys.stdin)
        schema = FactSchema.from_mapping(request["fields"])
        rejected = 0
        for source in request["sources"]:
            try:
                compile_expression(source, schema=schema)
            except ExpressionError:
                rejected += 1
        print(rejected)
        """
    )
    sources = [source for _, source, _ in HOSTILE]
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps({"fields": FIELDS, "sources": sources}),
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) == len(sources)
