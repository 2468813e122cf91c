"""The wire contract v1 (``docs/contract.md``) as pydantic v2 models.

This module is the source of truth in code for every payload on the bus: the
telemetry the twin ingests, and the twin's outputs. Field names carry their unit.
Fields may be added; never rename or re-mean one (the contract is a public API).

Telemetry models forbid unknown fields: a misspelt unit suffix (``flow_lpm`` for
``flow_lps``) must be refused, not silently ignored. They are strict: a number sent
as a string is refused, NaN and infinities are refused.

Rules that need the plant config (the GPU list length equals the rack's GPU count,
the asset exists) are checked by :func:`twin.live.decode` against the loaded plant.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "ASSET_ID_PATTERN",
    "DOMAIN_MODELS",
    "MAX_GPUS_PER_RACK",
    "QUANTITIES",
    "SITE_PATTERN",
    "AdapterStatus",
    "Alarm",
    "AmbientTelemetry",
    "CoolantTelemetry",
    "DeadLetter",
    "Forecast",
    "ForecastPoint",
    "GpuRackTelemetry",
    "HallState",
    "HeatTelemetry",
    "HydroTelemetry",
    "PlantState",
    "SinkStats",
    "Telemetry",
    "WorkerState",
]

SITE_PATTERN = r"^[a-z0-9-]{1,32}$"
ASSET_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
SOURCE_PATTERN = r"^(sim|replay|adapter/[A-Za-z0-9_.-]{1,64})$"
#: Upper bound on GPUs in one rack message (NVL144/NVL576-class racks included);
#: the exact length is checked against the plant config.
MAX_GPUS_PER_RACK = 1024
#: Unix time of 2100-01-01: a timestamp beyond it is a unit error (ms or ns).
MAX_TS = 4_102_444_800.0

SiteId = Annotated[str, StringConstraints(pattern=SITE_PATTERN)]
AssetId = Annotated[str, StringConstraints(pattern=ASSET_ID_PATTERN)]
Timestamp = Annotated[float, Field(ge=0.0, le=MAX_TS, description="Unix epoch seconds, UTC")]
Temperature = Annotated[float, Field(ge=-80.0, le=200.0, description="degrees Celsius")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class Telemetry(_Strict):
    """Fields every telemetry message has."""

    ts: Timestamp = Field(description="measurement time, Unix epoch seconds, UTC")
    seq: int = Field(ge=0, le=2**63 - 1, description="per-publisher counter (one stream per topic)")
    source: str = Field(pattern=SOURCE_PATTERN, description="`sim`, `replay` or `adapter/<name>`")


class HydroTelemetry(Telemetry):
    """One hydro supply feeder / grid connection point: ``stargate/{site}/hydro/{feeder}``."""

    available_mw: float = Field(ge=0.0, le=10_000.0, description="what the hydro supply can deliver now, MW")
    import_mw: float = Field(ge=0.0, le=10_000.0, description="metered site draw through this feeder, MW")
    frequency_hz: float = Field(ge=40.0, le=70.0, description="grid frequency, Hz")
    price_eur_mwh: float = Field(ge=-100_000.0, le=100_000.0, description="spot price, EUR/MWh (may be < 0)")
    reservoir_pct: float | None = Field(default=None, ge=0.0, le=100.0, description="reservoir level, %")
    curtailed: bool = Field(default=False, description="the supply is curtailed now")


PowerW = Annotated[float, Field(ge=0.0, le=20_000.0)]
Util = Annotated[float, Field(ge=0.0, le=1.0)]


class GpuRackTelemetry(Telemetry):
    """One GPU rack, all its GPUs in one message: ``stargate/{site}/gpu/{hall}/{rack}``."""

    gpu_power_w: list[PowerW] = Field(min_length=1, max_length=MAX_GPUS_PER_RACK, description="per GPU, W")
    gpu_util: list[Util] = Field(min_length=1, max_length=MAX_GPUS_PER_RACK, description="per GPU, 0..1")
    gpu_temp_c: list[Temperature] = Field(min_length=1, max_length=MAX_GPUS_PER_RACK, description="per GPU, C")
    aux_power_w: float = Field(ge=0.0, le=1_000_000.0, description="CPUs, NICs, switch trays of the rack, W")
    gpu_missing: list[Annotated[int, Field(ge=0, lt=MAX_GPUS_PER_RACK)]] | None = Field(
        default=None,
        max_length=MAX_GPUS_PER_RACK,
        description="slots (0-based) without a fresh reading in this message, e.g. a GPU missing from a "
        "DCGM scrape; their list entries repeat the last known value (0 W, 0 util if never seen). "
        "Absent when every GPU reported.",
    )

    @model_validator(mode="after")
    def _equal_lengths(self) -> GpuRackTelemetry:
        n = len(self.gpu_power_w)
        if len(self.gpu_util) != n or len(self.gpu_temp_c) != n:
            raise ValueError(
                "gpu_power_w, gpu_util and gpu_temp_c must have one equal length, got "
                f"{n}, {len(self.gpu_util)} and {len(self.gpu_temp_c)}"
            )
        if self.gpu_missing is not None:
            bad = [k for k in self.gpu_missing if k >= n]
            if bad:
                raise ValueError(f"gpu_missing lists slot {bad[0]}, beyond the {n} GPUs of the message")
            if len(set(self.gpu_missing)) != len(self.gpu_missing):
                raise ValueError("gpu_missing lists a slot twice")
        return self


class CoolantTelemetry(Telemetry):
    """One coolant distribution unit (technology cooling loop): ``stargate/{site}/coolant/{cdu}``."""

    supply_c: Temperature = Field(description="loop supply temperature at the CDU, C")
    return_c: Temperature = Field(description="loop return temperature at the CDU, C")
    flow_lps: float = Field(ge=0.0, le=10_000.0, description="loop flow, litres per second")
    pump_kw: float = Field(ge=0.0, le=10_000.0, description="pump electric power, kW")
    fws_supply_c: Temperature | None = Field(default=None, description="facility water supply, C")
    fws_return_c: Temperature | None = Field(default=None, description="facility water return, C")


class HeatTelemetry(Telemetry):
    """One heat-reuse exchanger towards an offtaker: ``stargate/{site}/heat/{exchanger}``."""

    delivered_kw: float = Field(ge=0.0, le=1_000_000.0, description="thermal power delivered, kW")
    demand_kw: float = Field(ge=0.0, le=1_000_000.0, description="thermal power the offtaker asks for, kW")
    supply_c: Temperature = Field(description="offtaker-side supply temperature, C")
    return_c: Temperature = Field(description="offtaker-side return temperature, C")
    heat_pump_kw: float = Field(ge=0.0, le=1_000_000.0, description="heat-pump electric power, kW (0: none)")


class AmbientTelemetry(Telemetry):
    """One weather station: ``stargate/{site}/ambient/{station}``."""

    temp_c: float = Field(ge=-80.0, le=70.0, description="outdoor air temperature, C")
    humidity_pct: float | None = Field(default=None, ge=0.0, le=100.0, description="relative humidity, %")
    wind_ms: float | None = Field(default=None, ge=0.0, le=120.0, description="wind speed, m/s")


#: Topic domain -> payload model. The topic ``stargate/{site}/{domain}/...`` selects it.
DOMAIN_MODELS: dict[str, type[Telemetry]] = {
    "hydro": HydroTelemetry,
    "gpu": GpuRackTelemetry,
    "coolant": CoolantTelemetry,
    "heat": HeatTelemetry,
    "ambient": AmbientTelemetry,
}


# ---------------------------------------------------------------- twin outputs


class _Output(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class PlantState(_Output):
    """The whole plant, every tick: ``stargate/{site}/twin/state`` (QoS 1, retained).

    Definitions are the contract's, over the latest valid message of each asset.
    """

    ts: Timestamp = Field(description="event time of this state, Unix epoch seconds")
    it_mw: float = Field(description="sum over racks of (sum gpu_power_w + aux_power_w) / 1e6, MW")
    facility_mw: float = Field(description="sum over feeders of import_mw, MW")
    pue: float | None = Field(description="facility_mw / it_mw (ISO/IEC 30134-2); null while it_mw is 0")
    contract_mw: float = Field(description="contracted maximum draw, MW")
    hydro_available_mw: float = Field(description="sum over feeders of available_mw, MW")
    headroom_mw: float = Field(description="min(hydro_available_mw, contract_mw) - facility_mw, MW")
    gpus_total: int = Field(ge=0, description="GPUs in the plant config")
    gpus_reporting: int = Field(ge=0, description="GPUs with a valid, non-stale rack message")
    gpu_util_mean: float | None = Field(description="mean GPU utilisation over reporting GPUs, 0..1")
    gpu_temp_max_c: float | None = Field(description="hottest reporting GPU, C")
    heat_to_liquid_mw: float = Field(description="sum over CDUs of rho cp V (T_ret - T_sup) / 1e6, MW")
    liquid_capture_ratio: float | None = Field(description="heat_to_liquid_mw / it_mw; null while it_mw is 0")
    heat_reused_mw: float = Field(description="sum over exchangers of delivered_kw / 1000, MW")
    heat_pump_mw: float = Field(description="sum over exchangers of heat_pump_kw / 1000, MW")
    erf: float | None = Field(description="reused / facility energy since start (ISO/IEC 30134-6)")
    coolant_return_max_c: float | None = Field(description="hottest CDU return temperature, C")
    ambient_c: float | None = Field(description="outdoor temperature (mean over weather stations), C")
    stale: list[str] = Field(description="`domain/asset` silent for longer than stale_after_s")
    msgs_in: int = Field(ge=0, description="telemetry messages received since start")
    msgs_rejected: int = Field(ge=0, description="messages sent to the dead-letter topic since start")
    msgs_duplicate: int = Field(ge=0, description="duplicates dropped by (topic, source, seq) since start")
    seq_gaps: int = Field(ge=0, description="messages missing by seq since start")
    msgs_late: int = Field(default=0, ge=0, description="messages that arrived after a newer one of their stream")
    alarms_active: int = Field(default=0, ge=0, description="alarms active now")
    msgs_dropped: int = Field(default=0, ge=0, description="messages dropped on overload (incoming queue full)")
    deadletters_suppressed: int = Field(
        default=0, ge=0, description="dead letters not published because their rate limit was exceeded")
    heat_demand_mw: float | None = Field(
        default=None, description="sum over exchangers of demand_kw / 1000 (what the offtakers ask for), MW")
    pue_15m: float | None = Field(
        default=None, description="interim PUE (ISO/IEC 30134-2) over the last 15 minutes: facility energy / IT "
        "energy; null until the window spans 15 minutes with at least 95 % of the plant's GPUs heard over it")
    liquid_capture_ratio_15m: float | None = Field(
        default=None, description="heat-to-liquid energy / IT energy over the last 15 minutes (nulled as pue_15m)")
    erf_15m: float | None = Field(
        default=None, description="reused / facility energy over the last 15 minutes (ISO/IEC 30134-6); null "
        "until the window spans 15 minutes")
    heartbeat: bool = Field(
        default=False, description="true: no telemetry arrived for this tick; published while telemetry is silent "
        "so that silent assets turn stale. A state of the same ts made from telemetry that arrives later "
        "replaces it")


class HallState(_Output):
    """One hall, every tick: ``stargate/{site}/twin/state/{hall}`` (QoS 1, retained)."""

    ts: Timestamp = Field(description="event time of this state, Unix epoch seconds")
    hall: AssetId = Field(description="hall id")
    it_mw: float = Field(description="IT power of the hall's racks, MW")
    gpus_total: int = Field(ge=0)
    gpus_reporting: int = Field(ge=0)
    gpu_util_mean: float | None = Field(description="0..1")
    gpu_temp_max_c: float | None = Field(description="C")
    heat_to_liquid_mw: float = Field(description="over the hall's CDUs, MW")
    liquid_capture_ratio: float | None = Field(description="heat_to_liquid_mw / it_mw")
    coolant_return_max_c: float | None = Field(description="hottest CDU return in the hall, C")
    coolant_supply_mean_c: float | None = Field(default=None, description="mean CDU supply in the hall, C")
    flow_lps: float = Field(default=0.0, description="total loop flow over the hall's CDUs, L/s")
    energy_residual_max: float | None = Field(
        default=None, description="CDU residual (measured - expected heat) / expected of largest magnitude")
    energy_residual_cdu: str | None = Field(default=None, description="the CDU with that residual")
    gpu_temp_excess_max_k: float | None = Field(
        default=None, description="largest reported minus expected (T_sup + R_th P) GPU temperature, K")
    heartbeat: bool = Field(
        default=False, description="true: no telemetry arrived for this tick (as PlantState.heartbeat); a state "
        "of the same ts made from telemetry that arrives later replaces it")


class WorkerState(_Output):
    """``stargate/{site}/twin/worker/{worker}`` (QoS 1, retained): a state worker that owns some halls.

    Published with every tick before the worker's HallStates, so that the aggregator can
    combine the counters and stale lists of all workers into the PlantState.
    """

    ts: Timestamp = Field(description="event time of the tick")
    worker: AssetId = Field(description="worker id, e.g. halls-h1-h2-h3-h4")
    halls: list[AssetId] = Field(min_length=1, description="the halls this worker owns")
    msgs_in: int = Field(ge=0)
    msgs_rejected: int = Field(ge=0)
    msgs_duplicate: int = Field(ge=0)
    msgs_late: int = Field(ge=0)
    seq_gaps: int = Field(ge=0)
    msgs_dropped: int = Field(default=0, ge=0)
    alarms_active: int = Field(default=0, ge=0)
    stale: list[str] = Field(description="`domain/asset` of the worker's halls silent for longer than stale_after_s")
    heartbeat: bool = Field(
        default=False, description="true: the worker received no telemetry for this tick (as "
        "PlantState.heartbeat); the aggregator waits for its real state of the same ts while the worker catches up")


QUANTITIES: tuple[str, ...] = ("facility_mw", "it_mw", "headroom_mw", "heat_reusable_mw", "coolant_return_max_c")
Quantity = Literal["facility_mw", "it_mw", "headroom_mw", "heat_reusable_mw", "coolant_return_max_c"]


class ForecastPoint(_Output):
    ts: Timestamp = Field(description="target time")
    mean: float
    p10: float
    p90: float

    @model_validator(mode="after")
    def _ordered(self) -> ForecastPoint:
        if not self.p10 <= self.p90:
            raise ValueError(f"p10 ({self.p10}) must not exceed p90 ({self.p90})")
        return self


class Forecast(_Output):
    """``stargate/{site}/twin/forecast/{quantity}`` (QoS 1, retained)."""

    quantity: Quantity
    issued_ts: Timestamp
    model: str = Field(min_length=1, max_length=64)
    step_s: float = Field(gt=0)
    points: list[ForecastPoint] = Field(min_length=1, max_length=10_000)
    skill: float | None = Field(description="MASE against persistence over recent evaluated forecasts")


class Alarm(_Output):
    """``stargate/{site}/twin/alarm/{alarm_id}``; an empty retained message clears it."""

    alarm_id: AssetId
    severity: Literal["info", "warning", "critical"]
    active: bool
    ts: Timestamp
    message: str = Field(max_length=1024)
    asset: str | None = None
    value: float | None = None
    threshold: float | None = None


class DeadLetter(_Output):
    """``stargate/{site}/twin/deadletter`` (QoS 1): a message the twin refused, and why."""

    ts: Timestamp = Field(description="receive time")
    topic: str
    reason: str
    payload: str = Field(description="first 1 KiB of the payload, decoded as text with errors replaced")


# ---------------------------------------------------------------- service health


class AdapterStatus(BaseModel):
    """Retained note on ``stargate/{site}/twin/health/adapter-<name>/status`` (JSON)."""

    ts: float = Field(description="when the note was made, Unix seconds")
    adapter: str
    devices_total: int
    devices_ok: int
    failing: dict[str, str] = Field(description="device -> why its last poll produced no message")
    notes: dict[str, str] = Field(default_factory=dict, description="device -> a partial fault (e.g. GPUs missing)")


class SinkStats(BaseModel):
    """The sink's health, retained on ``stargate/{site}/twin/sink``; counters since the sink started."""

    ts: float = Field(description="wall-clock time of this report, Unix epoch seconds")
    writer: str = Field(description="where lines go: InfluxDB URL and bucket, or the files directory")
    points_in: int = Field(description="lines made from the messages received")
    points_written: int = Field(description="lines the database (or the files) acknowledged")
    points_retried: int = Field(description="lines sent again after a failed or split request")
    points_spooled: int = Field(description="lines appended to the disk spool")
    points_dropped: int = Field(description="lines lost: spool full, or memory buffer full")
    points_deadlettered: int = Field(description="lines the database refused (400/422), sent to the dead-letter topic")
    rejected_messages: int = Field(description="MQTT messages that did not match the contract")
    buffered: int = Field(description="lines in memory, waiting for the next batch")
    spool_lines: int = Field(description="lines in the spool, not yet delivered")
    spool_bytes: int = Field(description="bytes in the spool, not yet delivered")
    spool_max_bytes: int = Field(description="the spool's bound")
    spool_full: bool = Field(description="the spool is dropping data (alarm sink_spool_full active)")
    last_error: str | None = Field(description="the last write error, or null after a successful write")
