"""Delivery by error class (pure logic, with a fake writer standing in for the HTTP layer)."""

from __future__ import annotations

import random

import pytest

from twin.sink_delivery import (
    Backoff,
    Rejected,
    Throttled,
    TooLarge,
    Unavailable,
    deliver,
    error_for_status,
    parse_retry_after,
)


class FakeWriter:
    """Refuses any batch holding a line starting with ``bad`` (400); batches over ``max_lines`` get 413."""

    def __init__(self, max_lines: int = 10_000, down_after: int | None = None) -> None:
        self.max_lines = max_lines
        self.down_after = down_after
        self.calls: list[list[str]] = []
        self.stored: list[str] = []

    def __call__(self, lines: list[str]) -> None:
        self.calls.append(lines)
        if self.down_after is not None and len(self.calls) > self.down_after:
            raise Unavailable("connection refused")
        if len(lines) > self.max_lines:
            raise TooLarge("HTTP 413", 413)
        if any(ln.startswith("bad") for ln in lines):
            raise Rejected("HTTP 400: unable to parse", 400)
        self.stored.extend(lines)


def test_a_bad_line_is_isolated_by_splitting_and_only_it_is_dead() -> None:
    lines = [f"ok{i}" for i in range(100)]
    lines[37] = "bad37"
    w = FakeWriter()
    d = deliver(w, lines)
    assert d.done and d.written == 99
    assert [ln for ln, _ in d.dead] == ["bad37"] and "400" in d.dead[0][1]
    assert w.stored == [ln for ln in lines if ln != "bad37"]  # order kept
    assert len(w.calls) <= 2 * 7 + 1  # log2 splits, not one request per line


def test_413_splits_until_batches_fit() -> None:
    lines = [f"ok{i}" for i in range(1000)]
    w = FakeWriter(max_lines=300)
    d = deliver(w, lines)
    assert d.done and d.written == 1000 and not d.dead and w.stored == lines
    assert d.resent > 0


def test_a_transient_error_stops_and_returns_the_rest_in_order() -> None:
    lines = [f"ok{i}" for i in range(1000)]
    lines[10] = "bad10"
    w = FakeWriter(down_after=3)
    d = deliver(w, lines)
    assert isinstance(d.error, Unavailable)
    assert sorted(w.stored + [ln for ln, _ in d.dead] + d.remaining) == sorted(lines)
    assert d.remaining == [ln for ln in lines if ln not in set(w.stored) and ln not in {x for x, _ in d.dead}]


@pytest.mark.parametrize(("status", "cls"), [(400, Rejected), (422, Rejected), (413, TooLarge), (429, Throttled),
                                             (503, Throttled), (500, Unavailable), (502, Unavailable),
                                             (401, Unavailable), (404, Unavailable)])
def test_status_classes(status: int, cls: type) -> None:
    assert isinstance(error_for_status(status, "body"), cls)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    e = error_for_status(429, "", "3")
    assert isinstance(e, Throttled) and e.retry_after == 3.0


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(1))
    waits = [b.next() for _ in range(8)]
    for n, w in enumerate(waits):
        raw = min(8.0, 2.0 ** n)
        assert raw * 0.5 <= w <= raw
    assert b.next(retry_after=5.0) == 5.0
    b.reset()
    assert b.next() <= 1.0
