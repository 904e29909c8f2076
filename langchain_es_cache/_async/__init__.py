"""Async implementations: the canonical source of the generated ``_sync`` package."""
