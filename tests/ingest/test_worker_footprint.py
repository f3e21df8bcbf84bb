"""The mapping worker loads what mapping needs, not the CRM clients: their SDKs (simple-salesforce with
requests, hubspot-api-client, httpx) cost it ~40 MB of its peak memory (`bench/pull.py memory`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from journeyhub.ingest import pipeline
from tests.ingest.test_pipeline import contact_pages
from tests.ingest.test_pipeline import loader as make_loader

CLIENT_MODULES = ("simple_salesforce", "requests", "hubspot", "httpx", "connectors.hubspot.client",
                  "connectors.salesforce.client", "connectors.dynamics.client")


@pytest.fixture
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[pipeline._Worker]:
    fresh = pipeline._Worker()
    monkeypatch.setattr(pipeline, "WORKER", fresh)
    yield fresh
    fresh.reset()


def test_the_worker_maps_pages_without_loading_any_crm_client(sqlite_engine: Engine,
                                                             worker: pipeline._Worker) -> None:
    prepare = pipeline.PreparePipeline(make_loader(sqlite_engine), after_records=0)
    ready = prepare.feed(contact_pages(2, 20)[0]) + prepare.flush()
    assert [len(page.planned) for page in ready] == [20]
    assert worker._executor is not None, "the page was mapped in the worker"
    loaded = worker._executor.submit(eval, "sorted(__import__('sys').modules)").result(timeout=60)
    assert "journeyhub.ingest.loader" in loaded
    assert [name for name in CLIENT_MODULES if name in loaded] == []
