"""Simulator parameters that are not plant facts: the workload mix, controller lags, weather noise.

Parameter sets are data: a scenario file may override any of them in its ``[params.*]`` tables.
Plant facts (ratings, set points, coolant) stay in the plant file (:mod:`twin.plant`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CoolingParams", "HeatParams", "HydroParams", "SimParams", "WeatherParams", "WorkloadParams"]


class _P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkloadParams(_P):
    """GPU workload: training jobs on groups of racks, inference with a daily cycle, idle racks."""

    training_share: float = Field(default=0.65, ge=0, le=1, description="share of racks in training jobs")
    inference_share: float = Field(default=0.28, ge=0, le=1, description="share of racks serving inference")
    job_racks: tuple[int, int] = Field(default=(90, 320), description="racks per training job, min..max")
    swing_hz: tuple[float, float] = Field(default=(0.2, 3.0), description="compute/communication cycle, Hz")
    compute_util: float = Field(default=0.95, ge=0, le=1, description="near-TDP compute phase")
    comm_util: float = Field(default=0.42, ge=0, le=1, description="communication phase")
    checkpoint_every_s: tuple[float, float] = Field(default=(1800.0, 5400.0))
    checkpoint_s: tuple[float, float] = Field(default=(40.0, 150.0), description="checkpoint dip length")
    checkpoint_util: float = Field(default=0.08, ge=0, le=1)
    job_duration_s: tuple[float, float] = Field(default=(6 * 3600.0, 3 * 86400.0))
    job_gap_s: tuple[float, float] = Field(default=(300.0, 5400.0), description="idle between two jobs")
    job_ramp_s: float = Field(default=8.0, gt=0, description="a job starts within this many seconds")
    inference_base: float = Field(default=0.32, ge=0, le=1)
    inference_amplitude: float = Field(default=0.38, ge=0, le=1, description="daily cycle, peak - trough")
    inference_peak_hour_utc: float = Field(default=17.0, ge=0, lt=24)
    idle_util: float = Field(default=0.02, ge=0, le=1)
    gpu_spread: float = Field(default=0.02, ge=0, description="fixed per-GPU utilisation offset, std")
    gpu_noise: float = Field(default=0.015, ge=0, description="per-step per-GPU utilisation noise, std")


class CoolingParams(_P):
    """CDU control, loop inertia, facility water and heat rejection."""

    flow_tau_s: float = Field(default=15.0, gt=0, description="CDU flow control lag, s")
    min_flow_fraction: float = Field(default=0.3, ge=0, le=1, description="of design flow")
    max_flow_fraction: float = Field(default=1.25, gt=0, description="of design flow")
    supply_noise_k: float = Field(default=0.05, ge=0)
    cdu_approach_k: float = Field(default=2.0, ge=0, description="loop supply above facility water supply, K")
    fws_rise_k: float = Field(default=10.0, gt=0, description="facility water temperature rise, K")
    fws_tau_s: float = Field(default=600.0, gt=0, description="facility water thermal lag, s")
    fws_pump_fraction: float = Field(default=0.006, ge=0, description="at design flow, of design heat")
    dry_cooler_itd_design_k: float = Field(default=15.0, gt=0, description="ITD at design capacity, K")
    dry_cooler_fan_fraction: float = Field(default=0.012, ge=0, description="fan power at design / design heat")
    dry_cooler_min_speed: float = Field(default=0.15, ge=0, le=1, description="fans never run slower")
    air_handling_fraction: float = Field(default=0.05, ge=0, description="air-side fans / heat to room air")


class HeatParams(_P):
    """Heat reuse: district-heating demand model, exchangers and heat pumps."""

    dh_base_c: float = Field(default=15.0, description="outdoor temperature with summer-only demand, C")
    dh_design_c: float = Field(default=-4.0, description="outdoor temperature of the winter design demand, C")
    dh_max_factor: float = Field(default=1.7, gt=0, description="demand cap, times the winter design")
    dh_lag_s: float = Field(default=8 * 3600.0, gt=0, description="buildings' thermal lag on outdoor temp, s")
    dh_daily_amplitude: float = Field(default=0.12, ge=0, description="morning/evening peaks, of demand")
    industry_noise: float = Field(default=0.02, ge=0, description="industry demand noise, of demand")
    hx_approach_k: float = Field(default=2.0, ge=0)
    hp_evaporator_approach_k: float = Field(default=3.0, ge=0)
    hp_condenser_approach_k: float = Field(default=2.0, ge=0)
    hp_capacity_factor: float = Field(default=1.25, gt=0, description="heat-pump capacity / winter design")


class HydroParams(_P):
    """Hydro supply and the Nordic grid."""

    availability: float = Field(default=0.98, ge=0, le=1, description="of the feeders' rating, normally")
    curtailments_per_day: float = Field(default=0.05, ge=0, description="random curtailment events")
    curtailment_to: tuple[float, float] = Field(default=(0.85, 0.95), description="of the contract")
    curtailment_s: tuple[float, float] = Field(default=(1800.0, 7200.0))
    frequency_std_hz: float = Field(default=0.025, ge=0)
    frequency_tau_s: float = Field(default=60.0, gt=0)
    excursions_per_day: float = Field(default=0.4, ge=0, description="rare dips out of 49.9-50.1 Hz")
    excursion_hz: tuple[float, float] = Field(default=(0.12, 0.35), description="depth of a dip")
    excursion_recovery_s: tuple[float, float] = Field(default=(40.0, 180.0))
    price_base_eur_mwh: float = Field(default=30.0)
    price_winter_eur_mwh: float = Field(default=12.0, description="added in January, fading to 0 in July")
    price_daily_eur_mwh: float = Field(default=9.0, ge=0, description="amplitude of the daily shape")
    price_noise_eur_mwh: float = Field(default=6.0, ge=0)
    negative_price_per_day: float = Field(default=0.05, ge=0, description="quarter hours with a dip below 0")
    reservoir_mean_pct: float = Field(default=58.0, ge=0, le=100)
    reservoir_amplitude_pct: float = Field(default=28.0, ge=0, le=50)
    reservoir_peak_doy: float = Field(default=285.0, ge=0, le=366, description="fullest in mid October")


class WeatherParams(_P):
    synoptic_tau_s: float = Field(default=3 * 86400.0, gt=0, description="memory of weather noise, s")
    peak_hour_utc: float = Field(default=13.5, ge=0, lt=24, description="warmest hour of the day")
    polar_night_amplitude: float = Field(default=0.3, ge=0, le=1, description="daily swing in December")
    humidity_mean_pct: float = Field(default=78.0, ge=0, le=100)
    wind_mean_ms: float = Field(default=4.5, ge=0)


class SimParams(_P):
    workload: WorkloadParams = WorkloadParams()
    cooling: CoolingParams = CoolingParams()
    heat: HeatParams = HeatParams()
    hydro: HydroParams = HydroParams()
    weather: WeatherParams = WeatherParams()
