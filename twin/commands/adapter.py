"""``twin adapter NAME --config FILE``: publish telemetry from the plant's own interfaces.

NAME is ``dcgm`` (GPU racks from dcgm-exporter), ``modbus`` (CDUs over Modbus TCP) or
``opcua`` (hydro feeders and heat meters over OPC UA). The config file (TOML,
examples in ``deploy/adapters/``) is validated before anything connects. Health:
``online``/``offline`` on ``stargate/{site}/twin/health/adapter-<name>`` and a JSON
status note under ``.../adapter-<name>/status``. SIGINT/SIGTERM stop it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any

from adapters.field.base import AdapterConfig, Emitter, load_adapter_config, plant_mismatch
from twin.commands.common import (
    add_broker_options,
    duration,
    make_bus,
    need_broker,
    run_service,
    run_until_stopped,
)
from twin.errors import ConfigError, need_extra
from twin.plant import load_plant
from twin.settings import load_settings

__all__ = ["ADAPTERS", "build_adapter", "register"]

log = logging.getLogger("twin.adapter")

#: NAME -> (module, adapter class, config class)
ADAPTERS: dict[str, tuple[str, str, str]] = {
    "dcgm": ("adapters.field.dcgm", "DcgmAdapter", "DcgmConfig"),
    "modbus": ("adapters.field.modbus_cdu", "ModbusAdapter", "ModbusConfig"),
    "opcua": ("adapters.field.opcua_meters", "OpcuaAdapter", "OpcuaConfig"),
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("adapter", help="publish telemetry from DCGM, Modbus CDUs or OPC UA meters",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(ADAPTERS), metavar="NAME", help="dcgm | modbus | opcua")
    p.add_argument("--config", required=True, help="the adapter's TOML file (see deploy/adapters/)")
    add_broker_options(p, required=True)
    p.add_argument("--plant", help="check the config's asset ids against this plant file or name (e.g. phase1)")
    p.add_argument("--duration", type=duration(), help="stop by itself after this long: 90, 90s, 10m, 1h30m, 14d")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="default INFO: a line a minute of what it did (env TWIN_LOG_LEVEL)")
    p.set_defaults(func=_cmd, default_log_level="INFO")


def build_adapter(kind: str, config_path: str) -> tuple[Any, AdapterConfig]:
    """Load and validate the config, and construct the adapter (nothing connects yet)."""
    module, cls, cfg_cls = ADAPTERS[kind]
    mod = need_extra(module, "adapters", f"twin adapter {kind}")
    cfg = load_adapter_config(config_path, getattr(mod, cfg_cls))
    return getattr(mod, cls)(cfg), cfg


def _cmd(args: argparse.Namespace) -> int:
    adapter, cfg = build_adapter(args.name, args.config)
    if args.plant:
        plant = load_plant(args.plant)
        why = plant_mismatch(adapter.assets(), plant, getattr(cfg, "gpus_per_rack", None))
        if why is None and plant.site.id != cfg.site:
            why = f"site {cfg.site!r}, but the plant's site is {plant.site.id!r}"
        if why:
            raise ConfigError(f"{args.config} does not fit plant {args.plant}: {why}")
    settings = load_settings(broker=args.broker, mqtt_username=args.mqtt_username, mqtt_ca_file=args.mqtt_ca_file,
                             mqtt_client_id=args.mqtt_client_id, mqtt_session_expiry_s=args.mqtt_session_expiry_s)
    url = need_broker(settings.broker)
    name = adapter.name

    async def main(stop: asyncio.Event) -> int:
        t0 = time.monotonic()
        async with make_bus(settings, url, f"adapter-{name}", cfg.site, wait_for_broker=True, stop=stop,
                            give_up_after_s=args.duration) as bus:
            emitter = Emitter(bus, cfg.site, name)
            task = asyncio.create_task(adapter.run(emitter), name=f"adapter-{name}")

            def report() -> None:
                st = adapter.health.status(name, time.time())
                log.info("%s: %d messages, %d/%d devices ok%s", name, emitter.published, st.devices_ok,
                         st.devices_total, f", failing: {', '.join(st.failing)}" if st.failing else "")

            left = None if args.duration is None else max(args.duration - (time.monotonic() - t0), 0.0)
            rc = await run_service(stop, task, left, report)
            await bus.drain(timeout=5)
            return rc

    return run_until_stopped(main)
