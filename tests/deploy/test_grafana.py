"""The Grafana dashboards and provisioning: every Flux query names only measurements, fields and tags the
sink writes (taken from ``twin.lineproto`` applied to the contract models), every dashboard is well-formed
Grafana JSON, the committed files are what ``deploy/grafana/build.py`` generates, and the provisioning
files name paths that exist in the containers (mounted from the repo by docker-compose.yml)."""

from __future__ import annotations

import importlib.util
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
from twin.forecast import engine

REPO = Path(__file__).resolve().parents[2]
DASH_DIR = REPO / "grafana" / "dashboards"
PROV_DIR = REPO / "grafana" / "provisioning"
DASHBOARDS = sorted(DASH_DIR.glob("*.json"))
PANEL_TYPES = {"timeseries", "stat", "table", "gauge", "bargauge", "text", "state-timeline"}
GRAFANA_BUILTINS = {"__interval", "__interval_ms", "__range", "__from", "__to", "__name"}


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
    """measurement -> (fields, tags), from the lines the sink's lineproto writes for full messages."""
    lines = [
        lineproto.plant_state_line("narvik", _full(PlantState, ts=1.8e9)),
        lineproto.hall_state_line("narvik", _full(HallState, ts=1.8e9)),
        *lineproto.forecast_lines("narvik", _full(Forecast, quantity="it_mw", issued_ts=1.8e9, model="m", skill=0.8,
                                                  points=[_full(ForecastPoint, ts=1.8e9 + 60)])),
        *lineproto.alarm_lines("narvik", _full(Alarm, ts=1.8e9, alarm_id="a", severity="warning", asset="h1-cdu01")),
        lineproto.sink_stats_line("narvik", _full(SinkStats, ts=1.8e9)),
    ]
    for domain, model in DOMAIN_MODELS.items():
        lines.append(lineproto.mirror_line("narvik", domain, "asset-1", "h1" if domain == "gpu" else None,
                                           _full(model, ts=1.8e9, seq=1, source="sim")))
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
                                  {"site", "quantity", "model"})
    assert {"delivered_kw", "demand_kw", "heat_pump_kw"} <= SCHEMA["raw_heat"][0]


# ---------------------------------------------------------------- the dashboards' queries


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


_LIST = r"\[([^\]]*)\]"


def check_query(q: str) -> list[str]:
    """What is wrong with one (expanded) Flux query against the sink's schema; [] when nothing."""
    problems = []
    measurements = re.findall(r'r\._measurement == "([^"]+)"', q)
    if len(measurements) != 1:
        return [f"names {len(measurements)} measurements, expected one: {q!r}"]
    m = measurements[0]
    if m not in SCHEMA:
        return [f"measurement {m!r} is not written by the sink"]
    fields, tags = SCHEMA[m]
    if not q.startswith('from(bucket: "${bucket}")'):
        problems.append("does not read from the dashboard's bucket")
    if 'r.site == "${site}"' not in q:
        problems.append("is not filtered by the site variable")
    for f in re.findall(r'r\._field == "([^"]+)"', q):
        if f not in fields:
            problems.append(f"field {f!r} is not in {m}")
    for name, value in re.findall(r'\br\.([A-Za-z][A-Za-z0-9_]*) == "([^"]*)"', q):
        if name not in tags:
            problems.append(f"tag {name!r} is not in {m}")
        if name == "quantity" and value not in QUANTITIES:
            problems.append(f"quantity {value!r} is not one the contract forecasts")
    for name, _ in re.findall(r"\br\.([A-Za-z][A-Za-z0-9_]*) (=~|!~) /", q):
        if name not in tags:
            problems.append(f"tag {name!r} (matched by a regex) is not in {m}")
    if re.search(r"\br\.([A-Za-z][A-Za-z0-9_]*)\b(?! (==|=~|!~))", q.replace("r._", "")):
        problems.append("refers to a column of r other than in an equality")
    for fn, arg in re.findall(r"\b(keep|group|sort|pivot)\(([^)]*)\)", q):
        for names in re.findall(_LIST, arg):
            for col in re.findall(r'"([^"]+)"', names):
                if not (col.startswith("_") or col in tags or col in fields):
                    problems.append(f"{fn}() names column {col!r}, neither a tag nor a field of {m}")
    return problems


