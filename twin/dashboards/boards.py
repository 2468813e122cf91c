"""The dashboards, each from the plant file: thresholds and colour steps are its ``[alarms]`` and contract.

One function per board; :data:`BOARDS` names them (the file name under ``grafana/dashboards/``) with the
question each answers (docs/dashboards.md).
"""

from __future__ import annotations

from collections.abc import Callable

from twin.dashboards.board import (
    STAT_OPTIONS,
    Board,
    Json,
    annotation,
    band,
    custom_variable,
    query_variable,
    steps,
)
from twin.dashboards.influxql import LIVE, Target, agg, main_model, scenario_is, select, site_values
from twin.plant import Plant

__all__ = ["BOARDS", "FORECAST_WITH_ACTUAL", "PRODUCTS", "QUESTIONS"]

#: Forecast quantities that are also plant_state fields (so an actual exists to compare with).
FORECAST_WITH_ACTUAL = ("facility_mw", "it_mw", "headroom_mw", "coolant_return_max_c")
#: The forecast service's products (twin/forecast/engine.py: PRODUCTS).
PRODUCTS = ("intraday", "day-ahead")
SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}


#: Thresholds drawn as dashed lines on a time series.
LINES: Json = {"thresholdsStyle": {"mode": "dashed"}}


def last(measurement: str, *fields: str, by: tuple[str, ...] = (), where: tuple[str, ...] = ()) -> Target:
    """The latest value of each field over the dashboard's range (a stat's 'now')."""
    return select(measurement, [(f, agg("last", f)) for f in fields], interval=None, by=by, where=where)


def series(measurement: str, *fields: str, fn: str = "mean", by: tuple[str, ...] = (),
           where: tuple[str, ...] = ()) -> Target:
    return select(measurement, [(f, agg(fn, f)) for f in fields], by=by, where=where)


def per_window(measurement: str, *counters: str) -> Target:
    """How much counters (totals since a service started) grew in each window of the graph."""
    return select(measurement, [(c, agg("non_negative_difference(max", c)) for c in counters])


def forecast(quantity: str, product: str, *, fields: tuple[str, ...] = ("mean", "p10", "p90"),
             names: tuple[str, ...] | None = None) -> Target:
    """The main model's forecast of one quantity and product: the latest issue covering each time."""
    return select("forecast", [(n, agg("last", f)) for n, f in zip(names or fields, fields, strict=True)],
                  where=(f"\"quantity\" = '{quantity}'", *main_model(product)))


def headroom_steps(plant: Plant) -> list[Json]:
    """Red below the headroom alarm, orange below 10 % of the contract, green above."""
    a = plant.alarms
    return steps(("red", None), ("orange", a.headroom_low_mw), ("green", max(0.1 * plant.site.contract_mw,
                                                                             a.headroom_clear_mw)))


PUE_15M = [("pue_15m", 'mean("pue_15m")')]


def alarm_annotations(critical_only: bool = False) -> list[Json]:
    out = []
    for severity, colour in SEVERITY_COLOURS.items():
        if critical_only and severity != "critical":
            continue
        t = select("alarm", [("message", '"message"'), ("alarm_id", '"alarm_id"'), ("asset", '"asset"')],
                   interval=None, where=(f"\"severity\" = '{severity}'", '"active" = true'))
        out.append(annotation(f"{severity} alarms raised", colour, t, "message", "alarm_id,asset"))
    return out


# ---------------------------------------------------------------- the boards


