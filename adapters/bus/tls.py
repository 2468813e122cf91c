"""One TLS client context for every MQTT connection the twin makes (the Bus, the bulk publisher, the replay
pacer, the health check): the system's CA bundle or ``TWIN_MQTT_CA_FILE``, and a client certificate when given."""

from __future__ import annotations

import ssl
from pathlib import Path

from twin.errors import ConfigError

__all__ = ["tls_context"]


def tls_context(tls: bool, ca_file: str | Path | None = None, cert_file: str | Path | None = None,
                key_file: str | Path | None = None, where: str = "the broker") -> ssl.SSLContext | None:
    """None for plain MQTT; else a verifying client context. Unreadable files: one-line :class:`ConfigError`."""
    if not tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        if cert_file:
            ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    except (OSError, ssl.SSLError) as e:  # a missing or unreadable CA, certificate or key file
        raise ConfigError(f"TLS files for {where} (TWIN_MQTT_CA_FILE, TWIN_MQTT_CERT_FILE, "
                          f"TWIN_MQTT_KEY_FILE): {e}") from None
    return ctx
