"""Field adapters: DCGM exporter, Modbus CDUs, OPC UA meters, and what they share."""
