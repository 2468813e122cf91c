"""The 15-minute energy KPIs (twin/live/kpi_window.py), by hand."""

from __future__ import annotations

import pytest

from twin.live.kpi_window import KpiWindow

T0 = 1_795_300_000.0


def _run(w: KpiWindow, seconds: int, fac: float = 120.0, it: float = 100.0, liq: float = 90.0, reuse: float = 30.0,
         cov: float = 1.0, start: int = 0) -> None:
    for k in range(start, start + seconds + 1):
        w.add(T0 + k, fac, it, liq, reuse, cov)


def test_constant_powers_give_their_ratios() -> None:
    w = KpiWindow()
    _run(w, 900)
    k = w.kpis()
    assert k.pue == pytest.approx(1.2) and k.liquid_capture_ratio == pytest.approx(0.9)
    assert k.erf == pytest.approx(0.25)


def test_sampling_skew_averages_out() -> None:
    """Meters and racks sampled at different instants: the tick's ratio alternates 1.0 / 1.2, the energies' is
    1.1 (facility 100 and 120 MW on alternate seconds, IT 100 MW)."""
    w = KpiWindow()
    for k in range(901):
        w.add(T0 + k, 100.0 if k % 2 else 120.0, 100.0, 90.0, 30.0, 1.0)
    assert w.kpis().pue == pytest.approx(1.1)


def test_nothing_before_the_window_spans_15_minutes() -> None:
    w = KpiWindow()
    _run(w, 800)  # 800 s < 0.95 * 900 s
    assert w.kpis().pue is None and w.kpis().erf is None
    _run(w, 100, start=800)
    assert w.kpis().pue == pytest.approx(1.2)


def test_no_pue_while_less_than_95_percent_of_the_it_was_heard() -> None:
    """The first 100 s with a fifth of the racks in (their IT counted as 0 W would read PUE 5.5): the window's
    coverage is (100 * 0.2 + 800 * 1) / 900 = 0.91 -- no PUE, no capture ratio; ERF needs no IT."""
    w = KpiWindow()
    _run(w, 100, it=20.0, cov=0.2)
    _run(w, 800, start=100)
    k = w.kpis()
    assert k.pue is None and k.liquid_capture_ratio is None and k.erf is not None
    _run(w, 200, start=900)  # the start has left the window
    assert w.kpis().pue == pytest.approx(1.2)


def test_a_state_again_redoes_its_interval_and_an_older_one_is_ignored() -> None:
    w = KpiWindow()
    _run(w, 899)
    w.add(T0 + 900, 0.0, 100.0, 90.0, 30.0, 1.0)  # flushed before the feeders' telemetry came in
    w.add(T0 + 900, 120.0, 100.0, 90.0, 30.0, 1.0)  # the same window, complete
    w.add(T0 + 500, 999.0, 1.0, 1.0, 1.0, 1.0)  # late
    assert w.kpis().pue == pytest.approx(1.2)
    assert len(w.entries) == 900


def test_restored_window_goes_on_as_before() -> None:
    a, b = KpiWindow(), KpiWindow()
    _run(a, 600)
    b.restore(a.state())
    for w in (a, b):
        _run(w, 300, fac=130.0, start=601)
    assert b.kpis() == a.kpis() and a.kpis().pue is not None
