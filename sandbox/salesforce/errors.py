"""Salesforce-style errors raised inside the emulator and turned into JSON-array bodies at the edge."""

from __future__ import annotations

from typing import Any


class SFError(Exception):
    """One Salesforce error: HTTP status, `errorCode`, message and (when the error is about fields) `fields`.

    REST answers `[{"message", "errorCode"[, "fields"]}]`; sObject Collections put the same error inside a
    per-record result as `{"statusCode", "message", "fields"}`.
    """

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            error["fields"] = self.fields
        return [error]

    def record_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields or []}


def not_found() -> SFError:
    return SFError(404, "NOT_FOUND", "The requested resource does not exist")


def bad_request(code: str, message: str, fields: list[str] | None = None) -> SFError:
    return SFError(400, code, message, fields)
