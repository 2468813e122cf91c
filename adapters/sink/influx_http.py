"""Line protocol to an InfluxDB 2 (or any ``/api/v2/write`` server) over influxdb-client's HTTP layer.

One ``POST /api/v2/write?precision=ns`` per batch through influxdb-client's
``WriteService`` (its urllib3 pool, auth header and URL handling), with the body
gzip'd here at level 1 (the client's own ``enable_gzip`` compresses at level 9,
which costs more CPU than the network saves on a LAN). No retries inside: the
caller (``twin.sink_delivery``) retries by error class, so every failure is
translated here into one of its :class:`~twin.sink_delivery.WriteError` classes.

``write_sync`` blocks; the sink calls it from one worker thread, so the event loop
never waits on HTTP.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterable
from typing import Any

import urllib3
from influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from pydantic import SecretStr

from twin.sink_delivery import Unavailable, WriteError, error_for_status

__all__ = ["InfluxHttpWriter"]


class InfluxHttpWriter:
    def __init__(self, url: str, token: SecretStr | None, org: str, bucket: str, timeout_ms: int = 10_000,
                 gzip_level: int = 1) -> None:
        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self.gzip_level = gzip_level
        self._client = InfluxDBClient(url=self.url, token=token.get_secret_value() if token else "", org=org,
                                      timeout=timeout_ms, enable_gzip=False)
        self._service = WriteService(self._client.api_client)
        self.lines_written = 0
        self._count_lock = threading.Lock()

    def write_sync(self, lines: Iterable[str]) -> None:
        batch = lines if isinstance(lines, list) else list(lines)
        if not batch:
            return
        body = "\n".join(batch).encode()
        if self.gzip_level:
            body = gzip.compress(body, compresslevel=self.gzip_level)
        try:
            self._service.post_write(
                org=self.org, bucket=self.bucket, body=body, precision="ns",
                content_encoding="gzip" if self.gzip_level else "identity",
                content_type="text/plain; charset=utf-8",
            )
        except ApiException as e:
            raw = e.body.decode(errors="replace") if isinstance(e.body, bytes) else str(e.body or e.reason or "")
            headers: Any = e.headers or {}
            retry_after = headers.get("Retry-After")
            raise error_for_status(int(e.status or 0), raw, retry_after) from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise Unavailable(f"{type(e).__name__}: {e}") from None
        except WriteError:
            raise
        with self._count_lock:  # the sink may have two requests in flight
            self.lines_written += len(batch)

    def close(self) -> None:
        self._client.close()

    def describe(self) -> str:
        return f"InfluxDB at {self.url} (bucket {self.bucket})"
