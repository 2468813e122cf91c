"""The sink's edges: InfluxDB over HTTP, line-protocol files, the disk spool."""
