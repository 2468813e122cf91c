"""Generate the Grafana dashboards (``grafana/dashboards/*.json``) from code.

    python deploy/grafana/build.py            # write the JSON files
    python deploy/grafana/build.py --check    # exit 1 when a committed file differs from the code

Every query is Flux against the sink's InfluxDB schema (the contract's measurements ``plant_state``,
``hall_state``, ``forecast``, ``alarm``, and the optional raw-telemetry mirror ``raw_heat``), so
``tests/deploy/test_grafana.py`` can check each measurement, field and tag it names against what
``twin.lineproto`` writes. The data source is the provisioned one (uid ``twin-influxdb``); the
bucket is the dashboard constant ``bucket`` (``twin``, the default of INFLUX_BUCKET).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "grafana" / "dashboards"
DATASOURCE = {"type": "influxdb", "uid": "twin-influxdb"}
BUCKET = "twin"
#: Forecast quantities that are also plant_state fields (so an actual exists to compare with).
FORECAST_WITH_ACTUAL = ("facility_mw", "it_mw", "headroom_mw", "coolant_return_max_c")
#: The forecast service's products and baseline models (twin/forecast/engine.py: PRODUCTS, MODELS): each
#: forecast's ``model`` tag is ``{model}-{product}``, the main model's name depending on the quantity.
PRODUCTS = ("intraday", "day-ahead")
BASELINES = ("persistence", "seasonal-naive")


def main_model(product: str) -> str:
    """A Flux predicate: the main model's forecasts of one product (whatever the quantity's main model is)."""
    return f'r.model =~ /-{product}$/ and r.model !~ /^({"|".join(BASELINES)})-/'

Json = dict[str, Any]


# ---------------------------------------------------------------- Flux


def _or(column: str, values: tuple[str, ...]) -> str:
    return " or ".join(f'r.{column} == "{v}"' for v in values)


def flux(measurement: str, fields: tuple[str, ...], *, where: str = "", fn: str = "mean",
         keep: tuple[str, ...] = ("_time", "_value", "_field"), window: bool = True, tail: str = "") -> str:
    """A query of ``fields`` of one measurement for the dashboard's site and time range."""
    q = (f'from(bucket: "${{bucket}}")\n'
         f"  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n"
         f'  |> filter(fn: (r) => r._measurement == "{measurement}" and r.site == "${{site}}")\n'
         f"  |> filter(fn: (r) => {_or('_field', fields)})\n")
    if where:
        q += f"  |> filter(fn: (r) => {where})\n"
    if window:
        q += f"  |> aggregateWindow(every: v.windowPeriod, fn: {fn}, createEmpty: false)\n"
    q += f"  |> keep(columns: [{', '.join(json.dumps(c) for c in keep)}])\n"
    return q + tail


# ---------------------------------------------------------------- panels


@dataclass
class Board:
    uid: str
    title: str
    description: str
    time_from: str = "now-6h"
    time_to: str = "now"
    variables: list[Json] = field(default_factory=list)
    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_h: int = 0

    def add(self, panel_type: str, title: str, queries: list[str], *, w: int = 12, h: int = 8, unit: str = "",
            description: str = "", decimals: int | None = None, overrides: list[Json] | None = None,
            options: Json | None = None, custom: Json | None = None, thresholds: list[Json] | None = None,
            min_value: float | None = None, max_value: float | None = None) -> None:
        if self._x + w > 24:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        defaults: Json = {"unit": unit} if unit else {}
        if decimals is not None:
            defaults["decimals"] = decimals
        if custom:
            defaults["custom"] = custom
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
        if min_value is not None:
            defaults["min"] = min_value
        if max_value is not None:
            defaults["max"] = max_value
        self.panels.append({
            "id": len(self.panels) + 1,
            "type": panel_type,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "query": q}
                        for i, q in enumerate(queries)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options or {},
        })
        self._x += w
        self._row_h = max(self._row_h, h)

    def json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["stargate", "twin"],
            "timezone": "browser",
            "editable": False,
            "graphTooltip": 1,
            "refresh": "10s",
            "schemaVersion": 39,
            "version": 1,
            "time": {"from": self.time_from, "to": self.time_to},
            "templating": {"list": [_bucket_variable(), _site_variable(), *self.variables]},
            "annotations": {"list": []},
            "links": [{"type": "dashboards", "tags": ["stargate"], "asDropdown": True, "title": "Twin dashboards"}],
            "panels": self.panels,
        }


