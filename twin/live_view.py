"""The live terminal view of ``twin up``: the plant's key figures, refreshed every second (rich)."""

from __future__ import annotations

import datetime as dt

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from twin.contract import HallState, PlantState

__all__ = ["render", "summary_line"]


def _f(v: float | None, fmt: str = "{:.1f}", unit: str = "") -> str:
    return "—" if v is None else fmt.format(v) + unit


def _time(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(state: PlantState | None, halls: list[HallState], header: str, notes: list[str]) -> Group:
    title = Text(header, style="bold")
    if state is None:
        return Group(title, Text("waiting for telemetry…"), *[Text(n, style="yellow") for n in notes])
    s = state
    power = Table(title="Power", show_header=False, box=None, padding=(0, 1))
    power.add_row("event time", _time(s.ts))
    power.add_row("IT", _f(s.it_mw, unit=" MW"))
    power.add_row("facility", _f(s.facility_mw, unit=" MW"))
    power.add_row("hydro available", _f(s.hydro_available_mw, unit=" MW"))
    power.add_row("contract", _f(s.contract_mw, unit=" MW"))
    style = "red" if s.headroom_mw < 5 else "green"
    power.add_row("headroom", Text(_f(s.headroom_mw, unit=" MW"), style=style))
    # the 15-minute energy ratio first: one tick's ratio swings with when the meters and the racks were sampled
    power.add_row("PUE, 15 min", _f(s.pue_15m, "{:.3f}") if s.pue_15m is not None else "— (after 15 min)")
    power.add_row("PUE, this tick", _f(s.pue, "{:.3f}"))
    cool = Table(title="GPUs and cooling", show_header=False, box=None, padding=(0, 1))
    cool.add_row("GPUs reporting", f"{s.gpus_reporting:,} / {s.gpus_total:,}")
    cool.add_row("GPU util mean", _f(None if s.gpu_util_mean is None else 100 * s.gpu_util_mean, unit=" %"))
    cool.add_row("GPU temp max", _f(s.gpu_temp_max_c, unit=" °C"))
    cool.add_row("coolant return max", _f(s.coolant_return_max_c, unit=" °C"))
    cool.add_row("heat to liquid", _f(s.heat_to_liquid_mw, unit=" MW"))
    cool.add_row("liquid capture, 15 min", _f(None if s.liquid_capture_ratio_15m is None
                                              else 100 * s.liquid_capture_ratio_15m, unit=" %"))
    cool.add_row("ambient", _f(s.ambient_c, unit=" °C"))
    heat = Table(title="Heat reuse and data", show_header=False, box=None, padding=(0, 1))
    heat.add_row("heat reused", _f(s.heat_reused_mw, unit=" MW"))
    heat.add_row("heat pumps", _f(s.heat_pump_mw, unit=" MW"))
    heat.add_row("ERF, 15 min", _f(s.erf_15m, "{:.3f}"))
    heat.add_row("ERF, since start", _f(s.erf, "{:.3f}"))
    heat.add_row("msgs in", f"{s.msgs_in:,}")
    heat.add_row("rejected", f"{s.msgs_rejected:,}")
    heat.add_row("duplicates / gaps", f"{s.msgs_duplicate:,} / {s.seq_gaps:,}")
    heat.add_row("stale assets", f"{len(s.stale):,}")
    heat.add_row("alarms active", Text(f"{s.alarms_active:,}", style="red" if s.alarms_active else "green"))
    top = Table.grid(padding=(0, 4))
    top.add_row(power, cool, heat)
    hall_t = Table(title="Halls", padding=(0, 1))
    for col in ("hall", "IT MW", "GPUs", "util %", "GPU max °C", "return max °C", "heat MW"):
        hall_t.add_column(col, justify="right")
    for h in halls:
        hall_t.add_row(h.hall, _f(h.it_mw), f"{h.gpus_reporting:,}",
                       _f(None if h.gpu_util_mean is None else 100 * h.gpu_util_mean),
                       _f(h.gpu_temp_max_c), _f(h.coolant_return_max_c), _f(h.heat_to_liquid_mw))
    return Group(Panel(top, title=title), hall_t, *[Text(n, style="yellow") for n in notes])


def summary_line(s: PlantState) -> str:
    """One plain line for logs and non-terminal output."""
    return (f"{_time(s.ts)} IT {s.it_mw:.1f} MW, facility {s.facility_mw:.1f} MW, "
            f"PUE 15 min {_f(s.pue_15m, '{:.3f}')} (tick {_f(s.pue, '{:.3f}')}), "
            f"headroom {s.headroom_mw:.1f} MW, GPUs {s.gpus_reporting:,}/{s.gpus_total:,}, "
            f"GPU max {_f(s.gpu_temp_max_c)} C, return max {_f(s.coolant_return_max_c)} C, "
            f"reused {s.heat_reused_mw:.1f} MW, msgs {s.msgs_in:,} (rejected {s.msgs_rejected:,}), "
            f"alarms {s.alarms_active}")
