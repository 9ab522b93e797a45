"""Helpers for tests that run as separate processes (the SMS gateway)."""
