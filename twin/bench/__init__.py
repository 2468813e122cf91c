"""Benchmarks behind ``twin bench NAME`` (see :mod:`twin.commands.bench`)."""
