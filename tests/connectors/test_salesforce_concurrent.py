"""One Salesforce connector serving several reads at once (`concurrent_reads`): reads of different sObjects
advanced in turn from their own threads give exactly the pages each gives alone, and a session that expires
while two reads run is logged in again once."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from connectors.base import Page
from connectors.meter import counted_apart
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce import client as client_module
from sandbox.common.server import EmulatorServer
from sandbox.salesforce import SalesforceData, SalesforceEmulator

FAST = RetryPolicy(max_attempts=3, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
BATCH = 200
TOKEN_ROUTE = "POST /services/oauth2/token"
Summary = tuple[list[str], str, int]   # a page: its record ids, its cursor (server times left out), its calls


def stamp(index: int) -> str:
    return f"2025-{1 + index % 12:02d}-{1 + index % 28:02d}T10:{index % 60:02d}:{index % 47:02d}.000+0000"


def seed() -> SalesforceData:
    """Three objects of different sizes, several query batches each."""
    common = {"CreatedDate": "2025-01-01T00:00:00.000+0000"}
    return SalesforceData(records={
        "Contact": [{**common, "LastName": f"Person {i}", "SystemModstamp": stamp(i)} for i in range(650)],
        "Lead": [{**common, "LastName": f"Lead {i}", "Company": "Acme", "SystemModstamp": stamp(i * 7)}
                 for i in range(450)],
        "Account": [{**common, "Name": f"Account {i}", "SystemModstamp": stamp(i * 3)} for i in range(520)],
    })


@pytest.fixture(scope="module")
def emulator() -> Iterator[SalesforceEmulator]:
    em = SalesforceEmulator()
    em.load(seed())
    with EmulatorServer(em):
        yield em


def connector(url: str, token: str | None = "sandbox-token", **kw: Any) -> SalesforceConnector:
    return SalesforceConnector(SalesforceConfig(instance_url=url, access_token=token, batch_size=BATCH, retry=FAST,
                                                **kw))


def summary(page: Page) -> Summary:
    """What must not depend on other reads. The cursor's `deleted_checked` is the server's clock (a minute
    before the first answer), which moves between runs: it is only checked to be there."""
    state = json.loads(page.cursor or "{}")
    assert state.pop("deleted_checked"), "a first load covers deletions up to its start"
    return [record.remote_id for record in page.records], json.dumps(state, sort_keys=True), page.api_calls


def in_turn(reads: list[Callable[[], Iterator[Page]]], between: Callable[[int], None] = lambda _: None
            ) -> list[list[Page]]:
    """Each read in its own thread and request-count scope, one page each per round (the rounds end when
    every read has ended); `between(round)` runs once after each round, before the next."""
    pages: list[list[Page]] = [[] for _ in reads]
    done = [False] * len(reads)
    rounds = [0]
    over = [False]   # decided once per round, by the barrier's action: a thread's next round cannot race it
    errors: list[BaseException] = []

    def after_round() -> None:
        over[0] = all(done)
        between(rounds[0])
        rounds[0] += 1

    barrier = threading.Barrier(len(reads), action=after_round)

    def run(index: int) -> None:
        try:
            steps(index)
        except BaseException as error:
            errors.append(error)
            barrier.abort()

    def steps(index: int) -> None:
        with counted_apart():
            generator = reads[index]()
            while True:
                if not done[index]:
                    try:
                        pages[index].append(next(generator))
                    except StopIteration:
                        done[index] = True
                    except BaseException as error:
                        errors.append(error)
                        done[index] = True
                barrier.wait(timeout=30)
                if over[0]:
                    return

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(reads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a read did not end"
    if errors:
        raise errors[0]
    return pages


def test_interleaved_reads_of_different_objects_give_the_pages_each_gives_alone(
        emulator: SalesforceEmulator) -> None:
    names = ["Contact", "Lead", "Account"]
    alone: dict[str, list[Summary]] = {}
    for name in names:
        with counted_apart():
            alone[name] = [summary(page) for page in connector(emulator.base_url).read(name, None)]
    assert all(len(pages) >= 3 for pages in alone.values()), "several pages per read"

    shared = connector(emulator.base_url)
    together = in_turn([lambda name=name: shared.read(name, None) for name in names])  # type: ignore[misc]
    for name, pages in zip(names, together, strict=True):
        assert [summary(page) for page in pages] == alone[name], name
    assert sum(page.api_calls for pages in together for page in pages) == shared.api_calls


def test_a_session_expiring_while_two_reads_run_is_refreshed_once(
        emulator: SalesforceEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    login = client_module.SalesforceLogin

    def slow_login(**kw: Any) -> tuple[str, str]:
        time.sleep(0.3)   # a login that takes a while: the other read's 401 arrives before it is done
        return login(**kw)

    monkeypatch.setattr(client_module, "SalesforceLogin", slow_login)
    shared = connector(emulator.base_url, None, client_id="sandbox-client", client_secret="sandbox-secret")
    shared.check()
    emulator.requests.reset()

    def expire(round_: int) -> None:
        if round_ == 0:
            emulator.tokens.expire_all()

    contacts, leads = in_turn([lambda: shared.read("Contact", None), lambda: shared.read("Lead", None)], expire)
    assert emulator.requests.counts[TOKEN_ROUTE] == 1, "one login again for both reads"
    assert len({r.remote_id for page in contacts for r in page.records}) == 650
    assert len({r.remote_id for page in leads for r in page.records}) == 450
