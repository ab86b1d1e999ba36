"""The subset of JQL that reclaim (and the common clients) send, parsed properly: never eval.

Grammar::

    query   := [or] [ORDER BY field [ASC|DESC] {, field [ASC|DESC]}]
    or      := and {OR and}
    and     := not {AND not}
    not     := NOT not | '(' or ')' | clause
    clause  := field op value | field [NOT] IN '(' value {, value} ')' | field IS [NOT] EMPTY

Fields: project, key/issuekey, labels, status, statusCategory, resolution, issuetype,
summary (~ only), created, updated. Times compare with epoch milliseconds or with
``yyyy-MM-dd HH:mm`` / ``yyyy-MM-dd`` literals read in the searching user's time zone (so a
string literal can only name a minute, which is why reclaim's poller sends epoch ms).
"""

from __future__ import annotations

__all__ = ["JqlError", "Query", "parse_jql"]

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

Fields = Mapping[str, Any]
Predicate = Callable[[Fields, ZoneInfo], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>!=|>=|<=|!~|=|>|<|~|\(|\)|,)
      | (?P<word>[A-Za-z0-9_.\-:+/@]+)
    )""",
    re.VERBOSE,
)

TIME_FIELDS = frozenset({"created", "updated"})
LIST_FIELDS = frozenset({"labels"})
TEXT_FIELDS = frozenset({"summary", "description", "text"})
KNOWN_FIELDS = frozenset(
    {"project", "key", "issuekey", "labels", "status", "statuscategory", "resolution", "issuetype"}
    | TIME_FIELDS
    | TEXT_FIELDS
)
KEYWORDS = frozenset(
    {"and", "or", "not", "in", "is", "empty", "null", "order", "by", "asc", "desc"}
)


class JqlError(ValueError):
    """The JQL is not valid; the message is what Jira would put in errorMessages."""


@dataclass(frozen=True)
class Token:
    kind: str  # "string", "op", "word"
    text: str
    position: int

    @property
    def keyword(self) -> str | None:
        return self.text.lower() if self.kind == "word" and self.text.lower() in KEYWORDS else None


def _tokens(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise JqlError(
                f"Error in the JQL Query: The character '{text[position:].strip()[0]}' is a "
                f"reserved JQL character (char {position})."
            )
        kind = match.lastgroup or "word"
        raw = match.group(kind)
        if kind == "string":
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        tokens.append(Token(kind, raw, match.start(kind)))
        position = match.end()
    return tokens


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool


@dataclass(frozen=True)
class Query:
    """A parsed query: call ``matches`` on an issue's field values; ``order`` to sort."""

    predicate: Predicate | None
    order: tuple[Order, ...]

    def matches(self, fields: Fields, zone: ZoneInfo) -> bool:
        return True if self.predicate is None else self.predicate(fields, zone)


