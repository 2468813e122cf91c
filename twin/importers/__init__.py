"""Importers: history from InfluxDB line protocol, annotated CSV and plain CSV into telemetry logs.

:mod:`.rows` reads each format into :class:`.rows.Row` (one time, one bag of values, a
line number); :mod:`.mapping` turns rows into validated contract messages with a small
TOML mapping file. ``twin import`` writes the messages as a telemetry log that
``twin replay`` publishes. No network here.
"""

from twin.importers.mapping import Mapping, MappingError, build_messages, load_mapping
from twin.importers.rows import FORMATS, Row, read_rows

__all__ = ["FORMATS", "Mapping", "MappingError", "Row", "build_messages", "load_mapping", "read_rows"]
