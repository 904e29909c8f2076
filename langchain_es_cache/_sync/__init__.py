# Generated from langchain_es_cache/_async/__init__.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The cache classes, one module each, and the stream mixins of ``cache_streams``,
over the shared logic in ``_common``."""
