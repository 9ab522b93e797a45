"""Topic bus and peer protocol: wire messages, sequence, history, resume, presence."""
