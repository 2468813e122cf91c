"""``twin import FORMAT FILE... --mapping MAP --out LOG``: history from elsewhere into a telemetry log.

FORMAT is ``lp`` (InfluxDB line protocol, as ``influxd inspect export-lp`` and the
sink's files write it), ``annotated-csv`` (as ``influx query --raw`` writes it) or
``csv`` (a header row, a time column). The mapping file (TOML) says which rows become
which contract messages; every message is validated against the contract before the
log is written, and a mapping that does not fit stops with the file, line and reason.
Then ``twin replay LOG`` publishes it.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import os
import sys
from pathlib import Path

from adapters.logs.telemetry_log import TelemetryLogWriter
from twin.commands.common import output_file
from twin.commands.progress import Progress, human_bytes
from twin.errors import ConfigError
from twin.importers.mapping import MappingError, build_messages, load_mapping
from twin.importers.rows import FORMATS, PRECISIONS, Row, RowError, TextOptions, read_rows
from twin.timespec import format_t

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("import", help="turn InfluxDB / CSV history into a telemetry log", description=__doc__)
    p.add_argument("format", choices=FORMATS, help="lp, annotated-csv or csv")
    p.add_argument("files", nargs="+", metavar="FILE", help="input files (.gz allowed)")
    p.add_argument("--mapping", required=True, help="mapping file (TOML): rows to contract topics and fields")
    p.add_argument("--out", required=True, type=output_file, help="telemetry log to write (.jsonl or .jsonl.gz)")
    p.add_argument("--site", help="site of the topics (overrides the mapping's site)")
    p.add_argument("--precision", choices=list(PRECISIONS), default="ns",
                   help="line protocol timestamp precision (default ns, as export-lp writes)")
    p.add_argument("--encoding", type=_encoding, default="utf-8-sig",
                   help="text encoding of the files (default UTF-8, with or without a BOM; e.g. latin-1, cp1252)")
    p.add_argument("--delimiter", type=_delimiter,
                   help="csv: the cell separator, e.g. ';' or tab (default: sniffed from the file)")
    p.add_argument("--timezone", type=_timezone, metavar="ZONE",
                   help="csv: the zone of times written without one, e.g. Europe/Oslo or UTC (default: refuse them)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress (a bar on a terminal, else a line every 10 s)")
    p.set_defaults(func=_cmd)


def _encoding(text: str) -> str:
    try:
        name = codecs.lookup(text).name
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding {text!r} (e.g. utf-8, latin-1, cp1252)") from None
    return "utf-8-sig" if name == "utf-8" else name


def _delimiter(text: str) -> str:
    d = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(text.lower(), text)
    if len(d) != 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not one character (e.g. ';', ',', tab)")
    return d


def _timezone(text: str) -> str:
    if text.upper() == "UTC":
        return "UTC"
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"unknown time zone {text!r} (an IANA name such as Europe/Oslo, or UTC)") \
            from None
    return text


def _cmd(args: argparse.Namespace) -> int:
    try:
        mapping = load_mapping(args.mapping, args.site)
    except MappingError as e:
        raise ConfigError(str(e)) from None
    for f in args.files:
        if Path(f).is_dir():
            raise ConfigError(f"{f} is a folder: give the export files in it")
        if not Path(f).is_file():
            raise ConfigError(f"{f}: no such file")

    text = TextOptions(encoding=args.encoding, delimiter=args.delimiter, timezone=args.timezone)
    sizes = [Path(f).stat().st_size for f in args.files]

    def rows(progress: Progress) -> list[Row]:
        out: list[Row] = []
        before = 0
        for f, size in zip(args.files, sizes, strict=True):
            def seen(n: int, b: int = before) -> None:
                progress.update(b + n)

            out.extend(read_rows(f, args.format, precision=args.precision, time_column=mapping.time_column,
                                 time_unit=mapping.time_unit, measurement_column=mapping.measurement_column,
                                 text=text, progress=seen))
            before += size
        return out

    origin = args.files[0] if len(args.files) == 1 else f"{args.files[0]} (+{len(args.files) - 1} more)"
    try:
        with Progress("import", float(sum(sizes)), human_bytes, show=False if args.no_progress else None,
                      extra=lambda: f"{len(args.files)} file(s)") as progress:
            result = build_messages(rows(progress), mapping, origin)
    except (MappingError, RowError) as e:
        raise ConfigError(f"{e}; nothing written") from None
    out = Path(args.out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp{'.gz' if out.name.endswith('.gz') else ''}")
    try:
        with TelemetryLogWriter(tmp) as w:
            for ts, topic, payload in result.messages:
                w.write(ts, topic, payload, 1, False)
        tmp.replace(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    first, last = result.messages[0][0], result.messages[-1][0]
    extra = ""
    if result.unmatched:
        extra = "; rows matching no [[message]] (ignored): " + ", ".join(
            f"{k} {n}" for k, n in sorted(result.unmatched.items())[:10])
    sys.stderr.write(f"twin import: {len(result.messages):,} messages from {result.rows:,} rows "
                     f"({format_t(first)} .. {format_t(last)}) to {out}{extra}\n")
    return 0
