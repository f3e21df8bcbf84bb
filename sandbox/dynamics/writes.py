"""Turning Web API request bodies into row changes, the way Dataverse validates them, and building rows.

Covers: typed column values (lengths, ranges, option values, datetimes normalised to UTC seconds),
`@odata.bind` on navigation properties (`parentcustomerid_account`, `regardingobjectid_contact_task`, …),
refusal of `_x_value` writes, statecode/statuscode pairing, and server-set columns (createdon, modifiedon,
versionnumber, owner, fullname, activitytypecode, objecttypecode, ticketnumber).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.dynamics.odata import ODataError, bad_request, is_guid, normalize_datetime
from sandbox.dynamics.schema import Column, Table
from sandbox.dynamics.store import etag

Row = dict[str, Any]
RefResolver = Callable[[str], tuple[str, str]]   # "/accounts(…)" → (target logical name, guid)

PAYLOAD_HELP = "https://go.microsoft.com/fwlink/?linkid=2195293"
_STATE_TYPE = {"phonecall": "PhoneCall", "systemuser": "SystemUser"}


def payload_error(entity_set: str, detail: str) -> ODataError:
    return ODataError(400, "0x80048d19",
                      f"Error identified in Payload provided by the user for Entity :'{entity_set}', For more "
                      f"information on this error please follow this help link {PAYLOAD_HELP}  ----> "
                      f"InnerException : Microsoft.OData.ODataException: {detail}")


def validation_error(detail: str) -> ODataError:
    return ODataError(400, "0x80044331", f"A validation error occurred.  {detail}")


def prepare_changes(table: Table, body: dict[str, Any], *, creating: bool, resolve: RefResolver,
                    url_key: dict[str, Any] | None = None) -> tuple[Row, list[dict] | None]:
    """Validate a create/update body against the table. Returns (changes by property name, email parties).

    Read-only columns (createdon, fullname, versionnumber, …) are ignored as Dataverse ignores them;
    key columns may repeat the URL's key but not change it."""
    changes: Row = {}
    parties: list[dict] | None = None
    entity_set = table.entity_set
    for key, value in body.items():
        if key.startswith("@"):
            continue                                    # @odata.type, @odata.etag, …
        if key.endswith("@odata.bind"):
            nav = key[: -len("@odata.bind")]
            if nav not in table.nav:
                raise payload_error(entity_set, f"An undeclared property '{nav}' which only has property "
                                    "annotations in the payload but no property value was found in the "
                                    "payload. In OData, only declared navigation properties and declared "
                                    "named streams can be represented as properties without values.")
            column, target = table.nav[nav]
            if value is None:
                changes[column.prop] = None
                continue
            if not isinstance(value, str):
                raise payload_error(entity_set, f"The value of the annotation '{key}' must be a string URL.")
            logical, guid = resolve(value)
            if logical != target:
                raise payload_error(entity_set, f"The navigation property '{nav}' expects an entity of type "
                                    f"'Microsoft.Dynamics.CRM.{target}' but '{value}' refers to an entity of "
                                    f"type 'Microsoft.Dynamics.CRM.{logical}'.")
            changes[column.prop] = guid
            if column.name == "objectid":
                changes["objecttypecode"] = target
            continue
        if "@" in key:
            continue                                    # instance annotations on a property
        if key == "email_activity_parties" and table.logical == "email":
            if not isinstance(value, list):
                raise payload_error(entity_set, "A collection was expected for 'email_activity_parties'.")
            parties = value
            continue
        column = table.columns.get(key)
        if column is None:
            if key in table.nav:
                raise payload_error(entity_set, f"Deep insert through the navigation property '{key}' is not "
                                    "supported by the sandbox Dataverse emulator; use @odata.bind.")
            raise payload_error(entity_set, f"The property '{key}' does not exist on type "
                                f"'{table.type_name}'. Make sure to only use property names that are defined "
                                "by the type or mark the type as open type.")
        if column.is_lookup:
            raise bad_request("CRM do not support direct update of Entity Reference properties, Use "
                              "Navigation properties instead.", "0x80048d19")
        if url_key and column.name in url_key:
            coerced = _coerce(table, column, value)
            if _norm(coerced) != _norm(url_key[column.name]):
                raise bad_request(f"The value of '{column.name}' in the request body does not match the key "
                                  "in the request URL.", "0x80040203")
            continue
        if column.name == table.pk:
            if not creating:
                continue
        elif not (column.create if creating else column.update):
            continue
        changes[column.prop] = _coerce(table, column, value)
    return changes, parties


