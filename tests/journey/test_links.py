"""Rebuilding `customer_link` on SQLite borrows a large page cache and gives the connection its own back."""

from __future__ import annotations

from sqlalchemy import Engine

from canonical.db import transaction
from journeyhub.journey import links


def test_a_rebuild_restores_the_connections_page_cache(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as connection:
        configured = connection.exec_driver_sql("PRAGMA cache_size").scalar_one()
        links.rebuild(connection)
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar_one() == configured
        indexes = connection.exec_driver_sql("PRAGMA index_list(customer_link)").all()
        assert any(row[1] == "ix_customer_link_customer" for row in indexes)  # dropped and built again
