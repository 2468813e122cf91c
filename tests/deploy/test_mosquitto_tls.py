"""The broker's TLS listener option (MQTT_TLS=true): init.sh copies the certificates and writes the
listener, and a real Mosquitto serves it with the repo's config; only the port is changed."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from tests.deploy.broker import PASSWORDS, password_env, repo_config, run_init
from tests.servers import MosquittoServer, free_port

pytestmark = pytest.mark.integration


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d: Path) -> None:
    """A CA and a server certificate for localhost / 127.0.0.1, as the certs README shows."""
    d.mkdir(parents=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=mosquitto", "-keyout", "server.key",
             "-out", "server.csr", cwd=d)
    (d / "san.ext").write_text("subjectAltName=DNS:mosquitto,DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-out", "server.crt", "-extfile", "san.ext", cwd=d)


async def _login(port: int, ctx: ssl.SSLContext) -> None:
    async with aiomqtt.Client("127.0.0.1", port, username="sink", password=PASSWORDS["sink"], tls_context=ctx,
                              protocol=aiomqtt.ProtocolVersion.V5, timeout=10) as c:
        await c.publish("stargate/narvik/twin/sink", b"{}", qos=1)


def test_tls_listener_from_init(tmp_path: Path) -> None:
    certs, auth, data = tmp_path / "certs", tmp_path / "auth", tmp_path / "data"
    make_certs(certs)
    data.mkdir()
    r = run_init(auth, password_env({"MQTT_TLS": "true", "MQTT_CERT_DIR": str(certs)}))
    assert r.returncode == 0, r.stderr
    tls_conf = auth / "conf.d" / "tls.conf"
    port = free_port()
    text = tls_conf.read_text()
    assert "listener 8883\n" in text
    tls_conf.write_text(text.replace("listener 8883\n", f"listener {port} 127.0.0.1\n"))
    server = MosquittoServer(tmp_path / "broker", allow_anonymous=False, extra_config=repo_config(auth, data)).start()
    try:
        trusting = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        asyncio.run(_login(port, trusting))
        with pytest.raises((aiomqtt.MqttError, ssl.SSLError)):
            asyncio.run(_login(port, ssl.create_default_context()))  # does not trust the site's CA
    finally:
        server.stop()
    off = run_init(auth, password_env({"MQTT_TLS": "false"}))
    assert off.returncode == 0 and not tls_conf.exists()


def test_tls_without_certificates_is_a_clear_error(tmp_path: Path) -> None:
    r = run_init(tmp_path / "auth", password_env({"MQTT_TLS": "true", "MQTT_CERT_DIR": str(tmp_path / "none")}))
    assert r.returncode == 1
    assert "ca.crt is missing" in r.stderr
