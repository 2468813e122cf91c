"""GPU workload: which racks train, serve inference or idle, and every GPU's utilisation each step.

- Training jobs run on contiguous groups of racks (whole CDUs). All GPUs of a job swing together
  between a near-TDP compute phase and a low communication phase at 0.2-3 Hz (sampled as the
  instantaneous value at each step); a checkpoint every 30-90 min drops the whole job to near-idle
  for a minute or two; a job ends after hours to days, its racks idle for minutes to an hour or
  two, then a new job starts within seconds: steps of tens of MW.
- Inference racks follow a daily cycle of demand, with slow per-rack noise.
- Idle racks sit at idle power.

Pure and seeded: state in, state updated, outputs returned; vectorised over jobs, racks and GPUs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sims.params import WorkloadParams
from sims.timebase import hour_utc
from twin.plant import Plant

__all__ = ["IDLE", "INFERENCE", "TRAINING", "WorkloadState", "init_workload", "utilisation_step"]

TRAINING, INFERENCE, IDLE = 0, 1, 2
_BANK = 1 << 16  # extra noise samples beyond one step's worth; each step reads a random window


@dataclass
class WorkloadState:
    rack_kind: np.ndarray  # (racks,) TRAINING / INFERENCE / IDLE
    rack_job: np.ndarray  # (racks,) job index, -1 when not training
    gpu_bias: np.ndarray  # (racks, gpus) fixed per-GPU offset
    noise_bank: np.ndarray  # (racks * gpus + _BANK,) standard normals scaled by gpu_noise
    n_jobs: int
    started: bool = False
    running: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    start_ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    end_ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    next_ts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    freq_hz: np.ndarray = field(default_factory=lambda: np.zeros(0))
    phase: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ckpt_every: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ckpt_len: np.ndarray = field(default_factory=lambda: np.zeros(0))
    ckpt_offset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inference_x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per-rack AR(1) noise

    @property
    def job_racks(self) -> np.ndarray:
        """Racks per job."""
        return np.bincount(self.rack_job[self.rack_job >= 0], minlength=self.n_jobs)


def init_workload(plant: Plant, p: WorkloadParams, rng: np.random.Generator) -> WorkloadState:
    """Assign racks to training jobs, inference and idle (by whole CDUs), and draw the fixed per-GPU spread."""
    n_c = len(plant.cdu_ids)
    idle_share = max(0.0, 1.0 - p.training_share - p.inference_share)
    shares = np.array([p.training_share, p.inference_share, idle_share])
    cdu_kind = rng.choice(3, size=n_c, p=shares / shares.sum())
    rack_kind = cdu_kind[plant.rack_cdu].astype(np.int8)
    # training racks, in plant order, cut into jobs of job_racks[0]..job_racks[1] racks (whole CDUs)
    rack_job = np.full(plant.n_racks, -1, dtype=np.int64)
    train_cdus = np.flatnonzero(cdu_kind == TRAINING)
    cdu_racks = np.bincount(plant.rack_cdu, minlength=n_c)
    job, size, want = 0, 0, int(rng.integers(p.job_racks[0], p.job_racks[1] + 1))
    cdu_job = np.full(n_c, -1, dtype=np.int64)
    for c in train_cdus.tolist():  # per CDU (hundreds), once at start
        if size >= want:
            job, size, want = job + 1, 0, int(rng.integers(p.job_racks[0], p.job_racks[1] + 1))
        cdu_job[c] = job
        size += int(cdu_racks[c])
    n_jobs = job + 1 if train_cdus.size else 0
    rack_job = cdu_job[plant.rack_cdu]
    g = plant.rack.gpus
    gpu_bias = rng.normal(0.0, p.gpu_spread, size=(plant.n_racks, g)).astype(np.float32)
    noise_bank = (rng.standard_normal(plant.n_racks * g + _BANK) * p.gpu_noise).astype(np.float32)
    return WorkloadState(rack_kind=rack_kind, rack_job=rack_job, gpu_bias=gpu_bias, noise_bank=noise_bank,
                         n_jobs=n_jobs, inference_x=np.zeros(plant.n_racks))


def _new_jobs(s: WorkloadState, which: np.ndarray, ts: float, p: WorkloadParams,
              rng: np.random.Generator) -> None:
    """Start new jobs in the slots ``which`` (bool mask) at ``ts``."""
    n = s.n_jobs
    dur = rng.uniform(*p.job_duration_s, size=n)
    start = ts
    s.running = np.where(which, True, s.running)
    s.start_ts = np.where(which, start, s.start_ts)
    s.end_ts = np.where(which, start + dur, s.end_ts)
    lo, hi = p.swing_hz
    s.freq_hz = np.where(which, np.exp(rng.uniform(math.log(lo), math.log(hi), size=n)), s.freq_hz)
    s.phase = np.where(which, rng.uniform(0, 2 * math.pi, size=n), s.phase)
    every = rng.uniform(*p.checkpoint_every_s, size=n)
    s.ckpt_every = np.where(which, every, s.ckpt_every)
    s.ckpt_len = np.where(which, rng.uniform(*p.checkpoint_s, size=n), s.ckpt_len)
    s.ckpt_offset = np.where(which, rng.uniform(0, every), s.ckpt_offset)


def _start(s: WorkloadState, ts: float, p: WorkloadParams, rng: np.random.Generator) -> None:
    """First step: jobs caught at a random point of their life (most running, some between jobs)."""
    n = s.n_jobs
    s.running = np.zeros(n, dtype=bool)
    zeros = np.zeros(n)
    s.start_ts, s.end_ts, s.next_ts = zeros.copy(), zeros.copy(), zeros.copy()
    s.freq_hz, s.phase = zeros.copy(), zeros.copy()
    s.ckpt_every, s.ckpt_len, s.ckpt_offset = np.ones(n), zeros.copy(), zeros.copy()
    mean_dur = sum(p.job_duration_s) / 2
    mean_gap = sum(p.job_gap_s) / 2
    busy = rng.random(n) < mean_dur / (mean_dur + mean_gap)
    _new_jobs(s, busy, ts, p, rng)
    # a running job is somewhere in its life: shift its start into the past
    age = rng.uniform(0.0, 1.0, size=n) * (s.end_ts - s.start_ts)
    s.start_ts = np.where(busy, s.start_ts - age, s.start_ts)
    s.end_ts = np.where(busy, s.end_ts - age, s.end_ts)
    s.next_ts = np.where(busy, np.inf, ts + rng.uniform(0, 1, size=n) * mean_gap)
    s.started = True


def job_utilisation(s: WorkloadState, ts: float, p: WorkloadParams, rng: np.random.Generator) -> np.ndarray:
    """Advance the jobs' lives to ``ts`` and return each job's utilisation, 0..1 (shape (jobs,))."""
    if not s.started:
        _start(s, ts, p, rng)
    ended = s.running & (ts >= s.end_ts)
    if ended.any():
        s.running = s.running & ~ended
        s.next_ts = np.where(ended, ts + rng.uniform(*p.job_gap_s, size=s.n_jobs), s.next_ts)
    begin = ~s.running & (ts >= s.next_ts)
    if begin.any():
        _new_jobs(s, begin, ts, p, rng)
        s.next_ts = np.where(begin, np.inf, s.next_ts)
    age = ts - s.start_ts
    swing = np.clip(0.5 + 0.75 * np.sin(2 * math.pi * s.freq_hz * ts + s.phase), 0.0, 1.0)
    u = p.comm_util + (p.compute_util - p.comm_util) * swing
    ckpt = np.mod(age + s.ckpt_offset, s.ckpt_every) < s.ckpt_len
    u = np.where(ckpt, p.checkpoint_util, u)
    ramp = np.clip(age / p.job_ramp_s, 0.0, 1.0)
    u = p.idle_util + (u - p.idle_util) * ramp
    return np.where(s.running, u, p.idle_util)


def utilisation_step(s: WorkloadState, ts: float, dt_s: float, p: WorkloadParams,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Utilisation at ``ts``: per rack (racks,) float64 and per GPU (racks, gpus) float32, 0..1."""
    u_job = job_utilisation(s, ts, p, rng)
    a = math.exp(-dt_s / 600.0)  # inference racks: 10-minute memory of their own load noise
    s.inference_x = a * s.inference_x + math.sqrt(1 - a * a) * rng.standard_normal(s.inference_x.shape)
    daily = 0.5 + 0.5 * math.cos(2 * math.pi * (hour_utc(ts) - p.inference_peak_hour_utc) / 24.0)
    u_inf = p.inference_base + p.inference_amplitude * daily + 0.05 * s.inference_x
    u_train = u_job[np.maximum(s.rack_job, 0)] if s.n_jobs else np.zeros_like(u_inf)
    u_rack = np.where(s.rack_kind == TRAINING, u_train, np.where(s.rack_kind == INFERENCE, u_inf, p.idle_util))
    u_rack = np.clip(u_rack, 0.0, 1.0)
    n = s.gpu_bias.size
    off = int(rng.integers(0, s.noise_bank.size - n))
    u_gpu = u_rack.astype(np.float32)[:, None] + s.gpu_bias
    u_gpu += s.noise_bank[off:off + n].reshape(s.gpu_bias.shape)
    np.clip(u_gpu, 0.0, 1.0, out=u_gpu)
    return u_rack, u_gpu
