"""Every dashboard panel's, annotation's, variable's and alert rule's InfluxQL, run against a real InfluxDB 1.x.

The data is the twin's own: ``twin up`` (simulators, state service, forecast service and the sink, the raw
telemetry mirror on) runs a plant faster than real time for about an hour of plant time and writes line
protocol files, exactly what it would write to InfluxDB; a second run, the what-if, writes its lines tagged
``scenario=expansion-520`` (``--scenario-tag``). Both are POSTed to ``influxd``'s ``/write``. Each query is
expanded as Grafana does (``tests/deploy/grafana_macros.py``) over the data's time range, and every column it
names (``AS``) and every tag it groups by must be there with a value.

The plants are phase 1's design, smaller (two halls of 12 racks, so that an hour takes seconds), with a contract
of 6 MW so that the headroom alarm (critical) raises and its forecast breaches, and a coolant return limit of
35 C so that warnings raise; the dashboards themselves are generated from the phase 1 plant file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.grafana_macros import expand
from tests.servers import InfluxDB1Server, env_with_venv
from twin.dashboards.influxql import columns
from twin.plant import load_plant

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DB = "twin"
SCENARIO = "expansion-520"
PHASE1 = load_plant("phase1")
#: the committed boards (tests/deploy/test_grafana.py checks they are what the generator makes of phase 1)
BOARDS = {p.stem: json.loads(p.read_text()) for p in sorted((REPO / "grafana" / "dashboards").glob("*.json"))}
ALERTS = yaml.safe_load((REPO / "grafana" / "provisioning" / "alerting" / "twin.yaml").read_text())
RULES = [r for g in ALERTS["groups"] for r in g["rules"]]


def small_plant(source: str, contract_mw: float) -> str:
    """A plant file's text with two halls of 12 racks, the given contract and a low coolant-return limit."""
    text = (REPO / "twin" / "plants" / f"{source}.toml").read_text()
    head = text.split("[[halls]]")[0]
    head = re.sub(r"(?m)^contract_mw = .*$", f"contract_mw = {contract_mw}", head, count=1)
    head = re.sub(r"(?m)^scenario = .*\n", "", head)  # the what-if's tag comes from --scenario-tag here
    head = head.replace("coolant_return_high_c = 50.0", "coolant_return_high_c = 35.0\ncoolant_return_clear_c = 33.0")
    head = head.replace("flow_low_fraction = 0.5", "flow_low_fraction = 1.0\nflow_clear_fraction = 1.0")
    return head + '[[halls]]\nid = "h1"\nracks = 12\n\n[[halls]]\nid = "h2"\nracks = 12\n'


def twin_up(workdir: Path, plant_text: str, plant_time: str, *extra: str) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True)
    (workdir / "plant.toml").write_text(plant_text)
    env = env_with_venv() | {"TWIN_SINK_MIRROR_S": "10", "TWIN_SINK_STATS_S": "2"}
    for k in ("TWIN_INFLUX_URL", "TWIN_PLANT", "TWIN_SCENARIO_TAG"):
        env.pop(k, None)
    argv = [sys.executable, "-m", "twin.cli", "up", "--plant", str(workdir / "plant.toml"), "--speed", "1000",
            "--plant-time", plant_time, "--tick", "5", "--rack-every", "10", "--no-view", "--no-snapshot",
            "--data-dir", str(workdir / "data"), *extra]
    return subprocess.Popen(argv, env=env, stdout=open(workdir / "up.log", "wb"), stderr=subprocess.STDOUT)


class Data:
    def __init__(self, server: InfluxDB1Server, lines: list[str]) -> None:
        self.server = server
        #: the latest time of each measurement, ms (forecasts reach a day ahead; sink_stats is at the wall clock)
        self.latest_ms: dict[str, int] = {}
        for ln in lines:
            m, t = ln.split(",", 1)[0], int(ln.rsplit(" ", 1)[1]) // 1_000_000
            self.latest_ms[m] = max(self.latest_ms.get(m, t), t)
        self.first_ms = min(int(ln.rsplit(" ", 1)[1]) // 1_000_000 for ln in lines)
        self.last_ms, self.last_state_ms = max(self.latest_ms.values()), self.latest_ms["plant_state"]
        self.first_state_ms = min(int(ln.rsplit(" ", 1)[1]) // 1_000_000 for ln in lines
                                  if ln.startswith("plant_state,site="))
        self.variables = {"database": DB, "site": PHASE1.site.id, "scenario": SCENARIO}

    def run(self, query: str) -> list[dict[str, Any]]:
        answer = self.server.query(query, db=DB)
        (result,) = answer["results"]  # type: ignore[misc]
        return result.get("series", [])  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Data]:
    work = tmp_path_factory.mktemp("dashboards")
    live = twin_up(work / "live", small_plant("phase1", 6.0), "1h")
    what_if = twin_up(work / "what-if", small_plant("expansion-520", 14.0), "20m", "--scenario-tag", SCENARIO)
    for name, proc in (("live", live), ("what-if", what_if)):
        rc = proc.wait(timeout=600)  # a hang guard, not a timing check
        assert rc == 0, (work / name / "up.log").read_text()[-3000:]
    server = InfluxDB1Server(work / "influxdb").start()
    try:
        server.query(f'CREATE DATABASE "{DB}"')
        lines: list[str] = []
        for f in sorted(work.glob("*/data/lines/*.lp")):
            body = f.read_bytes()
            server.write(DB, body)
            lines += body.decode().splitlines()
        yield Data(server, lines)
    finally:
        server.kill()


