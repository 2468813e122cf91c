"""``twin backtest``: replay a log (or a simulated history) through the forecaster; metrics for every model.

The log is a log of the twin's outputs (``twin/state``, ``twin/state/+``) or raw telemetry (run
through the state model in event time). ``--simulate 21d`` builds the history in process instead:
the simulator at ``--step`` (default 900 s; the last ``--fine-tail``, default 15 days, at 60 s)
feeding the state model, optionally saved with ``--save-states FILE``. With 21 days and the
default 14 training days, every forecast scored or calibrating a scored one's interval then
sees 1-min data (tests/e2e/test_forecast_backtest.py holds the figures of exactly this run).
"""

from __future__ import annotations

import argparse
import json
import sys

from twin.commands.common import duration, in_unit, output_file
from twin.commands.progress import Progress
from twin.contract import QUANTITIES
from twin.errors import ConfigError
from twin.forecast.backtest import plot_backtest, run_backtest
from twin.forecast.engine import PRODUCTS
from twin.forecast.states import simulate_states, states_from_log, write_states_log

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("backtest", help="forecast skill on a log or a simulated history", description=__doc__)
    p.add_argument("log", nargs="?", help="telemetry log (twin/state messages or raw telemetry; .gz ok)")
    p.add_argument("--quantity", choices=QUANTITIES, default="facility_mw")
    p.add_argument("--product", choices=list(PRODUCTS), default="day-ahead")
    p.add_argument("--train-days", type=in_unit("d"), default=14.0, metavar="DAYS",
                   help="history that only warms up the models: days, or a duration such as 36h (default 14)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--plot", type=output_file, metavar="FILE.png", help="draw actuals against forecasts (matplotlib)")
    p.add_argument("--all", action="store_true", help="metrics for every quantity, not only --quantity")
    g = p.add_argument_group("simulated history (instead of LOG)")
    g.add_argument("--simulate", type=duration(), metavar="DURATION", help="simulate this much history, e.g. 21d")
    g.add_argument("--scenario", default="phase1", help="simulator scenario (default phase1)")
    g.add_argument("--step", type=duration(), default=900.0, help="simulator step (default 900s)")
    g.add_argument("--fine-tail", type=duration(allow_zero=True), default=15 * 86400.0,
                   help="last part simulated at 60 s steps (default 15d; 0: none)")
    g.add_argument("--seed", type=int, help="simulator seed (default: the scenario's)")
    g.add_argument("--save-states", type=output_file, metavar="FILE",
                   help="also write the simulated states as a log (.gz ok)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    if (args.log is None) == (args.simulate is None):
        raise ConfigError("twin backtest: give a LOG or --simulate DURATION (one of them)")
    with Progress("backtest: history", 1.0, None) as prog:
        def tick(frac: float) -> None:
            prog.update(frac)

        if args.simulate is not None:
            stream = simulate_states(args.scenario, args.simulate, args.step, args.fine_tail, 60.0, args.seed, tick)
            if args.save_states:
                states = list(stream)
                from sims.scenario import load_scenario
                from twin.plant import load_plant

                site = load_plant(load_scenario(args.scenario).plant).site.id
                write_states_log(args.save_states, site, iter(states))
                stream = iter(states)
        else:
            stream = states_from_log(args.log, progress=tick)
        result = run_backtest(stream, args.product, args.train_days)
    if result.states == 0 or not result.metrics.n.any():
        raise ConfigError(f"twin backtest: nothing scored: the history ({result.states} states) is shorter than "
                          f"--train-days {args.train_days:g} plus one {args.product} horizon")
    out = result.as_json(None if args.all else args.quantity)
    if args.plot:
        try:
            plot_backtest(result, args.quantity, args.plot)
        except ValueError as e:
            raise ConfigError(f"twin backtest: --plot: {e}") from None
        out["plot"] = args.plot
    if args.json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write(f"{args.product} backtest: {out['states']} states, {out['test_days']} days scored\n")
        for q, models in out["metrics"].items():
            sys.stdout.write(f"{q}\n")
            for m, v in models.items():
                sys.stdout.write(f"  {m:<16} MAE {v['mae']}  MAPE {v['mape']} %  MASE {v['mase']}  "
                                 f"coverage {v['coverage']}\n")
    return 0
