"""Stargate Norway digital twin: wire contract, plant config, physics, state, services and CLI."""

__version__ = "0.1.0"
