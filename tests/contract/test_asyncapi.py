"""The committed AsyncAPI document is what the models generate, and it is well formed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from twin.asyncapi import asyncapi_document, asyncapi_yaml
from twin.contract import QUANTITIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_document_is_current() -> None:
    assert DOC.read_text(encoding="utf-8") == asyncapi_yaml(), (
        "docs/asyncapi.yaml is stale: run `twin asyncapi --out docs/asyncapi.yaml` and commit it"
    )


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if "$ref" in node else []
        for v in node.values():
            out += _refs(v)
        return out
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_document_is_asyncapi_3_with_every_topic() -> None:
    doc = yaml.safe_load(DOC.read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {
        "stargate/{site}/hydro/{feeder}", "stargate/{site}/gpu/{hall}/{rack}", "stargate/{site}/coolant/{cdu}",
        "stargate/{site}/heat/{exchanger}", "stargate/{site}/ambient/{station}", "stargate/{site}/twin/state",
        "stargate/{site}/twin/state/{hall}", "stargate/{site}/twin/forecast/{quantity}",
        "stargate/{site}/twin/alarm/{alarm_id}", "stargate/{site}/twin/deadletter",
        "stargate/{site}/twin/health/{service}", "stargate/{site}/twin/worker/{worker}",
        "stargate/{site}/twin/health/{service}/status", "stargate/{site}/twin/sink",
    }
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None
    # every {param} of an address is declared
    for ch in doc["channels"].values():
        params = {p.split("}")[0] for p in ch["address"].split("{")[1:]}
        assert params == set(ch["parameters"])
    assert doc["channels"]["forecast"]["parameters"]["quantity"]["enum"] == list(QUANTITIES)


def test_qos_and_retain_follow_the_contract() -> None:
    ops = asyncapi_document()["operations"]
    retained = {k: v["bindings"]["mqtt"]["retain"] for k, v in ops.items()}
    assert retained["sendPlantState"] and retained["sendAlarm"] and retained["sendHealth"]
    assert not retained["receiveGpu"] and not retained["sendDeadletter"]
    assert all(v["bindings"]["mqtt"]["qos"] == 1 for v in ops.values())


def test_schemas_carry_the_contract_rules() -> None:
    schemas = asyncapi_document()["components"]["schemas"]
    gpu = schemas["GpuRackTelemetry"]
    assert gpu["additionalProperties"] is False
    assert set(gpu["required"]) >= {"ts", "seq", "source", "gpu_power_w", "gpu_util", "gpu_temp_c", "aux_power_w"}
    util_items = gpu["properties"]["gpu_util"]["items"]
    assert util_items["minimum"] == 0 and util_items["maximum"] == 1
    assert schemas["HydroTelemetry"]["properties"]["reservoir_pct"]["anyOf"][0]["maximum"] == 100
