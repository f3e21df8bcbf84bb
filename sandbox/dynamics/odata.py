"""OData pieces of the Dataverse Web API: query options, $filter → compiled predicates, $select, $orderby,
key segments, Prefer headers, paging cookies and delta tokens, datetime normalisation, error envelopes.

Everything here is pure (no store access) so it can be tested and reused by the metadata endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote
from xml.etree import ElementTree

Row = dict[str, Any]
Predicate = Callable[[Row], bool]


class ODataError(Exception):
    """An error answered as Dataverse's envelope `{"error": {"code": "0x…", "message": "…"}}`."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "0x0") -> ODataError:
    return ODataError(400, code, message)


def no_property(name: str, type_name: str) -> ODataError:
    return bad_request(f"Could not find a property named '{name}' on type '{type_name}'.")


# ------------------------------------------------------------------------------------------- datetimes
_CANONICAL = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
_DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
                 r"(Z|[+-]\d{2}:?\d{2})?$")


def parse_datetime(text: str) -> tuple[datetime, int] | None:
    """ISO-8601 (date, or date-time with optional seconds/fraction/offset; no offset = UTC) → (UTC datetime
    truncated to seconds, fraction in microseconds). None when it isn't a datetime."""
    m = _DT.match(text)
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                         tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    micros = int((frac or "0").ljust(6, "0")[:6])
    return value, micros


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def normalize_datetime(value: Any) -> str | None:
    """Any accepted datetime input → Dataverse's `2024-02-01T10:00:00Z` (UTC, whole seconds)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return format_datetime(value)
    if isinstance(value, str):
        if _CANONICAL.match(value):
            return value
        parsed = parse_datetime(value.strip())
        if parsed is not None:
            return format_datetime(parsed[0])
    raise ValueError(f"not a datetime: {value!r}")


# ------------------------------------------------------------------------------------------ query string
SUPPORTED_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$deltatoken"}
UNSUPPORTED_OPTIONS = {"$expand", "$apply", "$search", "$compute", "$levels", "fetchXml", "savedQuery",
                       "userQuery"}


def parse_query(raw_query: str) -> dict[str, str]:
    """Decode a query string the way ASP.NET does (`%24`→`$`, `+`→space). Later duplicates win."""
    return dict(parse_qsl(raw_query, keep_blank_values=True))


_QUERY_SAFE = ",()'$:@*/=;!"


def build_query(params: Iterable[tuple[str, str]]) -> str:
    """Query options as Dataverse writes them into nextLink/deltaLink: literal `$`, `%20` for spaces."""
    return "&".join(f"{key}={quote(value, safe=_QUERY_SAFE)}" for key, value in params)


def check_options(params: dict[str, str]) -> None:
    for key in params:
        if key == "$skip":
            raise bad_request("The query parameter $skip is not supported")
        if key in UNSUPPORTED_OPTIONS:
            raise bad_request(f"The query parameter {key} is not supported by the sandbox Dataverse emulator.")
        if key.startswith("$") and key not in SUPPORTED_OPTIONS:
            raise bad_request(f"The query parameter {key} is not supported")


def parse_top(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.strip().isdigit():
        raise bad_request(f"Invalid value '{value}' for $top query option found. "
                          "The $top query option requires a non-negative integer value.")
    return int(value)


def parse_count(value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise bad_request(f"'{value}' is not a valid count option.")
    return value.lower() == "true"


# --------------------------------------------------------------------------------------------- Prefer
@dataclass
class Prefer:
    maxpagesize: int | None = None
    track_changes: bool = False
    return_representation: bool = False
    continue_on_error: bool = False
    annotations: tuple[str, ...] = ()   # requested annotation patterns ("*", "OData.Community.Display.V1.*", …)
    annotations_raw: str | None = None

    def wants(self, annotation: str) -> bool:
        for pattern in self.annotations:
            if pattern == "*" or pattern == annotation:
                return True
            if pattern.endswith(".*") and annotation.startswith(pattern[:-1]):
                return True
        return False

    @property
    def any_annotations(self) -> bool:
        return bool(self.annotations)


def _split_prefer(header: str) -> list[str]:
    items, current, quoted = [], [], False
    for char in header:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def parse_prefer(values: Iterable[str]) -> Prefer:
    prefer = Prefer()
    for header in values:
        for item in _split_prefer(header):
            name, _, value = item.partition("=")
            name, value = name.strip().lower(), value.strip()
            if name == "odata.maxpagesize":
                if value.isdigit() and int(value) > 0:
                    prefer.maxpagesize = int(value)
            elif name == "odata.track-changes":
                prefer.track_changes = True
            elif name == "return" and value.lower() == "representation":
                prefer.return_representation = True
            elif name == "odata.continue-on-error":
                prefer.continue_on_error = True
            elif name == "odata.include-annotations":
                raw = value.strip('"')
                prefer.annotations = tuple(p.strip() for p in raw.split(",") if p.strip())
                prefer.annotations_raw = value
    return prefer


# ------------------------------------------------------------------------------------- $select / $orderby
def parse_select(value: str | None, columns: dict[str, Any], type_name: str) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",")]
    if not value.strip() or any(not name for name in names):
        raise bad_request(f"Syntax error at position {len(value)} in '{value}'.")
    for name in names:
        if name not in columns:
            raise no_property(name, type_name)
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(name, None)
    return list(seen)


@dataclass(frozen=True)
class OrderKey:
    prop: str
    desc: bool
    text: bool      # compare case-insensitively


def parse_orderby(value: str | None, types: dict[str, str | None], type_name: str) -> list[OrderKey]:
    if value is None:
        return []
    keys = []
    for part in value.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise bad_request(f"Syntax error at position {len(value)} in '{value}'.")
        name = words[0]
        if name not in types or types[name] is None:
            raise no_property(name, type_name)
        keys.append(OrderKey(name, len(words) == 2 and words[1].lower() == "desc", types[name] == "Edm.String"))
    return keys


def sort_value(value: Any, text: bool) -> tuple:
    """Sort key of one value: nulls first (SQL Server), strings case-insensitive."""
    if value is None:
        return (0,)
    if text:
        return (1, value.lower())
    return (1, value)


def compare_keys(a: tuple, b: tuple, desc: tuple[bool, ...]) -> int:
    for x, y, down in zip(a, b, desc, strict=True):
        if x != y:
            result = 1 if x > y else -1
            return -result if down else result
    return 0


# --------------------------------------------------------------------------------------------- $filter
_TOKEN = re.compile(r"""
  (?P<ws>\s+)
