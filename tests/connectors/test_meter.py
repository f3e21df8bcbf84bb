"""One request meter for every connector: each HTTP request is counted once and takes one slot of the
shared rate budget first, and a read's pages report exactly the requests they cost — for the three CRMs as
the registry builds them, against their emulators."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.meter import RequestMeter
from journeyhub.connections import open_connector
from journeyhub.settings import Settings
from sandbox.runtime import Sandbox

#: a small object of each CRM, read in full
OBJECT = {"hubspot": "owners", "salesforce": "User", "dynamics": "systemusers"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(people=20, seed=5) as running:
        yield running


@pytest.mark.parametrize("system", list(OBJECT))
def test_every_request_is_metered_once_and_throttled_first(sandbox: Sandbox, system: str) -> None:
    slots: list[str] = []
    connector = open_connector(system, Settings.from_env(sandbox.env), throttle=lambda: slots.append(system))
    try:
        sandbox.reset_request_logs()
        connector.check()
        pages = list(connector.read(OBJECT[system], None))
        served = sandbox.total_requests(system)
    finally:
        connector.close()
    assert pages and sum(len(page.records) for page in pages) > 0
    assert served == connector.api_calls == len(slots) > len(pages)
    assert sum(page.api_calls for page in pages) == served - 1, "every request but check()'s is in a page"


def test_each_read_counts_its_own_pages_on_a_shared_meter() -> None:
    meter = RequestMeter()
    first = meter.pages()
    meter.request()
    second = meter.pages()
    meter.request()
    meter.request()
    assert (first.take(), second.take(), first.take(), meter.calls) == (3, 2, 0, 3)
