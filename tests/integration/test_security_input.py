"""Hostile input through a real Mosquitto: oversized payloads, far-future timestamps and foreign sites."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from adapters.bus.mqtt import Bus
from tests.conftest import REPO, collect, mosquitto_pub
from tests.servers import MosquittoServer
from twin.plant import load_plant
from twin.services.state import StateService

pytestmark = pytest.mark.integration


def test_oversized_and_far_future_messages_become_dead_letters(mosquitto: MosquittoServer, site: str,
                                                               tmp_path: Path) -> None:
    plant_file = tmp_path / "plant.toml"
    plant_file.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    plant = load_plant(plant_file)
    topic = f"stargate/{site}/ambient/ws1"

    def msg(ts: float, seq: int, pad: int = 0) -> bytes:
        return json.dumps({"ts": ts, "seq": seq, "source": "sim", "temp_c": -3.0}).encode()[:-1] + b" " * pad + b"}"

    async def main() -> tuple[list[dict[str, object]], StateService]:
        state = StateService(plant, max_payload_bytes=64 * 1024, max_future_s=300.0)
        async with Bus(mosquitto.url, service="state", site=site, subscriptions=state.subscriptions) as bus:
            task = asyncio.create_task(state.run(bus))
            letters = asyncio.create_task(collect(mosquitto.port, f"stargate/{site}/twin/deadletter",
                                                  lambda ms: len(ms) >= 2, 30))
            await asyncio.sleep(0.5)
            now = time.time()
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, topic, msg(now, 0, pad=70_000))
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, topic, msg(now + 3600, 1))
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, topic, msg(now - 86_400, 2))  # old: a replay, fine
            await asyncio.to_thread(mosquitto_pub, mosquitto.port, f"stargate/other-{site}/ambient/ws1", msg(now, 3))
            got = await letters
            await asyncio.sleep(0.5)
            task.cancel()
        return [json.loads(p) for _, p in got], state

    letters, state = asyncio.run(main())
    reasons = [str(d["reason"]) for d in letters]
    assert len(letters) == 2, reasons
    assert reasons[0].startswith("payload of 700") and reasons[0].endswith("bytes exceeds the limit of 65536"), reasons
    assert len(str(letters[0]["payload"])) <= 1024  # the dead letter carries only the first KiB
    assert "s ahead of the receive time" in reasons[1] and "TWIN_MAX_FUTURE_S" in reasons[1], reasons
    c = state.model.counters
    # the old message was applied; the other site's never reached this twin (it subscribes to its own site only)
    assert (c.msgs_in, c.msgs_rejected) == (3, 2)
    assert state.model.ambient_c[0] == -3.0