def _bucket_variable() -> Json:
    return {"name": "bucket", "type": "constant", "hide": 2, "query": BUCKET, "label": "bucket",
            "current": {"text": BUCKET, "value": BUCKET}}


def _site_variable() -> Json:
    query = 'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: "${bucket}", tag: "site")'
    return {"name": "site", "type": "query", "label": "site", "datasource": DATASOURCE, "query": query,
            "definition": query, "refresh": 1, "sort": 1, "hide": 0, "includeAll": False, "multi": False,
            "current": {"text": "narvik", "value": "narvik"}, "options": []}


def _custom_variable(name: str, label: str, values: tuple[str, ...]) -> Json:
    return {"name": name, "type": "custom", "label": label, "query": ",".join(values), "hide": 0,
            "includeAll": False, "multi": False, "current": {"text": values[0], "value": values[0]},
            "options": [{"text": v, "value": v, "selected": i == 0} for i, v in enumerate(values)]}


def _band(upper: str, lower: str) -> list[Json]:
    """Fill between the p90 and p10 series: the forecast's 80 % interval."""
    return [
        {"matcher": {"id": "byName", "options": upper},
         "properties": [{"id": "custom.fillBelowTo", "value": lower}, {"id": "custom.lineWidth", "value": 0},
                        {"id": "custom.fillOpacity", "value": 20}]},
        {"matcher": {"id": "byName", "options": lower},
         "properties": [{"id": "custom.lineWidth", "value": 0}]},
    ]


def _per_window(measurement: str, counters: tuple[str, ...]) -> str:
    """How much counters (totals since a service started) grew in each window of the graph."""
    return flux(measurement, counters, window=False,
                tail="  |> difference(nonNegative: true)\n"
                     "  |> aggregateWindow(every: v.windowPeriod, fn: sum, createEmpty: false)\n")


def _last_stat(measurement: str, name: str) -> str:
    return flux(measurement, (name,), window=False, tail="  |> last()\n")


_STAT = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value",
         "graphMode": "area", "textMode": "auto"}
_TABLE = {"showHeader": True, "cellHeight": "sm"}


# ---------------------------------------------------------------- dashboards


