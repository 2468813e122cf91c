"""Settings from the environment (prefix ``TWIN_``), overridden by CLI flags.

Secrets are ``SecretStr``: they never appear in logs, errors or ``repr``. They come from
the environment or from files (``TWIN_MQTT_PASSWORD_FILE``, ``TWIN_INFLUX_TOKEN_FILE``,
e.g. Docker or Kubernetes secrets), never from the command line (visible in ``ps``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from twin.errors import ConfigError

__all__ = ["Settings", "journal_options", "load_settings", "snapshot_path"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TWIN_", extra="forbid", validate_default=True)

    plant: str = Field(default="phase1", description="plant file (.toml) or a name in plants/")
    broker: str | None = Field(default=None, description="mqtt://host:port or mqtts://...; none: embedded broker")
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_password_file: Path | None = Field(default=None, description="file holding the MQTT password")
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_cert_file: Path | None = Field(default=None, description="client certificate for mqtts://")
    mqtt_key_file: Path | None = Field(default=None, description="client key for mqtts://")
    mqtt_client_id: str | None = Field(
        default=None, description="client id prefix of the consuming services (default twin-{site}); fixed ids "
        "give them persistent sessions")
    mqtt_session_expiry_s: int = Field(
        default=3600, ge=0, description="how long the broker keeps a consuming service's session (and queues its "
        "QoS 1 messages) while it is away; 0: clean sessions")
    mqtt_queue_size: int = Field(default=100_000, ge=100, description="bounded incoming message queue")
    mqtt_shared_subscriptions: Literal["auto", "on", "off"] = Field(
        default="auto", description="hall workers: $share subscriptions where the broker has them (auto: MQTT 5 "
        "brokers that do not say otherwise), else the partition held by the worker's fixed session")
    mqtt_redelivery_wait_s: float = Field(
        default=0.0, ge=0, description="how long after a persistent session resumes the broker may still resend "
        "messages the lost connection had not acknowledged (0: Mosquitto, which resends them first; NATS: five "
        "times its mqtt ack_wait, 15 for deploy/nats' 3 s); the state service holds its windows open that long")
    data_dir: Path = Path("data")
    influx_url: str | None = None
    influx_token: SecretStr | None = None
    influx_token_file: Path | None = Field(default=None, description="file holding the InfluxDB API token")
    influx_org: str = "stargate"
    influx_bucket: str = "twin"
    sink_spool_max_mb: float = Field(default=512.0, gt=0, description="bound of the sink's disk spool, MiB")
    sink_mirror_s: float = Field(default=0.0, ge=0, description="> 0: mirror raw telemetry, one line per asset per N s")
    sink_batch_lines: int = Field(default=5000, ge=1, description="lines per InfluxDB write")
    sink_flush_s: float = Field(default=1.0, gt=0, description="longest a line waits before it is written, s")
    sink_stats_s: float = Field(default=60.0, ge=0, description="write the sink's own stats to InfluxDB (measurement "
                                "sink_stats) every N s; 0: never")
    scenario_tag: str | None = Field(
        default=None, pattern=r"^([a-z0-9-]{1,32})?$", description="the sink's tag scenario=NAME on every line: "
        "a what-if run's series kept apart from the live plant's; none: the plant file's [site] scenario; '': "
        "the live plant (no tag)")
    tick_s: float = Field(default=1.0, gt=0, description="state period, seconds of event time")
    snapshot_every_s: float = Field(
        default=10.0, gt=0, description="state snapshot period (warm restart); each snapshot truncates the journal")
    snapshot: bool = Field(default=True, description="save and restore state snapshots under data_dir/state")
    journal_fsync: str = Field(
        default="1s", description="the state service's journal (received telemetry, acknowledged once written): "
        "always (fsync before every acknowledgement), 1s (fsync once a second), never (the OS decides), off (no "
        "journal: telemetry acknowledged on receipt, a crash loses what came after the last snapshot)")
    journal_max_mb: float = Field(default=256.0, gt=0, description="bound of the journal, MiB: at the bound the "
                                  "state service snapshots at once, which truncates it")
    max_payload_bytes: int = Field(default=64 * 1024, ge=256)
    max_future_s: float = Field(default=300.0, ge=0, description="refuse telemetry whose ts is further ahead of "
                                "the wall clock at receipt, s; 0: no check")
    log_level: str = "INFO"

    @field_validator("broker", "influx_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        return v

    @model_validator(mode="after")
    def _secret_files(self) -> Settings:
        """``*_file`` settings: the secret is read from the file (one trailing newline stripped)."""
        for secret, path in (("mqtt_password", self.mqtt_password_file), ("influx_token", self.influx_token_file)):
            if path is None:
                continue
            try:
                text = path.read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
            except (OSError, UnicodeDecodeError) as e:
                why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
                raise ConfigError(f"setting {secret}_file (env TWIN_{secret.upper()}_FILE): cannot read {path}: "
                                  f"{why}") from None
            if not text:
                raise ConfigError(f"setting {secret}_file (env TWIN_{secret.upper()}_FILE): {path} is empty")
            setattr(self, secret, SecretStr(text))
        return self

    @field_validator("journal_fsync")
    @classmethod
    def _fsync(cls, v: str) -> str:
        if v not in ("always", "1s", "never", "off"):
            raise ValueError("must be one of always, 1s, never, off")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.upper()
        if v not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return v


def snapshot_path(settings: Settings, site: str) -> Path | None:
    return settings.data_dir / "state" / f"{site}.npz" if settings.snapshot else None


def journal_options(settings: Settings) -> dict[str, Any]:
    """The StateService keywords of the journal settings."""
    fsync = None if settings.journal_fsync == "off" else settings.journal_fsync
    return {"journal_fsync": fsync, "journal_max_bytes": int(settings.journal_max_mb * 1024 * 1024)}


def load_settings(**overrides: Any) -> Settings:
    """Settings from env, with CLI overrides (None means: not given on the command line)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as e:
        err = e.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else "settings"
        raise ConfigError(
            f"setting {name} (env TWIN_{name.upper()} or --{name.replace('_', '-')}): {err['msg']}"
        ) from None
