"""The Dataverse Web API v9.2 handlers: queries with paging and change tracking, single rows by id or
alternate key, create / update / upsert / delete, single properties, `$count`, metadata, WhoAmI, Merge,
and `$batch` execution.

Handlers are synchronous functions of an `ApiRequest` returning an `ApiResponse`, so a `$batch` part runs
through exactly the same code as a top-level request. `DataverseRoutes` is mixed into `DynamicsEmulator`
(emulator.py), which owns the store, the schema, the lock and the HTTP plumbing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import orjson

from sandbox.dynamics import writes
from sandbox.dynamics.batch import (
    MAX_OPERATIONS,
    BatchWriter,
    ChangeSet,
    Operation,
    PartResponse,
    count_operations,
    parse_batch,
)
from sandbox.dynamics.odata import (
    ODataError,
    OrderKey,
    PagingCookie,
    Predicate,
    Prefer,
    PropertyInfo,
    bad_request,
    build_query,
    check_options,
    compare_keys,
    compile_filter,
    decode_deltatoken,
    decode_skiptoken,
    encode_deltatoken,
    encode_skiptoken,
    is_guid,
    no_property,
    parse_count,
    parse_key_segment,
    parse_orderby,
    parse_prefer,
    parse_query,
    parse_select,
    parse_top,
    quote_token,
    sort_value,
)
from sandbox.dynamics.schema import (
    ATTRIBUTE_DEFINITION_TYPES,
    DISPLAY,
    ENTITY_DEFINITION_TYPES,
    KEY_DEFINITION_TYPES,
    Column,
    Table,
    attribute_definition,
    entity_definition,
    key_definition,
)
from sandbox.dynamics.store import Row

if TYPE_CHECKING:
    from sandbox.dynamics.emulator import DynamicsEmulator

API = "/api/data/v9.2/"
JSON = "application/json; odata.metadata=minimal"
FORMATTED = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAV_PROPERTY = "Microsoft.Dynamics.CRM.associatednavigationproperty"
COUNT_CAP = 5000
EXPIRED_TOKEN = "Version stamp associated with the client has expired. Please perform a full sync."


@dataclass
class ApiRequest:
    method: str
    path: str                         # decoded path
    query: str                        # raw query string
    headers: dict[str, str]           # lower-case names (Prefer values joined with ", ")
    body: bytes = b""
    token: str | None = None
    in_batch: bool = False


@dataclass
class ApiResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_body(status: int, body: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    out = {"Content-Type": JSON}
    if headers:
        out.update(headers)
    return ApiResponse(status, orjson.dumps(body), out)


def error_response(error: ODataError) -> ApiResponse:
    return json_body(error.status, {"error": {"code": error.code, "message": error.message}}, error.headers)


def _not_found(table: Table, pk: str) -> ODataError:
    return ODataError(404, "0x80040217", f"{table.logical} With Id = {pk} Does Not Exist")


def _method_not_allowed(method: str) -> ODataError:
    return ODataError(405, "0x80060888", f"The requested resource does not support http method '{method}'.")


class DataverseRoutes:
    """Handlers of the Web API; see the module docstring. Expects the attributes DynamicsEmulator sets."""

    # ------------------------------------------------------------------------------------------ helpers
    @property
    def root(self: DynamicsEmulator) -> str:
        return f"{self.base_url}{API}"

    def _table(self: DynamicsEmulator, entity_set: str) -> Table:
        return self.schema.tables[entity_set]

    def _resolver(self: DynamicsEmulator, table: Table):
        columns = table.columns

        def resolve(name: str) -> PropertyInfo | None:
            column = columns.get(name)
            return PropertyInfo(name, column.edm) if column is not None else None

        return resolve

    def _predicate(self: DynamicsEmulator, table: Table, source: str | None) -> Predicate | None:
        if source is None:
            return None
        key = (table.entity_set, source)
        compiled = self._filters.get(key)
        if compiled is None:
            compiled = compile_filter(source, self._resolver(table), table.type_name)
            if len(self._filters) > 512:
                self._filters.clear()
            self._filters[key] = compiled
        return compiled

    def _order(self: DynamicsEmulator, table: Table, source: str | None) -> list[OrderKey]:
        return parse_orderby(source, {p: c.edm for p, c in table.columns.items()}, table.type_name)

    def _cookie_types(self: DynamicsEmulator, table: Table) -> dict[str, Any]:
        types = self._cookie_parsers.get(table.entity_set)
        if types is None:
            types = {prop: _parser_for(column) for prop, column in table.columns.items()}
            self._cookie_parsers[table.entity_set] = types
        return types

    def _entity_id(self: DynamicsEmulator, table: Table, pk: str) -> str:
        return f"{self.root}{table.entity_set}({pk})"

    def _context(self: DynamicsEmulator, table: Table, select: list[str] | None, suffix: str = "") -> str:
        columns = f"({','.join(select)})" if select else ""
        return f"{self.root}$metadata#{table.entity_set}{columns}{suffix}"

    def _locate(self: DynamicsEmulator, table: Table, key_text: str) -> tuple[Row | None, str | None,
                                                                               dict[str, Any] | None]:
        """Resolve `set(<key>)`: (row or None, primary key if the URL named one, alternate-key values)."""
        key = parse_key_segment(key_text)
        if isinstance(key, str):
            return self.store.get(table.entity_set, key), key, None
        if set(key) == {table.pk}:
            value = key[table.pk]
            if not isinstance(value, str) or not is_guid(value):
                raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{key_text}'.")
            return self.store.get(table.entity_set, value.lower()), value.lower(), None
        for name, attributes in table.alt_keys.items():
            if set(attributes) == set(key):
                values = []
                for attribute in attributes:
                    column = table.attributes[attribute]
                    value = key[attribute]
                    if column.edm == "Edm.String" and not isinstance(value, str):
                        raise bad_request(f"Bad Request - Error in query syntax. Invalid key '{key_text}'.")
                    values.append(value)
                row = self.store.find_alternate(table.entity_set, name, tuple(values))
                return row, None, {a: key[a] for a in attributes}
        raise ODataError(400, "0x80060890",
                         f"The specified key attributes are not a defined key for the {table.logical} entity")

    def _missing(self: DynamicsEmulator, table: Table, pk: str | None) -> ODataError:
        if pk is not None:
            return _not_found(table, pk)
        return ODataError(404, "0x80040217",
                          f"A record with the specified key values does not exist in {table.logical} entity")

    def _resolve_ref(self: DynamicsEmulator, value: str) -> tuple[str, str]:
        """An `@odata.bind` value (`/accounts(guid)`, `accounts(guid)`, absolute URL, alternate key) →
        (target logical name, guid)."""
        ref = value.strip()
        if "://" in ref:
            ref = urlsplit(ref).path
        if ref.startswith(API):
            ref = ref[len(API):]
        ref = ref.lstrip("/")
        open_at = ref.find("(")
        if open_at <= 0 or not ref.endswith(")"):
            raise bad_request(f"The URI '{value}' is not a valid entity reference.", "0x80048d19")
        entity_set, key_text = ref[:open_at], ref[open_at + 1:-1]
        table = self.schema.tables.get(entity_set)
        if table is None or table.read_only:
            raise ODataError(404, "0x8006088a", f"Resource not found for the segment '{entity_set}'.")
        row, pk, _alt = self._locate(table, key_text)
        if row is None:
            raise self._missing(table, pk)
        return table.logical, row[table.pk]

    def _email_of(self: DynamicsEmulator, logical: str, guid: str) -> str | None:
        row = self.store.row_of(guid)
        if row is None:
            return None
        return row.get("internalemailaddress") if logical == "systemuser" else row.get("emailaddress1")

    # ---------------------------------------------------------------------------------------- rendering
    def _render(self: DynamicsEmulator, table: Table, row: Row, select: list[str] | None, prefer: Prefer) -> Row:
        if select is None and not prefer.any_annotations:
            return row
        columns = _columns(table, select)
        if not prefer.any_annotations:
            out = {"@odata.etag": row["@odata.etag"]}
            for name in columns:
                out[name] = row.get(name)
            return out
        formatted, logical, navprop = prefer.wants(FORMATTED), prefer.wants(LOOKUP_LOGICAL), \
            prefer.wants(NAV_PROPERTY)
        out = {"@odata.etag": row["@odata.etag"]}
        for name in columns:
            value = row.get(name)
            if value is not None:
                column = table.columns[name]
                if formatted:
                    text = self._formatted(table, column, value, row)
                    if text is not None:
                        out[f"{name}@{FORMATTED}"] = text
                if column.is_lookup and (logical or navprop):
                    target = self.store.logical_of(value) or (column.targets[0] if len(column.targets) == 1
                                                              else None)
                    if target is not None:
                        if navprop:
                            out[f"{name}@{NAV_PROPERTY}"] = _nav_name(table, column, target)
                        if logical:
                            out[f"{name}@{LOOKUP_LOGICAL}"] = target
            out[name] = value
        return out

    def _render_page(self: DynamicsEmulator, table: Table, rows: list[Row], select: list[str] | None,
                     prefer: Prefer) -> list[Row]:
        if select is None and not prefer.any_annotations:
            return rows                                     # stored rows are already in the served shape
        if not prefer.any_annotations:                      # every stored row has every column
            keys = ("@odata.etag", *_columns(table, select))
            return [{key: row[key] for key in keys} for row in rows]
        return [self._render(table, row, select, prefer) for row in rows]

    def _formatted(self: DynamicsEmulator, table: Table, column: Column, value: Any, row: Row) -> str | None:
        kind = column.kind
        if kind in ("Picklist", "State", "Status"):
            options = column.options
            if table.read_only and kind == "Status":   # activitypointer: labels of the activity's own table
                source = self.schema.by_logical.get(row.get("activitytypecode") or "")
                options = source.columns["statuscode"].options if source else None
            return options.get(value) if options else None
        if kind == "Boolean":
            return column.bool_labels[1 if value else 0]
        if kind == "DateTime":
            return _format_us_datetime(value)
        if kind == "Money":
            return f"${value:,.2f}"
        if kind == "Integer":
            return f"{value:,}"
        if kind in ("Decimal", "Double"):
            return f"{value:,.2f}"
        if kind == "EntityName":
            return DISPLAY.get(value)
        if column.is_lookup:
            target = self.store.row_of(value)
            owner = self.store.logical_of(value)
            if target is None or owner is None:
                return None
            name = self.schema.by_logical[owner].primary_name
            return target.get(name) if name else None
        return None

    def _prefer_applied(self: DynamicsEmulator, prefer: Prefer, *, page_size: int | None = None,
                        tracking: bool = False, representation: bool = False) -> dict[str, str]:
        applied = []
        if page_size is not None and prefer.maxpagesize:
            applied.append(f"odata.maxpagesize={page_size}")
        if tracking:
            applied.append("odata.track-changes")
        if prefer.annotations_raw:
            applied.append(f"odata.include-annotations={prefer.annotations_raw}")
        if representation:
            applied.append("return=representation")
        return {"Preference-Applied": ",".join(applied)} if applied else {}

    # ------------------------------------------------------------------------------------------- reads
    def h_collection_get(self: DynamicsEmulator, req: ApiRequest, entity_set: str) -> ApiResponse:
        table = self._table(entity_set)
        params = parse_query(req.query)
        prefer = parse_prefer([req.headers.get("prefer", "")])
        if prefer.track_changes or "$deltatoken" in params:
            _reject_with_tracking(params)
        check_options(params)
        if "$deltatoken" in params:
            return self._delta(req, table, params, prefer)
        select = parse_select(params.get("$select"), table.columns, table.type_name)
        cookie_text = params.get("$skiptoken")
        cookie = decode_skiptoken(cookie_text, self._cookie_types(table)) if cookie_text else None
        tracking = prefer.track_changes or (cookie is not None and cookie.tracking)
        if tracking:
            _reject_with_tracking(params)
            self._require_tracking(table)
        predicate = self._predicate(table, params.get("$filter"))
        order = self._order(table, params.get("$orderby"))
        top = parse_top(params.get("$top"))
        count = parse_count(params.get("$count"))
        page_size = min(prefer.maxpagesize or self.max_page_size, self.max_page_size)
        if prefer.maxpagesize:
            top = None                              # documented: $top is ignored with odata.maxpagesize
        cache_key = (params.get("$filter"), tuple((o.prop, o.desc) for o in order))
        if cookie is not None:
            self._paging_faults(table, cache_key, predicate, order, cookie)
        snapshot = cookie.version if cookie is not None and cookie.version is not None else self.store.version
        rows = self.store.query(entity_set, cache_key, predicate, order, table.pk)
        start = _position_after(rows, order, table.pk, cookie) if cookie is not None else 0
        already = cookie.returned if cookie is not None else 0
        limit = page_size if top is None else max(0, min(page_size, top - already))
        page = rows[start:start + limit]
        returned = already + len(page)
        more = start + len(page) < len(rows) and (top is None or returned < top) and bool(page)

        body: dict[str, Any] = {"@odata.context": self._context(table, select)}
        if count:
            body["@odata.count"] = min(len(rows), COUNT_CAP)
        link_params = [(k, v) for k, v in params.items() if k != "$skiptoken"]
        if tracking and not more:
            body["@odata.deltaLink"] = self._delta_link(table, link_params, snapshot)
        body["value"] = self._render_page(table, page, select, prefer)
        if more:
            last = page[-1]
            next_cookie = PagingCookie(
                page=(cookie.page + 1) if cookie is not None else 1,
                last={k.prop: last.get(k.prop) for k in keyset(order, table.pk)},
                first_pk=page[0][table.pk], version=snapshot if tracking else None,
                returned=returned if top is not None else 0, tracking=tracking)
            body["@odata.nextLink"] = self._link(table, link_params,
                                                 ("$skiptoken", encode_skiptoken(next_cookie, table.pk)))
        headers = self._prefer_applied(prefer, page_size=page_size, tracking=prefer.track_changes)
        return json_body(200, body, headers)

    def _link(self: DynamicsEmulator, table: Table, params: list[tuple[str, str]], extra: tuple[str, str]) -> str:
        query = build_query(params)
        tail = f"{extra[0]}={extra[1]}"
        return f"{self.root}{table.entity_set}?{query + '&' if query else ''}{tail}"

    def _delta_link(self: DynamicsEmulator, table: Table, params: list[tuple[str, str]], version: int) -> str:
        kept = [(k, v) for k, v in params if k not in ("$deltatoken", "$skiptoken")]
        return self._link(table, kept, ("$deltatoken", encode_deltatoken(version, self.store.now())))

    def _require_tracking(self: DynamicsEmulator, table: Table) -> None:
        enabled = self.store.pointer_tracking if table.read_only else self.store.state(table.entity_set).tracking
        if not enabled:
            raise ODataError(400, "0x80072491", f"Entity {table.logical} isn't enabled for change tracking.")

    def _delta(self: DynamicsEmulator, req: ApiRequest, table: Table, params: dict[str, str],
               prefer: Prefer) -> ApiResponse:
        _reject_with_tracking(params)
        self._require_tracking(table)
        since = self._check_deltatoken(table, params["$deltatoken"])
        select = parse_select(params.get("$select"), table.columns, table.type_name)
        cookie_text = params.get("$skiptoken")
        cookie = decode_skiptoken(cookie_text, {"versionnumber": int}) if cookie_text else None
        if cookie is None:
            self._sync_faults(table)
        snapshot = cookie.version if cookie is not None and cookie.version is not None else self.store.version
        updated, deleted = self.store.changes_since(table.entity_set, since, snapshot)
        if cookie is not None and cookie.phase == "u":
            last = cookie.last.get("versionnumber") or 0
            lo, hi = 0, len(updated)
            while lo < hi:
                mid = (lo + hi) // 2
                if updated[mid]["versionnumber"] <= last:
                    lo = mid + 1
                else:
                    hi = mid
            updated, d_offset = updated[lo:], 0
        elif cookie is not None:
            updated, d_offset = [], cookie.returned
        else:
            d_offset = 0
        page_size = min(prefer.maxpagesize or self.max_page_size, self.max_page_size)
        page_rows = updated[:page_size]
        room = page_size - len(page_rows)
        page_deleted = deleted[d_offset:d_offset + room] if room > 0 else []
        more = len(updated) > len(page_rows) or len(deleted) > d_offset + len(page_deleted)
        marker_context = f"{self.root}$metadata#{table.entity_set}/$deletedEntity"
        value = self._render_page(table, page_rows, select, prefer)
        value += [{"@odata.context": marker_context, "id": pk, "reason": "deleted"} for pk in page_deleted]
        body: dict[str, Any] = {"@odata.context": self._context(table, select, "/$delta")}
        link_params = [(k, v) for k, v in params.items() if k not in ("$skiptoken", "$deltatoken")]
        if more:
            if page_deleted or not page_rows:
                next_cookie = PagingCookie(page=(cookie.page + 1) if cookie else 1, last={}, phase="d",
                                           returned=d_offset + len(page_deleted), version=snapshot, tracking=True)
            else:
                next_cookie = PagingCookie(page=(cookie.page + 1) if cookie else 1,
                                           last={"versionnumber": page_rows[-1]["versionnumber"]}, phase="u",
                                           version=snapshot, tracking=True)
            body["value"] = value
            body["@odata.nextLink"] = self._link(
                table, link_params, ("$deltatoken", quote_token(params["$deltatoken"]))
            ) + "&$skiptoken=" + encode_skiptoken(next_cookie, "versionnumber")
        else:
            body["@odata.deltaLink"] = self._delta_link(table, link_params, snapshot)
            body["value"] = value
        return json_body(200, body, self._prefer_applied(prefer, page_size=page_size))

    def _check_deltatoken(self: DynamicsEmulator, table: Table, text: str) -> int:
        decoded = decode_deltatoken(text)
        state = self.store.state(table.entity_set)
        if decoded is None:
            raise ODataError(400, "0x80044352", EXPIRED_TOKEN)
        version, issued = decoded
        expired = self.store.now() - issued > timedelta(days=self.change_tracking_expiry_days)
        if version > self.store.version or version < state.min_valid_version or expired:
            raise ODataError(400, "0x80044352", EXPIRED_TOKEN)
        return version

    def h_count(self: DynamicsEmulator, req: ApiRequest, entity_set: str) -> ApiResponse:
        table = self._table(entity_set)
        params = parse_query(req.query)
        check_options(params)
        if "$deltatoken" in params:
            self._require_tracking(table)
            since = self._check_deltatoken(table, params["$deltatoken"])
            updated, deleted = self.store.changes_since(entity_set, since, self.store.version)
            total = len(updated) + len(deleted)
        else:
            predicate = self._predicate(table, params.get("$filter"))
            source = self.store.all_rows(entity_set)
            total = sum(1 for row in source if predicate(row)) if predicate else sum(1 for _ in source)
        return ApiResponse(200, str(min(total, COUNT_CAP)).encode(), {"Content-Type": "text/plain"})

    def h_entity_get(self: DynamicsEmulator, req: ApiRequest, entity_set: str, key: str) -> ApiResponse:
        table = self._table(entity_set)
        params = parse_query(req.query)
        check_options(params)
        for option in ("$filter", "$orderby", "$top", "$skiptoken", "$deltatoken"):
            if option in params:
                raise bad_request(f"The query parameter {option} is not supported for a single record.")
        prefer = parse_prefer([req.headers.get("prefer", "")])
        select = parse_select(params.get("$select"), table.columns, table.type_name)
        row, pk, _alt = self._locate(table, key)
        if row is None:
            raise self._missing(table, pk)
        tag = row["@odata.etag"]
        if req.headers.get("if-none-match") == tag:
            return ApiResponse(304, b"", {"ETag": tag})
        body = {"@odata.context": self._context(table, select, "/$entity")}
        body.update(self._render(table, row, select, prefer))
        return json_body(200, body, {"ETag": tag, **self._prefer_applied(prefer)})

    # ------------------------------------------------------------------------------------------ writes
    def _body(self: DynamicsEmulator, req: ApiRequest, table: Table) -> dict[str, Any]:
        try:
            body = orjson.loads(req.body or b"{}")
        except orjson.JSONDecodeError:
            raise writes.payload_error(table.entity_set, "Invalid JSON. A token was not recognized in the JSON "
                                       "content.") from None
        if not isinstance(body, dict):
            raise writes.payload_error(table.entity_set, "A JSON object was expected as the request body.")
        return body

    def _writable(self: DynamicsEmulator, table: Table, method: str) -> None:
        if table.read_only:
            raise _method_not_allowed(method)

    def _create(self: DynamicsEmulator, table: Table, body: dict[str, Any], *, pk: str | None = None,
                alt: dict[str, Any] | None = None) -> Row:
        url_key = ({table.pk: pk} if pk else {}) | (alt or {})
        changes, parties = writes.prepare_changes(table, body, creating=True, resolve=self._resolve_ref,
                                                  url_key=url_key or None)
        new_pk = pk or changes.pop(table.pk, None) or str(uuid.uuid4())
        changes.pop(table.pk, None)
        if self.store.owner.get(new_pk) is not None:
            raise ODataError(412, "0x80040237", "Cannot insert duplicate key.")
        for attribute, value in (alt or {}).items():
            changes[table.attributes[attribute].prop] = writes._coerce(table, table.attributes[attribute], value)
        if parties is not None:
            sender, recipients = writes.email_addresses(parties, self._resolve_ref, self._email_of,
                                                        table.entity_set)
            changes.setdefault("sender", sender)
            changes.setdefault("torecipients", recipients)
        writes.settle_state(table, None, changes, new_pk)
        row = writes.new_row(table, new_pk, changes, now=self.store.now_text(),
                             version=self.store.next_version(), user_id=self.user_id)
        self._check_alternate(table, row)
        self.store.put(table.entity_set, row)
        self._wrote(table, new_pk)
        return row

    def _update(self: DynamicsEmulator, table: Table, old: Row, body: dict[str, Any],
                url_key: dict[str, Any]) -> Row:
        changes, _parties = writes.prepare_changes(table, body, creating=False, resolve=self._resolve_ref,
                                                   url_key=url_key)
        pk = old[table.pk]
        writes.settle_state(table, old, changes, pk)
        row = writes.updated_row(table, old, changes, now=self.store.now_text(),
                                 version=self.store.next_version(), user_id=self.user_id)
        self._check_alternate(table, row)
        self.store.put(table.entity_set, row)
        self._wrote(table, pk)
        return row

    def _check_alternate(self: DynamicsEmulator, table: Table, row: Row) -> None:
        conflict = self.store.alternate_conflict(table.entity_set, row)
        if conflict is not None:
            attributes = ", ".join(table.alt_keys[conflict])
            raise ODataError(412, "0x80060892", f"Entity Key {conflict} violated. A record with the same value "
                             f"for {attributes} already exists. A duplicate record cannot be created. Select one "
                             "or more unique values and try again.")

    def _write_select(self: DynamicsEmulator, req: ApiRequest, table: Table) -> list[str] | None:
        """`?$select=` of a write answered with return=representation, checked before anything is written."""
        params = parse_query(req.query)
        for option in params:
            if option.startswith("$") and option != "$select":
                raise bad_request(f"The query parameter {option} is not supported for this request.")
        return parse_select(params.get("$select"), table.columns, table.type_name)

    def _write_response(self: DynamicsEmulator, req: ApiRequest, table: Table, row: Row, created: bool,
                        prefer: Prefer, select: list[str] | None) -> ApiResponse:
        entity_id = self._entity_id(table, row[table.pk])
        headers = {"OData-EntityId": entity_id}
        if req.in_batch:
            headers["Location"] = entity_id
        if prefer.return_representation:
            body = {"@odata.context": self._context(table, select, "/$entity")}
            body.update(self._render(table, row, select, prefer))
            headers.update(self._prefer_applied(prefer, representation=True))
            headers["ETag"] = row["@odata.etag"]
            return json_body(201 if created else 200, body, headers)
        return ApiResponse(204, b"", headers)

    def h_collection_post(self: DynamicsEmulator, req: ApiRequest, entity_set: str) -> ApiResponse:
        table = self._table(entity_set)
        self._writable(table, "POST")
        prefer = parse_prefer([req.headers.get("prefer", "")])
        select = self._write_select(req, table)
        body = self._body(req, table)
        row = self._create(table, body)
        return self._write_response(req, table, row, True, prefer, select)

    def h_entity_patch(self: DynamicsEmulator, req: ApiRequest, entity_set: str, key: str) -> ApiResponse:
        table = self._table(entity_set)
        self._writable(table, "PATCH")
        prefer = parse_prefer([req.headers.get("prefer", "")])
        select = self._write_select(req, table)
        body = self._body(req, table)
        row, pk, alt = self._locate(table, key)
        if_match = (req.headers.get("if-match") or "").strip()
        if_none = (req.headers.get("if-none-match") or "").strip()
        if if_none == "*":
            if row is not None:
                raise ODataError(412, "0x80040237", "A record with matching key values already exists.")
        elif if_match:
            if row is None:
                raise self._missing(table, pk)
            if if_match != "*" and not _etag_matches(if_match, row["@odata.etag"]):
                raise ODataError(412, "0x80060882",
                                 "The version of the existing record doesn't match the RowVersion property "
                                 "provided.")
        if row is None:
            created = self._create(table, body, pk=pk, alt=alt)
            return self._write_response(req, table, created, True, prefer, select)
        url_key = {table.pk: row[table.pk]} if pk else dict(alt or {})
        updated = self._update(table, row, body, url_key)
        return self._write_response(req, table, updated, False, prefer, select)

    def h_entity_delete(self: DynamicsEmulator, req: ApiRequest, entity_set: str, key: str) -> ApiResponse:
        table = self._table(entity_set)
        self._writable(table, "DELETE")
        row, pk, _alt = self._locate(table, key)
        if row is None:
            raise self._missing(table, pk)
        if_match = (req.headers.get("if-match") or "").strip()
        if if_match and if_match != "*" and not _etag_matches(if_match, row["@odata.etag"]):
            raise ODataError(412, "0x80060882",
                             "The version of the existing record doesn't match the RowVersion property provided.")
        self.store.remove(entity_set, row[table.pk])
        self._wrote(table, row[table.pk], deleted=row)
        return ApiResponse(204)

    def h_property(self: DynamicsEmulator, req: ApiRequest, entity_set: str, key: str, prop: str) -> ApiResponse:
        table = self._table(entity_set)
        if prop == "$ref" or prop.endswith("/$ref"):
            raise bad_request("$ref operations are not supported by the sandbox Dataverse emulator; use "
                              "@odata.bind.")
        column = table.columns.get(prop)
        if column is None:
            raise no_property(prop, table.type_name)
        row, pk, alt = self._locate(table, key)
        if row is None:
            raise self._missing(table, pk)
        if req.method == "GET":
            if row.get(prop) is None:
                return ApiResponse(204)
            body = {"@odata.context": f"{self.root}$metadata#{entity_set}({row[table.pk]})/{prop}",
                    "value": row.get(prop)}
            return json_body(200, body)
        self._writable(table, req.method)
        if column.is_lookup:
            raise bad_request("CRM do not support direct update of Entity Reference properties, Use "
                              "Navigation properties instead.", "0x80048d19")
        value = None
        if req.method == "PUT":
            body = self._body(req, table)
            if "value" not in body:
                raise writes.payload_error(entity_set, "The request body must contain a 'value' property.")
            value = body["value"]
        url_key = {table.pk: row[table.pk]} if pk else dict(alt or {})
        self._update(table, row, {prop: value}, url_key)
        return ApiResponse(204)

    # ---------------------------------------------------------------------------------------- functions
    def h_service_document(self: DynamicsEmulator, req: ApiRequest) -> ApiResponse:
        return json_body(200, {"@odata.context": f"{self.root}$metadata", "value": [
            {"name": name, "kind": "EntitySet", "url": name} for name in self.schema.tables]})

    def h_whoami(self: DynamicsEmulator, req: ApiRequest) -> ApiResponse:
        return json_body(200, {
            "@odata.context": f"{self.root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": self.business_unit_id, "UserId": self.user_id,
            "OrganizationId": self.organization_id,
        })

    def h_merge(self: DynamicsEmulator, req: ApiRequest) -> ApiResponse:
        try:
            body = orjson.loads(req.body or b"{}")
        except orjson.JSONDecodeError:
            raise bad_request("Invalid JSON in the Merge request body.", "0x80048d19") from None
        target, subordinate = body.get("Target"), body.get("Subordinate")
        if not isinstance(target, dict) or not isinstance(subordinate, dict):
            raise bad_request("Merge requires 'Target' and 'Subordinate' entity references.", "0x80040203")
        kind = (target.get("@odata.type") or "").split(".")[-1]
        table = self.schema.by_logical.get(kind)
        if table is None or "merged" not in table.columns:
            raise bad_request(f"Merge is not supported for entity '{kind}'.", "0x80040203")
        self.merge(table.entity_set, str(target.get(table.pk, "")).lower(),
                   str(subordinate.get(table.pk, "")).lower(), body.get("UpdateContent"), via_api=True)
        return ApiResponse(204)

    # ----------------------------------------------------------------------------------------- metadata
    def h_entity_definitions(self: DynamicsEmulator, req: ApiRequest) -> ApiResponse:
        params = parse_query(req.query)
        check_options(params)
        records = [entity_definition(t, self._tracking(t)) for t in self.schema.tables.values()]
        return self._metadata_collection(params, records, ENTITY_DEFINITION_TYPES, "EntityMetadata",
                                         "EntityDefinitions")

    def _tracking(self: DynamicsEmulator, table: Table) -> bool:
        return self.store.pointer_tracking if table.read_only else self.store.state(table.entity_set).tracking

    def _definition_table(self: DynamicsEmulator, key: str) -> Table:
        parsed = parse_key_segment(key)
        table = None
        if isinstance(parsed, str):
            table = next((t for t in self.schema.tables.values() if t.metadata_id == parsed), None)
        elif set(parsed) == {"LogicalName"}:
            table = self.schema.by_logical.get(str(parsed["LogicalName"]))
        else:
            raise ODataError(400, "0x80060890",
                             "The specified key attributes are not a defined key for the EntityMetadata entity")
        if table is None:
            raise ODataError(404, "0x80040217", f"Could not find entity with key {key}.")
        return table

    def h_entity_definition(self: DynamicsEmulator, req: ApiRequest, key: str) -> ApiResponse:
        table = self._definition_table(key)
        params = parse_query(req.query)
        check_options(params)
        record = entity_definition(table, self._tracking(table))
        select = _metadata_select(params.get("$select"), ENTITY_DEFINITION_TYPES, "EntityMetadata")
        body = {"@odata.context": f"{self.root}$metadata#EntityDefinitions{_sel(select)}/$entity"}
        body.update(_project(record, select))
        return json_body(200, body)

    def h_entity_definition_nav(self: DynamicsEmulator, req: ApiRequest, key: str, nav: str) -> ApiResponse:
        table = self._definition_table(key)
        params = parse_query(req.query)
        check_options(params)
        name, _, sub = nav.partition("(")
        if name == "Attributes":
            records = [attribute_definition(table, column) for column in table.attributes.values()]
            types, type_name = ATTRIBUTE_DEFINITION_TYPES, "AttributeMetadata"
        elif name == "Keys":
            records = [key_definition(table, k, attrs) for k, attrs in table.alt_keys.items()]
            types, type_name = KEY_DEFINITION_TYPES, "EntityKeyMetadata"
        else:
            raise no_property(name, "Microsoft.Dynamics.CRM.EntityMetadata")
        prefix = f"EntityDefinitions({table.metadata_id})/{name}"
        if sub:
            wanted = parse_key_segment(sub.rstrip(")"))
            found = None
            for record in records:
                if (isinstance(wanted, str) and record["MetadataId"] == wanted) or (
                        isinstance(wanted, dict) and record["LogicalName"] == wanted.get("LogicalName")):
                    found = record
            if found is None:
                raise ODataError(404, "0x80040217", f"Could not find {type_name} with key {sub.rstrip(')')}.")
            select = _metadata_select(params.get("$select"), types, type_name)
            body = {"@odata.context": f"{self.root}$metadata#{prefix}{_sel(select)}/$entity"}
            body.update(_project(found, select))
            return json_body(200, body)
        return self._metadata_collection(params, records, types, type_name, prefix)

    def _metadata_collection(self: DynamicsEmulator, params: dict[str, str], records: list[dict],
                             types: dict[str, str | None], type_name: str, context: str) -> ApiResponse:
        select = _metadata_select(params.get("$select"), types, type_name)
        if params.get("$filter"):
            def resolve(name: str) -> PropertyInfo | None:
                edm = types.get(name)
                return PropertyInfo(name, edm) if edm else None

            predicate = compile_filter(params["$filter"], resolve, f"Microsoft.Dynamics.CRM.{type_name}")
            records = [r for r in records if predicate(r)]
        body = {"@odata.context": f"{self.root}$metadata#{context}{_sel(select)}",
                "value": [_project(r, select) for r in records]}
        return json_body(200, body)

    # -------------------------------------------------------------------------------------------- batch
    def h_batch(self: DynamicsEmulator, req: ApiRequest) -> ApiResponse:
        items = parse_batch(req.headers.get("content-type"), req.body)
        if count_operations(items) > MAX_OPERATIONS:
            raise bad_request(f"Number of requests in the batch exceeded the limit of {MAX_OPERATIONS}.",
                              "0x8004d281")
        for item in items:
            if isinstance(item, ChangeSet):
                for op in item.operations:
                    if op.method == "GET":
                        raise bad_request("GET requests are not allowed within a change set.", "0x8004d281")
        prefer = parse_prefer([req.headers.get("prefer", "")])
        writer = BatchWriter()
        status = 200
        for item in items:
            if isinstance(item, Operation):
                response = self._batch_operation(req, item, {})
                writer.add(_part(response, item.content_id))
                if response.status >= 400 and not prefer.continue_on_error:
                    status = response.status
                    break
                continue
            self.store.begin()
            written_mark = len(self._written_log)
            refs: dict[str, str] = {}
            parts: list[PartResponse] = []
            failed: tuple[PartResponse, int] | None = None
            for op in item.operations:
                response = self._batch_operation(req, op, refs)
                if response.status >= 400:
                    failed = (_part(response, op.content_id), response.status)
                    break
                parts.append(_part(response, op.content_id))
                if op.content_id and "OData-EntityId" in response.headers:
                    refs[op.content_id] = response.headers["OData-EntityId"]
            if failed is not None:
                self.store.rollback()
                self._undo_written(written_mark)
                writer.add(failed[0])
                if not prefer.continue_on_error:
                    status = failed[1]
                    break
            else:
                self.store.commit()
                writer.add_changeset(parts)
        headers = {"Content-Type": writer.content_type}
        if prefer.continue_on_error:
            headers["Preference-Applied"] = "odata.continue-on-error"
        return ApiResponse(status, writer.finish(), headers)

    def _batch_operation(self: DynamicsEmulator, outer: ApiRequest, op: Operation,
                         refs: dict[str, str]) -> ApiResponse:
        started = time.perf_counter()
        url = op.url
        if url.startswith("$"):
            ref, _, rest = url[1:].partition("/")
            if ref not in refs:
                response = error_response(bad_request(f"Content-ID Reference: '${ref}' does not exist in the "
                                                      "batch context."))
                self._log_inner(op.method, "$batch:unresolved", url, "", response.status, started)
                return response
            url = refs[ref] + ("/" + rest if rest else "")
        parts = urlsplit(url)
        path = parts.path
        if not path.startswith("/"):
            path = API + path
        body = op.body
        if refs and body:
            body = _substitute_refs(body, refs)
        inner = ApiRequest(op.method, unquote(path), parts.query, dict(op.headers), body, outer.token,
                           in_batch=True)
        match = self.match_route(inner.method, inner.path)
        key = match[0] if match else "unmatched"
        throttled = self.service_protection(outer.token)
        if throttled is not None:
            response = throttled
        elif match is None:
            response = error_response(self.unknown_resource(inner.path, inner.method))
        else:
            response = self.run_handler(match[1], inner, match[2])
        self._log_inner(op.method, f"$batch:{key}", path, parts.query, response.status, started)
        return response


# ------------------------------------------------------------------------------------------------ helpers
def _parser_for(column: Column) -> Any:
    """Converts a paging-cookie attribute back to the stored value of a column."""
    if column.kind in ("Integer", "BigInt", "Picklist", "State", "Status"):
        return int
    if column.kind in ("Money", "Decimal", "Double"):
        return float
    if column.kind == "Boolean":
        return lambda text: text in ("1", "true", "True")
    return str


def _columns(table: Table, select: list[str] | None) -> list[str]:
    if select is None:
        return list(table.columns)
    return select if table.pk in select else [*select, table.pk]


def _nav_name(table: Table, column: Column, target: str) -> str:
    if column.kind == "Customer" or column.name == "objectid":
        return f"{column.name}_{target}"
    if column.name == "regardingobjectid":
        return f"regardingobjectid_{target}_{table.logical}"
    return column.name


def _format_us_datetime(text: str) -> str:
    """`2024-02-01T14:05:00Z` → `2/1/2024 2:05 PM` (en-US, user time zone UTC)."""
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute = int(text[11:13]), int(text[14:16])
    suffix = "AM" if hour < 12 else "PM"
    return f"{month}/{day}/{year} {hour % 12 or 12}:{minute:02d} {suffix}"


def _reject_with_tracking(params: dict[str, str]) -> None:
    for option in ("$filter", "$orderby", "$expand", "$top"):
        if option in params:
            raise bad_request(f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.')


def _position_after(rows: list[Row], order: list[OrderKey], pk: str, cookie: PagingCookie) -> int:
    """Keyset paging: index of the first row sorting after the paging cookie's last row."""
    keys = keyset(order, pk)
    if any(k.prop not in cookie.last for k in keys) or len(cookie.last) != len(keys):
        raise bad_request("Invalid $skiptoken value.", "0x80040203")
    target = tuple(sort_value(cookie.last[k.prop], k.text) for k in keys)
    desc = tuple(k.desc for k in keys)
    lo, hi = 0, len(rows)
    while lo < hi:
        mid = (lo + hi) // 2
        current = tuple(sort_value(rows[mid].get(k.prop), k.text) for k in keys)
        if compare_keys(current, target, desc) <= 0:
            lo = mid + 1
        else:
            hi = mid
    return lo


