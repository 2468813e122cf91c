"""DCGM adapter CPU cost per scrape round: dcgm-exporter pages parsed and slotted into rack messages.

Builds ``--trays`` exporter pages in dcgm-exporter's format (4 GPUs per GB300 compute tray, the
three families the adapter uses plus ``--other-families`` more, as a default exporter serves),
then measures in the same run, median of ``--repeat``:

- ``whole_page``: prometheus_client's parser over the whole page (the baseline);
- ``adapter_parse``: :func:`adapters.field.dcgm.parse_exposition` (only the three families are parsed);
- ``assemble``: :class:`adapters.field.dcgm.RackAssembler` slotting the samples into racks.

Figures are CPU milliseconds per tray page; ``hall_round_s`` is one hall (174 racks x 18 trays =
3,132 pages) per round, which bounds the scrape interval one adapter process can keep.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from twin.errors import need_extra

__all__ = ["register", "run"]

TRAYS_PER_HALL = 174 * 18
GPUS_PER_TRAY = 4


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trays", type=int, default=540, help="tray pages per round (default 540: 30 racks)")
    p.add_argument("--other-families", type=int, default=20, help="other DCGM families per page (default 20)")
    p.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median counts")


def page(host: str, rack_no: int, others: int) -> str:
    """One exporter page in dcgm-exporter's format and labels."""
    fams = [("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", 61), ("DCGM_FI_DEV_POWER_USAGE",
            "Power draw (in W).", 1012.345678), ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", 87)]
    fams += [(f"DCGM_FI_DEV_OTHER_{k}", "Another field.", k) for k in range(others)]
    lines = []
    for name, help_text, value in fams:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
        for i in range(GPUS_PER_TRAY):
            lines.append(f'{name}{{gpu="{i}",UUID="GPU-{rack_no:04d}-{host[-4:]}-{i}",'
                         f'pci_bus_id="00000000:{24 + i:02X}:00.0",device="nvidia{i}",modelName="NVIDIA GB300",'
                         f'Hostname="{host}",'
                         f'DCGM_FI_DRIVER_VERSION="580.65.06"}} {value}')
    return "\n".join(lines) + "\n"


def _median(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def run(args: argparse.Namespace) -> dict[str, Any]:
    text_string_to_metric_families = need_extra("prometheus_client.parser", "adapters",
                                                "twin bench dcgm").text_string_to_metric_families
    from adapters.field.dcgm import DcgmConfig, RackAssembler, parse_exposition
    trays = max(18, args.trays - args.trays % 18)
    hosts = [(f"h1-r{r:03d}-ct{t:02d}", r) for r in range(1, trays // 18 + 1) for t in range(1, 19)]
    cfg = DcgmConfig.model_validate({
        "endpoints": ["http://bench:9400/metrics"], "gpus_per_rack": 72, "aux_power_w": 30_000.0,
        "hosts": [{"hostname": h, "hall": "h1", "rack": f"h1-r{r:03d}",
                   "slots": [4 * (int(h[-2:]) - 1) + k for k in range(4)]} for h, r in hosts]})
    pages = [page(h, r, args.other_families) for h, r in hosts]
    samples = [s for p in pages for s in parse_exposition(p, "x")]
    assert len(samples) == 3 * GPUS_PER_TRAY * trays
    asm = RackAssembler(cfg)

    def whole() -> None:
        for p in pages:
            for fam in text_string_to_metric_families(p):
                list(fam.samples)

    whole_s = _median(whole, args.repeat)
    parse_s = _median(lambda: [parse_exposition(p, "x") for p in pages], args.repeat)
    asm_s = _median(lambda: asm.assemble(samples), args.repeat)
    racks = len(asm.assemble(samples))
    per_tray_ms = 1e3 * (parse_s + asm_s) / trays
    return {
        "bench": "dcgm",
        "trays": trays,
        "racks": racks,
        "other_families": args.other_families,
        "whole_page_ms_per_tray": round(1e3 * whole_s / trays, 3),
        "adapter_parse_ms_per_tray": round(1e3 * parse_s / trays, 3),
        "assemble_ms_per_tray": round(1e3 * asm_s / trays, 4),
        "speedup_vs_whole_page": round(whole_s / parse_s, 2),
        "hall_round_s": round(per_tray_ms * TRAYS_PER_HALL / 1e3, 2),
        "racks_per_process_at_1hz": int(1e3 / (per_tray_ms * 18)),
    }
