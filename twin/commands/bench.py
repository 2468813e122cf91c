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
from typing import Any

__all__ = ["BENCHES", "register"]

#: Modules under twin.bench, one per ``twin bench NAME``.
BENCHES = ["replay", "ingest", "sink", "dcgm", "sim", "soak", "forecast", "day"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("bench", help="run a benchmark (figures against a same-run baseline)", description=__doc__)
    names = p.add_subparsers(dest="bench", metavar="NAME")
    names.required = True
    for name in BENCHES:
        mod = importlib.import_module(f"twin.bench.{name}")
        b = names.add_parser(name, help=(mod.__doc__ or "").strip().splitlines()[0], description=mod.__doc__)
        b.add_argument("--json", action="store_true", help="print the figures as JSON")
        mod.register(b)
        b.set_defaults(func=_run(mod))


def _run(mod: Any) -> Any:
    def func(args: argparse.Namespace) -> int:
        result: dict[str, Any] = mod.run(args)
        if args.json:
            sys.stdout.write(json.dumps(result, indent=2) + "\n")
        else:
            for k, v in result.items():
                sys.stdout.write(f"{k}: {v}\n")
        return 0

    return func
