"""``twin asyncapi``: print the AsyncAPI 3.0 document generated from the contract models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin.commands.common import output_file

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document of the wire contract",
                       description=__doc__)
    p.add_argument("--out", type=output_file, help="write to this file instead of stdout (e.g. docs/asyncapi.yaml)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    from twin.asyncapi import asyncapi_yaml

    text = asyncapi_yaml()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