| (?P<str>'(?:[^']|'')*')
| (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-]))
| (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))
| (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
| (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?!\w))
| (?P<lp>\() | (?P<rp>\)) | (?P<comma>,)
| (?P<ident>[A-Za-z_@][A-Za-z0-9_.]*(?:/[A-Za-z_][A-Za-z0-9_.]*)*)
""", re.VERBOSE)

_OPS = {"eq": "Equal", "ne": "NotEqual", "gt": "GreaterThan", "ge": "GreaterThanOrEqual", "lt": "LessThan",
        "le": "LessThanOrEqual"}
_MIRROR = {"eq": "eq", "ne": "ne", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
_FUNCTIONS = {"contains", "startswith", "endswith"}
_NUMERIC = {"Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double"}


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int
    value: Any = None


def _tokenize(source: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(source):
        m = _TOKEN.match(source, pos)
        if not m:
            raise bad_request(f"Syntax error at position {pos} in '{source}'.")
        kind = m.lastgroup or ""
        text = m.group()
        if kind != "ws":
            tokens.append(_Tok(kind, text, pos))
        pos = m.end()
    tokens.append(_Tok("end", "", len(source)))
    return tokens


class _Parser:
    """Recursive descent over the token list, producing a small AST of tuples."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _tokenize(source)
        self.i = 0

    def error(self, tok: _Tok | None = None) -> ODataError:
        tok = tok or self.tokens[self.i]
        return bad_request(f"Syntax error at position {tok.pos} in '{self.source}'.")

    def peek(self) -> _Tok:
        return self.tokens[self.i]

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok.kind == "ident" and tok.text == word:
            self.i += 1
            return True
        return False

    def parse(self) -> tuple:
        node = self.parse_or()
        if self.peek().kind != "end":
            raise self.error()
        return node

    def parse_or(self) -> tuple:
        node = self.parse_and()
        while self.keyword("or"):
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self) -> tuple:
        node = self.parse_not()
        while self.keyword("and"):
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self) -> tuple:
        if self.keyword("not"):
            return ("not", self.parse_not())
        return self.parse_comparison()

    def parse_comparison(self) -> tuple:
        left = self.parse_operand()
        tok = self.peek()
        if tok.kind == "ident" and tok.text in _OPS:
            self.i += 1
            right = self.parse_operand()
            return ("cmp", tok.text, left, right, tok.pos)
        if left[0] in ("func", "group"):
            return left[1] if left[0] == "group" else left
        raise self.error(tok)

    def parse_operand(self) -> tuple:
        tok = self.take()
        if tok.kind == "lp":
            inner = self.parse_or()
            if self.take().kind != "rp":
                raise self.error(self.tokens[self.i - 1])
            return ("group", inner)
        if tok.kind == "str":
            return ("lit", "Edm.String", tok.text[1:-1].replace("''", "'"))
        if tok.kind == "guid":
            return ("lit", "Edm.Guid", tok.text.lower())
        if tok.kind == "dt":
            parsed = parse_datetime(tok.text)
            if parsed is None:
                raise self.error(tok)
            return ("lit", "Edm.DateTimeOffset", parsed)
        if tok.kind == "date":
            parsed = parse_datetime(tok.text)
            if parsed is None:
                raise self.error(tok)
            return ("lit", "Edm.Date", parsed)
        if tok.kind == "num":
            text = tok.text.rstrip("mMdDfFlL")
            if "." in text or "e" in text.lower():
                return ("lit", "Edm.Decimal", float(text))
            return ("lit", "Edm.Int32", int(text))
        if tok.kind == "ident":
            if tok.text in ("true", "false"):
                return ("lit", "Edm.Boolean", tok.text == "true")
            if tok.text == "null":
                return ("lit", None, None)
            if self.peek().kind == "lp":
                return self.parse_call(tok)
            return ("prop", tok.text, tok.pos)
        raise self.error(tok)

    def parse_call(self, name: _Tok) -> tuple:
        self.take()  # (
        args = []
        if self.peek().kind != "rp":
            args.append(self.parse_operand())
            while self.peek().kind == "comma":
                self.take()
                args.append(self.parse_operand())
        if self.take().kind != "rp":
            raise self.error(self.tokens[self.i - 1])
        return ("func", (name.text, args, name.pos))


