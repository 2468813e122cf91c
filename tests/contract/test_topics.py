"""Every topic lives in twin/topics.py: the builders match their channel, and no module builds one by hand."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from paho.mqtt.client import topic_matches_sub

from twin import contract
from twin.asyncapi import asyncapi_document
from twin.topics import CHANNELS, Topics, channel, is_twin_output, parse_telemetry_topic

REPO = Path(__file__).resolve().parents[2]
T = Topics("narvik")

BUILT = [
    ("hydro", T.hydro("f1")), ("gpu", T.gpu("h1", "h1-r001")), ("coolant", T.coolant("cdu-01")),
    ("heat", T.heat("hx1")), ("ambient", T.ambient("wx1")), ("plantState", T.state),
    ("hallState", T.hall_state("h1")), ("forecast", T.forecast("facility_mw")), ("alarm", T.alarm("a-1")),
    ("worker", T.worker("w1")), ("deadletter", T.deadletter), ("health", T.health("state")),
    ("adapterStatus", T.adapter_status("adapter-dcgm")), ("sinkStats", T.sink_stats),
]


def test_every_channel_has_a_builder_and_each_builds_an_address_of_its_channel() -> None:
    assert {cid for cid, _ in BUILT} == {c.id for c in CHANNELS}
    for cid, topic in BUILT:
        assert topic_matches_sub(channel(cid).filter_for("narvik"), topic), (cid, topic)
        others = [c.id for c in CHANNELS if c.id != cid and topic_matches_sub(c.filter_for("narvik"), topic)]
        assert others == [], (cid, topic, others)


def test_hand_checked_addresses() -> None:
    assert T.gpu("h2", "h2-r017") == "stargate/narvik/gpu/h2/h2-r017"
    assert T.adapter_status("adapter-cdu") == "stargate/narvik/twin/health/adapter-cdu/status"
    assert T.filter("hallState") == "stargate/narvik/twin/state/+"
    assert T.filter("gpu") == "stargate/narvik/gpu/+/+"
    assert T.telemetry_filters[1] == "stargate/narvik/gpu/#"


def test_telemetry_builders_parse_back() -> None:
    parsed = parse_telemetry_topic(T.gpu("h1", "h1-r001"))
    assert not isinstance(parsed, str)
    assert (parsed.site, parsed.domain, parsed.hall, parsed.asset) == ("narvik", "gpu", "h1", "h1-r001")
    for cid, topic in BUILT:
        assert is_twin_output(topic) == (channel(cid).direction == "send"), topic


def test_every_channel_payload_is_a_contract_model_and_in_the_asyncapi_document() -> None:
    doc = asyncapi_document()
    assert set(doc["channels"]) == {c.id for c in CHANNELS}
    for c in CHANNELS:
        assert doc["channels"][c.id]["address"] == c.address
        if c.payload != "text":
            assert hasattr(contract, c.payload), c.payload
            assert c.payload in doc["components"]["schemas"]


def _hand_built_topics(path: Path) -> list[str]:
    """String literals and f-strings, outside docstrings, that start a ``stargate/`` topic."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            text = str(node.values[0].value)
        else:
            continue
        if text.startswith("stargate/") and "{site}" not in text and " " not in text:
            out.append(f"{path.relative_to(REPO)}:{node.lineno}: {text}")
    return out


@pytest.mark.parametrize("package", ["twin", "adapters", "sims"])
def test_no_module_builds_a_topic_by_hand(package: str) -> None:
    found = [hit for p in sorted((REPO / package).rglob("*.py")) if p.name != "topics.py"
             for hit in _hand_built_topics(p)]
    assert found == [], "build topics with twin.topics.Topics:\n" + "\n".join(found)
