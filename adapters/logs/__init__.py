"""Telemetry logs: the file format, recording and replay."""
