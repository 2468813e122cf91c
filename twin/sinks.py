"""Choose where the sink writes: InfluxDB when configured, else line-protocol files."""

from __future__ import annotations

from adapters.influx_http import InfluxHttpWriter
from adapters.line_files import LineFileWriter
from twin.services.sink import LineWriter
from twin.settings import Settings

__all__ = ["make_writer"]


def make_writer(settings: Settings) -> LineWriter:
    if settings.influx_url:
        return InfluxHttpWriter(settings.influx_url, settings.influx_token, settings.influx_org,
                                settings.influx_bucket)
    return LineFileWriter(settings.data_dir / "lines")
