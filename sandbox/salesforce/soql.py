"""SOQL: the subset a sync uses, parsed, type-checked against the schema and compiled to Python closures.

Supported:
  SELECT field, Parent.Field, Parent.Parent.Field, COUNT(), COUNT(field), FIELDS(ALL|STANDARD|CUSTOM)
  FROM sObject
  WHERE  = != <> < > <= >=  IN (…)  NOT IN (…)  IN (SELECT idField FROM …)  LIKE  AND  OR  NOT  ( )
         literals: 'strings' with backslash escapes, numbers, TRUE/FALSE/NULL, unquoted datetimes
         (2024-02-01T00:00:00Z, ±hh:mm offsets) and dates (2024-02-01), date literals TODAY, YESTERDAY,
         TOMORROW, LAST_N_DAYS:n, NEXT_N_DAYS:n, N_DAYS_AGO:n, THIS_MONTH, LAST_MONTH, THIS_YEAR, LAST_YEAR
  WITH SECURITY_ENFORCED|USER_MODE|SYSTEM_MODE (ignored)
  ORDER BY field [ASC|DESC] [NULLS FIRST|LAST], …
  LIMIT n   OFFSET n (≤ 2000)   FOR VIEW|REFERENCE (ignored)

Semantics follow SOQL, not SQL: string comparisons (=, !=, <, >, LIKE, IN) are case-insensitive; `!=`
and `NOT IN` also match nulls; AND and OR cannot be mixed without parentheses; each literal must suit
the field's type (a quoted datetime or an unquoted string is INVALID_FIELD); 15-character ids in
literals are matched as their 18-character form; ASC sorts nulls first and DESC nulls last.

Anything else (GROUP BY, HAVING, child subqueries, TYPEOF, object aliases, INCLUDES/EXCLUDES, other date
literals) is answered with MALFORMED_QUERY whose message says the emulator does not support it.
Errors carry Salesforce's `ERROR at Row:r:Column:c` messages with MALFORMED_QUERY, INVALID_FIELD,
INVALID_TYPE or INVALID_QUERY_FILTER_OPERATOR.
"""

from __future__ import annotations

