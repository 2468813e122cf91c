"""GPU workload behaviour: synchronous training swings, checkpoints, job starts, inference's daily cycle."""

from __future__ import annotations

import numpy as np

from sims.params import WorkloadParams
from sims.timebase import parse_start
from sims.workload import IDLE, INFERENCE, TRAINING, init_workload, job_utilisation, utilisation_step
from twin.plant import Plant

DAY0 = parse_start("2026-03-02")


def test_racks_are_split_by_whole_cdus_into_jobs_inference_and_idle(phase1: Plant) -> None:
    p = WorkloadParams()
    s = init_workload(phase1, p, np.random.default_rng(0))
    for kind in (TRAINING, INFERENCE, IDLE):
        per_cdu = np.bincount(phase1.rack_cdu, weights=(s.rack_kind == kind), minlength=len(phase1.cdu_ids))
        assert set(np.unique(per_cdu)) <= {0.0, 6.0}  # a CDU's six racks do one thing
    shares = np.bincount(s.rack_kind, minlength=3) / phase1.n_racks
    assert abs(shares[TRAINING] - p.training_share) < 0.1 and abs(shares[INFERENCE] - p.inference_share) < 0.1
    assert ((s.rack_job >= 0) == (s.rack_kind == TRAINING)).all()
    sizes = s.job_racks
    assert s.n_jobs >= 3 and sizes.min() >= p.job_racks[0] - 6 and sizes[:-1].max() <= p.job_racks[1] + 6


def test_a_job_swings_in_step_and_dips_for_checkpoints(phase1: Plant) -> None:
    p = WorkloadParams()
    rng = np.random.default_rng(1)
    s = init_workload(phase1, p, rng)
    u_rack, u = utilisation_step(s, DAY0, 1.0, p, rng)
    for j in range(s.n_jobs):  # every rack of a job has the same load at the same instant
        assert np.ptp(u_rack[s.rack_job == j]) == 0.0
    assert u.shape == (phase1.n_racks, phase1.rack.gpus) and u.dtype == np.float32
    assert u.min() >= 0.0 and u.max() <= 1.0
    # one running job, sampled each 50 ms for a minute: it swings between comm and compute levels
    j = int(np.flatnonzero(s.running)[0])
    s.ckpt_len[:] = 0.0
    samples = np.array([job_utilisation(s, DAY0 + 100 + 0.05 * k, p, rng)[j] for k in range(1200)])
    assert samples.max() > p.compute_util - 0.01 and samples.min() < p.comm_util + 0.01
    # a checkpoint: the whole job drops to near idle
    s.ckpt_every[j], s.ckpt_len[j], s.ckpt_offset[j], s.end_ts[j] = 3600.0, 120.0, 0.0, np.inf
    hour = s.start_ts[j] + 3600.0 * np.ceil((DAY0 + 1000 - s.start_ts[j]) / 3600.0)  # a whole hour of age
    assert job_utilisation(s, hour + 60, p, rng)[j] == p.checkpoint_util
    assert job_utilisation(s, hour + 130, p, rng)[j] > p.checkpoint_util


def test_jobs_end_and_start_as_steps(phase1: Plant) -> None:
    p = WorkloadParams(job_duration_s=(3600.0, 3600.0), job_gap_s=(600.0, 600.0), job_ramp_s=5.0)
    rng = np.random.default_rng(2)
    s = init_workload(phase1, p, rng)
    job_utilisation(s, DAY0, p, rng)
    s.running[:] = False
    s.next_ts[:] = DAY0 + 10  # every job starts at +10 s
    before = job_utilisation(s, DAY0 + 9, p, rng)
    assert (before == p.idle_util).all()
    job_utilisation(s, DAY0 + 10, p, rng)
    assert s.running.all() and (s.start_ts == DAY0 + 10).all()
    s.ckpt_len[:] = 0.0  # no checkpoint right at the start
    after = job_utilisation(s, DAY0 + 10 + 5, p, rng)  # ramped up within seconds
    assert (after > p.comm_util - 0.01).all()
    ended = job_utilisation(s, DAY0 + 10 + 3600, p, rng)
    assert not s.running.any() and (ended == p.idle_util).all()
    assert (s.next_ts == DAY0 + 10 + 3600 + 600).all()


def test_inference_follows_a_daily_cycle(phase1: Plant) -> None:
    p = WorkloadParams()
    rng = np.random.default_rng(3)
    s = init_workload(phase1, p, rng)
    inf = s.rack_kind == INFERENCE
    by_hour = {}
    for h in range(24):
        u_rack, _ = utilisation_step(s, DAY0 + h * 3600, 3600.0, p, rng)
        by_hour[h] = float(u_rack[inf].mean())
    peak, trough = int(p.inference_peak_hour_utc), int(p.inference_peak_hour_utc + 12) % 24
    assert by_hour[peak] - by_hour[trough] > 0.8 * p.inference_amplitude
    idle, _ = utilisation_step(s, DAY0, 1.0, p, rng)
    assert (idle[s.rack_kind == IDLE] == p.idle_util).all()
