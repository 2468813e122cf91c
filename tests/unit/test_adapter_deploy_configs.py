"""The example adapter configs in deploy/adapters/ load, and their asset ids fit the phase 1 plant."""

from __future__ import annotations

import pytest

from adapters.field.base import load_adapter_config, plant_mismatch
from adapters.field.dcgm import DcgmAdapter, DcgmConfig
from adapters.field.modbus_cdu import ModbusAdapter, ModbusConfig
from adapters.field.opcua_meters import OpcuaConfig
from tests.conftest import REPO
from twin.plant import Plant

DEPLOY = REPO / "deploy" / "adapters"


def test_dcgm_example_fits_phase1(phase1: Plant) -> None:
    cfg = load_adapter_config(DEPLOY / "dcgm.toml", DcgmConfig)
    assert len(cfg.endpoints) == 18 and sorted(s for h in cfg.hosts for s in h.slots) == list(range(72))
    assert plant_mismatch(DcgmAdapter(cfg).assets(), phase1, cfg.gpus_per_rack) is None


def test_modbus_example_fits_phase1(phase1: Plant) -> None:
    cfg = load_adapter_config(DEPLOY / "modbus.toml", ModbusConfig)
    assert plant_mismatch(ModbusAdapter(cfg).assets(), phase1) is None


def test_opcua_example_fits_phase1(phase1: Plant) -> None:
    cfg = load_adapter_config(DEPLOY / "opcua.toml", OpcuaConfig)
    assets = sorted({(n.domain, n.asset, None) for n in cfg.nodes})
    assert [a for _, a, _ in assets] == ["dh-narvik", "industry-park", "feeder-a", "feeder-b"]
    assert plant_mismatch(assets, phase1) is None
    assert cfg.security_mode == "SignAndEncrypt" and cfg.password_env == "TWIN_OPCUA_PASSWORD"


def test_plant_mismatch_names_the_fault(phase1: Plant) -> None:
    assert plant_mismatch([("gpu", "h1-r001", "h2")], phase1) == \
        "rack h1-r001 is in hall h1 of the plant config, not h2"
    assert plant_mismatch([("coolant", "h1-cdu99", None)], phase1) == \
        "coolant asset h1-cdu99 is not in the plant config"
    assert plant_mismatch([], phase1, gpus_per_rack=4) == "gpus_per_rack = 4, but the plant's racks have 72 GPUs"


@pytest.mark.parametrize("name", ["dcgm", "modbus", "opcua"])
def test_examples_are_documented(name: str) -> None:
    text = (DEPLOY / f"{name}.toml").read_text()
    assert text.startswith("# ") and f"twin adapter {name} --config deploy/adapters/{name}.toml" in text
