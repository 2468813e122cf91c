"""The ``twin`` command line: a thin layer over the services.

Each subcommand lives in ``twin/commands/<name>.py`` and exposes ``register(subparsers)``;
it sets ``func`` (returning an exit code). A bad argument or config stops with one
line on stderr saying what is wrong and how to fix it, and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from twin import __version__
from twin.errors import TwinError

__all__ = ["COMMANDS", "build_parser", "error_line", "main"]

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
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (env TWIN_DEBUG=1), for a bug report")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"twin.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # services (twin run, adapter, sim, record) say once a minute what they did: INFO unless told otherwise
    level = (getattr(args, "log_level", None) or os.environ.get("TWIN_LOG_LEVEL", "").upper() or
             getattr(args, "default_log_level", "WARNING"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    debug = bool(getattr(args, "debug", False)) or os.environ.get("TWIN_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        if debug:
            traceback.print_exc()
        sys.stderr.write(error_line(e) + "\n")
        return 2 if isinstance(e, TwinError | OSError) else 1


def error_line(e: BaseException) -> str:
    """The one line a user sees for an error: the project's own say what to do; a file or system error names
    the file; anything else is a bug, named as one."""
    if isinstance(e, TwinError):
        return f"twin: error: {e}"
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return f"twin: error: {where}{e.strerror or e}"
    return (f"twin: internal error: {type(e).__name__}: {e} (run again with --debug or TWIN_DEBUG=1 for the "
            "traceback, and report it)")


if __name__ == "__main__":
    raise SystemExit(main())
