"""Device simulators: sans-I/O models speaking the real bytes, and thin serial shells."""