@dataclass
class PropertyInfo:
    key: str            # the row key holding the value
    edm: str            # Edm type


Resolver = Callable[[str], PropertyInfo | None]


def compile_filter(source: str, resolve: Resolver, type_name: str) -> Predicate:
    """`$filter` text → a predicate over stored rows. Raises ODataError like Dataverse does."""
    ast = _Parser(source).parse()
    return _compile(ast, resolve, type_name)


def _compile(node: tuple, resolve: Resolver, type_name: str) -> Predicate:
    kind = node[0]
    if kind == "group":
        return _compile(node[1], resolve, type_name)
    if kind in ("and", "or"):
        left, right = _compile(node[1], resolve, type_name), _compile(node[2], resolve, type_name)
        if kind == "and":
            return lambda row: left(row) and right(row)
        return lambda row: left(row) or right(row)
    if kind == "not":
        inner = _compile(node[1], resolve, type_name)
        return lambda row: not inner(row)
    if kind == "func":
        return _compile_function(node[1], resolve, type_name)
    if kind == "cmp":
        return _compile_comparison(node, resolve, type_name)
    raise bad_request("The $filter expression must evaluate to a single boolean value.")


def _property(node: tuple, resolve: Resolver, type_name: str) -> PropertyInfo:
    info = resolve(node[1])
    if info is None:
        raise no_property(node[1], type_name)
    return info


def _compile_function(call: tuple, resolve: Resolver, type_name: str) -> Predicate:
    name, args, _pos = call
    if name not in _FUNCTIONS:
        raise bad_request(f"An unknown function with name '{name}' was found. This may also be a function "
                          "import or a key lookup on a navigation property, which is not allowed.")
    if len(args) != 2 or args[0][0] != "prop" or args[1][0] != "lit":
        raise bad_request(f"The function '{name}' requires a property and a string literal.")
    info = _property(args[0], resolve, type_name)
    if info.edm != "Edm.String" or args[1][1] != "Edm.String":
        raise bad_request(f"No function signature for the function with name '{name}' matches the specified "
                          "arguments. The function signatures considered are: "
                          f"{name}(Edm.String Nullable=true, Edm.String Nullable=true).")
    key, needle = info.key, args[1][2].lower()
    if name == "contains":
        return lambda row: (v := row.get(key)) is not None and needle in v.lower()
    if name == "startswith":
        return lambda row: (v := row.get(key)) is not None and v.lower().startswith(needle)
    return lambda row: (v := row.get(key)) is not None and v.lower().endswith(needle)


def _compatible(prop: str, lit: str) -> bool:
    if prop == lit:
        return True
    if prop in _NUMERIC and lit in _NUMERIC:
        return True
    return prop == "Edm.DateTimeOffset" and lit == "Edm.Date"