def overview(plant: Plant) -> Board:
    a = plant.alarms
    b = Board("twin-plant-overview", "Stargate twin: plant overview",
              "Is the plant inside its supply and contract, now and over the next day? Power against hydro "
              "availability and the contract, headroom now and forecast with its p10-p90 fan, PUE over 15 minutes, "
              "heat delivered against demand.", time_from="now-12h", time_to="now+24h",
              annotations=alarm_annotations(critical_only=True))
    b.add("stat", "Facility power", [last("plant_state", "facility_mw")], w=4, h=4, unit="MW", decimals=1)
    b.add("stat", "IT power", [last("plant_state", "it_mw")], w=4, h=4, unit="MW", decimals=1)
    b.add("stat", "Headroom", [last("plant_state", "headroom_mw")], w=4, h=4, unit="MW", decimals=1,
          thresholds=headroom_steps(plant),
          description=f"min(hydro available, contract) - facility; red below the alarm ({a.headroom_low_mw:g} MW), "
                      f"orange below 10 % of the contract")
    b.add("stat", "PUE (15 min)", [last("plant_state", "pue_15m")], w=4, h=4, decimals=3,
          description="facility energy / IT energy over the last 15 minutes (ISO/IEC 30134-2 interim PUE), as the "
                      "twin computes it; empty until 95 % of the plant's IT has been heard over 15 minutes")
    b.add("stat", "Heat delivered", [last("plant_state", "heat_reused_mw", "heat_demand_mw")], w=4, h=4, unit="MW",
          decimals=1)
    b.add("stat", "Alarms active", [last("plant_state", "alarms_active")], w=4, h=4,
          thresholds=steps(("green", None), ("red", 1)))
    b.add("timeseries", "Power against hydro availability and the contract",
          [series("plant_state", "facility_mw", "it_mw", "hydro_available_mw", "contract_mw")], w=24, h=9,
          unit="MW", description="facility_mw: metered at the feeders; hydro_available_mw: what the hydro supply "
                                 "can deliver; contract_mw: the contracted maximum draw",
          overrides=[{"matcher": {"id": "byName", "options": "contract_mw"},
                      "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}])
    b.add("timeseries", "Headroom now and its intraday forecast (p10-p90)",
          [series("plant_state", "headroom_mw"), forecast("headroom_mw", "intraday")], unit="MW",
          overrides=band("p90", "p10"), thresholds=headroom_steps(plant), custom=LINES,
          description="the latest intraday issue covering each minute; the dashed lines are the alarm and the "
                      "10 %-of-contract steps")
    b.add("timeseries", "Day-ahead headroom against the contract (p10-p90)",
          [forecast("headroom_mw", "day-ahead"), series("plant_state", "headroom_mw")], unit="MW",
          overrides=band("p90", "p10"), thresholds=headroom_steps(plant), custom=LINES,
          description="the day-ahead forecast (quarter hours, 24 h) of headroom against the contract and hydro "
                      f"availability; below {a.headroom_low_mw:g} MW the headroom alarm would raise")
    b.add("timeseries", "Day-ahead facility power against the contract (p10-p90)",
          [forecast("facility_mw", "day-ahead"), series("plant_state", "facility_mw", "contract_mw",
                                                        "hydro_available_mw")], unit="MW",
          overrides=band("p90", "p10"))
    b.add("timeseries", "PUE over 15 minutes", [series("plant_state", "pue_15m", "pue")], decimals=3,
          description="pue_15m: facility / IT energy over the last 15 minutes; pue: each tick's ratio of powers, "
                      "which swings with when the meters and the racks were sampled")
    b.add("timeseries", "IT power per hall", [series("hall_state", "it_mw", by=("hall",))], unit="MW")
    b.add("timeseries", "Heat delivered against demand",
          [series("plant_state", "heat_reused_mw", "heat_demand_mw", "heat_pump_mw")], unit="MW",
          description="heat_reused_mw: delivered to the offtakers; heat_demand_mw: what they ask for; heat_pump_mw: "
                      "the heat pumps' electric power")
    return b


def alarms(plant: Plant) -> Board:
    b = Board("twin-alarms", "Stargate twin: alarms",
              "Which alarms are active now, on which asset and how severe; what was raised and cleared before.",
              time_from="now-24h", annotations=alarm_annotations())
    b.add("stat", "Alarms active", [last("plant_state", "alarms_active")], w=6, h=4,
          thresholds=steps(("green", None), ("red", 1)))
    for severity in ("critical", "warning"):
        b.add("stat", f"{severity.capitalize()} alarms raised in the range",
              [select("alarm", [("raised", agg("count", "value"))], interval=None,
                      where=(f"\"severity\" = '{severity}'", '"active" = true'))], w=6, h=4,
              thresholds=steps(("green", None), (SEVERITY_COLOURS[severity], 1)))
    b.add("stat", "Stale assets", [last("plant_state", "stale_count")], w=6, h=4,
          thresholds=steps(("green", None), ("orange", 1)))
    severity_mappings = [{"type": "value", "options": {s: {"color": c, "index": i, "text": s}
                                                       for i, (s, c) in enumerate(SEVERITY_COLOURS.items())}}]
    coloured = {"id": "custom.cellOptions", "value": {"type": "color-background"}}
    b.add("table", "Active now", [select(
        "alarm", [("active", agg("last", "active")), ("value", agg("last", "value")),
                  ("threshold", agg("last", "threshold")), ("message", agg("last", "message"))],
        interval=None, by=("severity", "asset", "alarm_id"), fmt="table")], w=24, h=10, time_from="30d",
        description="the latest transition of every alarm in the last 30 days, those still active (a cleared "
                    "alarm's latest transition has active = false); severity coloured",
        transformations=[{"id": "filterByValue", "options": {"type": "include", "match": "all", "filters": [
            {"fieldName": "active", "config": {"id": "equal", "options": {"value": True}}}]}},
            {"id": "organize", "options": {"excludeByName": {"Time": True, "active": True}}}],
        overrides=[{"matcher": {"id": "byName", "options": "severity"},
                    "properties": [{"id": "mappings", "value": severity_mappings}, coloured]}])
    b.add("timeseries", "Alarms raised per window by severity",
          [select("alarm", [("raised", agg("count", "value"))], where=('"active" = true',), by=("severity",))],
          w=12, h=8, custom={"drawStyle": "bars", "fillOpacity": 80},
          overrides=[{"matcher": {"id": "byName", "options": s}, "properties": [
              {"id": "color", "value": {"mode": "fixed", "fixedColor": c}}]} for s, c in SEVERITY_COLOURS.items()])
    b.add("timeseries", "Active alarms and stale assets", [series("plant_state", "alarms_active", "stale_count",
                                                                  fn="max")], w=12, h=8)
    b.add("table", "History (latest first)", [select(
        "alarm", [("severity", '"severity"'), ("alarm_id", '"alarm_id"'), ("asset", '"asset"'),
                  ("active", '"active"'), ("value", '"value"'), ("threshold", '"threshold"'),
                  ("message", '"message"')], interval=None, order_desc=True, limit=500, fmt="table")],
        w=24, h=12, description="every raise and clear in the range, the latest 500",
        overrides=[{"matcher": {"id": "byName", "options": "severity"},
                    "properties": [{"id": "mappings", "value": severity_mappings}, coloured]}])
    return b


def hydro(plant: Plant) -> Board:
    a = plant.alarms
    b = Board("twin-hydro", "Stargate twin: hydro supply",
              "What the hydro supply can deliver and at what price: grid frequency against its band, reservoir, "
              "spot price, curtailment per feeder (the sink's raw-telemetry mirror, TWIN_SINK_MIRROR_S > 0).",
              time_from="now-24h")
    per = ("asset",)
    freq_steps = steps(("red", None), ("green", a.frequency_low_hz), ("red", a.frequency_high_hz))
    b.add("stat", "Grid frequency", [last("raw_hydro", "frequency_hz", by=per)], w=6, h=4, unit="hertz",
          decimals=3, thresholds=freq_steps)
    b.add("stat", "Reservoir", [last("raw_hydro", "reservoir_pct", by=per)], w=6, h=4, unit="percent", decimals=1)
    b.add("stat", "Spot price", [last("raw_hydro", "price_eur_mwh", by=per)], w=6, h=4, unit="currencyEUR",
          decimals=1, description="EUR/MWh")
    b.add("stat", "Hydro available", [last("plant_state", "hydro_available_mw")], w=6, h=4, unit="MW", decimals=1)
    b.add("timeseries", "Grid frequency per feeder", [series("raw_hydro", "frequency_hz", by=per)], unit="hertz",
          decimals=3, thresholds=freq_steps, custom=LINES,
          description=f"the normal band {a.frequency_low_hz:g}-{a.frequency_high_hz:g} Hz (the plant file's "
                      "frequency alarms) dashed")
    b.add("timeseries", "Available and imported power per feeder",
          [series("raw_hydro", "available_mw", "import_mw", by=per)], unit="MW")
    b.add("timeseries", "Reservoir level", [series("raw_hydro", "reservoir_pct", by=per)], unit="percent")
    b.add("timeseries", "Spot price", [series("raw_hydro", "price_eur_mwh", by=per)], unit="currencyEUR",
          description="EUR/MWh")
    b.add("state-timeline", "Curtailment per feeder", [select("raw_hydro", [("curtailed", agg("last", "curtailed"))],
                                                              by=per)], w=24, h=5,
          mappings=[{"type": "value", "options": {"true": {"color": "red", "index": 0, "text": "curtailed"},
                                                  "false": {"color": "green", "index": 1, "text": "normal"}}}],
          options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8, "alignValue": "left"})
    b.add("timeseries", "Site draw against hydro availability",
          [series("plant_state", "facility_mw", "hydro_available_mw", "contract_mw")], w=24, h=8, unit="MW")
    return b


def cooling(plant: Plant) -> Board:
    a, g = plant.alarms, plant.gpu
    b = Board("twin-cooling", "Stargate twin: cooling",
              "Are the loops carrying the heat away? Coolant temperatures and flow per hall, CDU energy residuals, "
              "GPU temperature extremes, against the plant file's alarm limits.")
    hall = ("hall",)
    return_steps = steps(("green", None), ("red", a.coolant_return_high_c))
    gpu_steps = steps(("green", None), ("orange", a.gpu_temp_high_c), ("red", g.throttle_c))
    b.add("timeseries", "Coolant return, hottest CDU per hall",
          [series("hall_state", "coolant_return_max_c", fn="max", by=hall)], unit="celsius",
          thresholds=return_steps, custom=LINES,
          description=f"the coolant_return_high alarm at {a.coolant_return_high_c:g} C dashed")
    b.add("timeseries", "Coolant supply, mean per hall", [series("hall_state", "coolant_supply_mean_c", by=hall)],
          unit="celsius")
    b.add("timeseries", "Loop flow per hall", [series("hall_state", "flow_lps", by=hall)], unit="litre/s",
          description="total technology-loop flow over the hall's CDUs")
    b.add("timeseries", "Energy residual, worst CDU per hall",
          [series("hall_state", "energy_residual_max", by=hall)], unit="percentunit",
          thresholds=steps(("green", None), ("red", a.residual_high_fraction)), custom=LINES,
          description="(measured - expected heat) / expected for the hall's CDU of largest magnitude: a sensor "
                      f"fault or a loop losing heat; the residual alarm at {a.residual_high_fraction:g}")
    b.add("timeseries", "Hottest GPU per hall", [series("hall_state", "gpu_temp_max_c", fn="max", by=hall)],
          unit="celsius", thresholds=gpu_steps, custom=LINES,
          description=f"gpu_temp_high at {a.gpu_temp_high_c:g} C (warning), throttling at {g.throttle_c:g} C "
                      "(critical)")
    b.add("timeseries", "GPU temperature above expected, worst per hall",
          [series("hall_state", "gpu_temp_excess_max_k", fn="max", by=hall)], unit="kelvin",
          description="reported minus expected (T_supply + R_th P) GPU temperature: a cold plate or pump problem")
    b.add("timeseries", "Heat to liquid against IT power", [series("plant_state", "heat_to_liquid_mw", "it_mw")],
          unit="MW")
    b.add("timeseries", "Liquid capture ratio and ambient",
          [series("plant_state", "liquid_capture_ratio_15m"), series("plant_state", "ambient_c")],
          unit="percentunit",
          overrides=[{"matcher": {"id": "byName", "options": "ambient_c"},
                      "properties": [{"id": "unit", "value": "celsius"},
                                     {"id": "custom.axisPlacement", "value": "right"}]}])
    return b


def heat_reuse(plant: Plant) -> Board:
    b = Board("twin-heat-reuse", "Stargate twin: heat reuse",
              "How much of the heat reaches the offtakers against what they ask for, per offtaker (the sink's "
              "raw-telemetry mirror), the heat pumps' power, and the day-ahead forecast of reusable heat.",
              time_from="now-1d", time_to="now+1d")
    per = ("asset",)
    b.add("stat", "Heat delivered now", [last("plant_state", "heat_reused_mw")], w=6, h=4, unit="MW", decimals=1)
    b.add("stat", "Heat demand now", [last("plant_state", "heat_demand_mw")], w=6, h=4, unit="MW", decimals=1)
    b.add("stat", "Heat pumps now", [last("plant_state", "heat_pump_mw")], w=6, h=4, unit="MW", decimals=1)
    b.add("stat", "ERF", [last("plant_state", "erf_15m", "erf")], w=6, h=4, unit="percentunit", decimals=1,
          description="reused / facility energy (ISO/IEC 30134-6): erf_15m over the last 15 minutes, erf since "
                      "the twin started")
    b.add("timeseries", "Delivered against demand, whole site",
          [series("plant_state", "heat_reused_mw", "heat_demand_mw", "heat_to_liquid_mw")], w=24, h=8, unit="MW")
    b.add("timeseries", "Delivered against demand per offtaker",
          [series("raw_heat", "delivered_kw", "demand_kw", by=per)], unit="kwatt",
          description="raw_heat: one line per exchanger every TWIN_SINK_MIRROR_S seconds")
    b.add("timeseries", "Heat-pump electric power per offtaker", [series("raw_heat", "heat_pump_kw", by=per)],
          unit="kwatt")
    b.add("timeseries", "Offtaker supply and return temperatures",
          [series("raw_heat", "supply_c", "return_c", by=per)], unit="celsius")
    b.add("timeseries", "Reusable heat: day-ahead forecast (p10-p90) and heat reused",
          [forecast("heat_reusable_mw", "day-ahead"), series("plant_state", "heat_reused_mw")], unit="MW",
          overrides=band("p90", "p10"))
    return b


def forecasts(plant: Plant) -> Board:
    b = Board("twin-forecasts", "Stargate twin: forecasts",
              "How good are the forecasts, live? Each quantity's actual against the main model's forecast (latest "
              "issue covering each time) and every model's skill (MASE against persistence: below 1 beats it).",
              time_from="now-12h", time_to="now+6h")
    b.variables.append(custom_variable("quantity", "quantity", FORECAST_WITH_ACTUAL))
    b.variables.append(custom_variable("product", "product", PRODUCTS))
    b.add("timeseries", "${quantity}: actual and the main model's ${product} forecast (p10-p90)",
          [series("plant_state", "${quantity}"), forecast("${quantity}", "${product}")], w=24, h=10,
          overrides=band("p90", "p10"))
    b.add("timeseries", "${quantity}: every model's ${product} mean against the actual",
          [series("plant_state", "${quantity}"),
           select("forecast", [("mean", agg("last", "mean"))], by=("model",),
                  where=("\"quantity\" = '${quantity}'", '"model" =~ /-${product}$/'))], w=24, h=8)
    b.add("timeseries", "Live skill (MASE) per quantity and model",
          [select("forecast", [("skill", agg("last", "skill"))], by=("quantity", "model"))], decimals=2,
          thresholds=steps(("green", None), ("red", 1)), custom=LINES)
    b.add("table", "Latest skill", [select("forecast", [("skill", agg("last", "skill"))], interval=None,
                                           by=("quantity", "model"), fmt="table")], decimals=2,
          transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}])
    b.add("timeseries", "Lead time of the main model's points shown",
          [forecast("${quantity}", "${product}", fields=("lead_s",))], w=24, h=6, unit="s")
    return b


