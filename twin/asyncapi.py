"""An AsyncAPI 3.0 document generated from the contract models (``twin asyncapi``).

The committed copy is ``docs/asyncapi.yaml``; a test fails when it is stale.
Regenerate it with ``twin asyncapi --out docs/asyncapi.yaml``.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from twin import __version__, contract
from twin.contract import QUANTITIES
from twin.topics import CHANNELS

__all__ = ["asyncapi_document", "asyncapi_yaml"]

_ID = {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}
_PARAMS: dict[str, dict[str, Any]] = {
    "site": {"description": "site id, [a-z0-9-]{1,32}; default narvik"},
    "feeder": {"description": "hydro feeder id"},
    "hall": {"description": "hall id"},
    "rack": {"description": "rack id"},
    "cdu": {"description": "CDU id"},
    "exchanger": {"description": "heat-reuse exchanger id"},
    "station": {"description": "weather station id"},
    "quantity": {"description": "forecast quantity", "enum": list(QUANTITIES)},
    "alarm_id": {"description": "alarm id"},
    "service": {"description": "service name"},
    "worker": {"description": "state worker id"},
}


def asyncapi_document() -> dict[str, Any]:
    model_of: dict[str, type[BaseModel]] = {c.id: getattr(contract, c.payload) for c in CHANNELS
                                            if c.payload != "text"}
    models = list(model_of.values())
    _, schema = models_json_schema([(m, "validation") for m in models],
                                   ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(schema.get("$defs", {}))
    schemas["HealthText"] = {"type": "string", "enum": ["online", "offline"]}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for ch in CHANNELS:
        cid, address, qos, retain, direction, summary = ch.id, ch.address, ch.qos, ch.retain, ch.direction, ch.summary
        model = model_of.get(cid)
        name = model.__name__ if model is not None else "HealthText"
        msg_name = f"{cid}Message"
        messages[msg_name] = {
            "name": name,
            "title": name,
            "summary": summary,
            "contentType": "application/json" if model is not None else "text/plain",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"mqtt": {"bindingVersion": "0.2.0"}},
        }
        params = {p: dict(_PARAMS[p]) for p in ch.parameters}
        channels[cid] = {
            "address": address,
            "description": summary,
            "parameters": params,
            "messages": {msg_name: {"$ref": f"#/components/messages/{msg_name}"}},
        }
        operations[f"{direction}{cid[0].upper()}{cid[1:]}"] = {
            "action": direction,
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{cid}/messages/{msg_name}"}],
            "bindings": {"mqtt": {"qos": qos, "retain": retain, "bindingVersion": "0.2.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Stargate Norway digital twin: wire contract v1",
            "version": __version__,
            "description": ("Topics and payloads between the twin, its simulators, adapters and the replayer. "
                            "Generated from twin/contract.py by `twin asyncapi`; do not edit by hand. "
                            "Fields may be added, never renamed. Field names carry their unit."),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "mosquitto": {"host": "localhost:1883", "protocol": "mqtt", "protocolVersion": "5",
                          "description": "MQTT 5 (3.1.1 also works)"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def asyncapi_yaml() -> str:
    return yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True, width=100)
