"""SQLite's log is checkpointed in the background (`canonical.checkpoint`): commits do not copy it into the
database themselves, yet the log does not grow without bound, and nothing committed is lost."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from canonical import checkpoint, db
from canonical.checkpoint import Checkpointer, checkpointer_for
from canonical.db import make_engine, transaction

ROW = "x" * 4000  # about a page of log per row


def wait_idle(checkpointer: Checkpointer, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while checkpointer.running and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not checkpointer.running, "the thread ends once no commit asks for it"


def wal_high_water(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Checkpointer]:
    """Sixty commits of ~52 log pages each, 20 ms apart (a pull maps and classifies its next page between
    commits), with the backstop at 500 pages: the log file's largest size, in pages."""
    monkeypatch.setattr(checkpoint, "IDLE_SECONDS", 0.2)
    monkeypatch.setattr(checkpoint, "BACKSTOP_PAGES", 500)
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 500
    with transaction(engine) as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    largest = 0
    for _ in range(60):  # 3,000 pages of log in all: six times the backstop
        with transaction(engine) as connection:
            connection.execute(text("INSERT INTO t (body) VALUES (:body)"), [{"body": ROW}] * 50)
        time.sleep(0.02)
        largest = max(largest, (path.parent / f"{path.name}-wal").stat().st_size // 4120)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM t").scalar() == 3000, "nothing committed is lost"
    engine.dispose()
    return largest, checkpointer_for(str(path))


def test_commits_leave_the_checkpoints_to_a_thread_and_the_log_starts_over_at_each_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    largest, background = wal_high_water(tmp_path / "hub.db", monkeypatch)
    assert background.checkpoints > 0
    assert largest < 500, "copied between commits, the log starts over long before the backstop"
    wait_idle(background)
    with sqlite3.connect(tmp_path / "hub.db") as probe:
        busy, log_pages, copied = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and copied == log_pages, "everything committed was checkpointed"


def test_without_the_thread_the_backstop_still_bounds_the_log(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Checkpointer, "nudge", lambda self: None)
    largest, background = wal_high_water(tmp_path / "hub.db", monkeypatch)
    assert background.checkpoints == 0
    assert 500 <= largest < 500 + 2 * 60, "each connection checkpoints by itself at the backstop"


def test_the_thread_ends_when_idle_and_the_next_commit_starts_it_again(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkpoint, "IDLE_SECONDS", 0.1)
    path = tmp_path / "hub.db"
    engine = make_engine(f"sqlite:///{path}")
    background = checkpointer_for(str(path))
    with transaction(engine) as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    wait_idle(background)
    before = background.checkpoints
    with transaction(engine) as connection:
        connection.execute(text("INSERT INTO t DEFAULT VALUES"))
    assert background.running or background.checkpoints > before
    wait_idle(background)
    assert background.checkpoints > before
    engine.dispose()


def test_an_in_memory_database_has_no_checkpointer_and_a_file_has_one(tmp_path: Path) -> None:
    before = dict(checkpoint._checkpointers)
    for url in ("sqlite://", "sqlite:///:memory:"):
        engine = make_engine(url)
        with transaction(engine) as connection:
            connection.execute(text("SELECT 1"))
        assert engine not in db._checkpointers
    assert checkpoint._checkpointers == before, "no thread and no registry entry for a database in memory"
    on_file = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    assert db._checkpointers[on_file] is checkpointer_for(str(tmp_path / "hub.db"))


def test_a_database_file_that_is_gone_is_not_created_again(tmp_path: Path) -> None:
    gone = tmp_path / "removed.db"
    background = Checkpointer(str(gone))
    background.nudge()
    wait_idle(background)
    assert not gone.exists() and background.checkpoints == 0