def data_quality(plant: Plant) -> Board:
    b = Board("twin-data-quality", "Stargate twin: data quality",
              "Can the numbers be trusted? Stale assets, dead letters (messages refused), duplicates, sequence "
              "gaps, late messages, ticks without telemetry, and the sink's health (written, spooled, dropped, "
              "its lag behind the bus).")
    counters = ("msgs_rejected", "msgs_duplicate", "seq_gaps", "msgs_late", "msgs_dropped")
    b.add("stat", "Stale assets", [last("plant_state", "stale_count")], w=6, h=4,
          thresholds=steps(("green", None), ("orange", 1)))
    b.add("stat", "GPUs reporting", [last("plant_state", "gpus_reporting", "gpus_total")], w=6, h=4)
    b.add("stat", "Sink: lines waiting", [last("sink_stats", "buffered", "spool_lines")], w=6, h=4,
          description="in memory and on disk, not yet in the database: the sink's lag")
    b.add("stat", "Dead letters in the range", [select("plant_state", [("msgs_rejected", 'spread("msgs_rejected")')],
                                                       interval=None)], w=6, h=4,
          thresholds=steps(("green", None), ("orange", 1)))
    b.add("timeseries", "Dead letters, duplicates, gaps, late and dropped messages (per window)",
          [per_window("plant_state", *counters)],
          description="increase of the state service's counters; dead letters are msgs_rejected (each on the "
                      "twin/deadletter topic with its reason); msgs_late: behind the tick window; msgs_dropped: "
                      "incoming queue full (overload)")
    b.add("timeseries", "Messages in per window", [per_window("plant_state", "msgs_in")])
    b.add("timeseries", "Plant states written per window",
          [select("plant_state", [("states", agg("count", "heartbeat"))])],
          description="every tick's PlantState (heartbeats too): a dip is a gap in the twin's output, the state "
                      "service or the sink down")
    b.add("timeseries", "GPUs reporting", [series("plant_state", "gpus_reporting", "gpus_total", fn="min")])
    b.add("timeseries", "Sink: points written, spooled, retried, dropped, dead-lettered (totals)",
          [series("sink_stats", "points_written", "points_spooled", "points_retried", "points_dropped",
                  "points_deadlettered", fn="max")],
          description="the sink's own stats since it started (measurement sink_stats, every TWIN_SINK_STATS_S, "
                      "at the wall clock); spooled: the database was unreachable, the lines wait on disk; dropped: "
                      "lost (spool full); a step up in dropped or dead-lettered is data lost or refused")
    b.add("timeseries", "Sink: spool on disk against its bound",
          [series("sink_stats", "spool_bytes", "spool_max_bytes", fn="max")], unit="bytes",
          description="at the bound the sink drops the oldest lines and raises the alarm sink_spool_full")
    return b