def _missing(series: list[dict[str, Any]], cols: list[str], tags: list[str]) -> list[str]:
    """What a panel would miss in a result: a column with no value in any series, a grouped tag without values."""
    if not series:
        return ["no series at all"]
    out = []
    for c in cols:
        if not any(c in s["columns"] and any(row[s["columns"].index(c)] is not None for row in s["values"])
                   for s in series):
            out.append(f"column {c!r} is missing or empty")
    for t in tags:
        if not all(s.get("tags", {}).get(t) for s in series):
            out.append(f"tag {t!r} has no value in every series")
    return out


def _custom(dash: dict[str, Any]) -> dict[str, list[str]]:
    return {v["name"]: [o["value"] for o in v["options"]] for v in dash["templating"]["list"] if v["type"] == "custom"}


def _combinations(dash: dict[str, Any], base: dict[str, str]) -> list[dict[str, str]]:
    out = [dict(base)]
    for name, values in _custom(dash).items():
        out = [{**v, name: value} for v in out for value in values]
    return out


def _range(data: Data, panel: dict[str, Any]) -> tuple[int, int]:
    """The range a panel queries: the data's, or the panel's own relative time (``timeFrom``) back from its end."""
    if "timeFrom" in panel:
        days = int(panel["timeFrom"].rstrip("d"))
        return data.last_ms - days * 86_400_000, data.last_ms
    return data.first_ms, data.last_ms


