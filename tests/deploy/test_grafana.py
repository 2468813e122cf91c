"""The Grafana dashboards, alert rules and provisioning: every InfluxQL query names only measurements, fields
and tags the sink writes (taken from ``twin.lineproto`` applied to the contract models), every dashboard is
Grafana JSON that Grafana's own schema (grafana-foundation-sdk's models) keeps whole, thresholds are the plant
file's, the committed files are what ``deploy/grafana/build.py`` generates, and the provisioning files name paths
that exist in the containers (mounted from the repo by docker-compose.yml). The queries run against a real
InfluxDB in ``tests/deploy/test_dashboards_influxql.py``."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog import plugins
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting, dashboard, expr
from pydantic import BaseModel

from twin import lineproto
from twin.contract import (
    DOMAIN_MODELS,
    QUANTITIES,
    Alarm,
    Forecast,
    ForecastPoint,
    HallState,
    PlantState,
    SinkStats,
)
from twin.dashboards import influxql
from twin.dashboards.boards import BOARDS, FORECAST_WITH_ACTUAL
from twin.dashboards.build import dashboards
from twin.forecast import engine
from twin.plant import load_plant

REPO = Path(__file__).resolve().parents[2]
DASH_DIR = REPO / "grafana" / "dashboards"
PROV_DIR = REPO / "grafana" / "provisioning"
DASHBOARDS = sorted(DASH_DIR.glob("*.json"))
ALERTS = PROV_DIR / "alerting" / "twin.yaml"
PANEL_TYPES = {"timeseries", "stat", "table", "gauge", "bargauge", "text", "state-timeline"}
GRAFANA_BUILTINS = {"__interval", "__interval_ms", "__range", "__from", "__to", "__name", "timeFilter", "interval"}


# ---------------------------------------------------------------- what the sink writes


def _sample(annotation: Any, name: str) -> Any:
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or \
        typing.get_origin(annotation) is typing.Union else (annotation,)
    for a in args:
        a = typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a
        if a is bool:
            return True
        if a is float:
            return 0.5
        if a is int:
            return 3
        if a is str:
            return {"hall": "h1"}.get(name, "x")
        if typing.get_origin(a) is list:
            inner = typing.get_args(a)[0]
            inner = typing.get_args(inner)[0] if typing.get_origin(inner) is typing.Annotated else inner
            if inner is str:
                return ["gpu/h1-r001"]
            return [inner(1)] if inner in (int, float) else []  # lists of models are given explicitly
    return None


def _full(cls: type[BaseModel], /, **given: Any) -> Any:
    """An instance with every field, optional ones included, set (not validated: only names matter here)."""
    values = {n: _sample(f.annotation, n) for n, f in cls.model_fields.items()}
    values.update(given)
    return cls.model_construct(**values)


def sink_schema() -> dict[str, tuple[set[str], set[str]]]:
    """measurement -> (fields, tags), from the lines the sink's lineproto writes for full messages (of a what-if
    run: the ``scenario`` tag too)."""
    w = "what-if"
    lines = [
        lineproto.plant_state_line("narvik", _full(PlantState, ts=1.8e9), w),
        lineproto.hall_state_line("narvik", _full(HallState, ts=1.8e9), w),
        *lineproto.forecast_lines("narvik", _full(Forecast, quantity="it_mw", issued_ts=1.8e9, model="m", skill=0.8,
                                                  points=[_full(ForecastPoint, ts=1.8e9 + 60)]), w),
        *lineproto.alarm_lines("narvik", _full(Alarm, ts=1.8e9, alarm_id="a", severity="warning", asset="h1-cdu01"),
                               w),
        lineproto.sink_stats_line("narvik", _full(SinkStats, ts=1.8e9), w),
    ]
    for domain, model in DOMAIN_MODELS.items():
        lines.append(lineproto.mirror_line("narvik", domain, "asset-1", "h1" if domain == "gpu" else None,
                                           _full(model, ts=1.8e9, seq=1, source="sim"), w))
    out: dict[str, tuple[set[str], set[str]]] = {}
    for ln in lines:
        p = lineproto.parse_line(ln)
        fields, tags = out.setdefault(p.measurement, (set(), set()))
        fields.update(p.fields)
        tags.update(p.tags)
    return out


SCHEMA = sink_schema()


def test_the_schema_covers_the_contract() -> None:
    assert {"plant_state", "hall_state", "forecast", "alarm", "raw_heat"} <= set(SCHEMA)
    assert {"facility_mw", "stale_count", "msgs_late", "alarms_active"} <= SCHEMA["plant_state"][0]
    assert {"energy_residual_max", "gpu_temp_excess_max_k", "coolant_supply_mean_c", "flow_lps"} <= \
        SCHEMA["hall_state"][0]
    assert SCHEMA["forecast"] == ({"mean", "p10", "p90", "issued_ts", "lead_s", "skill"},
                                  {"site", "quantity", "model", "scenario"})
    assert all("scenario" in tags for _, tags in SCHEMA.values())
    assert {"delivered_kw", "demand_kw", "heat_pump_kw"} <= SCHEMA["raw_heat"][0]


# ---------------------------------------------------------------- the queries, checked by name


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _custom_options(dash: dict[str, Any]) -> dict[str, list[str]]:
    return {v["name"]: [o["value"] for o in v["options"]] for v in dash["templating"]["list"] if v["type"] == "custom"}


def _expand(query: str, options: dict[str, list[str]]) -> list[str]:
    used = [n for n in options if "${" + n + "}" in query]
    out = []
    for combo in itertools.product(*(options[n] for n in used)):
        q = query
        for n, v in zip(used, combo, strict=True):
            q = q.replace("${" + n + "}", v)
        out.append(q)
    return out


_FROM = re.compile(r'\bFROM (?:"\$database"\.\.)?"([^"]+)"')
_SELECT = re.compile(r"^SELECT (.+?) FROM ")
_COND = re.compile(r'"(\w+)" (=|!=|=~|!~) (?:\'[^\']*\'|/(?:[^/\\]|\\.)*/|true|false)')


def check_query(q: str, *, live: bool = True) -> list[str]:
    """What is wrong with one (expanded) InfluxQL query against the sink's schema; [] when nothing."""
    measurements = _FROM.findall(q)
    if len(measurements) != 1:
        return [f"names {len(measurements)} measurements, expected one: {q!r}"]
    m = measurements[0]
    if m not in SCHEMA:
        return [f"measurement {m!r} is not written by the sink"]
    fields, tags = SCHEMA[m]
    problems = []
    sel = _SELECT.match(q)
    if not sel:
        return [f"not a SELECT: {q!r}"]
    for item in re.split(r",\s*(?![^()]*\))", sel.group(1)):
        if ' AS "' not in item:
            problems.append(f"select item {item!r} has no AS name")
        for name in re.findall(r'"([^"]+)"', item.split(' AS "')[0]):
            if name not in fields and name not in tags:
                problems.append(f"{name!r} is neither a field nor a tag of {m}")
    where = q.split(" WHERE ", 1)[1] if " WHERE " in q else ""
    if "\"site\" = '" not in where:
        problems.append("is not filtered by site")
    if live and influxql.LIVE not in where and "\"scenario\" = '" not in where:
        problems.append("reads live and what-if series together (no scenario condition)")
    for name, _ in _COND.findall(where.split(" GROUP BY ")[0]):
        if name not in tags and name not in fields:
            problems.append(f"condition on {name!r}, neither a tag nor a field of {m}")
        if name == "quantity":
            for value in re.findall(r"\"quantity\" = '([^']*)'", where):
                if value not in QUANTITIES:
                    problems.append(f"quantity {value!r} is not one the contract forecasts")
    _, by = influxql.columns(q)
    problems += [f"groups by {t!r}, not a tag of {m}" for t in by if t not in tags]
    if "$timeFilter" not in q and "now()" not in q:
        problems.append("has no time filter")
    return problems