def plant_overview() -> Board:
    b = Board("twin-plant-overview", "Stargate twin: plant overview",
              "Facility and IT power against the hydro supply and the contract; headroom with its intraday "
              "forecast; PUE and ERF.", time_from="now-12h", time_to="now+6h")
    b.add("stat", "Facility power", [_last_stat("plant_state", "facility_mw")], w=4, h=4, unit="MW", decimals=1,
          options=_STAT)
    b.add("stat", "IT power", [_last_stat("plant_state", "it_mw")], w=4, h=4, unit="MW", decimals=1, options=_STAT)
    b.add("stat", "Headroom", [_last_stat("plant_state", "headroom_mw")], w=4, h=4, unit="MW", decimals=1,
          options=_STAT, thresholds=[{"color": "red", "value": None}, {"color": "orange", "value": 5},
                                     {"color": "green", "value": 20}])
    b.add("stat", "PUE", [_last_stat("plant_state", "pue")], w=4, h=4, decimals=3, options=_STAT,
          description="facility_mw / it_mw at the utility meter (ISO/IEC 30134-2)")
    b.add("stat", "ERF", [_last_stat("plant_state", "erf")], w=4, h=4, unit="percentunit", decimals=1,
          options=_STAT, description="reused / facility energy since the twin started (ISO/IEC 30134-6)")
    b.add("stat", "GPUs reporting", [_last_stat("plant_state", "gpus_reporting")], w=4, h=4, options=_STAT)
    b.add("timeseries", "Power against supply and contract",
          [flux("plant_state", ("facility_mw", "it_mw", "hydro_available_mw", "contract_mw"))], w=24, h=9,
          unit="MW", description="facility_mw: metered at the feeders; hydro_available_mw: what the hydro "
                                 "supply can deliver; contract_mw: the contracted maximum draw",
          overrides=[{"matcher": {"id": "byName", "options": "contract_mw"},
                      "properties": [{"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}}]}])
    b.add("timeseries", "Headroom and its forecast (p10-p90)",
          [flux("plant_state", ("headroom_mw",)),
           flux("forecast", ("mean", "p10", "p90"), where=f'r.quantity == "headroom_mw" and {main_model("intraday")}',
                fn="last")],
          w=24, h=9, unit="MW", overrides=_band("p90", "p10"),
          description="headroom_mw = min(hydro available, contract) - facility; the forecast's mean and 80 % "
                      "interval from the latest issue covering each time")
    b.add("timeseries", "PUE", [flux("plant_state", ("pue",))], w=12, h=7, decimals=3)
    b.add("timeseries", "ERF and heat reused", [flux("plant_state", ("erf",)),
                                               flux("plant_state", ("heat_reused_mw", "heat_pump_mw"))],
          w=12, h=7, overrides=[{"matcher": {"id": "byName", "options": "erf"},
                                 "properties": [{"id": "unit", "value": "percentunit"},
                                                {"id": "custom.axisPlacement", "value": "right"}]}], unit="MW")
    return b


def cooling() -> Board:
    b = Board("twin-cooling", "Stargate twin: cooling",
              "Per-hall coolant temperatures and flow, CDU energy residuals, GPU temperature extremes.")
    hall = ("_time", "_value", "hall")
    b.add("timeseries", "Coolant return, hottest CDU per hall", [flux("hall_state", ("coolant_return_max_c",),
                                                                     fn="max", keep=hall)],
          unit="celsius", thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 85}],
          custom={"thresholdsStyle": {"mode": "line"}})
    b.add("timeseries", "Coolant supply, mean per hall", [flux("hall_state", ("coolant_supply_mean_c",), keep=hall)],
          unit="celsius")
    b.add("timeseries", "Loop flow per hall", [flux("hall_state", ("flow_lps",), keep=hall)], unit="litre/s",
          description="total technology-loop flow over the hall's CDUs")
    b.add("timeseries", "Energy residual, worst CDU per hall",
          [flux("hall_state", ("energy_residual_max",), keep=hall)], unit="percentunit",
          description="(measured - expected heat) / expected for the hall's CDU of largest magnitude: a "
                      "sensor fault or a loop losing heat")
    b.add("timeseries", "Hottest GPU per hall", [flux("hall_state", ("gpu_temp_max_c",), fn="max", keep=hall)],
          unit="celsius", thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 87}],
          custom={"thresholdsStyle": {"mode": "line"}})
    b.add("timeseries", "GPU temperature above expected, worst per hall",
          [flux("hall_state", ("gpu_temp_excess_max_k",), fn="max", keep=hall)], unit="kelvin",
          description="reported minus expected (T_supply + R_th P) GPU temperature: a cold plate or pump problem")
    b.add("timeseries", "Heat to liquid against IT power",
          [flux("plant_state", ("heat_to_liquid_mw", "it_mw"))], unit="MW")
    b.add("timeseries", "Liquid capture ratio and ambient",
          [flux("plant_state", ("liquid_capture_ratio",)), flux("plant_state", ("ambient_c",))],
          overrides=[{"matcher": {"id": "byName", "options": "ambient_c"},
                      "properties": [{"id": "unit", "value": "celsius"},
                                     {"id": "custom.axisPlacement", "value": "right"}]}], unit="percentunit")
    return b


def heat_reuse() -> Board:
    b = Board("twin-heat-reuse", "Stargate twin: heat reuse",
              "Heat delivered against demand per offtaker (from the sink's raw-telemetry mirror, "
              "TWIN_SINK_MIRROR_S > 0), heat-pump power, and the day-ahead forecast of reusable heat.",
              time_from="now-1d", time_to="now+1d")
    per = ("_time", "_value", "_field", "asset")
    b.add("timeseries", "Delivered against demand per offtaker",
          [flux("raw_heat", ("delivered_kw", "demand_kw"), keep=per)], w=24, h=9, unit="kwatt",
          description="raw_heat: one line per exchanger every TWIN_SINK_MIRROR_S seconds")
    b.add("timeseries", "Heat-pump electric power per offtaker", [flux("raw_heat", ("heat_pump_kw",), keep=per)],
          unit="kwatt")
    b.add("timeseries", "Offtaker supply and return temperatures",
          [flux("raw_heat", ("supply_c", "return_c"), keep=per)], unit="celsius")
    b.add("timeseries", "Reusable heat: day-ahead forecast (p10-p90) and heat reused",
          [flux("forecast", ("mean", "p10", "p90"),
                where=f'r.quantity == "heat_reusable_mw" and {main_model("day-ahead")}', fn="last"),
           flux("plant_state", ("heat_reused_mw", "heat_to_liquid_mw"))],
          w=24, h=9, unit="MW", overrides=_band("p90", "p10"))
    b.add("stat", "Heat reused now", [_last_stat("plant_state", "heat_reused_mw")], w=8, h=5, unit="MW",
          decimals=1, options=_STAT)
    b.add("stat", "Heat pumps now", [_last_stat("plant_state", "heat_pump_mw")], w=8, h=5, unit="MW",
          decimals=1, options=_STAT)
    b.add("stat", "ERF", [_last_stat("plant_state", "erf")], w=8, h=5, unit="percentunit", decimals=1,
          options=_STAT)
    return b


def forecasts() -> Board:
    b = Board("twin-forecasts", "Stargate twin: forecasts",
              "Each quantity's actual against the forecast (latest issue covering each time) and the live skill "
              "(MASE against persistence: below 1 beats persistence).", time_from="now-12h", time_to="now+6h")
    b.variables.append(_custom_variable("quantity", "quantity", FORECAST_WITH_ACTUAL))
    b.variables.append(_custom_variable("product", "product", PRODUCTS))
    main = main_model("${product}")
    b.add("timeseries", "${quantity}: actual and the main model's ${product} forecast (p10-p90)",
          [flux("plant_state", ("${quantity}",)),
           flux("forecast", ("mean", "p10", "p90"), where=f'r.quantity == "${{quantity}}" and {main}', fn="last")],
          w=24, h=10, overrides=_band("p90", "p10"))
    b.add("timeseries", "${quantity}: every model's ${product} mean against the actual",
          [flux("plant_state", ("${quantity}",)),
           flux("forecast", ("mean",), where='r.quantity == "${quantity}" and r.model =~ /-${product}$/', fn="last",
                keep=("_time", "_value", "model"))], w=24, h=8)
    b.add("timeseries", "Skill (MASE) per quantity and model",
          [flux("forecast", ("skill",), fn="last", keep=("_time", "_value", "quantity", "model"))], w=12, h=8,
          decimals=2, thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}],
          custom={"thresholdsStyle": {"mode": "line"}})
    b.add("table", "Latest skill", [flux("forecast", ("skill",), window=False,
                                         keep=("_time", "_value", "quantity", "model"),
                                         tail="  |> last()\n  |> group()\n")],
          w=12, h=8, decimals=2, options=_TABLE)
    b.add("timeseries", "Lead time of the main model's points shown",
          [flux("forecast", ("lead_s",), where=f'r.quantity == "${{quantity}}" and {main}', fn="last")], w=24, h=6,
          unit="s")
    return b


