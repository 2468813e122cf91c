"""Every config file (plant, scenario, adapter config, import mapping) fails the same way: one line, the file named."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.field.base import AdapterConfig, load_adapter_config
from sims.scenario import load_scenario
from twin.errors import ConfigError, TwinError
from twin.importers.mapping import MappingError, load_mapping
from twin.plant import load_plant
from twin.tomlfile import load_toml


class _Cfg(BaseModel):
    rate_hz: float


@pytest.mark.parametrize(("content", "expected"), [
    (None, "not found: pass X"),
    ("dir", "is a directory: pass X"),
    ("rate_hz = 2\n# 20 \xb0C\n".encode("latin-1"), "not UTF-8 text (byte 17): save the thing as UTF-8"),
    (b"rate_hz = \n", "not valid TOML"),
    (b"rate_hz = 'fast'\n", "rate_hz: Input should be a valid number"),
])
def test_each_fault_is_one_line_naming_the_file(tmp_path: Path, content: bytes | str | None, expected: str) -> None:
    p = tmp_path / "c.toml"
    if content == "dir":
        p.mkdir()
    elif isinstance(content, bytes):
        p.write_bytes(content)
    with pytest.raises(ConfigError) as e:
        load_toml(p, _Cfg, "thing", "pass X")
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and expected in msg, msg


def test_good_file_with_prepare(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text("rate_hz = 2\n")
    assert load_toml(p, _Cfg, "thing", "x").rate_hz == 2.0
    assert load_toml(p, _Cfg, "thing", "x", prepare=lambda d: d.update(rate_hz=5)).rate_hz == 5.0


@pytest.mark.parametrize(("load", "error"), [
    (load_plant, ConfigError), (load_scenario, ConfigError), (lambda p: load_mapping(p), MappingError),
    (lambda p: load_adapter_config(p, AdapterConfig), ConfigError),
])
def test_every_loader_goes_through_it(tmp_path: Path, load, error: type[TwinError]) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "x.toml"
    p.write_bytes("a = 1\n# \xb0C\n".encode("latin-1"))
    with pytest.raises(error, match="not UTF-8 text"):
        load(p)
    p.unlink()
    p.mkdir()
    with pytest.raises(error, match="is a directory"):
        load(p)
