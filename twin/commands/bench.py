"""``twin bench NAME``: benchmarks, each reporting ratios against a baseline measured in the same run.

Each benchmark is a module ``twin/bench/<name>.py`` listed in :data:`BENCHES`, with
``register(parser)`` (its options) and ``run(args) -> dict`` (its figures). ``--json``
prints the dict as JSON; otherwise one ``key: value`` line each.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import time
from typing import Any

from twin.commands.progress import clock

__all__ = ["BENCHES", "register"]

#: Modules under twin.bench, one per ``twin bench NAME``.
BENCHES = ["replay", "ingest", "scale", "sink", "dcgm", "sim", "soak", "forecast", "day"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("bench", help="run a benchmark (figures against a same-run baseline)", description=__doc__)
    names = p.add_subparsers(dest="bench", metavar="NAME")
    names.required = True
    for name in BENCHES:
        mod = importlib.import_module(f"twin.bench.{name}")
        b = names.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0], description=mod.__doc__)
        b.add_argument("--json", action="store_true", help="print the figures as JSON")
        b.add_argument("--no-progress", action="store_true", help="no 'still measuring' line every 30 s on stderr")
        mod.register(b)
        b.set_defaults(func=_run(mod))


def _run(mod: Any) -> Any:
    def func(args: argparse.Namespace) -> int:
        name = mod.__name__.rsplit(".", 1)[-1]
        done = threading.Event()
        t0 = time.monotonic()

        def ticker() -> None:  # a benchmark's phases take minutes: say it is alive and for how long
            while not done.wait(30.0):
                sys.stderr.write(f"twin bench {name}: still measuring, {clock(time.monotonic() - t0)} elapsed\n")
                sys.stderr.flush()

        if not args.no_progress:
            threading.Thread(target=ticker, name="bench-progress", daemon=True).start()
        try:
            result: dict[str, Any] = mod.run(args)
        finally:
            done.set()
        if args.json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        else:
            for k, v in result.items():
                sys.stdout.write(f"{k}: {v}\n")
        return 0

    return func