def problems_of(data: Data, query: str, variables: dict[str, str], span: tuple[int, int]) -> list[str]:
    q = expand(query, variables, *span)
    try:
        series = data.run(q)
    except RuntimeError as e:
        return [str(e)]
    cols, tags = columns(q)
    return [f"{p}: {q}" for p in _missing(series, cols, tags)]


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_every_panel_query_returns_what_the_panel_reads(data: Data, board: str) -> None:
    dash = BOARDS[board]
    problems = []
    for panel in dash["panels"]:
        for variables in _combinations(dash, data.variables):
            for t in panel["targets"]:
                problems += [f"{panel['title']} ({t['refId']}, {variables}): {p}"
                             for p in problems_of(data, t["query"], variables, _range(data, panel))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("board", sorted(b for b in BOARDS if len(BOARDS[b]["annotations"]["list"]) > 1))
def test_annotation_queries_return_their_text_and_tags(data: Data, board: str) -> None:
    problems = []
    for a in BOARDS[board]["annotations"]["list"]:
        if "target" not in a or a["name"].startswith("info"):
            continue  # Grafana's built-in; the twin raises no info alarms
        t = a["target"]
        q = expand(t["query"], data.variables, data.first_ms, data.last_ms)
        series = data.run(q)
        want = [t["textColumn"], *t["tagsColumn"].split(",")]
        problems += [f"{a['name']}: {p}" for p in _missing(series, want, [])]
    assert not problems, "\n".join(problems)


def test_the_template_variables_list_the_site_and_the_scenario(data: Data) -> None:
    seen: dict[str, set[str]] = {}
    for dash in BOARDS.values():
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                series = data.run(expand(v["query"], data.variables, data.first_ms, data.last_ms))
                seen.setdefault(v["name"], set()).update(row[1] for s in series for row in s["values"])
    assert seen == {"site": {PHASE1.site.id}, "scenario": {SCENARIO}}


def _rule_series(data: Data, rule: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Rule query A over its relative range, counted back from the latest point of the measurement it reads (the
    simulator ran ahead of the wall clock: as if evaluated right after the data came); ``now()`` stays InfluxDB's."""
    a = next(d for d in rule["data"] if d["refId"] == "A")
    span = a["relativeTimeRange"]
    measurement = re.search(r'FROM "([^"]+)"', a["model"]["query"])
    assert measurement, a["model"]["query"]
    end = data.latest_ms[measurement.group(1)] - span["to"] * 1000
    q = expand(a["model"]["query"], {}, end - span["from"] * 1000, end, a["model"]["maxDataPoints"])
    return q, data.run(q)


def _fires(rule: dict[str, Any], series: list[dict[str, Any]]) -> bool:
    """Grafana's reduce (B) over each series, then the threshold (C): does any series fire?"""
    reduce = next(d["model"] for d in rule["data"] if d["refId"] == "B")
    threshold = next(d["model"] for d in rule["data"] if d["refId"] == "C")
    ev = threshold["conditions"][0]["evaluator"]
    fn = {"min": min, "max": max, "last": lambda v: v[-1], "mean": lambda v: sum(v) / len(v)}[reduce["reducer"]]
    fired = []
    for s in series:
        values = [row[1] for row in s["values"] if row[1] is not None]
        if values:
            x = fn(values)
            fired.append(x < ev["params"][0] if ev["type"] == "lt" else x > ev["params"][0])
    return any(fired)


def test_every_alert_rule_query_runs_and_returns_its_column(data: Data) -> None:
    problems = []
    for rule in RULES:
        q, series = _rule_series(data, rule)
        cols, tags = columns(q)
        problems += [f"{rule['uid']}: {p}: {q}" for p in _missing(series, cols, tags)]
    assert not problems, "\n".join(problems)


def test_alert_rules_fire_as_the_plant_does(data: Data) -> None:
    """The test plant's 6 MW contract leaves less headroom than phase 1's 5 MW alarm: the headroom rule and its
    day-ahead breach fire; no GPU reaches its throttling temperature and the sink's spool stays empty."""
    fired = {r["uid"]: _fires(r, _rule_series(data, r)[1]) for r in RULES}
    assert fired["twin-headroom-low"] and fired["twin-headroom-forecast-breach"], fired
    assert not fired["twin-gpu-throttle"] and not fired["twin-sink-spool-full"], fired


def test_the_what_if_series_are_apart_from_the_live_ones(data: Data) -> None:
    def contract(scenario: str) -> set[float]:
        q = (f'SELECT "contract_mw" FROM "plant_state" WHERE "site" = \'{PHASE1.site.id}\' AND '
             f"\"scenario\" = '{scenario}' AND time >= {data.first_ms}ms")
        return {row[1] for s in data.run(q) for row in s["values"]}

    assert contract("") == {6.0}
    assert contract(SCENARIO) == {14.0}
    tagged = data.run(f'SHOW SERIES FROM "plant_state" WHERE "scenario" = \'{SCENARIO}\'')
    assert [row[0] for s in tagged for row in s["values"]] == [f"plant_state,scenario={SCENARIO},site=narvik"]


def test_a_query_naming_a_missing_field_or_tag_is_caught(data: Data) -> None:
    """The check fails a panel whose field is not written, whose tag does not exist, or whose query is invalid."""
    panel = next(p for p in BOARDS["cooling"]["panels"] if p["title"] == "Loop flow per hall")
    q = panel["targets"][0]["query"]
    span = (data.first_ms, data.last_ms)
    assert problems_of(data, q, data.variables, span) == []
    assert problems_of(data, q.replace('"flow_lps")', '"flow_lpm")'), data.variables, span)
    assert problems_of(data, q.replace('"hall"', '"cdu"'), data.variables, span)
    assert problems_of(data, q.replace("hall_state", "halls"), data.variables, span)
    assert problems_of(data, q.replace("GROUP BY", "GROUP"), data.variables, span)
    assert problems_of(data, q, data.variables | {"site": "elsewhere"}, span)


def test_the_data_is_an_hour_of_plant_time(data: Data) -> None:
    """``twin up --plant-time 1h``: the live run's states span the hour (to the last tick window or two)."""
    assert 3600_000 - 30_000 <= data.last_state_ms - data.first_state_ms <= 3600_000


def test_the_macros_expand_as_grafana_does() -> None:
    q = ("SELECT last(\"mean\") AS \"${scenario}\" FROM \"$database\"..\"forecast\" WHERE \"site\" =~ /^$site$/ AND "
         "\"model\" =~ /-${product}$/ AND $timeFilter GROUP BY time($__interval) fill(none) "
         "-- $interval $__interval_ms")
    out = expand(q, {"database": "twin", "site": "narvik", "product": "day-ahead", "scenario": "x"}, 0, 3_600_000)
    assert out == ("SELECT last(\"mean\") AS \"x\" FROM \"twin\"..\"forecast\" WHERE \"site\" =~ /^narvik$/ AND "
                   "\"model\" =~ /-day\\-ahead$/ AND time >= 0ms and time <= 3600000ms GROUP BY time(5s) fill(none) "
                   "-- 5s 5000")
    with pytest.raises(KeyError):
        expand("SELECT 1 AS \"a\" FROM \"m\" WHERE \"hall\" = '$hall'", {}, 0, 1)