def what_if(plant: Plant) -> Board:
    b = Board("twin-what-if", "Stargate twin: what-if against the live plant",
              "What would a scenario (a what-if run, its lines tagged scenario=NAME: twin up --scenario-tag, or a "
              "plant file's [site] scenario such as expansion-520) draw and leave against the live plant?",
              time_from="now-12h", time_to="now+6h")
    b.variables.append(query_variable("scenario", "scenario", site_values(key="scenario"), "expansion-520"))
    live, what = LIVE, scenario_is("${scenario}")

    def both(field: str, fn: str = "mean") -> list[Target]:
        return [select("plant_state", [("live", agg(fn, field))], scenario=live),
                select("plant_state", [("${scenario}", agg(fn, field))], scenario=what)]

    for field, title in (("facility_mw", "Peak facility power"), ("it_mw", "Peak IT power")):
        b.add("stat", title, [select("plant_state", [("live", agg("max", field))], interval=None, scenario=live),
                              select("plant_state", [("${scenario}", agg("max", field))], interval=None,
                                     scenario=what)], w=6, h=4, unit="MW", decimals=1,
              options={**STAT_OPTIONS, "reduceOptions": {"calcs": ["max"], "fields": "", "values": False}})
    b.add("stat", "Lowest headroom", [select("plant_state", [("live", agg("min", "headroom_mw"))], interval=None,
                                             scenario=live),
                                      select("plant_state", [("${scenario}", agg("min", "headroom_mw"))],
                                             interval=None, scenario=what)], w=6, h=4, unit="MW", decimals=1,
          thresholds=headroom_steps(plant),
          options={**STAT_OPTIONS, "reduceOptions": {"calcs": ["min"], "fields": "", "values": False}})
    b.add("stat", "Contract", [select("plant_state", [("live", agg("last", "contract_mw"))], interval=None,
                                      scenario=live),
                               select("plant_state", [("${scenario}", agg("last", "contract_mw"))], interval=None,
                                      scenario=what)], w=6, h=4, unit="MW", decimals=0)
    b.add("timeseries", "Facility power: ${scenario} against live", both("facility_mw"), unit="MW")
    b.add("timeseries", "Headroom: ${scenario} against live", both("headroom_mw"), unit="MW",
          thresholds=headroom_steps(plant), custom=LINES)
    b.add("timeseries", "IT power: ${scenario} against live", both("it_mw"), unit="MW")
    b.add("timeseries", "PUE over 15 minutes: ${scenario} against live",
          [select("plant_state", [("live", PUE_15M[0][1])], scenario=live),
           select("plant_state", [("${scenario}", PUE_15M[0][1])], scenario=what)], decimals=3)
    b.add("timeseries", "Heat delivered: ${scenario} against live", both("heat_reused_mw"), unit="MW")
    b.add("timeseries", "Hottest coolant return: ${scenario} against live", both("coolant_return_max_c", "max"),
          unit="celsius", thresholds=steps(("green", None), ("red", plant.alarms.coolant_return_high_c)),
          custom=LINES)
    return b


BOARDS: dict[str, Callable[[Plant], Board]] = {
    "plant-overview": overview, "alarms": alarms, "hydro": hydro, "cooling": cooling, "heat-reuse": heat_reuse,
    "forecasts": forecasts, "data-quality": data_quality, "what-if": what_if,
}

#: The question each board answers (docs/dashboards.md).
QUESTIONS = {
    "plant-overview": "Is the plant inside its hydro supply and contract, now and over the next day?",
    "alarms": "Which alarms are active now, on which asset, how severe, and what happened before?",
    "hydro": "What can the hydro supply deliver, is the grid in its band, what does power cost?",
    "cooling": "Are the loops carrying the heat away, hall by hall, inside the alarm limits?",
    "heat-reuse": "How much heat reaches the offtakers against what they ask for?",
    "forecasts": "How good are the forecasts, live?",
    "data-quality": "Can the numbers be trusted?",
    "what-if": "What would a scenario (e.g. the 520 MW expansion) draw and leave, against the live plant?",
}