def _queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(p["title"], t["query"]) for p in dash["panels"] for t in p["targets"]]
    return out + [(a["name"], a["target"]["query"]) for a in dash["annotations"]["list"] if "target" in a
                  and "query" in a["target"]]


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_query_names_only_what_the_sink_writes(path: Path) -> None:
    dash = _load(path)
    options = _custom_options(dash)
    problems = [f"{title}: {p}" for title, q in _queries(dash) for eq in _expand(q, options) for p in check_query(eq)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_wrong_names() -> None:
    good = ('SELECT mean("flow_lps") AS "flow_lps" FROM "$database".."hall_state" WHERE "site" = \'$site\' AND '
            '"scenario" = \'\' AND $timeFilter GROUP BY time($__interval), "hall" fill(none)')
    assert check_query(good) == []
    assert check_query(good.replace('("flow_lps")', '("flow_lpm")'))
    assert check_query(good.replace("hall_state", "halls"))
    assert check_query(good.replace('"hall" fill', '"cdu" fill'))
    assert check_query(good.replace('"site" =', '"plant" ='))
    assert check_query(good.replace(' AND "scenario" = \'\'', ""))
    assert check_query(good.replace(' AS "flow_lps"', ""))
    assert check_query(good.replace(" AND $timeFilter", ""))
    assert check_query(good.replace("$timeFilter", "$timeFilter AND \"quantity\" = 'pue'"))
    assert check_query(good.replace("$timeFilter", "$timeFilter AND \"model\" =~ /x/"))  # no model tag in hall_state


def test_model_filters_match_the_forecast_service() -> None:
    """Dashboards pick the main model as 'not a baseline' of a product: the names must be the engine's."""
    assert tuple(engine.PRODUCTS) == ("intraday", "day-ahead")
    assert tuple(m for m in engine.MODELS if m != "main") == influxql.BASELINE_MODELS
    assert set(FORECAST_WITH_ACTUAL) <= set(QUANTITIES)
    cond = influxql.main_model("intraday")
    for qn in QUANTITIES:
        for m in engine.MODELS:
            name = f"{engine.main_model(qn) if m == 'main' else m}-intraday"
            picked = all(bool(re.search(c.split("/")[1], name)) == ("=~" in c) for c in cond)
            assert picked == (m == "main"), (qn, name)


def test_the_variables_query_real_tags() -> None:
    all_tags = set().union(*(t for _, t in SCHEMA.values()))
    for path in DASHBOARDS:
        for v in _load(path)["templating"]["list"]:
            if v["type"] == "query":
                (tag,) = re.findall(r'WITH KEY = "([^"]+)"', v["query"])
                assert tag in all_tags and '"$database"' in v["query"], (path.name, v["name"])
            if v["name"] == "quantity":
                assert set(v["query"].split(",")) <= set(QUANTITIES)
        names = [v["name"] for v in _load(path)["templating"]["list"]]
        assert names[:2] == ["database", "site"], path.name


# ---------------------------------------------------------------- thresholds from the plant file


def _steps(dash: dict[str, Any], title: str) -> list[float | None]:
    panel = next(p for p in dash["panels"] if p["title"] == title)
    return [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]]


