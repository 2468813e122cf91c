"""The live state: decoding, the state model, tick windows, snapshots, alarms, virtual sensors and the
aggregator's join."""
