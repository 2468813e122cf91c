"""The project's own exceptions; third-party errors are translated into these at the edges."""

from __future__ import annotations

__all__ = ["ConfigError", "TwinError"]


class TwinError(Exception):
    """Base class of the twin's errors."""


class ConfigError(TwinError):
    """A config file, setting or CLI argument is wrong; the message is one line saying how to fix it."""