def _norm(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _coerce(table: Table, column: Column, value: Any) -> Any:
    if value is None:
        return None
    kind = column.kind
    if kind in ("String", "Memo"):
        if not isinstance(value, str):
            raise _literal(table, column, value)
        if column.max_length is not None and len(value) > column.max_length:
            raise validation_error(f"The length of the '{column.name}' attribute of the '{table.logical}' entity "
                                   f"exceeded the maximum allowed length of '{column.max_length}'.")
        return value
    if kind in ("Integer", "BigInt", "Picklist", "State", "Status"):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and kind in ("Integer", "BigInt"):
                value = int(value)
            else:
                raise _literal(table, column, value)
        if column.options is not None and value not in column.options:
            raise validation_error(f"The value {value} of '{column.name}' on record of type '{table.logical}' "
                                   "is outside the valid range.")
        _range(table, column, value)
        return value
    if kind in ("Money", "Decimal", "Double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _literal(table, column, value)
        _range(table, column, value)
        return value
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise _literal(table, column, value)
        return value
    if kind == "DateTime":
        try:
            return normalize_datetime(value)
        except ValueError:
            raise _literal(table, column, value) from None
    if kind == "Uniqueidentifier":
        if not isinstance(value, str) or not is_guid(value):
            raise _literal(table, column, value)
        return value.lower()
    if kind == "EntityName":
        if not isinstance(value, str):
            raise _literal(table, column, value)
        return value
    raise _literal(table, column, value)


def _range(table: Table, column: Column, value: float) -> None:
    low, high = column.min_value, column.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        raise validation_error(f"The value {value} of '{column.name}' on record of type '{table.logical}' is "
                               f"outside the valid range. Accepted range: {_num(low)} to {_num(high)}")


def _num(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


def _literal(table: Table, column: Column, value: Any) -> ODataError:
    return payload_error(table.entity_set, f"Cannot convert the literal '{value}' to the expected type "
                         f"'{column.edm}'.")


def settle_state(table: Table, old: Row | None, changes: Row, pk: str) -> None:
    """statecode/statuscode pairing: a new state without a status gets the state's default status; a status
    must belong to the (new) state."""
    if not table.states:
        return
    if old is None:
        changes.setdefault("statecode", 0)
    state = changes.get("statecode", old.get("statecode") if old else 0)
    if state is None:
        state = 0
    if "statecode" in changes and changes["statecode"] is None:
        raise validation_error(f"The value null of 'statecode' on record of type '{table.logical}' is outside "
                               "the valid range.")
    status = changes.get("statuscode")
    if status is not None:
        owner_state = table.statuses.get(status, (None, None))[1]
        if owner_state != state:
            label = table.states.get(state, (str(state),))[0]
            name = _STATE_TYPE.get(table.logical, table.logical.capitalize())
            raise ODataError(400, "0x80040203", f"{status} is not a valid status code for state code "
                             f"{name}State.{label.replace(' ', '')} on {table.logical} with Id {pk}.")
    elif "statuscode" in changes or old is None or ("statecode" in changes and old.get("statecode") != state):
        changes["statuscode"] = table.states[state][1]


def derive(table: Table, row: Row) -> None:
    """Server-computed columns."""
    if "fullname" in table.columns and table.logical in ("contact", "lead", "systemuser"):
        parts = [row.get("firstname"), row.get("lastname")]
        row["fullname"] = " ".join(p for p in parts if p) or None
    if table.logical == "annotation":
        body = row.get("documentbody")
        row["filesize"] = (len(body) * 3) // 4 if body else None


def new_row(table: Table, pk: str, changes: Row, *, now: str, version: int, user_id: str) -> Row:
    row: Row = {"@odata.etag": etag(version)}
    for prop in table.columns:
        row[prop] = None
    row.update(table.defaults)
    row[table.pk] = pk
    row.update(changes)
    overridden = row.get("overriddencreatedon")
    row["createdon"] = overridden or now
    row["modifiedon"] = now
    row["versionnumber"] = version
    row["_createdby_value"] = user_id
    row["_modifiedby_value"] = user_id
    if "_ownerid_value" in table.columns and row.get("_ownerid_value") is None:
        row["_ownerid_value"] = user_id
    if table.logical == "incident" and not row.get("ticketnumber"):
        row["ticketnumber"] = f"CAS-{version % 100000:05d}-{pk[:6].upper()}"
    derive(table, row)
    return row


def updated_row(table: Table, old: Row, changes: Row, *, now: str, version: int, user_id: str | None) -> Row:
    row = dict(old)
    row.update(changes)
    row["@odata.etag"] = etag(version)
    row["modifiedon"] = now
    row["versionnumber"] = version
    if user_id is not None and "_modifiedby_value" in row:
        row["_modifiedby_value"] = user_id
    derive(table, row)
    return row


def email_addresses(parties: list[dict], resolve: RefResolver, lookup_email: Callable[[str, str], str | None],
                    entity_set: str) -> tuple[str | None, str | None]:
    """sender / torecipients derived from `email_activity_parties` (mask 1 = From, 2 = To)."""
    senders: list[str] = []
    recipients: list[str] = []
    for party in parties:
        if not isinstance(party, dict):
            raise payload_error(entity_set, "Each activity party must be an object.")
        mask = party.get("participationtypemask")
        if mask not in (1, 2, 3, 4):
            raise validation_error(f"The value {mask} of 'participationtypemask' on record of type "
                                   "'activityparty' is outside the valid range.")
        address = party.get("addressused")
        for key, value in party.items():
            if key.endswith("@odata.bind"):
                if not key.startswith("partyid_"):
                    raise payload_error(entity_set, f"An undeclared property '{key[:-11]}' was found.")
                logical, guid = resolve(value)
                address = address or lookup_email(logical, guid)
        if address:
            (senders if mask == 1 else recipients if mask == 2 else []).append(address)
    return (";".join(senders) or None), (";".join(recipients) or None)
