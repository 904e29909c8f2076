# Generated from tests/_async/__init__.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The tests of both twins, one module per subject."""
