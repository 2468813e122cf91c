"""Grafana alert rules (file provisioning, ``grafana/provisioning/alerting/twin.yaml``) from the plant file.

The critical alarms of the twin (``twin/live/plant_alarms.py``: headroom_low, gpu_throttle, flow_low, and the
sink's sink_spool_full) and the day-ahead forecast breach of the headroom alarm, each an InfluxQL query (A)
reduced (B) and compared with the plant file's threshold (C). Queries name no database: they read the data
source's (``twin``), and the plant's site, live series only (no ``scenario`` tag).

A rule on the ``alarm`` measurement reads each alarm's latest transition: its ``value`` is past the set
threshold when it was raised and back past the clear threshold when it cleared, so comparing the latest value
with the midpoint of the two tells an active alarm from a cleared one.
"""

from __future__ import annotations

from typing import Any

import yaml

from twin.dashboards.board import DATASOURCE
from twin.dashboards.influxql import LIVE, main_model, select
from twin.plant import Plant

__all__ = ["FOLDER", "render_alerts", "rules"]

FOLDER = "Stargate twin"
Json = dict[str, Any]


def _rule(uid: str, title: str, query: str, reducer: str, op: str, threshold: float, *, severity: str,
          summary: str, window_s: int = 300, for_: str = "1m", no_data: str = "OK") -> Json:
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": window_s, "to": 0}, "datasourceUid": DATASOURCE["uid"],
             "model": {"refId": "A", "datasource": dict(DATASOURCE), "query": query, "rawQuery": True,
                       "resultFormat": "time_series", "intervalMs": 1000, "maxDataPoints": 43200}},
            {"refId": "B", "datasourceUid": "__expr__",
             "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": reducer,
                       "datasource": {"type": "__expr__", "uid": "__expr__"}}},
            {"refId": "C", "datasourceUid": "__expr__",
             "model": {"refId": "C", "type": "threshold", "expression": "B",
                       "datasource": {"type": "__expr__", "uid": "__expr__"},
                       "conditions": [{"evaluator": {"type": op, "params": [threshold]}}]}},
        ],
        "noDataState": no_data,
        "execErrState": "Error",
        "for": for_,
        "annotations": {"summary": summary},
        "labels": {"severity": severity, "team": "operations"},
        "isPaused": False,
    }


def _latest_transition(plant: Plant, kind: str) -> str:
    site = f"'{plant.site.id}'"
    return select("alarm", [("value", 'last("value")')], interval=None, by=("asset",), database="", site=site,
                  where=(f'"alarm_id" =~ /^{kind}(-|$)/',), time_filter="$timeFilter").query


def rules(plant: Plant) -> list[Json]:
    a, site = plant.alarms, f"'{plant.site.id}'"
    common: Json = {"database": "", "site": site, "scenario": LIVE}
    headroom = select("plant_state", [("headroom_mw", 'min("headroom_mw")')], **common).query
    throttle = select("hall_state", [("gpu_temp_max_c", 'max("gpu_temp_max_c")')], by=("hall",), **common).query
    spool = select("sink_stats", [("spool_fill", 'last("spool_bytes") / last("spool_max_bytes")')], interval=None,
                   **common).query
    breach = select("forecast", [("p10", 'min("p10")')], interval=None, time_filter="time >= now() AND "
                    "time <= now() + 24h", where=("\"quantity\" = 'headroom_mw'", *main_model("day-ahead")),
                    **common).query
    flow_mid = (a.flow_low_fraction + a.flow_clear_fraction) / 2
    return [
        _rule("twin-headroom-low", "Headroom below the alarm limit", headroom, "min", "lt", a.headroom_low_mw,
              severity="critical", summary=f"headroom against contract and hydro availability below "
                                           f"{a.headroom_low_mw:g} MW (alarm headroom_low)"),
        _rule("twin-gpu-throttle", "GPUs at their throttling temperature", throttle, "max", "gt", plant.gpu.throttle_c,
              severity="critical", summary=f"the hottest GPU of a hall above {plant.gpu.throttle_c:g} C "
                                           "(alarm gpu_throttle)"),
        _rule("twin-flow-low", "Loop flow low at a CDU", _latest_transition(plant, "flow_low"), "last", "lt",
              flow_mid, severity="critical", window_s=7 * 86400, for_="0s",
              summary=f"a CDU's flow below {a.flow_low_fraction:g} of what its load needs (alarm flow_low, raised "
                      "and not cleared)"),
        _rule("twin-sink-spool-full", "Sink spool at its bound: lines are dropped", spool, "last", "gt", 0.99,
              severity="critical", window_s=900,
              summary="the sink's disk spool is full: the database is unreachable and the oldest lines are "
                      "dropped (alarm sink_spool_full)"),
        _rule("twin-headroom-forecast-breach", "Day-ahead forecast: headroom below the alarm limit", breach, "min",
              "lt", a.headroom_low_mw, severity="warning", for_="15m", no_data="NoData",
              summary=f"the day-ahead forecast's p10 of headroom falls below {a.headroom_low_mw:g} MW within 24 h: "
                      "plan load or buy supply"),
    ]


def alert_document(plant: Plant) -> Json:
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": "stargate-twin", "folder": FOLDER, "interval": "1m",
                                         "rules": rules(plant)}]}


def render_alerts(plant: Plant) -> str:
    head = ("# Grafana alert rules (file provisioning), generated from the plant file by twin.dashboards\n"
            "# (python deploy/grafana/build.py): edit the generator, not this file. InfluxQL on the provisioned\n"
            "# data source (uid twin-influxdb).\n")
    return head + yaml.safe_dump(alert_document(plant), sort_keys=False, width=120, allow_unicode=True)