def data_quality() -> Board:
    b = Board("twin-data-quality", "Stargate twin: data quality",
              "Stale assets, dead letters (messages refused), duplicates, gaps, late messages, the sink's health, "
              "and alarms.")
    counters = ("msgs_rejected", "msgs_duplicate", "seq_gaps", "msgs_late", "msgs_dropped")
    b.add("stat", "Stale assets", [_last_stat("plant_state", "stale_count")], w=6, h=4, options=_STAT,
          thresholds=[{"color": "green", "value": None}, {"color": "orange", "value": 1}])
    b.add("stat", "Alarms active", [_last_stat("plant_state", "alarms_active")], w=6, h=4, options=_STAT,
          thresholds=[{"color": "green", "value": None}, {"color": "red", "value": 1}])
    b.add("stat", "GPUs reporting", [_last_stat("plant_state", "gpus_reporting")], w=6, h=4, options=_STAT)
    b.add("stat", "GPUs in the plant", [_last_stat("plant_state", "gpus_total")], w=6, h=4, options=_STAT)
    b.add("timeseries", "Stale assets and active alarms",
          [flux("plant_state", ("stale_count", "alarms_active"), fn="max")], w=12, h=8)
    b.add("timeseries", "Dead letters, duplicates, gaps, late and dropped messages (per window)",
          [_per_window("plant_state", counters)],
          w=12, h=8, description="increase of the state service's counters since start; dead letters are "
                                 "msgs_rejected (each one is on the twin/deadletter topic with its "
                                 "reason); msgs_dropped: incoming queue full (overload)")
    b.add("timeseries", "Messages in per window",
          [_per_window("plant_state", ("msgs_in",))], w=12, h=8)
    b.add("timeseries", "GPUs reporting", [flux("plant_state", ("gpus_reporting", "gpus_total"), fn="min")],
          w=12, h=8)
    sink = ("points_written", "points_spooled", "points_retried", "points_dropped", "points_deadlettered")
    b.add("timeseries", "Sink: points written, spooled, retried, dropped, dead-lettered (per window)",
          [_per_window("sink_stats", sink)],
          w=12, h=8, description="the sink's own stats (measurement sink_stats, every TWIN_SINK_STATS_S, 60 s by "
                                 "default); spooled: the database was unreachable, the lines wait on disk; "
                                 "dropped: lost (spool full)")
    b.add("timeseries", "Sink: spool on disk against its bound",
          [flux("sink_stats", ("spool_bytes", "spool_max_bytes"), fn="max")], w=12, h=8, unit="bytes",
          description="bytes waiting on disk for the database; at the bound the sink drops the oldest lines "
                      "and raises the alarm sink_spool_full")
    b.add("table", "Alarms (latest first)",
          [flux("alarm", ("active", "message", "value", "threshold"), window=False,
                keep=("_time", "_value", "_field", "alarm_id", "severity"),
                tail='  |> pivot(rowKey: ["_time", "alarm_id", "severity"], columnKey: ["_field"], '
                     'valueColumn: "_value")\n'
                     "  |> group()\n"
                     '  |> sort(columns: ["_time"], desc: true)\n'
                     "  |> limit(n: 200)\n")],
          w=24, h=10, options=_TABLE)
    return b


BOARDS = {"plant-overview": plant_overview, "cooling": cooling, "heat-reuse": heat_reuse,
          "forecasts": forecasts, "data-quality": data_quality}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{name}.json": json.dumps(make().json(), indent=2) + "\n" for name, make in BOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate grafana/dashboards/*.json")
    p.add_argument("--check", action="store_true", help="exit 1 when a committed file differs from the code")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    args = p.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        sys.stderr.write(f"build.py: {', '.join(stale)} differ from the code: run python deploy/grafana/build.py\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
