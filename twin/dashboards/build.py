"""Write (or ``--check``) every generated file: the dashboards, the alert rules and the docs' layout pictures.

    python deploy/grafana/build.py                    # write them
    python deploy/grafana/build.py --check            # exit 1, one line, when a committed file differs
    python deploy/grafana/build.py --plant phase1     # the plant file the thresholds come from (default phase1)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twin.dashboards.alerts import render_alerts
from twin.dashboards.boards import BOARDS
from twin.dashboards.layout import svg_of
from twin.errors import TwinError
from twin.plant import Plant, load_plant

__all__ = ["REPO", "generated", "main"]

REPO = Path(__file__).resolve().parents[2]
DASH_DIR = Path("grafana") / "dashboards"
ALERTS = Path("grafana") / "provisioning" / "alerting" / "twin.yaml"
PICTURES = Path("docs") / "img" / "dashboards"


def dashboards(plant: Plant) -> dict[str, dict[str, object]]:
    """Board name -> its Grafana JSON model."""
    return {name: make(plant).json() for name, make in BOARDS.items()}


def generated(plant: Plant) -> dict[Path, str]:
    """Repo-relative path -> the text the generator makes of it."""
    out: dict[Path, str] = {}
    for name, dash in dashboards(plant).items():
        out[DASH_DIR / f"{name}.json"] = json.dumps(dash, indent=2) + "\n"
        out[PICTURES / f"{name}.svg"] = svg_of(dash)
    out[ALERTS] = render_alerts(plant)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="build.py", description="Generate grafana/dashboards/*.json, the alert rules "
                                "and docs/img/dashboards/*.svg from the plant file")
    p.add_argument("--check", action="store_true", help="exit 1 when a committed file differs from the code")
    p.add_argument("--plant", default="phase1", help="plant file or name (default phase1: the live plant)")
    p.add_argument("--out", type=Path, default=REPO, help="the repository to write into (default this one)")
    args = p.parse_args(argv)
    try:
        plant = load_plant(args.plant)
    except TwinError as e:
        sys.stderr.write(f"build.py: {e}\n")
        return 2
    files = generated(plant)
    if args.check:
        stale = [str(rel) for rel, text in files.items()
                 if not (args.out / rel).exists() or (args.out / rel).read_text() != text]
        # a board removed from the code must not stay provisioned
        extra = sorted(str(f.relative_to(args.out)) for f in (args.out / DASH_DIR).glob("*.json")
                       if f.relative_to(args.out) not in files)
        if stale or extra:
            sys.stderr.write(f"build.py: {', '.join(stale + extra)} differ from the code: run python "
                             "deploy/grafana/build.py\n")
            return 1
        return 0
    for f in (args.out / DASH_DIR).glob("*.json"):
        if f.relative_to(args.out) not in files:
            f.unlink()
    for rel, text in files.items():
        path = args.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
