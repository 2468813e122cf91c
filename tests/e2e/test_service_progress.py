"""Long-running services say what they did, at the default log level: messages in, states out, lag."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.servers import MosquittoServer, env_with_venv

pytestmark = pytest.mark.e2e

TWIN = [sys.executable, "-m", "twin.cli"]


def _count(pattern: str, text: str) -> list[int]:
    return [int(m.replace(",", "")) for m in re.findall(pattern, text)]


def test_state_sim_and_record_report_at_the_default_level(mosquitto: MosquittoServer, site: str,
                                                          tmp_path: Path) -> None:
    plant = tmp_path / "plant.toml"
    plant.write_text((REPO / "tests" / "data" / "small.toml").read_text().replace('id = "tiny"', f'id = "{site}"'))
    env = env_with_venv() | {"TWIN_REPORT_EVERY_S": "2", "TWIN_DATA_DIR": str(tmp_path / "data")}
    env.pop("TWIN_LOG_LEVEL", None)
    common = ["--broker", mosquitto.url]
    procs = {
        "state": subprocess.Popen([*TWIN, "run", "state", "--plant", str(plant), "--duration", "14", *common],
                                  env=env, stderr=subprocess.PIPE, text=True),
        "record": subprocess.Popen([*TWIN, "record", "--topic", f"stargate/{site}/#", "--out",
                                    str(tmp_path / "rec.jsonl"), "--duration", "14", *common],
                                   env=env, stderr=subprocess.PIPE, text=True),
        "sim": subprocess.Popen([*TWIN, "sim", "--plant", str(plant), "--duration", "10s", *common],
                                env=env, stderr=subprocess.PIPE, text=True),
    }
    err = {}
    for name, p in procs.items():
        _, err[name] = p.communicate(timeout=120)
        assert p.returncode == 0, (name, err[name])
    state_in = _count(r"state: ([\d,]+) messages in", err["state"])
    states_out = _count(r"([\d,]+) states out", err["state"])
    assert len(state_in) >= 2 and state_in[-1] > state_in[0] >= 0, err["state"]
    assert states_out[-1] > 0 and "s behind the clock" in err["state"], err["state"]
    assert _count(r"sim: ([\d,]+) messages out", err["sim"])[-1] > 0, err["sim"]
    assert _count(r"record: ([\d,]+) messages to", err["record"])[-1] > 0, err["record"]
    for name, text in err.items():
        assert "Traceback" not in text, (name, text)