import operator
import re
from calendar import monthrange
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sandbox.salesforce.errors import SFError
from sandbox.salesforce.ids import to18
from sandbox.salesforce.schema import NAME_FIELDS, Field, SObjectType
from sandbox.salesforce.store import Record, Store
from sandbox.salesforce.times import canonical_datetime

Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<unterminated>')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<baddate>\d{4}-\d{2}-\d{2}T[\w:.+-]*)
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),:])
""", re.VERBOSE)

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_UNSUPPORTED = {
    "GROUP": "GROUP BY", "HAVING": "HAVING", "TYPEOF": "TYPEOF", "INCLUDES": "INCLUDES",
    "EXCLUDES": "EXCLUDES", "USING": "USING SCOPE", "UPDATE": "UPDATE TRACKING/VIEWSTAT",
}
_KEYWORDS = frozenset({
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC", "NULLS",
    "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "WITH", "FOR", *_UNSUPPORTED,
})
MAX_OFFSET = 2000
_INVALID_COLUMN_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' after the "
                        "custom field name. Please reference your WSDL or the describe call for the appropriate "
                        "names.")

#: the "Name" pseudo-object behind polymorphic relationships (Who, What, Owner, RelatedTo)
_NAME_OBJECT = {name.lower(): Field(name, {"Id": "id", "IsActive": "boolean", "Email": "email"}.get(name, "string"),
                                    name, 255) for name in NAME_FIELDS}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "ident" else ""


@dataclass
class FieldRef:
    """A field, possibly reached through parent relationships (`Account.Owner.Email`)."""

    name: str                        # canonical dotted name
    hops: tuple[Field, ...]          # lookup fields walked, in order
    field: Field                     # the field read at the end
    polymorphic_end: bool            # last hop goes through a polymorphic lookup (Name pseudo-object)

    @property
    def kind(self) -> str:
        return self.field.kind


@dataclass
class Query:
    text: str
    sobject: SObjectType
    columns: list[FieldRef] = field(default_factory=list)
    count_only: bool = False                   # SELECT COUNT()
    aggregate: tuple[str, FieldRef | None] | None = None   # SELECT COUNT(field) [alias]
    where: Predicate | None = None
    hints: list[tuple[str, str, Any]] = field(default_factory=list)
    order: list[tuple[Getter, str, bool, bool, str]] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


def _position(text: str, pos: int) -> tuple[int, int]:
    row = text.count("\n", 0, pos) + 1
    return row, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _error(code: str, text: str, pos: int, message: str) -> SFError:
    row, column = _position(text, pos)
    line = text.splitlines()[row - 1] if text.strip() else text
    return SFError(400, code, f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{message}")


def tokenize(text: str) -> list[Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error("MALFORMED_QUERY", text, pos, f"unexpected token: '{text[pos]}'")
        kind = match.lastgroup or ""
        if kind == "unterminated":
            raise _error("MALFORMED_QUERY", text, pos, "unexpected token: ''' (unterminated string literal)")
        if kind == "baddate":
            raise _error("MALFORMED_QUERY", text, pos, f"line 1:{pos} no viable alternative at character "
                         f"'{match.group()}' (datetime literals need a time zone: 2024-02-01T00:00:00Z)")
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "<EOF>", len(text)))
    return tokens


def _unescape(raw: str, text: str, pos: int, like: bool) -> str:
    body = raw[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        nxt = body[index + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
        elif nxt in "%_":
            out.append("\\" + nxt if like else nxt)
        elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2:index + 6]):
            out.append(chr(int(body[index + 2:index + 6], 16)))
            index += 4
        else:
            raise _error("MALFORMED_QUERY", text, pos, f"Invalid string literal '{raw}'. Illegal character "
                         f"sequence '\\{nxt}' in string literal.")
        index += 2
    return "".join(out)


def _like_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern) and pattern[index + 1] in "%_":
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Literal:
    kind: str          # string, number, boolean, null, date, datetime, range
    value: Any
    token: Token


class Parser:
    def __init__(self, text: str, store: Store, now: datetime,
                 subquery: Callable[[Query], set[Any]] | None = None) -> None:
        self.text = text
        self.store = store
        self.schema = store.schema
        self.now = now
        self.subquery = subquery
        self.tokens = tokenize(text)
        self.at = 0
        self.fields_function: Token | None = None

    # ---------------------------------------------------------------------------------------- token helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.at + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at = min(self.at + 1, len(self.tokens) - 1)
        return token

    def is_kw(self, word: str, offset: int = 0) -> bool:
        return self.peek(offset).upper == word

    def accept_kw(self, word: str) -> bool:
        if self.is_kw(word):
            self.take()
            return True
        return False

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.unexpected()
        return self.take()

    def accept(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind in ("punct", "op"):
            self.take()
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.accept(text):
            raise self.unexpected()
        return self.tokens[self.at - 1]

    def unexpected(self, token: Token | None = None) -> SFError:
        token = token or self.peek()
        if token.upper in _UNSUPPORTED:
            return self.unsupported(token, _UNSUPPORTED[token.upper])
        return _error("MALFORMED_QUERY", self.text, token.pos, f"unexpected token: '{token.text}'")

    def unsupported(self, token: Token, what: str) -> SFError:
        return _error("MALFORMED_QUERY", self.text, token.pos,
                      f"Salesforce emulator: {what} is not supported by the emulator's SOQL subset")

    # ---------------------------------------------------------------------------------------- fields
    def resolve(self, sobject: SObjectType, token: Token, *, context: str = "select") -> FieldRef:
        parts = token.text.split(".")
        current: SObjectType | None = sobject
        hops: list[Field] = []
        names: list[str] = []
        polymorphic = False
        for part in parts[:-1]:
            if current is None:  # after a polymorphic hop only Name-object fields are reachable
                raise _error("INVALID_FIELD", self.text, token.pos, f"Didn't understand relationship '{part}' in "
                             "field path.")
            lookup = current.relationships.get(part.lower())
            if lookup is None:
                raise _error("INVALID_FIELD", self.text, token.pos, f"Didn't understand relationship '{part}' in "
                             "field path. If you are attempting to use a custom relationship, be sure to append "
                             "the '__r' after the custom relationship name. Please reference your WSDL or the "
                             "describe call for the appropriate names.")
            hops.append(lookup)
            names.append(lookup.relationship or part)
            targets = [target for target in lookup.reference_to if target in self.schema]
            polymorphic = len(lookup.reference_to) > 1
            current = None if polymorphic or not targets else self.schema[targets[0]]
            if not targets:
                raise _error("INVALID_FIELD", self.text, token.pos,
                             f"Salesforce emulator: relationship '{part}' leads to an object it does not model")
        last = parts[-1]
        spec = _NAME_OBJECT.get(last.lower()) if current is None else current.field(last)
        if spec is None:
            entity = "Name" if current is None else current.name
            raise _error("INVALID_FIELD", self.text, token.pos,
                         f"No such column '{last}' on entity '{entity}'. {_INVALID_COLUMN_HINT}")
        if context == "where" and not spec.filterable:
            raise _error("INVALID_FIELD", self.text, token.pos,
                         f"field '{spec.name}' can not be filtered in a query call")
        if context == "order" and not spec.sortable:
            raise _error("INVALID_FIELD", self.text, token.pos,
                         f"field '{spec.name}' can not be sorted in a query call")
        return FieldRef(".".join([*names, spec.name]), tuple(hops), spec, polymorphic)

    def getter(self, ref: FieldRef) -> Getter:
        return field_getter(ref, self.store)

    # ---------------------------------------------------------------------------------------- query
    def parse(self) -> Query:
        self.expect_kw("SELECT")
        select_tokens: list[list[Token]] = []
        while True:
            start = self.at
            if self.accept("("):
                raise self.unsupported(self.tokens[start], "a child relationship subquery")
            token = self.take()
            if token.kind != "ident" or token.upper in _KEYWORDS:
                raise self.unexpected(token)
            item = [token]
            if self.peek().text == "(":
                item.append(self.take())
                while self.peek().text != ")":
                    if self.peek().kind == "eof":
                        raise self.unexpected()
                    item.append(self.take())
                item.append(self.take())
                if self.peek().kind == "ident" and self.peek().upper not in _KEYWORDS:
                    item.append(self.take())  # alias
            elif self.peek().kind == "ident" and self.peek().upper != "FROM":
                raise _error("MALFORMED_QUERY", self.text, self.peek().pos,
                             f"unexpected token: '{self.peek().text}'")
            select_tokens.append(item)
            if not self.accept(","):
                break
        self.expect_kw("FROM")
        source = self.take()
        if source.kind != "ident" or "." in source.text or source.upper in _KEYWORDS:
            raise self.unexpected(source)
        sobject = next((s for s in self.schema.values() if s.name.lower() == source.text.lower()), None)
        if sobject is None:
            raise _error("INVALID_TYPE", self.text, source.pos, f"sObject type '{source.text}' is not supported. "
                         "If you are attempting to use a custom object, be sure to append the '__c' after the "
                         "entity name. Please reference your WSDL or the describe call for the appropriate names.")
        if self.peek().kind == "ident" and self.peek().upper not in _KEYWORDS:
            raise self.unsupported(self.peek(), "an object alias in FROM")
        query = Query(self.text, sobject)
        self._select(query, select_tokens)
        if self.accept_kw("WHERE"):
            node = self.condition(sobject)
            query.where = self.compile(node)
            query.hints = self.hints(node)
        if self.accept_kw("WITH"):
            mode = self.take()
            if mode.upper not in ("SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"):
                raise self.unsupported(mode, f"WITH {mode.text}")
        if self.is_kw("GROUP") or self.is_kw("HAVING"):
            raise self.unexpected()
        if self.accept_kw("ORDER"):
            self.expect_kw("BY")
            self.order_by(query)
        if self.accept_kw("LIMIT"):
            query.limit = self.integer()
        if self.accept_kw("OFFSET"):
            query.offset = self.integer()
            if query.offset > MAX_OFFSET:
                raise SFError(400, "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        if self.accept_kw("FOR"):
            mode = self.take()
            if mode.upper not in ("VIEW", "REFERENCE"):
                raise self.unsupported(mode, f"FOR {mode.text}")
        if self.peek().kind != "eof":
            raise self.unexpected()
        if query.count_only and query.order:
            raise _error("MALFORMED_QUERY", self.text, 0, "ORDER BY is not allowed with COUNT()")
        if self.fields_function is not None and (query.limit is None or query.limit > 200):
            raise _error("MALFORMED_QUERY", self.text, self.fields_function.pos,
                         "The SOQL FIELDS function must have a LIMIT of at most 200")
        return query

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected(token)
        return int(token.text)

    def _select(self, query: Query, items: list[list[Token]]) -> None:
        seen: set[str] = set()
        sobject = query.sobject
        for item in items:
            head = item[0]
            if len(item) > 1 and head.upper == "COUNT":
                inner = item[2:-1] if item[-1].text == ")" else item[2:-2]
                alias = item[-1].text if item[-1].text != ")" else None
                if len(items) > 1:
                    raise _error("MALFORMED_QUERY", self.text, head.pos, "Salesforce emulator: COUNT() cannot be "
                                 "combined with other fields (GROUP BY is not supported)")
                if not inner:
                    if alias:
                        raise _error("MALFORMED_QUERY", self.text, item[-1].pos,
                                     f"unexpected token: '{alias}'")
                    query.count_only = True
                else:
                    ref = self.resolve(sobject, inner[0])
                    query.aggregate = (alias or "expr0", ref)
                continue
            if len(item) > 1 and head.upper == "FIELDS":
                scope = item[2].upper if len(item) == 4 else ""
                if scope not in ("ALL", "STANDARD", "CUSTOM"):
                    raise self.unexpected(item[2] if len(item) > 2 else head)
                for spec in sobject.fields.values():
                    wanted = scope == "ALL" or (scope == "CUSTOM") == spec.custom
                    if wanted and spec.name.lower() not in seen:
                        seen.add(spec.name.lower())
                        query.columns.append(FieldRef(spec.name, (), spec, False))
                if scope != "STANDARD":
                    self.fields_function = head  # FIELDS(ALL|CUSTOM) needs LIMIT ≤ 200, checked after LIMIT
                continue
            if len(item) > 1:
                raise self.unsupported(head, f"the function {head.text}()")
            ref = self.resolve(sobject, head)
            if ref.name.lower() in seen:
                raise _error("MALFORMED_QUERY", self.text, head.pos, f"duplicate field selected: {ref.name}")
            seen.add(ref.name.lower())
            query.columns.append(ref)

    def order_by(self, query: Query) -> None:
        while True:
            token = self.take()
            if token.kind != "ident" or token.upper in _KEYWORDS:
                raise self.unexpected(token)
            ref = self.resolve(query.sobject, token, context="order")
            descending = False
            if self.accept_kw("DESC"):
                descending = True
            else:
                self.accept_kw("ASC")
            nulls_first = not descending
            if self.accept_kw("NULLS"):
                if self.accept_kw("FIRST"):
                    nulls_first = True
                else:
                    self.expect_kw("LAST")
                    nulls_first = False
            query.order.append((self.getter(ref), ref.kind, descending, nulls_first, ref.name))
            if not self.accept(","):
                return

    # ---------------------------------------------------------------------------------------- conditions
    def condition(self, sobject: SObjectType) -> tuple:
        first = self.unary(sobject)
        for joiner in ("AND", "OR"):
            if self.is_kw(joiner):
                parts = [first]
                while self.accept_kw(joiner):
                    parts.append(self.unary(sobject))
                other = "OR" if joiner == "AND" else "AND"
                if self.is_kw(other):
                    raise self.unexpected()
                return (joiner.lower(), parts)
        return first

    def unary(self, sobject: SObjectType) -> tuple:
        if self.accept_kw("NOT"):
            return ("not", self.unary(sobject))
        if self.accept("("):
            node = self.condition(sobject)
            self.expect(")")
            return node
        return self.simple(sobject)

    def simple(self, sobject: SObjectType) -> tuple:
        token = self.take()
        if token.kind != "ident" or token.upper in _KEYWORDS:
            raise self.unexpected(token)
        ref = self.resolve(sobject, token, context="where")
        negate = self.accept_kw("NOT")
        if negate and not self.is_kw("IN"):
            raise self.unexpected()
        if self.accept_kw("IN"):
            self.expect("(")
            if self.is_kw("SELECT"):
                return ("semi", ref, negate, self.semi_join(ref, token))
            values = [self.literal()]
            while self.accept(","):
                values.append(self.literal())
            self.expect(")")
            return ("in", ref, negate, [self.convert(ref, value, token) for value in values])
        if self.accept_kw("LIKE"):
            value = self.literal(like=True)
            if value.kind != "string" or ref.kind != "text":
                raise _error("INVALID_QUERY_FILTER_OPERATOR", self.text, token.pos,
                             f"invalid operator on field '{ref.field.name}': LIKE needs a string field and a "
                             "quoted pattern")
            return ("like", ref, value.value)
        op_token = self.take()
        if op_token.kind != "op":
            raise self.unexpected(op_token)
        op = "!=" if op_token.text == "<>" else op_token.text
        literal = self.literal()
        value = self.convert(ref, literal, token)
        if ref.kind == "boolean" and op not in ("=", "!="):
            raise _error("INVALID_QUERY_FILTER_OPERATOR", self.text, op_token.pos,
                         f"invalid operator on boolean field: {op_token.text}")
        if value is None and op not in ("=", "!="):
            raise _error("INVALID_QUERY_FILTER_OPERATOR", self.text, op_token.pos,
                         f"invalid operator for null: {op_token.text}")
        return ("cmp", ref, op, value)

    def semi_join(self, ref: FieldRef, token: Token) -> set[Any]:
        start = self.peek().pos
        depth = 1
        while depth:
            nxt = self.take()
            if nxt.kind == "eof":
                raise self.unexpected(nxt)
            depth += {"(": 1, ")": -1}.get(nxt.text, 0) if nxt.kind == "punct" else 0
        inner_text = self.text[start:self.tokens[self.at - 1].pos]
        if ref.kind != "id" or self.subquery is None:
            raise _error("INVALID_FIELD", self.text, token.pos, f"Salesforce emulator: semi-join on "
                         f"'{ref.name}' needs an Id or lookup field")
        inner = Parser(inner_text, self.store, self.now).parse()
        if inner.count_only or inner.aggregate or len(inner.columns) != 1 or inner.columns[0].kind != "id":
            raise _error("MALFORMED_QUERY", self.text, start, "The selected field in a semi-join subquery must be "
                         "a single Id or lookup field")
        return self.subquery(inner)

    def literal(self, like: bool = False) -> Literal:
        token = self.take()
        if token.kind == "string":
            return Literal("string", _unescape(token.text, self.text, token.pos, like), token)
        if token.kind == "number":
            return Literal("number", float(token.text), token)
        if token.kind == "datetime":
            value = canonical_datetime(token.text)
            if value is None:
                raise self.unexpected(token)
            return Literal("datetime", value, token)
        if token.kind == "date":
            try:
                date.fromisoformat(token.text)
            except ValueError:
                raise self.unexpected(token) from None
            return Literal("date", token.text, token)
        if token.kind == "ident":
            word = token.upper
            if word in ("TRUE", "FALSE"):
                return Literal("boolean", word == "TRUE", token)
            if word == "NULL":
                return Literal("null", None, token)
            number = None
            if self.peek().text == ":":
                self.take()
                count = self.take()
                if count.kind != "number" or not count.text.isdigit():
                    raise self.unexpected(count)
                number = int(count.text)
            return Literal("range", self.date_range(token, number), token)
        raise self.unexpected(token)

    def date_range(self, token: Token, n: int | None) -> tuple[date, date]:
        today = self.now.date()
        word = token.upper
        day = timedelta(days=1)
        ranges: dict[str, Callable[[], tuple[date, date]]] = {
            "TODAY": lambda: (today, today + day),
            "YESTERDAY": lambda: (today - day, today),
            "TOMORROW": lambda: (today + day, today + 2 * day),
            "THIS_MONTH": lambda: (today.replace(day=1), _add_months(today.replace(day=1), 1)),
            "LAST_MONTH": lambda: (_add_months(today.replace(day=1), -1), today.replace(day=1)),
            "THIS_YEAR": lambda: (date(today.year, 1, 1), date(today.year + 1, 1, 1)),
            "LAST_YEAR": lambda: (date(today.year - 1, 1, 1), date(today.year, 1, 1)),
        }
        counted: dict[str, Callable[[int], tuple[date, date]]] = {
            "LAST_N_DAYS": lambda k: (today - k * day, today + day),
            "NEXT_N_DAYS": lambda k: (today + day, today + (k + 1) * day),
            "N_DAYS_AGO": lambda k: (today - k * day, today - (k - 1) * day),
        }
        if n is None and word in ranges:
            return ranges[word]()
        if n is not None and word in counted:
            return counted[word](n)
        raise self.unsupported(token, f"the date literal {token.text}{'' if n is None else f':{n}'}")

    def convert(self, ref: FieldRef, literal: Literal, field_token: Token) -> Any:
        """The literal in the stored form of the field's type, or the error Salesforce gives."""
        kind = ref.kind
        spec = ref.field
        if literal.kind == "null":
            return None
        type_name = {"number": "double" if spec.type != "int" else "int", "datetime": "dateTime",
                     "text": "string", "id": "id"}.get(kind, kind)

        def mismatch(quoted: bool) -> SFError:
            hint = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            return _error("INVALID_FIELD", self.text, literal.token.pos,
                          f"value of filter criterion for field '{spec.name}' must be of type {type_name} and "
                          f"{hint}")

        if kind == "text":
            if literal.kind != "string":
                raise mismatch(True)
            return literal.value
        if kind == "id":
            if literal.kind != "string":
                raise mismatch(True)
            if literal.value == "":
                return None
            rid = to18(literal.value)
            if rid is None:
                raise _error("INVALID_QUERY_FILTER_OPERATOR", self.text, literal.token.pos,
                             f"invalid ID field: {literal.value}")
            return rid
        if kind == "number":
            if literal.kind != "number":
                raise mismatch(False)
            return literal.value
        if kind == "boolean":
            if literal.kind != "boolean":
                raise mismatch(False)
            return literal.value
        if kind == "date":
            if literal.kind == "range":
                low, high = literal.value
                return ("range", low.isoformat(), high.isoformat())
            if literal.kind != "date":
                raise mismatch(False)
            return literal.value
        # datetime
        if literal.kind == "range":
            low, high = literal.value
            return ("range", f"{low.isoformat()}T00:00:00.000+0000", f"{high.isoformat()}T00:00:00.000+0000")
        if literal.kind != "datetime":
            raise mismatch(False)
        return literal.value

    # ---------------------------------------------------------------------------------------- compile
    def compile(self, node: tuple) -> Predicate:
        kind = node[0]
        if kind == "and":
            parts = [self.compile(part) for part in node[1]]
            return lambda record: all(part(record) for part in parts)
        if kind == "or":
            parts = [self.compile(part) for part in node[1]]
            return lambda record: any(part(record) for part in parts)
        if kind == "not":
            inner = self.compile(node[1])
            return lambda record: not inner(record)
        ref: FieldRef = node[1]
        get = self.getter(ref)
        text = ref.kind == "text"
        if kind == "like":
            pattern = _like_regex(node[2])
            return lambda record: (value := get(record)) is not None and pattern.fullmatch(value) is not None
        if kind in ("in", "semi"):
            values = node[3]
            if any(isinstance(value, tuple) for value in values):
                raise SFError(400, "MALFORMED_QUERY", "Salesforce emulator: date literals are not supported "
                              "inside IN lists")
            has_null = None in values
            members = frozenset(value.casefold() if text else value for value in values if value is not None)
            if text:
                def member(record: Record) -> bool:
                    value = get(record)
                    return has_null if value is None else value.casefold() in members
            else:
                def member(record: Record) -> bool:
                    value = get(record)
                    return has_null if value is None else value in members
            if node[2]:
                return lambda record: not member(record)
            return member
        _, _, op, value = node
        if isinstance(value, tuple):   # date literal range [low, high)
            _, low, high = value
            tests: dict[str, Predicate] = {
                "=": lambda r: (v := get(r)) is not None and low <= v < high,
                "!=": lambda r: (v := get(r)) is None or not low <= v < high,
                "<": lambda r: (v := get(r)) is not None and v < low,
                "<=": lambda r: (v := get(r)) is not None and v < high,
                ">": lambda r: (v := get(r)) is not None and v >= high,
                ">=": lambda r: (v := get(r)) is not None and v >= low,
            }
            return tests[op]
        if value is None:
            return (lambda r: get(r) is None) if op == "=" else (lambda r: get(r) is not None)
        if text:
            folded = value.casefold()
            text_tests: dict[str, Predicate] = {
                "=": lambda r: (v := get(r)) is not None and v.casefold() == folded,
                "!=": lambda r: (v := get(r)) is None or v.casefold() != folded,
                "<": lambda r: (v := get(r)) is not None and v.casefold() < folded,
                "<=": lambda r: (v := get(r)) is not None and v.casefold() <= folded,
                ">": lambda r: (v := get(r)) is not None and v.casefold() > folded,
                ">=": lambda r: (v := get(r)) is not None and v.casefold() >= folded,
            }
            return text_tests[op]
        plain: dict[str, Predicate] = {
            "=": lambda r: get(r) == value,
            "!=": lambda r: get(r) != value,
            "<": lambda r: (v := get(r)) is not None and v < value,
            "<=": lambda r: (v := get(r)) is not None and v <= value,
            ">": lambda r: (v := get(r)) is not None and v > value,
            ">=": lambda r: (v := get(r)) is not None and v >= value,
        }
        return plain[op]

    @staticmethod
    def hints(node: tuple) -> list[tuple[str, str, Any]]:
        """Top-level conjuncts on Id / SystemModstamp the executor can answer from an index."""
        parts = node[1] if node[0] == "and" else [node]
        found = []
        for part in parts:
            if part[0] == "cmp" and not part[1].hops and not isinstance(part[3], tuple) and part[3] is not None \
                    and part[1].field.name in ("Id", "SystemModstamp"):
                found.append((part[1].field.name, part[2], part[3]))
            elif part[0] == "in" and not part[2] and not part[1].hops and part[1].field.name == "Id":
                found.append(("Id", "in", [value for value in part[3] if value is not None]))
        return found


