"""The edge: transports, codecs, drivers, the device agent and simulators (issue 5)."""
