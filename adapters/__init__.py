"""Everything that talks to the outside: MQTT bus, embedded broker, InfluxDB sink, line-protocol files."""