def field_getter(ref: FieldRef, store: Store) -> Getter:
    """Reads `ref` from a stored record, walking parent lookups through the store."""
    name = ref.field.name
    if not ref.hops:
        return operator.itemgetter(name)
    hops = [hop.name for hop in ref.hops]
    get = store.get
    if ref.polymorphic_end and name == "Type":
        prefixes = store.prefixes
        last = hops.pop()

        def polymorphic_type(record: Record) -> Any:
            for hop in hops:
                parent_id = record.get(hop)
                record = get(parent_id) if parent_id else None  # type: ignore[assignment]
                if record is None:
                    return None
            parent_id = record.get(last)
            return prefixes.get(parent_id[:3]) if parent_id else None
        return polymorphic_type

    def walk(record: Record) -> Any:
        for hop in hops:
            parent_id = record.get(hop)
            if not parent_id:
                return None
            record = get(parent_id)  # type: ignore[assignment]
            if record is None:
                return None
        return record.get(name)
    return walk


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, monthrange(year, month)[1]))


def parse(text: str, store: Store, now: datetime,
          subquery: Callable[[Query], set[Any]] | None = None) -> Query:
    if not text or not text.strip():
        raise SFError(400, "MALFORMED_QUERY", "unexpected token: <EOF>")
    return Parser(text, store, now, subquery).parse()


