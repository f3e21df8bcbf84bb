"""The CRMs the hub knows: one line per connector package. Everything else (settings, the system names the
CLI accepts, mapping folders, rate limits, flows) is derived from this list, so adding a CRM is a new package
under `connectors/`, its mappings under `mappings/<name>/` and one line here."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import core_schema

from connectors.dynamics.settings import PACKAGE as DYNAMICS
from connectors.hubspot.settings import PACKAGE as HUBSPOT
from connectors.package import ConnectorPackage
from connectors.salesforce.settings import PACKAGE as SALESFORCE

#: system name → package, in the order the hub lists and syncs them
PACKAGES: dict[str, ConnectorPackage] = {package.name: package for package in (
    HUBSPOT,
    SALESFORCE,
    DYNAMICS,
)}


def package(name: str) -> ConnectorPackage:
    """The package registered as `name`; an unknown name is refused with the known ones."""
    found = PACKAGES.get(name)
    if found is None:
        raise ValueError(f"unknown system {name!r}: choose from {', '.join(PACKAGES)}")
    return found


def known_system(name: str) -> str:
    package(name)
    return name


class _Registered:
    """Validates a system name against the registry when validated (pydantic models, Prefect flow
    parameters); its JSON schema lists the registered names (a choice in Prefect's UI)."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(known_system, handler(str))

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return {**handler(schema), "enum": list(PACKAGES)}


#: a registered system name (`hubspot`, …)
SystemName = Annotated[str, _Registered]
