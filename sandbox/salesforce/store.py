"""The org's records and the write rules Salesforce applies to them.

Records are plain dicts in REST JSON shape (every schema field present, `None` for null), one table per
sObject keyed by 18-character id. Writes replace a record's dict instead of mutating it, so a transaction
can be undone by putting the old dicts back (sObject Collections and composite `allOrNone`).

Indexes kept up to date on every write:
- per sObject, a sorted list of `(SystemModstamp, Id)` — incremental sync queries and getUpdated/
  getDeleted read a time window without scanning the table;
- per unique or External ID field, case-folded value → ids of live (not deleted) records — upsert
  matching and uniqueness checks.

Validation on API writes (create/update) follows Salesforce: unknown fields → INVALID_FIELD, read-only or
create-only fields → INVALID_FIELD_FOR_INSERT_UPDATE, missing required fields → REQUIRED_FIELD_MISSING,
type/length/e-mail/restricted-picklist checks, lookups checked for key prefix, existence and deletion,
unique values → DUPLICATE_VALUE. Derived fields (Name, IsClosed, IsWon, Probability, ClosedDate,
CompletedDateTime, Event times, activity AccountId, CaseNumber) are computed here, as the platform does.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sandbox.salesforce.errors import SFError, bad_request, not_found
from sandbox.salesforce.ids import make_id, to18
from sandbox.salesforce.schema import (
    CLOSED_CASE_STATUSES,
    CLOSED_TASK_STATUSES,
    FORECAST_CATEGORY,
    STAGES,
    Field,
    SObjectType,
)
from sandbox.salesforce.times import canonical_date, canonical_datetime, format_datetime, to_datetime

Record = dict[str, Any]
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_NAMED = ("Contact", "Lead", "User")
_CHECKED_TEXT = frozenset({"email", "picklist"})   # text types whose values get more than a length check


def _deserialize_error(spec: Field, value: Any) -> SFError:
    kind = {"datetime": "datetime", "date": "date", "boolean": "boolean", "int": "int"}.get(spec.type, "double")
    if spec.kind in ("text", "id"):
        kind = "string"
    token = "VALUE_STRING" if isinstance(value, str) else "START_OBJECT" if isinstance(value, dict) else (
        "START_ARRAY" if isinstance(value, list) else "VALUE_NUMBER")
    return bad_request("JSON_PARSER_ERROR", f"Cannot deserialize instance of {kind} from {token} value "
                       f"{value} or request may be missing a required field")


def _number_text(value: float | int) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


class Store:
    def __init__(self, schema: dict[str, SObjectType], clock: Callable[[], datetime], api_username: str) -> None:
        self.schema = schema
        self.clock = clock
        self.api_username = api_username
        self.prefixes = {sobject.prefix: sobject.name for sobject in schema.values()}
        self._blanks: dict[str, Record] = {}
        self._default_values: dict[str, list[tuple[str, Any]]] = {}
        self._unique_fields = {name: tuple(spec.name for spec in sobject.fields.values()
                                           if spec.unique or spec.external_id)
                               for name, sobject in schema.items()}
        # (child sObject, field) pairs whose lookup points at each sObject — used by merges
        self._inbound: dict[str, list[tuple[str, str]]] = {name: [] for name in schema}
        for child in schema.values():
            for spec in child.fields.values():
                for target in spec.reference_to:
                    if target in self._inbound and spec.name != "MasterRecordId":
                        self._inbound[target].append((child.name, spec.name))
        self.reset()

    # ------------------------------------------------------------------------------------------ state
    def reset(self) -> None:
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in self.schema}
        self.stamps: dict[str, list[tuple[str, str]]] = {name: [] for name in self.schema}
        self.unique: dict[tuple[str, str], dict[str, set[str]]] = {
            (name, field_name): {} for name, fields in self._unique_fields.items() for field_name in fields}
        self.written: dict[str, dict[str, None]] = {name: {} for name in self.schema}
        self._counter = 0
        self._case_number = 1000
        self._journal: list[tuple[str, str, Record | None, bool]] | None = None
        self._depth = 0
        self.user_id = self._ensure_api_user()

    def now(self) -> str:
        """Audit-field time: Salesforce stamps whole seconds."""
        return format_datetime(self.clock().replace(microsecond=0))

    def new_id(self, sobject: str) -> str:
        prefix = self.schema[sobject].prefix
        table = self.tables[sobject]
        while True:
            self._counter += 1
            rid = make_id(prefix, self._counter)
            if rid not in table:
                return rid

    def _ensure_api_user(self) -> str:
        for user in self.tables["User"].values():
            if (user.get("Username") or "").lower() == self.api_username.lower():
                return user["Id"]
        rid = make_id("005", 1, pod="Hb")
        now = self.now()
        user = self._blank(self.schema["User"])
        user.update({
            "Id": rid, "Username": self.api_username, "LastName": "Integration", "FirstName": "Journey Hub",
            "Name": "Journey Hub Integration", "Email": self.api_username, "Alias": "jhub", "IsActive": True,
            "TimeZoneSidKey": "GMT", "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8",
            "LanguageLocaleKey": "en_US", "ProfileId": make_id("00e", 1, pod="Hb"), "UserType": "Standard",
            "CreatedDate": now, "CreatedById": rid, "LastModifiedDate": now, "LastModifiedById": rid,
            "SystemModstamp": now,
        })
        self._put("User", rid, user, api=False)
        return rid

    # ------------------------------------------------------------------------------------------ reads
    def type_of(self, rid: str) -> str | None:
        sobject = self.prefixes.get(rid[:3])
        return sobject if sobject is not None and rid in self.tables[sobject] else None

    def get(self, rid: str) -> Record | None:
        sobject = self.prefixes.get(rid[:3])
        return None if sobject is None else self.tables[sobject].get(rid)

    def live(self, sobject: str) -> Iterable[Record]:
        return (rec for rec in self.tables[sobject].values() if not rec.get("IsDeleted"))

    def stamp_window(self, sobject: str, low: str | None, low_inclusive: bool, high: str | None,
                     high_inclusive: bool) -> list[str]:
        """Ids whose SystemModstamp lies in the window, in (SystemModstamp, Id) order."""
        index = self.stamps[sobject]
        start = 0 if low is None else (bisect.bisect_left(index, (low,)) if low_inclusive
                                       else bisect.bisect_left(index, (low + "\x7f",)))
        end = len(index) if high is None else (bisect.bisect_left(index, (high + "\x7f",)) if high_inclusive
                                               else bisect.bisect_left(index, (high,)))
        return [rid for _, rid in index[start:end]]

    def find_unique(self, sobject: str, field_name: str, value: str) -> list[str]:
        """Live records whose unique/External ID field equals `value` (case-insensitive)."""
        key = (sobject, field_name)
        if key in self.unique:
            return sorted(self.unique[key].get(value.casefold(), ()))
        folded = value.casefold()
        return [rec["Id"] for rec in self.live(sobject)
                if isinstance(rec.get(field_name), str) and rec[field_name].casefold() == folded]

    # ------------------------------------------------------------------------------------------ transactions
    def begin(self) -> int:
        if self._journal is None:
            self._journal = []
        self._depth += 1
        return len(self._journal)

    def commit(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._journal = None

    def abandon_transactions(self) -> None:
        """Undo whatever an interrupted request left in open transactions (an emulator bug surfaced)."""
        if self._journal is not None:
            self._depth = 1
            self.rollback(0)

    def rollback(self, mark: int) -> None:
        assert self._journal is not None
        undo = self._journal[mark:]
        del self._journal[mark:]
        for sobject, rid, old, added in reversed(undo):
            self._put_raw(sobject, rid, old)
            if added:
                self.written[sobject].pop(rid, None)
        self.commit()

    # ------------------------------------------------------------------------------------------ index upkeep
    def _put(self, sobject: str, rid: str, new: Record | None, *, api: bool) -> None:
        old = self._put_raw(sobject, rid, new)
        added = False
        if api and rid not in self.written[sobject]:
            self.written[sobject][rid] = None
            added = True
        if self._journal is not None:
            self._journal.append((sobject, rid, old, added))

    def _put_raw(self, sobject: str, rid: str, new: Record | None) -> Record | None:
        table = self.tables[sobject]
        old = table.get(rid)
        stamps = self.stamps[sobject]
        if old is not None:
            key = (old["SystemModstamp"], rid)
            at = bisect.bisect_left(stamps, key)
            if at < len(stamps) and stamps[at] == key:
                del stamps[at]
        if new is None:
            table.pop(rid, None)
        else:
            table[rid] = new
            bisect.insort(stamps, (new["SystemModstamp"], rid))
        for field_name in self._unique_fields[sobject]:
            index = self.unique[(sobject, field_name)]
            if old is not None and not old.get("IsDeleted") and old.get(field_name):
                holders = index.get(old[field_name].casefold())
                if holders:
                    holders.discard(rid)
                    if not holders:
                        del index[old[field_name].casefold()]
            if new is not None and not new.get("IsDeleted") and new.get(field_name):
                index.setdefault(new[field_name].casefold(), set()).add(rid)
        return old

    def _rebuild_indexes(self) -> None:
        for sobject, table in self.tables.items():
            self.stamps[sobject] = sorted((rec["SystemModstamp"], rid) for rid, rec in table.items())
            for field_name in self._unique_fields[sobject]:
                index: dict[str, set[str]] = {}
                for rid, rec in table.items():
                    if not rec.get("IsDeleted") and rec.get(field_name):
                        index.setdefault(rec[field_name].casefold(), set()).add(rid)
                self.unique[(sobject, field_name)] = index

    # ------------------------------------------------------------------------------------------ values
    def coerce(self, spec: Field, value: Any) -> Any:
        """A JSON value for `spec` in stored form, or SFError (what the REST API does with a bad value)."""
        if value is None:
            return False if spec.type == "boolean" else None
        kind = spec.kind
        if kind == "text":
            if value.__class__ is str and value and len(value) <= spec.length and spec.type not in _CHECKED_TEXT:
                return value
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, int | float):
                value = _number_text(value)
            elif not isinstance(value, str):
                raise _deserialize_error(spec, value)
            if value == "":
                return None  # Salesforce stores an empty string as null
            if len(value) > spec.length:
                raise SFError(400, "STRING_TOO_LONG", f"{spec.label}: data value too large: {value[:80]} "
                              f"(max length={spec.length})", [spec.name])
            if spec.type == "email" and not _EMAIL.fullmatch(value):
                raise SFError(400, "INVALID_EMAIL_ADDRESS", f"{spec.label}: invalid email address: {value}",
                              [spec.name])
            if spec.restricted and value not in spec.picklist:
                raise SFError(400, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                              f"{spec.label}: bad value for restricted picklist field: {value}", [spec.name])
            return value
        if kind == "id":
            if value == "":
                return None
            rid = to18(value)
            if rid is None:
                raise SFError(400, "MALFORMED_ID", f"{spec.label}: id value of incorrect type: {value}",
                              [spec.name])
            return rid
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise _deserialize_error(spec, value)
            try:
                number = float(value)
            except ValueError:
                raise _deserialize_error(spec, value) from None
            if spec.type == "int":
                if not number.is_integer():
                    raise _deserialize_error(spec, value)
                return int(number)
            return number
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _deserialize_error(spec, value)
        if kind == "date":
            result = canonical_date(value) if isinstance(value, str) else None
        else:
            result = canonical_datetime(value) if isinstance(value, str) else None
        if result is None:
            raise _deserialize_error(spec, value)
        return result

    def check_reference(self, spec: Field, rid: str) -> None:
        target = self.prefixes.get(rid[:3])
        if target is None or target not in spec.reference_to:
            if target is None and any(name not in self.schema for name in spec.reference_to):
                return  # a lookup to an object the emulator does not model (Profile)
            raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", f"{spec.label}: id value of incorrect type: {rid}",
                          [spec.name])
        parent = self.tables[target].get(rid)
        if parent is None:
            raise SFError(400, "INVALID_CROSS_REFERENCE_KEY", f"{spec.label}: invalid cross reference id",
                          [spec.name])
        if parent.get("IsDeleted"):
            raise SFError(400, "ENTITY_IS_DELETED", "entity is deleted", [spec.name])

    def _changes(self, sobject: SObjectType, values: Any, creating: bool) -> dict[str, Any]:
        if not isinstance(values, dict):
            raise bad_request("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object value")
        changes: dict[str, Any] = {}
        locked: list[str] = []
        for key, value in values.items():
            if key == "attributes":
                continue
            spec = sobject.field(key)
            if spec is None:
                raise bad_request("INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject.name}")
            if spec.name == "Id":
                if creating:
                    raise bad_request("INVALID_FIELD_FOR_INSERT_UPDATE", "Record ID: cannot specify Id in an "
                                      "insert call", ["Id"])
                raise bad_request("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
            if not (spec.createable if creating else spec.updateable):
                locked.append(spec.name)
                continue
            changes[spec.name] = self.coerce(spec, value)
        if locked:
            raise SFError(400, "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: "
                          f"{', '.join(locked)}. Please check the security settings of this field and verify "
                          "that it is read/write for your profile or permission set.", locked)
        for name, value in changes.items():
            if value is not None and sobject.fields[name].kind == "id":
                self.check_reference(sobject.fields[name], value)
        return changes

    def _blank(self, sobject: SObjectType) -> Record:
        template = self._blanks.get(sobject.name)
        if template is None:
            template = self._blanks[sobject.name] = {
                name: spec.default if spec.type == "boolean" else None for name, spec in sobject.fields.items()}
        return dict(template)

    def _check_unique(self, sobject: str, record: Record) -> None:
        for field_name in self._unique_fields[sobject]:
            value = record.get(field_name)
            if not value:
                continue
            holders = self.unique[(sobject, field_name)].get(value.casefold(), set()) - {record["Id"]}
            if holders:
                raise SFError(400, "DUPLICATE_VALUE", f"duplicate value found: {field_name} duplicates value on "
                              f"record with id: {min(holders)}", [])

    # ------------------------------------------------------------------------------------------ API writes
    def create(self, sobject_name: str, values: Any) -> str:
        sobject = self.schema[sobject_name]
        if not sobject.createable:
            raise bad_request("INVALID_TYPE_FOR_OPERATION", f"entity type {sobject_name} does not support create")
        changes = self._changes(sobject, values, creating=True)
        record = self._blank(sobject)
        for name, default in self._defaults(sobject):
            record[name] = default
        if "OwnerId" in record:
            record["OwnerId"] = self.user_id
        record.update(changes)
        missing = [spec.name for spec in sobject.fields.values()
                   if record[spec.name] is None and (spec.required or (
                       spec.name in changes and not spec.nillable and spec.type != "boolean"))]
        if missing:
            raise SFError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                          missing)
        now = self.now()
        rid = self.new_id(sobject_name)
        record.update({"Id": rid, "CreatedDate": now, "CreatedById": self.user_id, "LastModifiedDate": now,
                       "LastModifiedById": self.user_id, "SystemModstamp": now})
        if "IsDeleted" in record:
            record["IsDeleted"] = False
        self._derive(sobject_name, record, None, set(changes), now)
        self._check_unique(sobject_name, record)
        self._put(sobject_name, rid, record, api=True)
        return rid

    def live_record(self, sobject_name: str, rid: str) -> Record:
        record = self.tables[sobject_name].get(rid)
        if record is None:
            raise not_found()
        if record.get("IsDeleted"):
            raise SFError(404, "ENTITY_IS_DELETED", "entity is deleted")
        return record

    def update(self, sobject_name: str, rid: str, values: Any) -> None:
        sobject = self.schema[sobject_name]
        old = self.live_record(sobject_name, rid)
        changes = self._changes(sobject, values, creating=False)
        record = dict(old)
        record.update(changes)
        missing = [name for name, value in changes.items()
                   if value is None and not sobject.fields[name].nillable and sobject.fields[name].type != "boolean"]
        if missing:
            raise SFError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                          missing)
        now = self.now()
        record.update({"LastModifiedDate": now, "LastModifiedById": self.user_id, "SystemModstamp": now})
        self._derive(sobject_name, record, old, set(changes), now)
        self._check_unique(sobject_name, record)
        self._put(sobject_name, rid, record, api=True)

    def delete(self, sobject_name: str, rid: str, *, api: bool = True) -> None:
        sobject = self.schema[sobject_name]
        if not sobject.deletable:
            raise bad_request("INVALID_TYPE_FOR_OPERATION", f"entity type {sobject_name} does not support delete")
        old = self.live_record(sobject_name, rid)
        now = self.now()
        record = dict(old)
        record.update({"IsDeleted": True, "LastModifiedDate": now, "LastModifiedById": self.user_id,
                       "SystemModstamp": now})
        self._put(sobject_name, rid, record, api=api)
        # junction rows go with either side (cascade delete)
        if sobject_name in ("Contact", "Opportunity"):
            column = "ContactId" if sobject_name == "Contact" else "OpportunityId"
            for role in list(self.live("OpportunityContactRole")):
                if role[column] == rid:
                    self.delete("OpportunityContactRole", role["Id"], api=api)

    # ------------------------------------------------------------------------------------------ system writes
    def touch(self, rid: str) -> None:
        """Another user edits the record: LastModifiedDate and SystemModstamp move to now."""
        sobject = self.prefixes[rid[:3]]
        record = dict(self.tables[sobject][rid])
        now = self.now()
        record["LastModifiedDate"] = now
        record["SystemModstamp"] = now
        self._put(sobject, rid, record, api=False)

    def merge(self, sobject_name: str, master_id: str, loser_id: str) -> None:
        """Merge `loser_id` into `master_id` as Salesforce does (Contact, Lead, Account, Case).

        The loser goes to the recycle bin with MasterRecordId = master; records that looked the loser up
        are re-parented to the master; every touched record gets new LastModifiedDate/SystemModstamp.
        """
        sobject = self.schema.get(sobject_name)
        if sobject is None or not sobject.mergeable:
            raise ValueError(f"{sobject_name} records cannot be merged")
        master_id, loser_id = to18(master_id) or master_id, to18(loser_id) or loser_id
        if master_id == loser_id:
            raise ValueError("cannot merge a record with itself")
        master = self.live_record(sobject_name, master_id)
        loser = self.live_record(sobject_name, loser_id)
        now = self.now()
        stamps = {"LastModifiedDate": now, "LastModifiedById": self.user_id, "SystemModstamp": now}
        for child_name, column in self._inbound[sobject_name]:
            for child in list(self.tables[child_name].values()):
                if child.get(column) == loser_id:
                    moved = dict(child)
                    moved[column] = master_id
                    moved.update(stamps)
                    self._put(child_name, child["Id"], moved, api=False)
        self._put(sobject_name, loser_id, {**loser, "IsDeleted": True, "MasterRecordId": master_id, **stamps},
                  api=False)
        self._put(sobject_name, master_id, {**master, **stamps}, api=False)

    # ------------------------------------------------------------------------------------------ derived fields
    def _derive(self, sobject: str, record: Record, old: Record | None, changed: set[str], now: str) -> None:
        if sobject in _NAMED:
            record["Name"] = " ".join(part for part in (record.get("FirstName"), record.get("LastName"))
                                      if part) or None
        elif sobject == "Opportunity":
            stage = STAGES.get(record["StageName"] or "")
            if stage is not None:
                record["IsClosed"], record["IsWon"] = stage.closed, stage.won
                moved = old is None or old["StageName"] != record["StageName"]
                if "Probability" not in changed and (moved or record["Probability"] is None):
                    record["Probability"] = float(stage.probability)
                if "ForecastCategoryName" not in changed and (moved or record["ForecastCategoryName"] is None):
                    record["ForecastCategoryName"] = stage.forecast
            record["ForecastCategory"] = FORECAST_CATEGORY.get(record["ForecastCategoryName"] or "")
            amount, probability = record["Amount"], record["Probability"]
            record["ExpectedRevenue"] = (None if amount is None or probability is None
                                         else round(amount * probability / 100, 2))
        elif sobject == "Case":
            closed = record["Status"] in CLOSED_CASE_STATUSES
            record["IsClosed"] = closed
            record["ClosedDate"] = (record["ClosedDate"] or now) if closed else None
            if record["CaseNumber"] is None:
                self._case_number += 1
                record["CaseNumber"] = f"{self._case_number:08d}"
        elif sobject == "Task":
            closed = record["Status"] in CLOSED_TASK_STATUSES
            record["IsClosed"] = closed
            record["CompletedDateTime"] = (record["CompletedDateTime"] or now) if closed else None
            record["IsHighPriority"] = record["Priority"] == "High"
            record["AccountId"] = self._activity_account(record)
        elif sobject == "Event":
            self._derive_event(record, changed)
            record["AccountId"] = self._activity_account(record)
        elif sobject == "EmailMessage" and record["HasAttachment"] is None:
            record["HasAttachment"] = False

    def _activity_account(self, record: Record) -> str | None:
        what = record.get("WhatId")
        if what:
            if what[:3] == "001":
                return what
            parent = self.get(what)
            if parent is not None and "AccountId" in parent:
                return parent["AccountId"]
        who = record.get("WhoId")
        if who and who[:3] == "003":
            parent = self.get(who)
            if parent is not None:
                return parent["AccountId"]
        return None

    def _derive_event(self, record: Record, changed: set[str]) -> None:
        start = record["StartDateTime"]
        if ("ActivityDateTime" in changed and "StartDateTime" not in changed) or start is None:
            start = record["ActivityDateTime"]
        if record["IsAllDayEvent"]:
            day = record["ActivityDate"] if "ActivityDate" in changed or start is None else start[:10]
            if day is None:
                raise SFError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [ActivityDate]",
                              ["ActivityDate"])
            start = f"{day}T00:00:00.000+0000"
            if record["DurationInMinutes"] is None and record["EndDateTime"] is None:
                record["DurationInMinutes"] = 1440
        end, duration = record["EndDateTime"], record["DurationInMinutes"]
        if "DurationInMinutes" in changed and "EndDateTime" not in changed:
            end = None
        missing = [name for name, absent in (("DurationInMinutes", end is None and duration is None),
                                             ("ActivityDateTime", start is None)) if absent]
        if missing:
            raise SFError(400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                          missing)
        assert start is not None
        began = to_datetime(start)
        if end is None:
            end = format_datetime(began + timedelta(minutes=duration or 0))
        else:
            minutes = int((to_datetime(end) - began).total_seconds() // 60)
            if minutes < 0:
                raise SFError(400, "FIELD_INTEGRITY_EXCEPTION", "End Date Time: End time must be later than the "
                              "start time", ["EndDateTime"])
            duration = minutes
        record.update({"StartDateTime": start, "ActivityDateTime": start, "ActivityDate": start[:10],
                       "EndDateTime": end, "EndDate": end[:10], "DurationInMinutes": duration})

    # ------------------------------------------------------------------------------------------ seeding
    def load(self, data: dict[str, list[dict]]) -> None:
        """Replace the org's records with seed data (not API writes: nothing is validated against lookups)."""
        self.reset()
        api_user = self.tables["User"].pop(self.user_id)
        for row in data.get("User", ()):
            if str(row.get("Username") or "").lower() == self.api_username.lower() and row.get("Id"):
                self.user_id = to18(row["Id"]) or self.user_id
        problems: list[str] = []
        for sobject_name, rows in data.items():
            sobject = self.schema.get(sobject_name)
            if sobject is None:
                raise ValueError(f"SalesforceData has records for {sobject_name!r}, which the emulator does not "
                                 f"model (known: {', '.join(self.schema)})")
            table = self.tables[sobject_name]
            for row in rows:
                try:
                    record = self._seed(sobject, row)
                except (SFError, ValueError) as error:
                    problems.append(f"{sobject_name} {row.get('Id', '?')}: {error}")
                    if len(problems) >= 20:
                        break
                    continue
                if record["Id"] in table:
                    problems.append(f"{sobject_name} {record['Id']}: duplicate Id")
                table[record["Id"]] = record
        if problems:
            self.reset()
            raise ValueError("invalid SalesforceData:\n  " + "\n  ".join(problems))
        if not any((user.get("Username") or "").lower() == self.api_username.lower()
                   for user in self.tables["User"].values()):
            self.tables["User"][api_user["Id"]] = api_user
        self._rebuild_indexes()
        self.user_id = self._ensure_api_user()
        numbers = [int(case["CaseNumber"]) for case in self.tables["Case"].values()
                   if (case["CaseNumber"] or "").isdigit()]
        self._case_number = max([self._case_number, *numbers])

    def _seed(self, sobject: SObjectType, row: dict) -> Record:
        record = self._blank(sobject)
        given: set[str] = set()
        unknown = []
        for key, value in row.items():
            if key == "attributes":
                continue
            spec = sobject.field(key)
            if spec is None:
                # the world contract lists these for every record; objects without them take only "empty"
                if key in ("MasterRecordId", "IsDeleted") and value in (None, False):
                    continue
                unknown.append(key)
                continue
            try:
                record[spec.name] = self.coerce(spec, value)
            except SFError as error:
                if spec.restricted:
                    raise ValueError(f"{spec.name} {value!r} is not one of {list(spec.picklist)}") from None
                raise ValueError(f"{spec.name}: {error.message}") from None
            given.add(spec.name)
        if unknown:
            raise ValueError(f"fields not in the emulator's schema: {', '.join(unknown)} "
                             "(see sandbox/salesforce/schema.py)")
        rid = record["Id"]
        if rid is None:
            rid = record["Id"] = self.new_id(sobject.name)
        elif rid[:3] != sobject.prefix:
            raise ValueError(f"Id {rid} does not have the {sobject.name} key prefix {sobject.prefix}")
        created = record["CreatedDate"] or self.now()
        record["CreatedDate"] = created
        record["LastModifiedDate"] = modified = record["LastModifiedDate"] or created
        record["SystemModstamp"] = max(record["SystemModstamp"] or modified, modified)
        for column in ("CreatedById", "LastModifiedById", "OwnerId"):
            if column in record and record[column] is None:
                record[column] = self.user_id
        for name, default in self._defaults(sobject):
            if record[name] is None:
                record[name] = default
        self._derive(sobject.name, record, None, given, modified)
        return record

    def _defaults(self, sobject: SObjectType) -> list[tuple[str, Any]]:
        """Picklist and other non-boolean defaults applied on create (booleans are in the blank record)."""
        found = self._default_values.get(sobject.name)
        if found is None:
            found = self._default_values[sobject.name] = [
                (name, spec.default) for name, spec in sobject.fields.items()
                if spec.defaulted and spec.default is not None and spec.type != "boolean"]
        return found
