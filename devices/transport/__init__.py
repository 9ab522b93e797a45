"""Byte transports of the device agent: bytes in, bytes out, failures as DeviceOffline."""