def keyset(order: list[OrderKey], pk: str) -> list[OrderKey]:
    """The sort keys of a query: its $orderby, then the primary key (unless already ordered by it)."""
    return order if any(k.prop == pk for k in order) else [*order, OrderKey(pk, False, False)]


def _etag_matches(header: str, current: str) -> bool:
    return any(tag.strip() in (current, current[2:]) for tag in header.split(","))


def _metadata_select(value: str | None, types: dict[str, str | None], type_name: str) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    for name in names:
        if name not in types:
            raise no_property(name, f"Microsoft.Dynamics.CRM.{type_name}")
    return names


def _sel(select: list[str] | None) -> str:
    return f"({','.join(select)})" if select else ""


def _project(record: dict, select: list[str] | None) -> dict:
    if select is None:
        return record
    out = {k: record[k] for k in ("@odata.type",) if k in record}
    for name in select:
        out[name] = record.get(name)
    out["MetadataId"] = record["MetadataId"]
    return out


def _part(response: ApiResponse, content_id: str | None) -> PartResponse:
    headers = [("OData-Version", "4.0")]
    headers += [(k, v) for k, v in response.headers.items()
                if k.lower() != "odata-version" and not k.lower().startswith("x-ms-")]
    return PartResponse(response.status, headers, response.body, content_id)


def _substitute_refs(body: bytes, refs: dict[str, str]) -> bytes:
    """`"x@odata.bind": "$1"` and `"@odata.id": "$1"` → the URL of the entity created by Content-ID 1."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if not isinstance(data, dict):
        return body
    changed = False
    for key, value in data.items():
        if (key.endswith("@odata.bind") or key == "@odata.id") and isinstance(value, str) \
                and value.startswith("$"):
            ref, _, rest = value[1:].partition("/")
            if ref in refs:
                data[key] = refs[ref] + ("/" + rest if rest else "")
                changed = True
    return orjson.dumps(data) if changed else body
