"""Choose where the sink writes (InfluxDB when configured, else line-protocol files) and how."""

from __future__ import annotations

from typing import Any

from adapters.sink.influx_http import InfluxHttpWriter
from adapters.sink.line_files import LineFileWriter
from twin.services.sink import LineWriter
from twin.settings import Settings

__all__ = ["make_writer", "sink_options"]


def make_writer(settings: Settings) -> LineWriter:
    if settings.influx_url:
        return InfluxHttpWriter(settings.influx_url, settings.influx_token, settings.influx_org,
                                settings.influx_bucket)
    return LineFileWriter(settings.data_dir / "lines")


def sink_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of :class:`~twin.services.sink.SinkService` from the settings.

    The spool lives under the data directory, one per destination kind, so files and
    InfluxDB runs sharing a data directory never drain into each other.
    """
    kind = "influx" if settings.influx_url else "files"
    return {
        "spool_dir": settings.data_dir / "spool" / kind,
        "spool_max_bytes": int(settings.sink_spool_max_mb * 1024 * 1024),
        "mirror_s": settings.sink_mirror_s,
        "batch_lines": settings.sink_batch_lines,
        "flush_s": settings.sink_flush_s,
        "stats_to_db_s": settings.sink_stats_s,
        # two requests in flight let the database work while the next batch is compressed (about +15 %
        # here); files keep one writer so their lines stay in order
        "max_inflight": 2 if settings.influx_url else 1,
    }
