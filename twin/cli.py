"""The ``twin`` command line: a thin layer over the services.

Each subcommand lives in ``twin/commands/<name>.py`` and exposes ``register(subparsers)``;
it sets ``func`` (returning an exit code). A bad argument or config stops with one
line on stderr saying what is wrong and how to fix it, and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from twin import __version__
from twin.errors import TwinError

__all__ = ["COMMANDS", "build_parser", "main"]

#: Modules under twin.commands that register subcommands, in --help order.
COMMANDS = ["up", "run", "sim", "asyncapi", "adapter", "record", "replay", "import_log", "bench", "health", "backtest"]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but an error is one line: what is wrong and where to look."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="twin", description="Digital twin of Stargate Norway (Kvandal, Narvik).")
    parser.add_argument("--version", action="version", version=f"twin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"twin.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = getattr(args, "log_level", None) or "WARNING"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except TwinError as e:  # every error of the project's own: one line, no traceback
        sys.stderr.write(f"twin: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
