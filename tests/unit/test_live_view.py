"""The live view and the summary line put the 15-minute PUE first, the tick's beside it."""

from __future__ import annotations

from rich.console import Console

from tests.unit.test_state import T0, feed, site_messages
from twin.live.decode import Decoder
from twin.live.state import StateModel
from twin.live_view import render, summary_line
from twin.plant import Plant


def _state(small_plant: Plant, pue_15m: float | None):  # type: ignore[no-untyped-def]
    model, dec = StateModel(small_plant), Decoder(small_plant)
    feed(model, dec, *site_messages(T0))
    s, halls = model.snapshot(T0)
    return s.model_copy(update={"pue_15m": pue_15m}), halls


def test_the_summary_line_gives_the_15_minute_pue_and_the_ticks(small_plant: Plant) -> None:
    s, _ = _state(small_plant, 1.1234)
    assert f"PUE 15 min 1.123 (tick {s.pue:.3f})" in summary_line(s)
    s, _ = _state(small_plant, None)
    assert "PUE 15 min — (tick" in summary_line(s)


def test_the_live_view_shows_both_pues(small_plant: Plant) -> None:
    s, halls = _state(small_plant, None)
    console = Console(width=200, record=True)
    console.print(render(s, halls, "twin", []))
    text = console.export_text()
    assert "PUE, 15 min" in text and "— (after 15 min)" in text and "PUE, this tick" in text