def _compile_comparison(node: tuple, resolve: Resolver, type_name: str) -> Predicate:
    _, op, left, right, _pos = node
    if left[0] == "group":
        left = left[1]
    if right[0] == "group":
        right = right[1]
    if left[0] == "lit" and right[0] == "prop":
        left, right, op = right, left, _MIRROR[op]
    if left[0] != "prop" or right[0] != "lit":
        if left[0] == "prop" and right[0] == "prop":
            raise bad_request("Comparing two columns is not supported by the sandbox Dataverse emulator.")
        raise bad_request(f"Syntax error at position {_pos} in the $filter expression.")
    info = _property(left, resolve, type_name)
    key, lit_type, lit = info.key, right[1], right[2]

    if lit_type is None:  # null
        if op == "eq":
            return lambda row: row.get(key) is None
        if op == "ne":
            return lambda row: row.get(key) is not None
        return lambda row: False
    if not _compatible(info.edm, lit_type):
        raise bad_request("A binary operator with incompatible types was detected. Found operand types "
                          f"'{info.edm}' and '{lit_type}' for operator kind '{_OPS[op]}'.")

    if info.edm == "Edm.String":
        value = lit.lower()
        return _string_comparison(key, op, value)
    if info.edm == "Edm.DateTimeOffset":
        when, micros = lit
        return _datetime_comparison(key, op, when, micros)
    if info.edm == "Edm.Boolean" and op not in ("eq", "ne"):
        raise bad_request("A binary operator with incompatible types was detected. Found operand types "
                          f"'Edm.Boolean' and 'Edm.Boolean' for operator kind '{_OPS[op]}'.")
    return _plain_comparison(key, op, lit)


def _string_comparison(key: str, op: str, value: str) -> Predicate:
    if op == "eq":
        return lambda row: (v := row.get(key)) is not None and v.lower() == value
    if op == "ne":
        return lambda row: (v := row.get(key)) is not None and v.lower() != value
    if op == "gt":
        return lambda row: (v := row.get(key)) is not None and v.lower() > value
    if op == "ge":
        return lambda row: (v := row.get(key)) is not None and v.lower() >= value
    if op == "lt":
        return lambda row: (v := row.get(key)) is not None and v.lower() < value
    return lambda row: (v := row.get(key)) is not None and v.lower() <= value


def _datetime_comparison(key: str, op: str, when: datetime, micros: int) -> Predicate:
    """Stored datetimes are whole-second canonical strings, so string order is time order. A literal with a
    fraction is moved to the neighbouring whole second in the direction that keeps the comparison exact."""
    floor = format_datetime(when)
    ceil = format_datetime(when + timedelta(seconds=1)) if micros else floor
    if micros:
        if op == "eq":
            return lambda row: False
        if op == "ne":
            return lambda row: row.get(key) is not None
        if op in ("gt", "ge"):
            op, value = "ge", ceil
        else:
            op, value = "le", floor
    else:
        value = floor
    return _plain_comparison(key, op, value)


def _plain_comparison(key: str, op: str, value: Any) -> Predicate:
    if op == "eq":
        return lambda row: (v := row.get(key)) is not None and v == value
    if op == "ne":
        return lambda row: (v := row.get(key)) is not None and v != value
    if op == "gt":
        return lambda row: (v := row.get(key)) is not None and v > value
    if op == "ge":
        return lambda row: (v := row.get(key)) is not None and v >= value
    if op == "lt":
        return lambda row: (v := row.get(key)) is not None and v < value
    return lambda row: (v := row.get(key)) is not None and v <= value


# ------------------------------------------------------------------------------------------ key segments
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def is_guid(text: str) -> bool:
    return bool(_GUID.match(text))


def parse_key_segment(text: str) -> str | dict[str, Any]:
    """The part inside `set(…)`: a bare GUID, or `name=value[,name=value]` (alternate keys).

    Values: `'string'` (with `''` escapes), GUIDs, integers, decimals, true/false."""
    text = text.strip()
    if is_guid(text):
        return text.lower()
    values: dict[str, Any] = {}
    pos = 0
    while pos < len(text):
        m = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*").match(text, pos)
        if not m:
            raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{text}'.")
        name, pos = m.group(1), m.end()
        if pos < len(text) and text[pos] == "'":
            end = pos + 1
            chunks = []
            while True:
                nxt = text.find("'", end)
                if nxt < 0:
                    raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{text}'.")
                chunks.append(text[end:nxt])
                if nxt + 1 < len(text) and text[nxt + 1] == "'":
                    chunks.append("'")
                    end = nxt + 2
                    continue
                pos = nxt + 1
                break
            values[name] = "".join(chunks)
        else:
            m2 = re.compile(r"([^,]+)").match(text, pos)
            if not m2:
                raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{text}'.")
            raw, pos = m2.group(1).strip(), m2.end()
            values[name] = _key_literal(raw, text)
        rest = text[pos:].lstrip()
        if rest.startswith(","):
            pos = len(text) - len(rest) + 1
        elif rest:
            raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{text}'.")
        else:
            break
    if not values:
        raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{text}'.")
    return values