def test_thresholds_are_the_plant_files_alarms_and_contract() -> None:
    committed = {p.stem: _load(p) for p in DASHBOARDS}
    phase1 = load_plant("phase1")
    a = phase1.alarms
    assert _steps(committed["cooling"], "Coolant return, hottest CDU per hall") == [None, a.coolant_return_high_c]
    assert _steps(committed["cooling"], "Hottest GPU per hall") == [None, a.gpu_temp_high_c, phase1.gpu.throttle_c]
    assert _steps(committed["plant-overview"], "Headroom") == [None, a.headroom_low_mw, 0.1 * phase1.site.contract_mw]
    assert _steps(committed["hydro"], "Grid frequency per feeder") == [None, a.frequency_low_hz, a.frequency_high_hz]
    # another plant file, other steps: nothing is a constant of the generator
    other = phase1.model_copy(update={
        "alarms": a.model_copy(update={"coolant_return_high_c": 45.0, "headroom_low_mw": 12.0}),
        "site": phase1.site.model_copy(update={"contract_mw": 520.0})})
    boards = dashboards(other)
    assert _steps(boards["cooling"], "Coolant return, hottest CDU per hall") == [None, 45.0]
    assert _steps(boards["plant-overview"], "Headroom") == [None, 12.0, 52.0]
    rules = {r["uid"]: r for r in _alert_rules(other)}
    assert _threshold(rules["twin-headroom-low"]) == 12.0


