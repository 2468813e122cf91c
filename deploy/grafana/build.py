"""Generate the Grafana dashboards (``grafana/dashboards/*.json``), the alert rules
(``grafana/provisioning/alerting/twin.yaml``) and the docs' layout pictures from code and the plant file.

    python deploy/grafana/build.py            # write the files
    python deploy/grafana/build.py --check    # exit 1 when a committed file differs from the code

The generator is the package :mod:`twin.dashboards` (every query InfluxQL against the sink's schema); this
script only runs it, from a checkout without installing the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from twin.dashboards.build import main

if __name__ == "__main__":
    raise SystemExit(main())