def _key_literal(raw: str, text: str) -> Any:
    if is_guid(raw):
        return raw.lower()
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw.rstrip("mMdD"))
    except ValueError:
        raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{text}'.") from None


# --------------------------------------------------------------------------------------- paging cookies
@dataclass
class PagingCookie:
    page: int                      # the page number the cookie was written after
    last: dict[str, Any]           # sort column → value of the last row returned (None = null)
    first_pk: str | None = None
    version: int | None = None     # change-tracking snapshot version (tracking reads and deltas)
    returned: int = 0              # rows returned so far (for $top beyond one page)
    phase: str | None = None       # delta paging: "u" (new/updated) or "d" (deleted)
    tracking: bool = False


def _brace(guid: str) -> str:
    return "{" + guid.upper() + "}"


def _cookie_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str) and is_guid(value):
        return _brace(value)
    return str(value)


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def encode_skiptoken(cookie: PagingCookie, pk: str) -> str:
    """The `$skiptoken` value as it appears (already percent-encoded) in an `@odata.nextLink`, in the shape
    Dataverse uses: `<cookie pagenumber="2" pagingcookie="%3ccookie page%3d%221%22%3e…" istracking="False" />`."""
    root = ElementTree.Element("cookie", {"page": str(cookie.page)})
    if cookie.version is not None:
        root.set("version", str(cookie.version))
    if cookie.returned:
        root.set("returned", str(cookie.returned))
    if cookie.phase:
        root.set("phase", cookie.phase)
    for name, value in cookie.last.items():
        attrs = {} if value is None else {"last": _cookie_value(value)}
        if name == pk and cookie.first_pk:
            attrs["first"] = _brace(cookie.first_pk)
        ElementTree.SubElement(root, name, attrs)
    inner = _lower_hex(quote(ElementTree.tostring(root, encoding="unicode"), safe=""))
    outer = (f'<cookie pagenumber="{cookie.page + 1}" pagingcookie="{inner}" '
             f'istracking="{"True" if cookie.tracking else "False"}" />')
    return quote(outer, safe="=/")


_OUTER = re.compile(r'^<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="(True|False)" />$')


def decode_skiptoken(token: str, types: dict[str, Callable[[str], Any]]) -> PagingCookie:
    """Inverse of `encode_skiptoken` after the query string was decoded once. `types` converts the text of
    each sort column back to its stored value."""
    m = _OUTER.match(token.strip())
    if not m:
        raise bad_request("Invalid $skiptoken value.", "0x80040203")
    try:
        root = ElementTree.fromstring(unquote(m.group(2)))
    except ElementTree.ParseError:
        raise bad_request("Invalid $skiptoken value.", "0x80040203") from None
    last: dict[str, Any] = {}
    first_pk = None
    for child in root:
        if child.tag not in types:
            raise bad_request("Invalid $skiptoken value.", "0x80040203")
        raw = child.get("last")
        if raw is not None and raw.startswith("{") and raw.endswith("}") and is_guid(raw[1:-1]):
            raw = raw[1:-1].lower()
        last[child.tag] = None if raw is None else types[child.tag](raw)
        first = child.get("first")
        if first:
            first_pk = first.strip("{}").lower()
    version = root.get("version")
    return PagingCookie(
        page=int(root.get("page", "1")), last=last, first_pk=first_pk,
        version=int(version) if version else None, returned=int(root.get("returned", "0")),
        phase=root.get("phase"), tracking=m.group(3) == "True",
    )


# ------------------------------------------------------------------------------------------ delta tokens
def encode_deltatoken(version: int, when: datetime) -> str:
    """`919042!08/22/2017 08:10:44`, percent-encoded as in Dataverse's deltaLinks (`919042%2108%2f22%2f…`)."""
    text = f"{version}!{when.astimezone(UTC).strftime('%m/%d/%Y %H:%M:%S')}"
    return _lower_hex(quote(text, safe=""))


def quote_token(text: str) -> str:
    """Re-encode a decoded `$deltatoken` for a link (same encoding as `encode_deltatoken`)."""
    return _lower_hex(quote(text, safe=""))


def decode_deltatoken(text: str) -> tuple[int, datetime] | None:
    version, _, stamp = text.partition("!")
    if not version.isdigit():
        return None
    try:
        when = datetime.strptime(stamp, "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(version), when
