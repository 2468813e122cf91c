"""A dashboard as Grafana JSON: panels placed left to right on Grafana's 24-column grid, InfluxQL targets.

:class:`Board` keeps the panels; :meth:`Board.json` is the dashboard model Grafana provisions from a file
(``schemaVersion`` 39, the provisioned data source ``twin-influxdb``), checked against Grafana's own schema in
the tests (grafana-foundation-sdk's models).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twin.dashboards.influxql import Target, site_values

__all__ = ["DATASOURCE", "Board", "Json", "band", "step", "steps"]

Json = dict[str, Any]
DATASOURCE: Json = {"type": "influxdb", "uid": "twin-influxdb"}
DATABASE = "twin"  # the default of INFLUX_BUCKET / a 1.x database


def step(color: str, value: float | None) -> Json:
    return {"color": color, "value": value}


def steps(*pairs: tuple[str, float | None]) -> list[Json]:
    """Colour steps: the first has no lower bound (``value`` None), as Grafana requires."""
    out = [step(c, v) for c, v in pairs]
    out[0]["value"] = None
    return out


def band(upper: str, lower: str) -> list[Json]:
    """Fill between the ``upper`` and ``lower`` series (a forecast's p90 and p10: its 80 % interval)."""
    return [
        {"matcher": {"id": "byName", "options": upper},
         "properties": [{"id": "custom.fillBelowTo", "value": lower}, {"id": "custom.lineWidth", "value": 0},
                        {"id": "custom.fillOpacity", "value": 20}]},
        {"matcher": {"id": "byName", "options": lower}, "properties": [{"id": "custom.lineWidth", "value": 0}]},
    ]


def _target(ref: str, t: Target) -> Json:
    return {"refId": ref, "datasource": DATASOURCE, "query": t.query, "rawQuery": True, "resultFormat": t.fmt,
            "alias": t.alias}


STAT_OPTIONS: Json = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                      "colorMode": "value", "graphMode": "area", "textMode": "auto", "justifyMode": "auto",
                      "orientation": "auto"}
TABLE_OPTIONS: Json = {"showHeader": True, "cellHeight": "sm"}


@dataclass
class Board:
    uid: str
    title: str
    description: str
    time_from: str = "now-6h"
    time_to: str = "now"
    variables: list[Json] = field(default_factory=list)
    annotations: list[Json] = field(default_factory=list)
    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _row_h: int = 0

    def add(self, panel_type: str, title: str, targets: list[Target], *, w: int = 12, h: int = 8, unit: str = "",
            description: str = "", decimals: int | None = None, overrides: list[Json] | None = None,
            options: Json | None = None, custom: Json | None = None, thresholds: list[Json] | None = None,
            min_value: float | None = None, max_value: float | None = None, mappings: list[Json] | None = None,
            transformations: list[Json] | None = None, time_from: str | None = None) -> Json:
        """Place a panel after the previous one (on a new row when it does not fit); returns it."""
        if self._x + w > 24:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        defaults: Json = {"unit": unit} if unit else {}
        if decimals is not None:
            defaults["decimals"] = decimals
        if custom:
            defaults["custom"] = custom
        if thresholds:
            defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
            defaults["color"] = {"mode": "thresholds"} if panel_type in ("stat", "gauge") else \
                {"mode": "palette-classic"}
        if min_value is not None:
            defaults["min"] = min_value
        if max_value is not None:
            defaults["max"] = max_value
        if mappings:
            defaults["mappings"] = mappings
        panel: Json = {
            "id": len(self.panels) + 1,
            "type": panel_type,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "gridPos": {"h": h, "w": w, "x": self._x, "y": self._y},
            "targets": [_target(chr(ord("A") + i), t) for i, t in enumerate(targets)],
            "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
            "options": options if options is not None else (STAT_OPTIONS if panel_type == "stat" else
                                                            TABLE_OPTIONS if panel_type == "table" else {}),
        }
        if transformations:
            panel["transformations"] = transformations
        if time_from:
            panel["timeFrom"] = time_from
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)
        return panel

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
            "templating": {"list": [database_variable(), site_variable(), *self.variables]},
            "annotations": {"list": [_builtin_annotation(), *self.annotations]},
            "links": [{"type": "dashboards", "tags": ["stargate"], "asDropdown": True, "title": "Twin dashboards",
                       "icon": "external link", "includeVars": True, "keepTime": True, "targetBlank": False,
                       "tooltip": "", "url": ""}],
            "panels": self.panels,
        }


def _builtin_annotation() -> Json:
    return {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True, "hide": True,
            "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}


def database_variable() -> Json:
    """The database (InfluxDB 1.x / 3.x) or the bucket's DBRP database (2.x): a text box, ``twin`` by default."""
    return {"name": "database", "type": "textbox", "label": "database", "query": DATABASE, "hide": 0,
            "current": {"text": DATABASE, "value": DATABASE}, "options": [{"text": DATABASE, "value": DATABASE,
                                                                          "selected": True}]}


def site_variable() -> Json:
    q = site_values()
    return {"name": "site", "type": "query", "label": "site", "datasource": DATASOURCE, "query": q,
            "refresh": 1, "sort": 1, "hide": 0, "includeAll": False, "multi": False,
            "current": {"text": "narvik", "value": "narvik"}, "options": [], "regex": ""}


def query_variable(name: str, label: str, query: str, current: str) -> Json:
    return {"name": name, "type": "query", "label": label, "datasource": DATASOURCE, "query": query,
            "refresh": 1, "sort": 1, "hide": 0, "includeAll": False, "multi": False,
            "current": {"text": current, "value": current}, "options": [], "regex": ""}


def custom_variable(name: str, label: str, values: tuple[str, ...]) -> Json:
    return {"name": name, "type": "custom", "label": label, "query": ",".join(values), "hide": 0,
            "includeAll": False, "multi": False, "current": {"text": values[0], "value": values[0]},
            "options": [{"text": v, "value": v, "selected": i == 0} for i, v in enumerate(values)]}


def annotation(name: str, color: str, target: Target, text: str, tags: str) -> Json:
    """An InfluxQL annotation: each row of ``target`` a marker with its ``text`` column and ``tags`` columns.

    The query and its columns are written both where Grafana's InfluxDB data source reads them now (``target``)
    and where older dashboards had them (top level, which it migrates); Grafana's dashboard schema leaves a data
    source's annotation query free-form.
    """
    columns = {"query": target.query, "textColumn": text, "tagsColumn": tags, "titleColumn": "", "timeEndColumn": ""}
    return {"name": name, "datasource": DATASOURCE, "enable": True, "hide": False, "iconColor": color, **columns,
            "target": {"refId": "Anno", "datasource": DATASOURCE, "rawQuery": True, "resultFormat": "table",
                       **columns}}
