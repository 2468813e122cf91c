"""The MQTT bus: the services' connection, the bulk publisher, the embedded broker."""
