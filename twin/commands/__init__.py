"""Subcommands of the ``twin`` CLI, one module each."""