def execute(query: Query, store: Store, include_deleted: bool) -> list[Record]:
    """The rows a query selects (WHERE, deleted filter, ORDER BY, OFFSET, LIMIT applied)."""
    table = store.tables[query.sobject.name]
    candidates: Any = None
    low = high = None
    low_inclusive = high_inclusive = True
    presorted = False
    for name, op, value in query.hints:
        if name == "Id" and op in ("=", "in"):
            ids = [value] if op == "=" else value
            candidates = [table[rid] for rid in dict.fromkeys(ids) if rid in table]
            break
        if name == "SystemModstamp":
            if op in (">", ">=", "=") and (low is None or value >= low):
                low, low_inclusive = value, op != ">"
            if op in ("<", "<=", "=") and (high is None or value <= high):
                high, high_inclusive = value, op != "<"
    if candidates is None and (low is not None or high is not None):
        candidates = [table[rid] for rid in store.stamp_window(query.sobject.name, low, low_inclusive, high,
                                                              high_inclusive)]
        presorted = True
    if candidates is None:
        candidates = table.values()
    where = query.where
    if include_deleted or not query.sobject.has_is_deleted:
        rows = [record for record in candidates if where(record)] if where else list(candidates)
    elif where:
        rows = [record for record in candidates if not record["IsDeleted"] and where(record)]
    else:
        rows = [record for record in candidates if not record["IsDeleted"]]
    order = query.order
    names = [entry[4] for entry in order]
    already = presorted and [entry[2] for entry in order] in ([False], [False, False]) and \
        names in (["SystemModstamp"], ["SystemModstamp", "Id"])
    if order and not already:
        for get, kind, descending, nulls_first, _ in reversed(order):
            null_key = (0,) if nulls_first != descending else (2,)
            if kind == "text":
                def key(record: Record, get: Getter = get, null_key: tuple = null_key) -> tuple:
                    value = get(record)
                    return null_key if value is None else (1, value.casefold())
            else:
                def key(record: Record, get: Getter = get, null_key: tuple = null_key) -> tuple:
                    value = get(record)
                    return null_key if value is None else (1, value)
            rows.sort(key=key, reverse=descending)
    if query.offset:
        rows = rows[query.offset:]
    if query.limit is not None:
        rows = rows[:query.limit]
    return rows


