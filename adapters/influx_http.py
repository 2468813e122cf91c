"""Line protocol to an InfluxDB 2 (or any ``/api/v2/write`` server) through influxdb-client.

A first version: one synchronous, gzip'd write per batch, run in a worker thread so
the event loop never waits on HTTP; failures are retried with backoff by the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from pydantic import SecretStr

__all__ = ["InfluxHttpWriter"]


class InfluxHttpWriter:
    def __init__(self, url: str, token: SecretStr | None, org: str, bucket: str, timeout_ms: int = 10_000) -> None:
        self.url, self.org, self.bucket = url, org, bucket
        self._client = InfluxDBClient(url=url, token=token.get_secret_value() if token else "", org=org,
                                      timeout=timeout_ms, enable_gzip=True)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self.lines_written = 0

    def write_sync(self, lines: Iterable[str]) -> None:
        batch = list(lines)
        if batch:
            self._api.write(bucket=self.bucket, org=self.org, record=batch, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
            self.lines_written += len(batch)

    async def write(self, lines: Iterable[str]) -> None:
        await asyncio.to_thread(self.write_sync, list(lines))

    def close(self) -> None:
        self._client.close()

    def describe(self) -> str:
        return f"InfluxDB at {self.url} (bucket {self.bucket})"
