"""Coolant distribution units over Modbus TCP to ``stargate/{site}/coolant/{cdu}``.

A register map per CDU model says where each contract field lives: address
(0-based, as on the wire), register type (``holding`` or ``input``), data type
(``int16``, ``uint16``, ``int32``, ``uint32``, ``float32``), word order of 32-bit
values (``big``: high word first, the Modbus convention; ``little``: low word
first), ``scale`` and ``offset`` (engineering value = raw * scale + offset) and the
unit of that value, converted to the contract's unit (:mod:`adapters.field.units`).
Each CDU names its model, host, port and unit id.

Every CDU is polled in a task of its own every ``interval_s``: the registers of one
type are read in as few requests as fit (at most 125 registers each). A timeout,
a Modbus exception, a refused connection or a value out of the contract's range
fails that CDU's poll only: nothing is published for it (the twin lists it stale),
the reason goes to the status note, the next poll retries (reconnecting when
needed), and the other CDUs carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from adapters.field.base import AdapterConfig, DeviceHealth, Emitter, Refused
from adapters.field.units import converter
from twin.contract import ASSET_ID_PATTERN, CoolantTelemetry

__all__ = ["DataType", "ModbusAdapter", "ModbusConfig", "RegisterField", "decode_registers", "plan_reads"]

log = logging.getLogger("twin.adapter.modbus")

AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
DataType = Literal["int16", "uint16", "int32", "uint32", "float32"]
_WORDS = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
_FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}
REQUIRED = ("supply_c", "return_c", "flow_lps", "pump_kw")
OPTIONAL = ("fws_supply_c", "fws_return_c")
MAX_READ = 125  # registers per Modbus read request (the protocol's limit)


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterField(_Cfg):
    address: int = Field(ge=0, le=65535, description="0-based register address")
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    table: Literal["holding", "input"] = Field(default="holding", alias="register", description="register type")
    type: DataType = "int16"
    word_order: Literal["big", "little"] = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str = Field(description="unit of raw * scale + offset, e.g. C, L/min, kW")

    @property
    def words(self) -> int:
        return _WORDS[self.type]


class CduModel(_Cfg):
    fields: dict[str, RegisterField]

    @model_validator(mode="after")
    def _check(self) -> CduModel:
        unknown = sorted(set(self.fields) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a coolant field (known: {', '.join(REQUIRED + OPTIONAL)})")
        missing = [f for f in REQUIRED if f not in self.fields]
        if missing:
            raise ValueError(f"the register map lacks {', '.join(missing)}")
        for name, f in self.fields.items():
            converter(f.unit, name)  # raises ValueError naming the unit
        return self


class CduDevice(_Cfg):
    id: AssetId
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    unit_id: int = Field(default=1, ge=0, le=255)
    model: str


class ModbusConfig(AdapterConfig):
    timeout_s: float = Field(default=1.0, gt=0, description="per request, s")
    models: dict[str, CduModel] = Field(min_length=1, description="register map per CDU model")
    cdus: list[CduDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> ModbusConfig:
        ids = [c.id for c in self.cdus]
        if len(set(ids)) != len(ids):
            raise ValueError("a CDU id is listed twice")
        for c in self.cdus:
            if c.model not in self.models:
                raise ValueError(f"CDU {c.id}: model {c.model!r} has no register map (known: {', '.join(self.models)})")
        return self


# ---------------------------------------------------------------- registers (pure)


def decode_registers(regs: Sequence[int], type_: DataType, word_order: str = "big") -> float:
    """Registers (16-bit words, as read) to a number. Each word is big-endian on the wire."""
    n = _WORDS[type_]
    if len(regs) != n:
        raise ValueError(f"{type_} needs {n} registers, got {len(regs)}")
    words = list(regs) if word_order == "big" else list(reversed(regs))
    raw = b"".join(int(w & 0xFFFF).to_bytes(2, "big") for w in words)
    return float(struct.unpack(_FMT[type_], raw)[0])


def encode_value(value: float, type_: DataType, word_order: str = "big") -> list[int]:
    """The inverse of :func:`decode_registers` (for test servers and simulators)."""
    raw = struct.pack(_FMT[type_], value if type_ == "float32" else int(value))
    words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return words if word_order == "big" else list(reversed(words))


def plan_reads(fields: dict[str, RegisterField]) -> list[tuple[str, int, int]]:
    """Fewest (register type, start, count) reads covering every field, each at most 125 registers."""
    out: list[tuple[str, int, int]] = []
    for kind in ("holding", "input"):
        spans = sorted((f.address, f.address + f.words) for f in fields.values() if f.table == kind)
        start = end = -1
        for a, b in spans:
            if start < 0:
                start, end = a, b
            elif b - start <= MAX_READ:
                end = max(end, b)
            else:
                out.append((kind, start, end - start))
                start, end = a, b
        if start >= 0:
            out.append((kind, start, end - start))
    return out


def convert_fields(model: CduModel, blocks: dict[tuple[str, int], list[int]],
                   reads: list[tuple[str, int, int]]) -> dict[str, float]:
    """Contract field values from the registers read (``blocks`` keyed by (type, start))."""
    out: dict[str, float] = {}
    for name, f in model.fields.items():
        for kind, start, count in reads:
            if kind == f.table and start <= f.address and f.address + f.words <= start + count:
                regs = blocks[kind, start][f.address - start : f.address - start + f.words]
                break
        else:  # pragma: no cover - plan_reads covers every field
            raise ValueError(f"{name}: address {f.address} not read")
        a, b = converter(f.unit, name)
        out[name] = a * (decode_registers(regs, f.type, f.word_order) * f.scale + f.offset) + b
    return out


# ---------------------------------------------------------------- the adapter


class ModbusAdapter:
    kind = "modbus"

    def __init__(self, cfg: ModbusConfig) -> None:
        self.cfg = cfg
        self.name = cfg.name or self.kind
        self.health = DeviceHealth([c.id for c in cfg.cdus])
        self._reads = {m: plan_reads(model.fields) for m, model in cfg.models.items()}
        if not log.isEnabledFor(logging.DEBUG):  # faults are reported once per device by DeviceHealth instead
            logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

    def assets(self) -> list[tuple[str, str, str | None]]:
        return [("coolant", c.id, None) for c in self.cfg.cdus]

    async def _poll(self, client: object, cdu: CduDevice) -> dict[str, float]:
        from pymodbus.exceptions import ModbusException

        model = self.cfg.models[cdu.model]
        reads = self._reads[cdu.model]
        blocks: dict[tuple[str, int], list[int]] = {}
        for kind, start, count in reads:
            fn = client.read_holding_registers if kind == "holding" else client.read_input_registers  # type: ignore[attr-defined]
            rr = await asyncio.wait_for(fn(start, count=count, device_id=cdu.unit_id), self.cfg.timeout_s * 2 + 1)
            if rr.isError():
                raise ModbusException(f"{kind} registers {start}..{start + count - 1}: {rr}")
            blocks[kind, start] = list(rr.registers)
        return convert_fields(model, blocks, reads)

    async def _device(self, cdu: CduDevice, emitter: Emitter) -> None:
        from pymodbus.client import AsyncModbusTcpClient
        from pymodbus.exceptions import ModbusException, ModbusIOException

        client = AsyncModbusTcpClient(cdu.host, port=cdu.port, timeout=self.cfg.timeout_s, retries=0,
                                      reconnect_delay=0, name=f"cdu-{cdu.id}")
        topic = emitter.topics.coolant(cdu.id)
        interval = self.cfg.interval_s
        next_t = time.monotonic()
        try:
            while True:
                ts = time.time()
                try:
                    if not client.connected:
                        client.close()
                        if not await client.connect():
                            raise ConnectionError(f"cannot connect to {cdu.host}:{cdu.port}")
                    values = await self._poll(client, cdu)
                    emitter.emit(CoolantTelemetry, topic, ts, values)
                    self.health.ok(cdu.id, ts)
                except Refused as e:
                    self.health.fail(cdu.id, f"out of range, not published: {e}")
                except (TimeoutError, ModbusIOException):  # pymodbus reports a timeout as ModbusIOException
                    self.health.fail(cdu.id, f"no answer from {cdu.host}:{cdu.port} unit {cdu.unit_id} "
                                             f"within {self.cfg.timeout_s} s")
                    client.close()
                except (ModbusException, ConnectionError, OSError) as e:
                    self.health.fail(cdu.id, f"{type(e).__name__} from {cdu.host}:{cdu.port} unit {cdu.unit_id}: "
                                             f"{str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
                    client.close()
                emitter.status(self.health.status(self.name, ts))
                next_t += interval
                now = time.monotonic()
                if next_t < now:
                    next_t = now + interval - (now - next_t) % interval
                await asyncio.sleep(next_t - now)
        finally:
            with contextlib.suppress(Exception):
                client.close()

    async def run(self, emitter: Emitter) -> None:
        """Poll every CDU in its own task until cancelled."""
        tasks = [asyncio.create_task(self._device(c, emitter), name=f"cdu-{c.id}") for c in self.cfg.cdus]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