@dataclass
class Projector:
    """Turns stored records into query-result records: `attributes`, selected fields, nested parents."""

    items: list[tuple[str, str, Any]]      # ("f", key, None) | ("r", relationship key, Projector)
    fk: str | None = None                  # for a parent node: the lookup field on the child
    polymorphic: bool = False


def build_projector(columns: list[FieldRef]) -> Projector:
    root = Projector([])
    for ref in columns:
        node = root
        names = ref.name.split(".")
        for hop, rel_name in zip(ref.hops, names, strict=False):
            child = next((sub for kind, key, sub in node.items if kind == "r" and key == rel_name), None)
            if child is None:
                child = Projector([], hop.name, len(hop.reference_to) > 1)
                node.items.append(("r", rel_name, child))
            node = child
        node.items.append(("f", ref.field.name, None))
    return root


def projection(columns: list[FieldRef], store: Store, sobject: str, version: str) -> Callable[[Record], dict]:
    """A function building the REST shape of one record for these columns.

    `projection.cacheable` is True when the shape depends on the record alone (no parent fields), so its
    serialisation can be cached while the record is unchanged (see query.FragmentCache).
    """
    base = f"/services/data/v{version}/sobjects/"
    root = build_projector(columns)
    get, prefixes = store.get, store.prefixes

    def parent_builder(node: Projector) -> Callable[[Record], Any]:
        fields = [(key, None if kind == "f" else parent_builder(sub)) for kind, key, sub in node.items]
        fk, polymorphic = node.fk, node.polymorphic

        def build(record: Record) -> Any:
            parent_id = record.get(fk)  # type: ignore[arg-type]
            if not parent_id:
                return None
            parent = get(parent_id)
            if parent is None:
                return None
            parent_type = prefixes[parent_id[:3]]
            out = {"attributes": {"type": "Name" if polymorphic else parent_type,
                                  "url": f"{base}{parent_type}/{parent_id}"}}
            for key, sub in fields:
                if sub is not None:
                    out[key] = sub(parent)
                elif polymorphic and key == "Type":
                    out[key] = parent_type
                else:
                    out[key] = parent.get(key)
            return out
        return build

    direct_only = all(kind == "f" for kind, _, _ in root.items)
    keys = [key for _, key, _ in root.items]
    url = base + sobject + "/"
    if direct_only:
        if len(keys) > 1:
            values: Callable[[Record], tuple] = operator.itemgetter(*keys)
        else:
            values = (lambda record: (record[keys[0]],)) if keys else (lambda record: ())

        def project_direct(record: Record) -> dict:
            out = {"attributes": {"type": sobject, "url": url + record["Id"]}}
            out.update(zip(keys, values(record), strict=True))
            return out
        project_direct.cacheable = True  # type: ignore[attr-defined]
        return project_direct
    builders = [(key, None if kind == "f" else parent_builder(sub)) for kind, key, sub in root.items]

    def project(record: Record) -> dict:
        out = {"attributes": {"type": sobject, "url": url + record["Id"]}}
        for key, sub in builders:
            out[key] = record[key] if sub is None else sub(record)
        return out
    return project