def _build_module() -> Any:
    spec = importlib.util.spec_from_file_location("grafana_build", REPO / "deploy" / "grafana" / "build.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_model_filters_match_the_forecast_service() -> None:
    """Dashboards pick the main model as 'not a baseline' of a product: the names must be the engine's."""
    build = _build_module()
    assert tuple(build.PRODUCTS) == tuple(engine.PRODUCTS)
    assert tuple(build.BASELINES) == tuple(m for m in engine.MODELS if m != "main")
    main = build.main_model("intraday")
    for qn in QUANTITIES:
        for m in engine.MODELS:
            name = f"{engine.main_model(qn) if m == 'main' else m}-intraday"
            picked = re.search(r"/-intraday\$/", main) and not re.match(r"^(" + "|".join(build.BASELINES) + ")-", name)
            assert bool(picked) == (m == "main"), (qn, name)


def _queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["query"]) for p in dash["panels"] for t in p["targets"]]


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_query_names_only_what_the_sink_writes(path: Path) -> None:
    dash = _load(path)
    options = _custom_options(dash)
    problems = [f"{title}: {p}" for title, q in _queries(dash) for eq in _expand(q, options) for p in check_query(eq)]
    assert not problems, "\n".join(problems)


def test_the_checker_catches_wrong_names() -> None:
    good = ('from(bucket: "${bucket}")\n  |> filter(fn: (r) => r._measurement == "hall_state" and r.site == "${site}")'
            '\n  |> filter(fn: (r) => r._field == "flow_lps")\n  |> keep(columns: ["_time", "_value", "hall"])')
    assert check_query(good) == []
    assert check_query(good.replace("flow_lps", "flow_lpm"))
    assert check_query(good.replace("hall_state", "halls"))
    assert check_query(good.replace('"hall"]', '"cdu"]'))
    assert check_query(good.replace("r.site ==", "r.plant =="))
    assert check_query(good + '\n  |> filter(fn: (r) => r.quantity == "pue")')
    assert check_query(good + "\n  |> filter(fn: (r) => r.model =~ /x/)")  # no model tag in hall_state


def test_the_variables_query_real_tags() -> None:
    all_tags = set().union(*(t for _, t in SCHEMA.values()))
    for path in DASHBOARDS:
        for v in _load(path)["templating"]["list"]:
            if v["type"] == "query":
                for tag in re.findall(r'tag: "([^"]+)"', v["query"]):
                    assert tag in all_tags, (path.name, v["name"], tag)
            if v["name"] == "quantity":
                assert set(v["query"].split(",")) <= set(QUANTITIES)


# ---------------------------------------------------------------- Grafana JSON


def test_dashboards_are_well_formed_grafana_json() -> None:
    assert {p.stem for p in DASHBOARDS} == {"plant-overview", "cooling", "heat-reuse", "forecasts", "data-quality"}
    datasource_uid = _provisioned_datasource()["uid"]
    uids = set()
    for path in DASHBOARDS:
        dash = _load(path)
        assert isinstance(dash["schemaVersion"], int) and dash["title"] and dash["uid"], path.name
        assert len(dash["uid"]) <= 40 and dash["uid"] not in uids, path.name
        uids.add(dash["uid"])
        variables = {v["name"] for v in dash["templating"]["list"]}
        ids = set()
        for p in dash["panels"]:
            where = f"{path.name}: {p.get('title')!r}"
            assert p["type"] in PANEL_TYPES, where
            assert isinstance(p["id"], int) and p["id"] not in ids, where
            ids.add(p["id"])
            g = p["gridPos"]
            assert all(isinstance(g[k], int) and g[k] >= 0 for k in "hwxy") and g["x"] + g["w"] <= 24, where
            assert p["datasource"]["uid"] == datasource_uid, where
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(set(refs)) == len(refs), where
            for t in p["targets"]:
                assert t["datasource"]["uid"] == datasource_uid and t["query"].strip(), where
                for var in re.findall(r"\$\{(\w+)", t["query"] + p["title"]):
                    assert var in variables or var in GRAFANA_BUILTINS, f"{where}: ${{{var}}} is not defined"


def test_committed_dashboards_are_what_the_generator_makes() -> None:
    r = subprocess.run([sys.executable, str(REPO / "deploy" / "grafana" / "build.py"), "--check"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


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
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "Flux"
    token_file = re.fullmatch(r"\$__file\{(.+)\}", ds["secureJsonData"]["token"])
    assert token_file, "the token comes from a file, never from the repo"
    assert _host_path(token_file.group(1)) == "volume:influx-tokens"
    tokens_sh = (REPO / "deploy" / "influxdb" / "tokens.sh").read_text()
    assert Path(token_file.group(1)).name in tokens_sh and "--read-bucket" in tokens_sh
    env = _compose_grafana()["environment"]
    for var in re.findall(r"\$(\w+)", json.dumps(ds["jsonData"])):
        assert var in env, f"the data source uses ${var}, not set in grafana's environment"


def test_raw_telemetry_panels_have_the_mirror_on() -> None:
    uses_raw = any("raw_" in q for path in DASHBOARDS for _, q in _queries(_load(path)))
    sink_env = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["sink"]["environment"]
    default = re.fullmatch(r"\$\{TWIN_SINK_MIRROR_S:-(\d+)\}", str(sink_env["TWIN_SINK_MIRROR_S"]))
    assert uses_raw and default and int(default.group(1)) > 0