@lru_cache(maxsize=1024)
def _parse_time(literal: str, zone: ZoneInfo) -> int:
    if re.fullmatch(r"-?\d+", literal):
        return int(literal)
    for pattern in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            moment = datetime.strptime(literal, pattern).replace(tzinfo=zone)
        except ValueError:
            continue
        return int(moment.timestamp() * 1000)
    raise JqlError(
        f"Date value '{literal}' for field 'updated' is invalid. Valid formats include: "
        "'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format "
        "e.g. '-5d', '4w 2d'."
    )


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError(
                "Error in the JQL Query: Expecting a field name, found the end of the query."
            )
        self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.keyword in words

    def at_op(self, *ops: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "op" and token.text in ops

    def expect_op(self, op: str) -> None:
        token = self.take()
        if token.kind != "op" or token.text != op:
            raise JqlError(
                f"Error in the JQL Query: Expecting '{op}' but got '{token.text}'. "
                f"(char {token.position})"
            )

    def query(self) -> Query:
        predicate = None if self.at_keyword("order") or self.peek() is None else self.or_()
        order: list[Order] = []
        if self.at_keyword("order"):
            self.take()
            if not self.at_keyword("by"):
                raise JqlError("Error in the JQL Query: Expecting 'by' after 'order'.")
            self.take()
            while True:
                field = self.field()
                descending = False
                if self.at_keyword("asc", "desc"):
                    descending = self.take().keyword == "desc"
                order.append(Order(field, descending))
                if not self.at_op(","):
                    break
                self.take()
        token = self.peek()
        if token is not None:
            raise JqlError(
                f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got '{token.text}'. "
                f"(char {token.position})"
            )
        return Query(predicate, tuple(order))

    def or_(self) -> Predicate:
        parts = [self.and_()]
        while self.at_keyword("or"):
            self.take()
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda f, z: any(p(f, z) for p in parts)

    def and_(self) -> Predicate:
        parts = [self.not_()]
        while self.at_keyword("and"):
            self.take()
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]
        return lambda f, z: all(p(f, z) for p in parts)

    def not_(self) -> Predicate:
        if self.at_keyword("not"):
            self.take()
            inner = self.not_()
            return lambda f, z: not inner(f, z)
        if self.at_op("("):
            self.take()
            inner = self.or_()
            self.expect_op(")")
            return inner
        return self.clause()

    def field(self) -> str:
        token = self.take()
        name = token.text.lower()
        if token.kind == "op" or name not in KNOWN_FIELDS:
            raise JqlError(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        return "key" if name == "issuekey" else name

    def value(self) -> str:
        token = self.take()
        if token.kind == "op" or (token.kind == "word" and token.keyword in {"and", "or", "order"}):
            raise JqlError(
                f"Error in the JQL Query: Expecting a value but got '{token.text}'. "
                f"(char {token.position})"
            )
        return token.text

    def clause(self) -> Predicate:
        field = self.field()
        if self.at_keyword("is"):
            self.take()
            negate = False
            if self.at_keyword("not"):
                self.take()
                negate = True
            if not self.at_keyword("empty", "null"):
                raise JqlError("Error in the JQL Query: Expecting 'EMPTY' after 'IS'.")
            self.take()
            return lambda f, z: _empty(f.get(field)) != negate
        negate = False
        if self.at_keyword("not"):
            self.take()
            negate = True
            if not self.at_keyword("in"):
                raise JqlError("Error in the JQL Query: Expecting 'IN' after 'NOT'.")
        if self.at_keyword("in"):
            self.take()
            self.expect_op("(")
            values = [self.value()]
            while self.at_op(","):
                self.take()
                values.append(self.value())
            self.expect_op(")")
            return _membership(field, values, negate)
        token = self.take()
        if token.kind != "op" or token.text not in {"=", "!=", ">", ">=", "<", "<=", "~", "!~"}:
            raise JqlError(
                f"Error in the JQL Query: Expecting operator but got '{token.text}'. "
                f"(char {token.position})"
            )
        return _comparison(field, token.text, self.value())


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == () or value == []


def _normal(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _membership(field: str, values: Sequence[str], negate: bool) -> Predicate:
    if field in TIME_FIELDS:

        def check(f: Fields, z: ZoneInfo) -> bool:
            moment = int(f[field])
            return any(moment == _parse_time(v, z) for v in values) != negate

        return check
    wanted = {v.lower() for v in values}
    if field in LIST_FIELDS:
        return lambda f, z: bool(wanted & {_normal(x) for x in f.get(field) or ()}) != negate
    return lambda f, z: (_normal(f.get(field)) in wanted) != negate


def _comparison(field: str, op: str, literal: str) -> Predicate:
    if field in TIME_FIELDS:
        if op in {"~", "!~"}:
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")

        def check(f: Fields, z: ZoneInfo) -> bool:
            left = int(f[field])
            # A string literal names a minute on the user's clock, so its zone matters.
            right = _parse_time(literal, z)
            return {
                "=": left == right,
                "!=": left != right,
                ">": left > right,
                ">=": left >= right,
                "<": left < right,
                "<=": left <= right,
            }[op]

        return check
    if op in {">", ">=", "<", "<="}:
        raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
    if op in {"~", "!~"}:
        if field not in TEXT_FIELDS:
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
        needle = literal.lower()
        return lambda f, z: (needle in str(f.get(field) or "").lower()) != (op == "!~")
    if field in TEXT_FIELDS:
        raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
    return _membership(field, [literal], negate=op == "!=")


def parse_jql(text: str) -> Query:
    """Parse ``text`` once; raises :class:`JqlError` with Jira's wording when it is not valid."""
    return _Parser(text).query()
