# Generated from tests/_async/__init__.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""Async tests: the canonical source of the generated ``tests/_sync``."""