# ---------------------------------------------------------------- Grafana's schema


def _lost(ours: Any, theirs: Any, path: str = "") -> list[str]:
    """What of ``ours`` Grafana's model dropped or changed on the way through (its defaults added are fine)."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{path}: not an object in the schema"]
        out = []
        for k, v in ours.items():
            out += [f"{path}/{k}: not in the schema"] if k not in theirs else _lost(v, theirs[k], f"{path}/{k}")
        return out
    if isinstance(ours, list):
        if not isinstance(theirs, list) or len(ours) != len(theirs):
            return [f"{path}: list changed"]
        return [p for i, (x, y) in enumerate(zip(ours, theirs, strict=True)) for p in _lost(x, y, f"{path}[{i}]")]
    return [] if ours == theirs else [f"{path}: {ours!r} became {theirs!r}"]


def _through_schema(dash: dict[str, Any]) -> dict[str, Any]:
    plugins.register_default_plugins()  # panel options and field config through each panel type's own model
    return json.loads(json.dumps(dashboard.Dashboard.from_json(dash), cls=JSONEncoder))  # type: ignore[no-any-return]


def _schema_problems(dash: dict[str, Any]) -> list[str]:
    # Grafana's schema keeps a data source's annotation query as the built-in data source's (its TODO): the
    # InfluxDB query and columns are checked by name above and run against InfluxDB in test_dashboards_influxql
    ours = json.loads(json.dumps(dash))
    for a in ours["annotations"]["list"]:
        for k in ("query", "textColumn", "tagsColumn", "titleColumn", "timeEndColumn", "target"):
            a.pop(k, None)
    return _lost(ours, _through_schema(ours))


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_grafanas_schema_keeps_every_dashboard_whole(path: Path) -> None:
    problems = _schema_problems(_load(path))
    assert not problems, "\n".join(problems)


def test_the_schema_check_catches_what_grafana_would_drop() -> None:
    dash = _load(DASHBOARDS[0])
    assert _schema_problems(dash) == []
    bad = json.loads(json.dumps(dash))
    bad["panels"][0]["gridpos"] = bad["panels"][0].pop("gridPos")  # a typo Grafana ignores silently
    assert any("gridpos" in p for p in _schema_problems(bad))
    bad = json.loads(json.dumps(dash))
    bad["panels"][0]["fieldConfig"]["defaults"]["threshold"] = {"steps": []}
    assert any("threshold" in p for p in _schema_problems(bad))
    bad = json.loads(json.dumps(dash))
    bad["time"]["start"] = "now-1h"
    assert any("start" in p for p in _schema_problems(bad))


def test_dashboards_are_well_formed_grafana_json() -> None:
    assert {p.stem for p in DASHBOARDS} == set(BOARDS)
    assert {"plant-overview", "alarms", "hydro", "cooling", "heat-reuse", "forecasts", "data-quality",
            "what-if"} == set(BOARDS)
    datasource_uid = _provisioned_datasource()["uid"]
    uids = set()
    for path in DASHBOARDS:
        dash = _load(path)
        assert isinstance(dash["schemaVersion"], int) and dash["title"] and dash["uid"], path.name
        assert len(dash["uid"]) <= 40 and dash["uid"] not in uids, path.name
        uids.add(dash["uid"])
        variables = {v["name"] for v in dash["templating"]["list"]}
        ids = set()
        cells: set[tuple[int, int]] = set()
        for p in dash["panels"]:
            where = f"{path.name}: {p.get('title')!r}"
            assert p["type"] in PANEL_TYPES, where
            assert isinstance(p["id"], int) and p["id"] not in ids, where
            ids.add(p["id"])
            g = p["gridPos"]
            assert all(isinstance(g[k], int) and g[k] >= 0 for k in "hwxy") and g["x"] + g["w"] <= 24, where
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, f"{where} overlaps another panel"
            cells |= mine
            assert p["datasource"]["uid"] == datasource_uid, where
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(set(refs)) == len(refs), where
            for t in p["targets"]:
                assert t["datasource"]["uid"] == datasource_uid and t["query"].strip() and t["rawQuery"], where
                for var in re.findall(r"\$\{?(\w+)", t["query"] + " " + p["title"]):
                    assert var in variables or var in GRAFANA_BUILTINS, f"{where}: ${var} is not defined"
            for o in p["fieldConfig"]["overrides"]:  # an override names a series a target returns
                names = {n for t in p["targets"] for n in influxql.columns(t["query"])[0]}
                by_tag = any("$tag_" in t["alias"] for t in p["targets"])  # series named by a tag's values
                if o["matcher"]["id"] == "byName" and p["type"] != "table" and not by_tag:
                    assert o["matcher"]["options"] in names, f"{where}: override of {o['matcher']['options']!r}"


def test_committed_files_are_what_the_generator_makes() -> None:
    r = subprocess.run([sys.executable, str(REPO / "deploy" / "grafana" / "build.py"), "--check"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def test_the_generator_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    build = [sys.executable, str(REPO / "deploy" / "grafana" / "build.py"), "--out", str(tmp_path)]
    assert subprocess.run(build, capture_output=True, timeout=60, check=False).returncode == 0
    assert subprocess.run([*build, "--check"], capture_output=True, timeout=60, check=False).returncode == 0
    (tmp_path / "grafana" / "dashboards" / "cooling.json").write_text("{}\n")
    r = subprocess.run([*build, "--check"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cooling.json" in r.stderr, r.stderr
    r = subprocess.run([*build, "--plant", "no-such-plant"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr


# ---------------------------------------------------------------- alert rules


def _alert_rules(plant: Any = None) -> list[dict[str, Any]]:
    if plant is None:
        doc = yaml.safe_load(ALERTS.read_text())
    else:
        from twin.dashboards.alerts import alert_document

        doc = alert_document(plant)
    return [r for g in doc["groups"] for r in g["rules"]]


def _threshold(rule: dict[str, Any]) -> float:
    c = next(d for d in rule["data"] if d["refId"] == rule["condition"])
    return float(c["model"]["conditions"][0]["evaluator"]["params"][0])


def test_alert_rules_are_grafana_provisioning() -> None:
    doc = yaml.safe_load(ALERTS.read_text())
    assert doc["apiVersion"] == 1
    (group,) = doc["groups"]
    assert {"orgId", "name", "folder", "interval", "rules"} <= set(group)
    uids = [r["uid"] for r in group["rules"]]
    assert len(set(uids)) == len(uids) and all(len(u) <= 40 for u in uids)
    assert {"twin-headroom-low", "twin-gpu-throttle", "twin-flow-low", "twin-sink-spool-full",
            "twin-headroom-forecast-breach"} == set(uids)
    datasource_uid = _provisioned_datasource()["uid"]
    plugins.register_default_plugins()
    for r in group["rules"]:
        assert {"uid", "title", "condition", "data", "for", "noDataState", "execErrState", "labels"} <= set(r)
        assert r["labels"]["severity"] in ("critical", "warning") and r["annotations"]["summary"], r["uid"]
        refs = [d["refId"] for d in r["data"]]
        assert r["condition"] in refs, r["uid"]
        for d in r["data"]:
            # each query through Grafana's alerting model (and the expressions through their own) unchanged
            q = alerting.Query.from_json(d)
            assert _lost(d, json.loads(json.dumps(q, cls=JSONEncoder))) == [], r["uid"]
            if d["datasourceUid"] == "__expr__":
                kind = {"reduce": expr.TypeReduce, "threshold": expr.TypeThreshold}[d["model"]["type"]]
                assert d["model"]["expression"] in refs
                model = kind.from_json(d["model"])
                assert _lost(d["model"], json.loads(json.dumps(model, cls=JSONEncoder))) == [], r["uid"]
            else:
                assert d["datasourceUid"] == datasource_uid
                assert check_query(d["model"]["query"]) == [], r["uid"]


def test_alert_thresholds_are_the_plant_files() -> None:
    phase1 = load_plant("phase1")
    rules = {r["uid"]: r for r in _alert_rules()}
    assert _threshold(rules["twin-headroom-low"]) == phase1.alarms.headroom_low_mw
    assert _threshold(rules["twin-headroom-forecast-breach"]) == phase1.alarms.headroom_low_mw
    assert _threshold(rules["twin-gpu-throttle"]) == phase1.gpu.throttle_c
    a = phase1.alarms
    assert a.flow_low_fraction < _threshold(rules["twin-flow-low"]) < a.flow_clear_fraction


# ---------------------------------------------------------------- provisioning and the compose mounts


def _compose_grafana() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["grafana"]  # type: ignore[no-any-return]


def _mounts() -> dict[str, str]:
    """container path -> host source (repo-relative, or the named volume)."""
    out = {}
    for v in _compose_grafana()["volumes"]:
        src, dst = v.split(":")[:2]
        out[dst] = src
    return out


def _host_path(container_path: str) -> Path | str:
    """A path in the Grafana container as a repo path (or 'volume:NAME' for a named volume)."""
    for dst, src in sorted(_mounts().items(), key=lambda kv: -len(kv[0])):
        if container_path == dst or container_path.startswith(dst.rstrip("/") + "/"):
            rest = container_path[len(dst):].lstrip("/")
            if src.startswith("./"):
                return REPO / src[2:] / rest
            return f"volume:{src}"
    raise AssertionError(f"{container_path} is not mounted into the grafana container")


def _provisioned_datasource() -> dict[str, Any]:
    doc = yaml.safe_load((PROV_DIR / "datasources" / "influxdb.yaml").read_text())
    (ds,) = doc["datasources"]
    return ds  # type: ignore[no-any-return]


def test_provisioning_names_existing_paths() -> None:
    assert _host_path("/etc/grafana/provisioning") == PROV_DIR
    doc = yaml.safe_load((PROV_DIR / "dashboards" / "twin.yaml").read_text())
    for provider in doc["providers"]:
        host = _host_path(provider["options"]["path"])
        assert isinstance(host, Path) and host.is_dir() and sorted(host.glob("*.json")) == DASHBOARDS
    home = _compose_grafana()["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert isinstance(_host_path(home), Path) and Path(_host_path(home)).is_file()
    ds = _provisioned_datasource()
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    assert ds["jsonData"]["httpHeaderName1"] == "Authorization"
    token_file = re.fullmatch(r"Token \$__file\{(.+)\}", ds["secureJsonData"]["httpHeaderValue1"])
    assert token_file, "the token comes from a file, never from the repo"
    assert _host_path(token_file.group(1)) == "volume:influx-tokens"
    tokens_sh = (REPO / "deploy" / "influxdb" / "tokens.sh").read_text()
    assert Path(token_file.group(1)).name in tokens_sh and "--read-bucket" in tokens_sh
    assert sorted(p.name for p in (PROV_DIR / "alerting").iterdir()) == ["twin.yaml"]
    env = _compose_grafana()["environment"]
    for var in re.findall(r"\$(\w+)", json.dumps(ds["jsonData"])):
        assert var in env, f"the data source uses ${var}, not set in grafana's environment"


def test_raw_telemetry_panels_have_the_mirror_on() -> None:
    uses_raw = any("raw_" in q for path in DASHBOARDS for _, q in _queries(_load(path)))
    sink_env = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["sink"]["environment"]
    default = re.fullmatch(r"\$\{TWIN_SINK_MIRROR_S:-(\d+)\}", str(sink_env["TWIN_SINK_MIRROR_S"]))
    assert uses_raw and default and int(default.group(1)) > 0
