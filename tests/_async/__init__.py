"""Async tests: the canonical source of the generated ``tests/_sync``."""
