"""The in-process API budget (a token bucket): a burst at once, then the steady rate, never more than
`burst + rate × window` in any window, across threads too."""

from __future__ import annotations

import threading
import time

import pytest

from journeyhub.budget import TokenBucket
from tests.deploy.topology import peak


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


def send(bucket_size: tuple[int, float], requests: int, idle_every: int = 0) -> list[float]:
    """When each of `requests` requests may go, on a fake clock (with an idle spell every `idle_every`)."""
    fake = FakeTime()
    bucket = TokenBucket(*bucket_size, clock=fake.clock, sleep=fake.sleep)
    sent = []
    for index in range(requests):
        if idle_every and index % idle_every == 0:
            fake.sleep(3.3)  # idle spells refill the bucket, never beyond the burst
        bucket.take()
        sent.append(fake.now)
    return sent


def test_a_burst_goes_at_once_then_the_rate_paces_the_rest() -> None:
    sent = send((5, 2.0), 11)
    assert sent[:5] == [0.0] * 5
    assert sent[5:] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


def test_no_window_ever_holds_more_than_burst_plus_rate_times_window() -> None:
    assert peak(send((20, 2.0), 200, idle_every=37), 10.0) <= 20 + 2 * 10


def test_a_busy_client_gets_the_whole_budget() -> None:
    assert peak(send((20, 2.0), 100), 10.0) == 20 + 2 * 10


def test_threads_share_one_budget() -> None:
    bucket = TokenBucket(4, 50.0)
    moments: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(10):
            bucket.take()
            with lock:
                moments.append(time.monotonic())

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(moments) == 40
    # 40 requests: a burst of 4, then 36 at 50/s take at least 0.72 s, whatever the threads' interleaving
    assert max(moments) - min(moments) >= 36 / 50 - 0.02


def test_a_budget_needs_a_burst_and_a_rate() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1.0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0.0)
